"""Where labkit's files are: the repository root, the shipped data, reference results, results, notebooks.

The one place for these paths; every other module imports them from here.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent       # the labkit checkout
DATA_DIR = ROOT / "data"                              # shipped data set, weights, SHA256SUMS
SUMS_FILE = DATA_DIR / "SHA256SUMS"
PRETRAINED_DIR = DATA_DIR / "pretrained"
REFERENCE_DIR = DATA_DIR / "reference"                # results recorded on other hardware, with provenance
COURSE_TIMES_FILE = DATA_DIR / "course_times.json"
NOTEBOOK_DIR = ROOT / "notebooks"
README = ROOT / "README.md"
# results/*.csv: what this machine measured (LABKIT_RESULTS_DIR moves it, e.g. for tests)
RESULTS_DIR = Path(os.environ.get("LABKIT_RESULTS_DIR", ROOT / "results"))
