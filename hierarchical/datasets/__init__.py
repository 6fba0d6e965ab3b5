"""Small real data sets shipped with the package (provenance in PROVENANCE.md)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

FILES = {
    "radon": "radon_mn.csv",
    "radon_mn": "radon_mn.csv",
    "radon_all": "radon_all.csv",
    "sleepstudy": "sleepstudy.csv",
    "epil": "epil.csv",
    "insteval": "insteval.csv.gz",
    "eight_schools": "eight_schools.csv",
    "cbpp": "cbpp.csv",
    "dyestuff": "dyestuff.csv",
    "contraception": "contraception.csv",
    "mmmec": "mmmec.csv",
    "salamanders": "salamanders.csv",
    "earthquake": "earthquake.csv",
    "gasolineyield": "gasolineyield.csv",
    # multi-factor mixed-model bank (tests/data/reference/bank.R, bank.json)
    "pastes": "pastes.csv",
    "penicillin": "penicillin.csv",
    "oats": "oats.csv",
    "machines": "machines.csv",
    "oxide": "oxide.csv",
    "assay": "assay.csv",
    "pixel": "pixel.csv",
    "scotssec": "scotssec.csv",
    "egsingle": "egsingle.csv",
    "chem97": "chem97.csv.gz",
    "oxboys": "oxboys.csv",
    "grouseticks": "grouseticks.csv",
    "verbagg": "verbagg.csv",
    "cbpp_obs": "cbpp_obs.csv",
    "arabidopsis": "arabidopsis.csv",
    "contraception_bank": "contraception_bank.csv",
}


# Integer-coded factors, read as categories (otherwise a formula would treat them as numbers).
CATEGORICAL = {"oxide": ["Source"], "assay": ["dilut"], "grouseticks": ["YEAR"],
               "cbpp_obs": ["period"], "arabidopsis": ["nutrient", "rack"]}


def names() -> list[str]:
    return sorted(FILES)


def load(name: str) -> pd.DataFrame:
    """Load a packaged data set by name (see ``names()``)."""
    if name not in FILES:
        raise KeyError(f"unknown data set {name!r}; available: {names()}")
    with resources.as_file(resources.files(__name__) / FILES[name]) as path:
        frame = pd.read_csv(path)
    frame = frame.drop(columns=["rownames"], errors="ignore") if name != "epil" else frame
    for column in CATEGORICAL.get(name, []):
        frame[column] = pd.Categorical(frame[column])
    return frame
