"""Verdicts over seeds: is a difference larger than the seed-to-seed noise?

A notebook's "better", "worse" or "within noise" is computed here from the run's own numbers:
the paired difference between two variants, seed by seed, and a 95 % Student-t interval of
its mean. Pure Python: no torch, so every module may use it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from labkit.errors import LabkitError

# Student t, two-sided 95 %, by degrees of freedom (n seeds - 1); 1.96 beyond the table.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    """The two-sided 95 % Student-t quantile for `dof` degrees of freedom (rounded down to the table)."""
    if dof < 1:
        raise LabkitError("an interval needs at least two seeds.")
    return _T95[max(k for k in _T95 if k <= dof)] if dof <= 30 else 1.96


@dataclass(frozen=True)
class Paired:
    """The mean of the per-seed differences a - b and its 95 % interval."""

    name_a: str
    name_b: str
    diffs: tuple[float, ...]
    unit: str = ""
    over: str = "seeds"   # what the pairs are: seeds, or e.g. "runs (method × seed)"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs)

    @property
    def half_width(self) -> float:
        n = len(self.diffs)
        return t95(n - 1) * statistics.stdev(self.diffs) / math.sqrt(n)

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def verdict(self) -> str:
        """'higher', 'lower' or 'within noise': where the interval lies with respect to 0."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "within noise"

    def text(self, digits: int = 2) -> str:
        """One line: the verdict and the numbers it rests on."""
        u = f" {self.unit}" if self.unit else ""
        f = f"{{:+.{digits}f}}"
        return (f"{self.name_a} − {self.name_b}: {f.format(self.mean)}{u} "
                f"(95 % interval {f.format(self.low)} to {f.format(self.high)}{u}, {len(self.diffs)} {self.over}) "
                f"→ {self.name_a} is {self.verdict}" + ("" if self.verdict == "within noise" else f" than {self.name_b}"))


def paired(a: Sequence[float], b: Sequence[float], name_a: str = "a", name_b: str = "b", unit: str = "",
           over: str = "seeds") -> Paired:
    """Compare two variants measured on the same seeds (a[i] and b[i] share seed i)."""
    if len(a) != len(b):
        raise LabkitError(f"paired comparison needs one value per seed for both: got {len(a)} and {len(b)}.")
    if len(a) < 2:
        raise LabkitError("a verdict over seeds needs at least two seeds.")
    diffs = tuple(float(x) - float(y) for x, y in zip(a, b))
    if not all(math.isfinite(d) for d in diffs):
        raise LabkitError(f"{name_a} or {name_b} has a value that is not a finite number: {diffs}.")
    return Paired(name_a, name_b, diffs, unit, over)


def speed_verdict(speedup: float, margin: float = 0.10) -> str:
    """'faster', 'slower' or 'about the same' for a measured speed-up (old time / new time), with the margin
    named: one run's medians differ by a few per cent from run to run, so smaller ratios decide nothing."""
    if not math.isfinite(speedup) or speedup <= 0:
        raise LabkitError(f"speed-up {speedup!r} is not a positive number.")
    if speedup > 1 + margin:
        return f"faster ({speedup:.2f}×)"
    if speedup < 1 / (1 + margin):
        return f"slower ({speedup:.2f}×)"
    return f"about the same ({speedup:.2f}×, within ±{100 * margin:.0f} %)"
