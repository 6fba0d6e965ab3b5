"""Write a `Fit` to one compressed netCDF file, and read it back.

The file is the fit's DataTree plus a ``model_data`` group (the validated rows the model
used) and, in the root attributes, the spec (with its resolved parameterisation), every
`Model` option (``Model.options``), the sampling settings (``Fit.settings``: sampler, draws,
tune, chains, seed, target_accept, nutpie route) and the package versions. ``hier.load``
(in ``model.py``, which owns `Model`) rebuilds exactly that model from them.

The pointwise log likelihood is not stored: it is most of a fit (draws x rows; radon, 919
rows: 29 of 33 MB) and a deterministic function of the draws and the data, so ``hier.load``
recomputes it with the same code that made it. Every stored variable goes through the HDF5
shuffle filter and zlib (lossless; random float64 mantissas compress little, the rest well).
"""

from __future__ import annotations

import json
import warnings
from importlib import metadata

import pandas as pd
import xarray as xr
from xarray import DataTree

from .exceptions import DataError

PACKAGES = ("hierarchical", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas", "xarray")
DATA_GROUP = "model_data"
LOG_LIKELIHOOD = "log_likelihood"
ENGINE = "h5netcdf"
COMPRESSION = {"zlib": True, "complevel": 4, "shuffle": True}


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _data_group(frame: pd.DataFrame) -> tuple[DataTree, dict]:
    categories = {c: [str(v) for v in frame[c].cat.categories]
                  for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    columns = {}
    for c in frame.columns:
        values = frame[c].astype(str) if c in categories or frame[c].dtype == object else frame[c]
        if pd.api.types.is_string_dtype(values):
            values = values.astype(object)
        columns[str(c)] = ("row", values.to_numpy())
    data = xr.Dataset(columns, coords={"row": frame.index.to_numpy()})
    return DataTree(data), categories


def _frame(group: DataTree, categories: dict) -> pd.DataFrame:
    data = group.to_dataset()
    frame = pd.DataFrame({c: data[c].values for c in data.data_vars},
                         index=pd.Index(data["row"].values))
    for c, cats in categories.items():
        frame[c] = pd.Categorical(frame[c], categories=cats)
    return frame


def _encode_text(tree: DataTree) -> dict[str, list[str]]:
    """Object variables (nutpie's ``divergence_message``: None or a message) become strings,
    "" for None, so netCDF stores them; the names are kept to restore the Nones on load."""
    text = {}
    for group in tree.children:
        data = tree[group].to_dataset()
        names = [name for name, var in data.data_vars.items() if var.dtype == object]
        if names:
            text[group] = names
            tree[group] = DataTree(data.assign({name: data[name].fillna("").astype(str)
                                                for name in names}))
    return text


def _decode_text(tree: DataTree, text: dict[str, list[str]]) -> None:
    for group, names in text.items():
        data = tree[group].to_dataset()
        restored = {}
        for name in names:
            values = data[name].values.astype(object)
            values[values == ""] = None
            restored[name] = data[name].copy(data=values)
        tree[group] = DataTree(data.assign(restored))


def _encoding(tree: DataTree) -> dict[str, dict]:
    """Compression for every data variable of every group (coordinates are small)."""
    return {f"/{group}": {name: COMPRESSION for name, var in tree[group].to_dataset().data_vars.items()
                          if var.dtype.kind in "fiub"}
            for group in tree.children}


def save(fit, path) -> None:
    """Write ``fit`` to ``path`` (netCDF-4, compressed)."""
    model = fit.model
    tree = fit.tree.copy()
    if LOG_LIKELIHOOD in tree.children:
        del tree[LOG_LIKELIHOOD]
    text = _encode_text(tree)
    tree[DATA_GROUP], categories = _data_group(model.design.data)
    meta = {"spec": model.resolved_spec.to_dict(), "options": model.options,
            "settings": fit.settings, "versions": versions(), "categories": categories,
            "text_variables": text}
    tree.attrs = {**tree.attrs, "hierarchical": json.dumps(meta)}
    tree.to_netcdf(path, engine=ENGINE, encoding=_encoding(tree))


def read(path) -> tuple[DataTree, pd.DataFrame, dict]:
    """(idata without its log likelihood, the model's data, metadata) from a file written by
    `save`; warns when package versions differ."""
    with xr.open_datatree(path, engine=ENGINE) as stored:
        tree = stored.load()
    if "hierarchical" not in tree.attrs:
        raise DataError(f"{path!r} was not written by hierarchical's Fit.save")
    meta = json.loads(tree.attrs["hierarchical"])
    changed = {k: (v, versions().get(k)) for k, v in meta["versions"].items()
               if versions().get(k) != v}
    if changed:
        warnings.warn("this fit was saved with other package versions: " + ", ".join(
            f"{k} {old} (now {new})" for k, (old, new) in changed.items()), UserWarning,
            stacklevel=3)
    _decode_text(tree, meta.get("text_variables", {}))
    data = _frame(tree[DATA_GROUP], meta["categories"])
    idata = DataTree.from_dict({name: tree[name].to_dataset() for name in tree.children
                                if name != DATA_GROUP})
    idata.attrs = {k: v for k, v in tree.attrs.items() if k != "hierarchical"}
    return idata, data, meta
