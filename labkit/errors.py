"""The one error type labkit raises for bad input: its message says what to do."""

from __future__ import annotations

import math


class LabkitError(ValueError):
    """A mistake the learner can fix; the message is one line that says how."""


def check_number(name: str, value: object, *, low: float | None = None, high: float | None = None,
                 integer: bool = False, above: bool = False, hint: str = "") -> float:
    """`value` if it is a finite number (a whole one with `integer`) in [low, high] — (low, high] with `above` —
    else a one-line LabkitError naming `name`, the range and `hint`. NaN and ±inf never pass."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = is_number and math.isfinite(value) and (not integer or float(value).is_integer())
    if ok and low is not None:
        ok = value > low if above else value >= low
    if ok and high is not None:
        ok = value <= high
    if ok:
        return value
    kind = "a whole number" if integer else "a number"
    if low is not None and high is not None:
        where = f" greater than {low:g} and at most {high:g}" if above else f" from {low:g} to {high:g}"
    elif low is not None:
        where = f" greater than {low:g}" if above else f" of at least {low:g}"
    elif high is not None:
        where = f" of at most {high:g}"
    else:
        where = ""
    raise LabkitError(f"{name}={value!r} must be {kind}{where}" + (f" ({hint})." if hint else "."))
