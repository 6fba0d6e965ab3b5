"""The one way the package compiles its own numba kernels (Laplace chain, SPD blocks).

``cache=True``: compiled once per machine, then loaded from numba's disk cache by every
later process. ``error_model="numpy"``: a division by zero far out in the warm-up (an SD of
0 or inf) gives inf or NaN, which NUTS rejects as a divergence; Python's error model raised
ZeroDivisionError inside nutpie's chain thread and killed the whole fit.
"""

from __future__ import annotations

from functools import partial

import numba

kernel = partial(numba.njit, cache=True, error_model="numpy")
