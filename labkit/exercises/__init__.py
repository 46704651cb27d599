"""Check functions for the notebooks' exercises: each passes, or raises a Hint that names the mistake.

One module per notebook (`labkit.exercises.welcome`, ...). The rules every check follows:

- An exercise left as shipped (its body only `...`, `pass`, a docstring or `raise NotImplementedError`) is
  "not attempted yet": the check prints a nudge in words and the notebook runs on. While nbgrader grades
  (NBGRADER_EXECUTION set) it raises instead, so an untouched exercise scores nothing.
- An answer whose body does work but gives back None gets "your function returned nothing".
- A wrong answer raises `Hint` naming the mistake the checker recognises (it tries several inputs, so no
  constant passes).
- Stronger hints come only on request, one level at a time: `check.hint()` (the exercise checked last) or
  `check.hint("scale_zero_point", 2)`. The reference answer comes only from `check.solution(...)`, and only
  after the learner's own answer has been checked once.
- The reference answers live in one place, `labkit.exercises.answers.<module>.KEY`: the tests, `solution()`
  and `labkit course build` (nbgrader) all read them from there.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import textwrap
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from IPython import get_ipython

from labkit import env


class Hint(AssertionError):
    """The answer is not right yet; the message says where to look."""


class NotAttempted(Hint):
    """Raised instead of printed while nbgrader grades: an untouched exercise earns no points."""


class Outcome(str):
    """A check's message. It is printed once; as a cell's last value it shows nothing more."""

    def _ipython_display_(self) -> None:
        pass


MORE = "More help, one step at a time: check.hint()"


def passed(exercise: str) -> Outcome:
    message = Outcome(f"✓ {exercise}: passed")
    print(message)
    return message


def not_attempted(exercise: str, hint: str) -> Outcome:
    """The message for an untouched exercise; while nbgrader grades, a NotAttempted error instead."""
    message = Outcome(f"… {exercise}: not attempted yet. Hint: {hint}")
    if env.autograding():
        raise NotAttempted(message)
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


# ------------------------------------------------------------------ untouched or attempted?

def _shipped_stub() -> None:
    ...


def _only_not_implemented(statements: list[ast.stmt]) -> bool:
    return bool(statements) and all(
        isinstance(s, ast.Raise) and s.exc is not None and "NotImplementedError" in ast.unparse(s.exc)
        for s in statements)


def is_stub(fn: Callable) -> bool:
    """True when `fn` is an exercise as shipped: a body of only `...`, `pass`, a docstring or comments
    (all compile to "return None"), or only `raise NotImplementedError` (nbgrader's stub)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    if code.co_code == _shipped_stub.__code__.co_code:
        return True
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defs:
        return False
    body = [s for s in defs[0].body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return _only_not_implemented([s for s in body if not isinstance(s, ast.Pass)])


# ------------------------------------------------------------------ exercises, hint levels, the answer key

@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook: its check function's name, its title and its hints (level 1 is the nudge
    an untouched exercise gets; each later level says more, still in words)."""
    module: str
    key: str
    title: str
    hints: tuple[str, ...]
    points: int = 1


REGISTRY: dict[tuple[str, str], Exercise] = {}
_attempted: set[tuple[str, str]] = set()
_hint_level: dict[tuple[str, str], int] = {}
_last: dict[str, str] = {}


def _module_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def ask(fn: Callable, *args, **kwargs):
    """Call the learner's answer (already known not to be the shipped stub). Their own error, or a None
    from a body that did work, becomes a Hint."""
    try:
        result = fn(*args, **kwargs)
    except Hint:
        raise
    except Exception as error:  # the learner's code failed: say so in one line
        raise Hint(f"your code raised {type(error).__name__}: {error}") from None
    if result is None:
        raise Hint("your function returned nothing (None): did you forget `return`?")
    return result


def exercise(title: str, hints: list[str], points: int = 1) -> Callable:
    """Declare a check: the decorated function receives the learner's answer and raises Hint (without the
    title: it is added here) for a wrong one; returning means passed."""
    def wrap(check: Callable[[Callable], None]) -> Callable[[Callable], Outcome]:
        ex = Exercise(_module_name(check.__module__), check.__name__, title, tuple(hints), points)
        REGISTRY[(ex.module, ex.key)] = ex

        @functools.wraps(check)
        def run(answer: Callable) -> Outcome:
            _last[ex.module] = ex.key
            if is_stub(answer):
                _hint_level[(ex.module, ex.key)] = max(1, _hint_level.get((ex.module, ex.key), 0))
                return not_attempted(ex.title, f"{ex.hints[0]} {MORE}")
            _attempted.add((ex.module, ex.key))
            try:
                check(answer)
            except NotAttempted:
                raise
            except Hint as hint:
                raise Hint(f"{ex.title}: {hint}") from None
            return passed(ex.title)

        run.exercise = ex
        return run
    return wrap


def exercises_of(module: str) -> list[Exercise]:
    """The declared exercises of one check module (`'welcome'`), in notebook order."""
    return [ex for (m, _), ex in REGISTRY.items() if m == _module_name(module)]


def _which(module: str, exercise_key: str | None) -> Exercise | None:
    key = exercise_key or _last.get(module)
    return REGISTRY.get((module, key)) if key else None


def helpers(module_name: str, answers: ModuleType) -> tuple[Callable, Callable]:
    """`hint` and `solution` for one check module; `answers` holds its KEY of reference functions."""
    module = _module_name(module_name)

    def hint(exercise: str | int | None = None, level: int | None = None) -> Outcome:
        """The next hint (or hint `level`) for `exercise`, by default the exercise checked last:
        `check.hint()`, `check.hint(2)`, `check.hint("median_timer", 3)`."""
        if isinstance(exercise, int):
            exercise, level = None, exercise
        ex = _which(module, exercise)
        if ex is None:
            names = ", ".join(repr(e.key) for e in exercises_of(module))
            message = Outcome(f"Run an exercise's check cell first, or name the exercise: one of {names}.")
        else:
            shown = _hint_level.get((module, ex.key), 0)
            level = min(max(1, level if level is not None else shown + 1), len(ex.hints))
            _hint_level[(module, ex.key)] = max(shown, level)
            message = Outcome(f"Hint {level} of {len(ex.hints)} for {ex.title}: {ex.hints[level - 1]}")
            if level == len(ex.hints):
                message = Outcome(f"{message}\n(That is the last hint. Once your own answer has been checked, "
                                  f"check.solution({ex.key!r}) shows the reference answer.)")
        print(message)
        return message

    def solution(exercise: str | None = None) -> Outcome:
        """The reference answer of `exercise` (by default the exercise checked last), shown only after
        the learner's own answer has been checked once."""
        ex = _which(module, exercise)
        if ex is None:
            message = Outcome("Name the exercise, e.g. check.solution("
                              f"{exercises_of(module)[0].key!r}), after running its check cell.")
        elif (module, ex.key) not in _attempted:
            message = Outcome(f"{ex.title}: try it first. Write your answer and run its check cell; after that "
                              "check.solution shows the reference answer (check.hint() helps meanwhile).")
        else:
            message = Outcome(f"Reference answer for {ex.title}:\n\n{solution_source(answers, ex.key)}")
        print(message)
        return message

    return hint, solution


def solution_source(answers: ModuleType, key: str) -> str:
    """The source of the reference function for exercise `key` (the answer key's one copy)."""
    return textwrap.dedent(inspect.getsource(answers.KEY[key]))


# ------------------------------------------------------------------ while nbgrader grades

SKIP_MARK = "# skipped while nbgrader grades"


def skip_marked_cells(lines: list[str]) -> list[str]:
    """An IPython input transformer, installed only while nbgrader grades: a cell whose first line is
    SKIP_MARK (written by `labkit course build` into cells the exercises do not need) runs nothing."""
    if lines and lines[0].startswith(SKIP_MARK):
        return [f"print({lines[0].strip().lstrip('# ')!r})\n"]
    return lines


def _skip_while_grading() -> None:
    shell = get_ipython()
    if shell is not None and env.autograding() and skip_marked_cells not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(skip_marked_cells)


_skip_while_grading()
