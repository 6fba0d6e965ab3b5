"""Errors and warnings raised by `hierarchical`.

Every message names what was wrong (column, argument, key), the offending value(s) and what
would be valid, so that a user never has to read a PyTensor traceback.
"""


class HierarchicalError(Exception):
    """Base class for every error this package raises on purpose."""


class SpecError(HierarchicalError, ValueError):
    """A model specification (template arguments, formula, family, option) is invalid."""


class FormulaError(SpecError):
    """An lme4-style formula could not be parsed; the message shows the position."""


class ModelFileError(SpecError):
    """A model file (``models/*.toml``) is invalid; the message names the file and key."""


class DataError(HierarchicalError, ValueError):
    """The data do not fit the model: missing columns, bad values, too few levels."""


class PriorError(SpecError):
    """A prior override has an unknown key, an unknown distribution or bad parameters."""


class SamplerError(HierarchicalError, RuntimeError):
    """A sampler back-end is unknown or not installed."""


class ConvergenceWarning(UserWarning):
    """Sampling finished but the draws should not be trusted yet (r_hat, ESS, divergences)."""
