"""Check functions for the notebooks' exercises: each passes, or raises a Hint that points at the mistake.

One module per notebook (`labkit.exercises.welcome`, ...). A check never shows the solution.
An exercise left as it was shipped (the function still returns None / `...`) is reported as
"not attempted yet" instead of failing, so a notebook runs top to bottom before it is solved.
"""

from __future__ import annotations

import math
from typing import Callable


class Hint(AssertionError):
    """The answer is not right yet; the message says where to look."""


class Outcome(str):
    """A check's message. It is printed once; as a cell's last value it shows nothing more."""

    def _ipython_display_(self) -> None:
        pass


def passed(exercise: str) -> Outcome:
    message = Outcome(f"✓ {exercise}: passed")
    print(message)
    return message


def not_attempted(exercise: str, hint: str) -> Outcome:
    message = Outcome(f"… {exercise}: not attempted yet. Hint: {hint}")
    print(message)
    return message


def call_answer(exercise: str, fn: Callable, *args, **kwargs):
    """Call the learner's function; their own error becomes a Hint that names the exercise."""
    try:
        return fn(*args, **kwargs)
    except Hint:
        raise
    except Exception as error:  # the learner's code failed: say so in one line
        raise Hint(f"{exercise}: your code raised {type(error).__name__}: {error}") from None


def close(value: float, expected: float, rel: float = 1e-3) -> bool:
    return value is not None and math.isclose(float(value), expected, rel_tol=rel)
