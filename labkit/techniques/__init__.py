"""One module per technique: its short reference code and its `headline()` experiment.

Each module `labkit.techniques.<name>` defines `headline(mode=None) -> BenchReport`, which
`labkit bench <name>` runs; the notebook of that technique calls the same function.
"""

import importlib
import pkgutil

from labkit.errors import LabkitError


def names() -> list[str]:
    """The benchmarks available to `labkit bench` (every module here with a `headline`)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            found.append(info.name)
    return sorted(found)


def load(name: str):
    """The technique module `name`; a one-line error naming the choices when it does not exist."""
    if name not in names():
        raise LabkitError(f"No benchmark {name!r}: choose one of {', '.join(names())}.")
    module = importlib.import_module(f"{__name__}.{name}")
    if not hasattr(module, "headline"):
        raise LabkitError(f"labkit.techniques.{name} has no headline() to run.")
    return module
