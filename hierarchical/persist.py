"""Save a `Fit` to one netCDF file and load it back without refitting.

The file is the fit's DataTree plus a ``model_data`` group (the validated rows the model
used) and, in the root attributes, the spec (with its resolved parameterisation), the
sampler and the package versions. Loading rebuilds the `Model` from spec and data, so the
priors and the graph are those of the original fit.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from importlib import metadata

import pandas as pd
import xarray as xr
from xarray import DataTree

from .exceptions import DataError

PACKAGES = ("hierarchical", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas", "xarray")
DATA_GROUP = "model_data"
ENGINE = "h5netcdf"


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


def save(fit, path) -> None:
    """Write ``fit`` to ``path`` (netCDF-4)."""
    spec = fit.model.spec
    resolved = tuple(replace(term, centered=g.term.centered)
                     for term, g in zip(spec.groups, fit.model.design.groups))
    tree = fit.idata.copy()
    text = _encode_text(tree)
    tree[DATA_GROUP], categories = _data_group(fit.model.design.data)
    meta = {"spec": replace(spec, groups=resolved).to_dict(), "sampler": fit.sampler,
            "versions": versions(), "categories": categories, "text_variables": text}
    tree.attrs = {**tree.attrs, "hierarchical": json.dumps(meta)}
    tree.to_netcdf(path, engine=ENGINE)


def load(path):
    """Read a fit written by `Fit.save`; warns when package versions differ."""
    from .fit import Fit
    from .model import Model
    from .spec import ModelSpec

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
            stacklevel=2)
    _decode_text(tree, meta.get("text_variables", {}))
    data = _frame(tree[DATA_GROUP], meta["categories"])
    model = Model(ModelSpec.from_dict(meta["spec"]), data)
    idata = DataTree.from_dict({name: tree[name].to_dataset() for name in tree.children
                                if name != DATA_GROUP})
    idata.attrs = {k: v for k, v in tree.attrs.items() if k != "hierarchical"}
    return Fit(model, idata, sampler=meta["sampler"])
