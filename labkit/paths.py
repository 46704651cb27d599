"""Where labkit's files are: the shipped data, reference results, notebooks, and where results go.

The one place for these paths; every other module imports them from here. In a clone of the
repository they are the clone's own folders (data/, notebooks/, results/). Installed from a wheel
(`pip install labkit…whl`, Colab, a JupyterHub), data/ and notebooks/ travel inside the package as
labkit/_shipped/ (setup.py copies them in at build time), and results go beside the notebooks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
IN_CLONE = (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "data").is_dir()
SHIPPED_DIR = PACKAGE_DIR / "_shipped"                # data/, notebooks/, README.md inside an installed wheel

ROOT = _CHECKOUT if IN_CLONE else SHIPPED_DIR        # the labkit checkout, or its copy inside the package
DATA_DIR = ROOT / "data"                              # shipped data set, weights, SHA256SUMS
SUMS_FILE = DATA_DIR / "SHA256SUMS"
PRETRAINED_DIR = DATA_DIR / "pretrained"
REFERENCE_DIR = DATA_DIR / "reference"                # results recorded on other hardware, with provenance
COURSE_TIMES_FILE = DATA_DIR / "course_times.json"
NOTEBOOK_DIR = ROOT / "notebooks"
README = ROOT / "README.md"


def _results_dir() -> Path:
    """LABKIT_RESULTS_DIR; else results/ in the clone; installed, ./results where the notebook runs (never site-packages)."""
    if os.environ.get("LABKIT_RESULTS_DIR"):
        return Path(os.environ["LABKIT_RESULTS_DIR"])
    if IN_CLONE:
        return ROOT / "results"
    here = Path.cwd().resolve()
    inside_python = any(here.is_relative_to(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix})
    return Path.home() / "labkit-results" if inside_python else here / "results"


# results/*.csv: what this machine measured (LABKIT_RESULTS_DIR moves it, e.g. for tests)
RESULTS_DIR = _results_dir()
