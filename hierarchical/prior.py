"""`Prior`: a named PyMC distribution with fixed parameters, as the user writes it."""

from __future__ import annotations

from typing import Any

from .exceptions import PriorError


class Prior:
    """A named PyMC distribution with fixed parameters, e.g. ``Prior("Normal", mu=0, sigma=5)``."""

    __slots__ = ("dist", "_params")

    def __init__(self, dist: str, **params: Any):
        if not isinstance(dist, str) or not dist:
            raise PriorError(f"Prior distribution must be a PyMC distribution name, but got {dist!r}")
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "_params", tuple(sorted(params.items())))

    def __setattr__(self, name, value):
        raise AttributeError("Prior is immutable")

    def __reduce__(self):  # pickling (process and Dask workers) goes through __init__
        return (_make_prior, (self.dist, self._params))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def __eq__(self, other):
        return isinstance(other, Prior) and (self.dist, self._params) == (other.dist, other._params)

    def __hash__(self):
        return hash((self.dist, tuple((k, float(v)) for k, v in self._params)))

    def __repr__(self):
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self._params)
        return f"{self.dist}({args})"

    def to_dict(self) -> dict:
        return {"dist": self.dist, **{k: float(v) for k, v in self._params}}

    @classmethod
    def from_dict(cls, d: dict) -> "Prior":
        d = dict(d)
        return cls(d.pop("dist"), **d)


def _make_prior(dist: str, params: tuple) -> Prior:
    return Prior(dist, **dict(params))


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
