"""DataFrame -> validated arrays, group codes and coordinates.

Every bad-input error starts here, before PyMC sees anything. The caller's DataFrame is
never modified: we work on a copy of just the columns the model needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import formulae
import numpy as np
import pandas as pd

from . import names as variable_names
from .exceptions import DataError, SpecError
from .spec import GroupTerm, ModelSpec

MAX_SHOWN = 5


def _rows(index) -> str:
    labels = [str(i) for i in list(index)[:MAX_SHOWN]]
    more = len(index) - MAX_SHOWN
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def _show(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _values(values) -> str:
    shown = [_show(v) for v in list(values)[:MAX_SHOWN]]
    return ", ".join(shown) + (", ..." if len(values) > MAX_SHOWN else "")


@dataclass
class GroupDesign:
    """One grouping factor: level codes per row, the Z columns and their names."""

    term: GroupTerm
    levels: list[str]
    codes: np.ndarray
    Z: np.ndarray
    term_names: list[str]
    matrix: object = field(repr=False)  # formulae design, to evaluate new data

    @property
    def name(self) -> str:
        return self.term.group

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.levels))

    @property
    def intercept_only(self) -> bool:
        return self.term_names == ["Intercept"]


@dataclass
class Design:
    """Validated numeric arrays for one model, plus what is needed to encode new data."""

    spec: ModelSpec
    data: pd.DataFrame  # the validated columns the model uses (a copy)
    y: np.ndarray
    X: np.ndarray
    fixed_names: list[str]
    fixed_matrix: object = field(repr=False)
    groups: list[GroupDesign] = field(default_factory=list)
    trials: np.ndarray | None = None
    offset: np.ndarray | None = None
    se: np.ndarray | None = None
    weights: np.ndarray | None = None
    # the fixed-effect columns' means over the rows as given (kept when rows are aggregated):
    # where NUTS samples the intercept (graph.CentredIntercept)
    column_means: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    def rows(self, index: np.ndarray) -> "Design":
        """The design restricted to these row positions; levels and encodings are kept."""
        def pick(values):
            return None if values is None else values[index]

        return replace(self, data=self.data.iloc[index], y=self.y[index], X=self.X[index],
                       groups=[replace(g, codes=g.codes[index], Z=g.Z[index]) for g in self.groups],
                       trials=pick(self.trials), offset=pick(self.offset), se=pick(self.se),
                       weights=pick(self.weights))


def required_columns(spec: ModelSpec) -> list[str]:
    """Every column the spec refers to, in a stable order."""
    cols = [spec.response, *_formula_vars(spec.fixed, "the fixed part")]
    for term in spec.groups:
        cols += [*_formula_vars(term.expr, term.formula), *term.factors]
    cols += [c for c in (spec.trials, spec.offset, spec.exposure, spec.se, spec.weights) if c]
    return list(dict.fromkeys(cols))


def _formula_vars(rhs: str, where: str) -> list[str]:
    try:
        names = formulae.model_description(rhs).var_names
    except Exception as exc:  # formulae raises its own parse errors
        raise SpecError(f"cannot parse {where} {rhs!r}: {exc}") from None
    return sorted(name for name in names if name)   # formulae lists '' for I(x**2)


def _check_frame(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, but got {type(data).__name__}")
    if data.columns.duplicated().any():
        dupes = sorted(set(map(str, data.columns[data.columns.duplicated()])))
        raise DataError(f"data has duplicate column names {dupes}; rename them so each is unique")
    if len(data) == 0:
        raise DataError("data has no rows")
    if len(data) == 1:
        raise DataError("data has 1 row; partial pooling needs rows in at least 2 groups")
    return data


def _check_dtypes(frame: pd.DataFrame, spec: ModelSpec) -> None:
    """Dates, durations and complex numbers are not predictors: say so before formulae does."""
    groups = {term.group for term in spec.groups}
    for column in frame.columns:
        kind = frame[column].dtype.kind
        if column not in groups and kind in "mMc":
            raise DataError(f"column {column!r} has dtype {frame[column].dtype}, which cannot "
                            "enter a model; convert it to numbers (e.g. days since a start "
                            "date) or to category labels")


def _check_columns(data: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(f"column(s) {missing} not found in data; available columns: "
                        f"{[str(c) for c in data.columns]}")


def _missing_mask(col: pd.Series) -> pd.Series:
    mask = col.isna()
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        mask |= ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
    return mask


def _handle_missing(frame: pd.DataFrame, dropna: bool | None) -> pd.DataFrame:
    """Refuse (or, with ``dropna=True``, drop) incomplete rows; ``None``: the caller has no
    dropna option (prediction), so the message does not offer one."""
    masks = {c: _missing_mask(frame[c]) for c in frame.columns}
    bad = {c: m for c, m in masks.items() if m.any()}
    if not bad:
        return frame
    if not dropna:
        c, m = next(iter(bad.items()))
        others = [k for k in bad if k != c]
        raise DataError(
            f"column {c!r} has missing or non-finite values ({_values(frame[c][m].unique())}) "
            f"in {int(m.sum())} row(s): {_rows(frame.index[m])}"
            + (f"; also in columns {others}" if others else "")
            + (". Fix or remove those rows." if dropna is None else
               ". Fix or remove those rows, or pass dropna=True to drop them."))
    drop = np.logical_or.reduce(list(bad.values()))
    warnings.warn(f"dropna=True: dropped {int(drop.sum())} of {len(frame)} rows with missing "
                  f"values in {sorted(bad)}", UserWarning, stacklevel=4)
    kept = frame.loc[~drop]
    if len(kept) == 0:
        raise DataError("dropna=True dropped every row: no complete rows remain")
    return kept


def _numeric_response(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    col = frame[spec.response]
    if pd.api.types.is_bool_dtype(col):
        if spec.family != "bernoulli":
            raise DataError(f"response {spec.response!r} is boolean; boolean responses need "
                            f"family='bernoulli', not {spec.family!r}")
        return col.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(col):
        raise DataError(f"response {spec.response!r} must be numeric, but has dtype "
                        f"{col.dtype} with values such as {_values(col.unique())}")
    return col.to_numpy(dtype=float)


def _check_family_values(frame: pd.DataFrame, spec: ModelSpec, y: np.ndarray,
                         trials: np.ndarray | None) -> None:
    name, idx = spec.response, frame.index

    def fail(mask, what):
        raise DataError(f"response {name!r} {what}: values {_values(y[mask])} "
                        f"in row(s): {_rows(idx[mask])}")

    if trials is not None:
        bad = (trials < 1) | (trials != np.round(trials))
        if bad.any():
            raise DataError(f"trials column {spec.trials!r} must hold integers >= 1: values "
                            f"{_values(trials[bad])} in row(s): {_rows(idx[bad])}")
    for mask, what in spec.family_object.check_response(y):
        fail(mask, what)
    if trials is not None:
        over = y > trials
        if over.any():
            fail(over, f"cannot exceed trials {spec.trials!r} ({_values(trials[over])})")


def _numeric_column(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataError(f"{role} column {column!r} must be numeric, but has dtype {col.dtype}")
    return col.to_numpy(dtype=float)


def _positive(values: np.ndarray, frame, column: str, role: str) -> np.ndarray:
    bad = values <= 0
    if bad.any():
        raise DataError(f"{role} column {column!r} must be > 0: values {_values(values[bad])} "
                        f"in row(s): {_rows(frame.index[bad])}")
    return values


def _frequency_weights(values: np.ndarray, frame, column: str) -> np.ndarray:
    """Weights >= 0, not all 0: a row weighted 0 counts for nothing (as in lme4), which is
    how cross-validation holds rows out without changing the model's structure."""
    bad = ~(values >= 0) | ~np.isfinite(values)
    if bad.any():
        raise DataError(f"weights column {column!r} must be >= 0 and finite: values "
                        f"{_values(values[bad])} in row(s): {_rows(frame.index[bad])}")
    if not values.any():
        raise DataError(f"weights column {column!r} is 0 in every row: no row counts")
    return values


def _factor_column(frame: pd.DataFrame, factor: str) -> pd.Series:
    """A grouping column as labels: integer-valued floats become ints, fractions are refused."""
    col = frame[factor]
    if pd.api.types.is_float_dtype(col):
        values = col.to_numpy()
        frac = values != np.round(values)
        if frac.any():
            raise DataError(
                f"grouping column {factor!r} holds non-integer floats ({_values(values[frac])} "
                f"in row(s): {_rows(frame.index[frac])}); a grouping factor needs labels: "
                "use strings or integers")
        col = col.astype("int64")
    return col


def row_labels(frame: pd.DataFrame, term: GroupTerm) -> np.ndarray:
    """The level label of every row, as strings (``"a1:b2"`` for an interaction factor)."""
    parts = [_factor_column(frame, f).astype(str).to_numpy(dtype=object) for f in term.factors]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + ":" + part
    return labels


def _level_order(frame: pd.DataFrame, term: GroupTerm) -> list[str]:
    """Observed levels: category order, else numeric order for integers, else sorted text."""
    keys = []
    for factor in term.factors:
        col = _factor_column(frame, factor)
        if isinstance(col.dtype, pd.CategoricalDtype):
            rank = {c: i for i, c in enumerate(col.cat.categories)}
            keys.append(col.map(rank).to_numpy())
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            keys.append(col.to_numpy())
        else:
            keys.append(col.astype(str).to_numpy(dtype=object))
    labels = row_labels(frame, term)
    first = dict(zip(zip(*keys), labels))
    return [first[k] for k in sorted(first)]


# Transformations a formula may call by their usual names, as in R: ``log(distance)``.
TRANSFORMS = {"log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}


def _design_matrix(rhs: str, frame: pd.DataFrame, where: str):
    try:
        dm = formulae.design_matrices(rhs, frame, na_action="error",
                                      extra_namespace=TRANSFORMS).common
    except Exception as exc:
        raise SpecError(f"cannot build {where} {rhs!r}: {exc}") from None
    if dm is None:
        return None, np.zeros((len(frame), 0)), []
    names = [label for term in dm.terms.values() for label in term.labels]
    return dm, np.asarray(dm.design_matrix, dtype=float), names


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    if X.shape[1] == 0 or np.linalg.matrix_rank(X) == X.shape[1]:
        return
    keep: list[int] = []
    for j in range(X.shape[1]):
        if np.linalg.matrix_rank(X[:, keep + [j]]) == len(keep) + 1:
            keep.append(j)
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    raise DataError(f"fixed-effect columns {dropped} are linear combinations of the others "
                    "(collinear or constant); remove them from the model")


def _per_level(codes: np.ndarray, column: np.ndarray) -> np.ndarray | None:
    """The column's value in each level (``codes`` per row), or None when it varies within
    a level."""
    values = np.zeros(codes.max() + 1, dtype=column.dtype)
    values[codes] = column
    return values if np.array_equal(values[codes], column) else None


def constant_within(values: np.ndarray, codes: np.ndarray) -> bool:
    """True when ``values`` never vary within any level (``codes`` per row)."""
    return _per_level(codes, values) is not None


def _group_design(frame: pd.DataFrame, term: GroupTerm) -> GroupDesign:
    if term.group in variable_names.RESERVED_FACTOR_NAMES:
        raise SpecError(f"grouping factor {term.group!r} takes a name the model uses for a "
                        f"variable or dim; rename the column (names not allowed: "
                        f"{', '.join(sorted(variable_names.RESERVED_FACTOR_NAMES))})")
    labels, levels = row_labels(frame, term), _level_order(frame, term)
    if len(levels) < 2:
        raise DataError(f"grouping factor {term.group!r} has a single level ({levels[0]!r}); "
                        "group effects need at least 2 levels")
    codes = pd.Index(levels).get_indexer(labels)
    dm, Z, names = _design_matrix(term.expr, frame, f"group term {term.formula}")
    if not names:
        raise SpecError(f"group term {term.formula} has no columns")
    for j, name in enumerate(names):
        if name == "Intercept":
            continue
        if constant_within(Z[:, j], codes):
            raise DataError(
                f"random slope {name!r} in {term.formula} never varies within any level of "
                f"{term.group!r}, so its group-specific slopes are not identified; "
                f"use it as a fixed effect only")
    return GroupDesign(term=term, levels=levels, codes=codes, Z=Z, term_names=names, matrix=dm)


def level_values(g: GroupDesign, column: np.ndarray) -> np.ndarray | None:
    """The column's value in each level of g, or None when it varies within a level: a
    covariate constant within levels, or (given another factor's codes) the level of the
    factor that g is nested in."""
    return _per_level(g.codes, column)


def levels_of(design: Design, name: str, role: str) -> tuple[np.ndarray, list[str]]:
    """Each row's level (codes) and the level labels of a grouping factor (``a:b``
    included) or, failing that, of a column of the model's data (sorted values as text):
    what ``by=`` and ``stratify=`` arguments name."""
    for g in design.groups:
        if g.name == name:
            return g.codes, list(g.levels)
    if name in design.data.columns:
        codes, levels = pd.factorize(design.data[name], sort=True)
        return codes, [str(v) for v in levels]
    valid = [g.name for g in design.groups] + list(design.data.columns)
    raise SpecError(f"{role}={name!r} is neither a grouping factor nor a column of the model's "
                    f"data; valid: {valid}")


def parents(design: Design) -> dict[str, str | None]:
    """The factor each pooled factor is nested in (every level inside one level of it), the
    closest such factor, or None: ``(1 | school) + (1 | school:class)`` gives class -> school."""
    pooled = [g for g in design.groups if g.term.pooled]
    out = {}
    for g in pooled:
        outer = [p for p in pooled if len(p.levels) < len(g.levels)
                 and level_values(g, p.codes) is not None]
        out[g.name] = max(outer, key=lambda p: len(p.levels)).name if outer else None
    return out


def log_offset(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray | None:
    """The offset on the log scale: the offset column, or log of a positive exposure column."""
    if spec.offset:
        return _numeric_column(frame, spec.offset, "offset")
    if spec.exposure:
        exposure = _numeric_column(frame, spec.exposure, "exposure")
        return np.log(_positive(exposure, frame, spec.exposure, "exposure"))
    return None


def build_design(spec: ModelSpec, data: pd.DataFrame, *, dropna: bool = False) -> Design:
    """Validate ``data`` against ``spec`` and encode it. Raises DataError / SpecError."""
    data = _check_frame(data)
    cols = required_columns(spec)
    _check_columns(data, cols)
    frame = _handle_missing(data.loc[:, cols].copy(), dropna)
    _check_dtypes(frame, spec)
    y = _numeric_response(frame, spec)
    trials = _numeric_column(frame, spec.trials, "trials") if spec.trials else None
    _check_family_values(frame, spec, y, trials)
    offset = log_offset(frame, spec)
    se = None
    if spec.se:
        se = _positive(_numeric_column(frame, spec.se, "standard error"), frame, spec.se,
                       "standard error")
    weights = None
    if spec.weights:
        weights = _frequency_weights(_numeric_column(frame, spec.weights, "weights"), frame,
                                     spec.weights)
    fixed_matrix, X, fixed_names = _design_matrix(spec.fixed, frame, "the fixed part")
    _check_rank(X, fixed_names)
    groups = [_group_design(frame, term) for term in spec.groups]
    return Design(spec=spec, data=frame, y=y, X=X, fixed_names=fixed_names,
                  fixed_matrix=fixed_matrix, groups=groups, trials=trials, offset=offset, se=se,
                  weights=weights, column_means=X.mean(axis=0))
