"""An identity whose gradient is disconnected, and which the graph rewrites keep.

PyTensor's ``disconnected_grad`` is a ``ViewOp``, and the canonicalize / stabilize rewrites
remove view ops. PyMC's samplers (nutpie's compile, and ours: ``nutpie_sampler``) rewrite the
log density *before* differentiating it, so the stop is gone by then and the gradient runs
back through every Newton iteration of the Laplace approximation (``laplace.py``): on
contraception a 300 us gradient, and with its line search a graph that took more than 20 GB
to compile. This Op is not a view op, so it survives to the gradient.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic

from .jax_dispatch import register_jax


class StopGradient(Op):
    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]

    def grad(self, inputs, output_grads):
        return [disconnected_type()]

    def connection_pattern(self, node):
        return [[False]]

    def infer_shape(self, node, shapes):
        return shapes


stop_gradient = StopGradient()


@numba_basic.register_funcify_default_op_cache_key(StopGradient)
def _numba_stop_gradient(op, node, **kwargs):
    @numba_basic.numba_njit
    def identity(x):
        return x

    return identity


@register_jax(StopGradient)
def _jax_stop_gradient(op, **kwargs):
    import jax

    return jax.lax.stop_gradient
