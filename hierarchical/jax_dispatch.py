"""JAX implementations of our PyTensor Ops, for the numpyro back-end: registered when JAX is
installed (an optional extra), skipped otherwise."""

from __future__ import annotations


def register_jax(op_type):
    """A decorator registering a JAX implementation of ``op_type`` (a no-op without JAX)."""
    try:
        from pytensor.link.jax.dispatch import jax_funcify
    except ImportError:   # pragma: no cover - JAX is optional
        return lambda maker: maker
    return jax_funcify.register(op_type)
