"""Checks for notebooks/12_hyperparameter_search.ipynb: log-uniform sampling, best-so-far, the median
pruning rule, and the grid trials wasted on hyperparameters that don't matter."""

from __future__ import annotations

import math
import statistics
from typing import Callable

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def log_uniform(sample: Callable) -> str:
    """`sample(low, high, u)`: turn a uniform number u in [0, 1] into a log-uniform value in [low, high]."""
    name = "Exercise 1 (log-uniform sampling)"
    low, high = 1e-3, 1.0
    result = call_answer(name, sample, low, high, 0.5)
    if result is None:
        return not_attempted(name, "spread u evenly over the EXPONENTS: between log(low) and log(high), "
                                   "then undo the log.")
    try:
        value = float(result)
    except (TypeError, ValueError):
        raise Hint(f"{name}: return one number, got {type(result).__name__}.") from None
    if close(value, low + 0.5 * (high - low)):
        raise Hint(f"{name}: got {value:g} for u = 0.5: that is uniform on a linear scale — half the draws would "
                   "land above 0.5 and almost none near 0.001. Interpolate the logarithms instead.")
    if close(value, math.sqrt(low * high), rel=1e-6):
        for u in (0.0, 0.25, 1.0):
            got = call_answer(name, sample, low, high, u)
            expected = low * (high / low) ** u
            if got is None or not close(float(got), expected, rel=1e-6):
                raise Hint(f"{name}: u = 0.5 is right, but u = {u} gives {got}, expected {expected:g}: "
                           "u = 0 must give low and u = 1 high.")
        return passed(name)
    if close(value, 10 ** (0.5 * (math.log(low) + math.log(high))), rel=1e-6):
        raise Hint(f"{name}: got {value:g}: you took natural logs but undid them with 10**; use the same base "
                   "both ways (math.log with math.exp, or math.log10 with 10**).")
    raise Hint(f"{name}: got {value:g} for u = 0.5 between 0.001 and 1; a log-uniform draw at u = 0.5 is "
               "the geometric middle of the range, 10**-1.5 ≈ 0.0316.")


def best_so_far(running_best: Callable) -> str:
    """`running_best(values)`: the best value seen up to each trial; None marks a pruned trial (no value)."""
    name = "Exercise 2 (best so far)"
    values = [80.0, None, 78.5, 83.0, None, 82.0, 84.5]
    expected = [80.0, 80.0, 80.0, 83.0, 83.0, 83.0, 84.5]
    result = call_answer(name, running_best, list(values))
    if result is None:
        return not_attempted(name, "walk through the values keeping the largest seen so far; skip the Nones.")
    result = list(result)
    if len(result) != len(values):
        raise Hint(f"{name}: return one number per trial ({len(values)}), got {len(result)}: a pruned trial "
                   "still has a best-so-far — the one before it.")
    if all(r is not None and close(r, e) for r, e in zip(result, expected)):
        return passed(name)
    if all((r is None and v is None) or (r is not None and v is not None and close(r, v)) for r, v in
           zip(result, values)):
        raise Hint(f"{name}: these are the trial values themselves; keep the running MAXIMUM.")
    if result[1] is None:
        raise Hint(f"{name}: after a pruned trial (None) the best so far is still the previous best (80.0).")
    if close(result[2], 78.5):
        raise Hint(f"{name}: trial 3 scored 78.5 but 80.0 was already found: the best so far can only go up.")
    raise Hint(f"{name}: for {values} expected {expected}, got {result}.")


def median_rule(should_prune: Callable) -> str:
    """`should_prune(acc, earlier)`: stop a trial whose accuracy at this epoch is below the median of the
    earlier (finished) trials' accuracies at the same epoch; never prune when there are none."""
    name = "Exercise 3 (the median pruning rule)"
    result = call_answer(name, should_prune, 82.0, [70.0, 85.0, 90.0])
    if result is None:
        return not_attempted(name, "statistics.median(earlier), then compare; an empty `earlier` means keep going.")
    if not isinstance(result, bool):
        raise Hint(f"{name}: return True (prune) or False (keep training), got {result!r}.")
    if result is False:
        raise Hint(f"{name}: 82 is below the median of [70, 85, 90] (85) and should be pruned. Did you use the "
                   f"MEAN ({statistics.mean([70, 85, 90]):.1f})? One diverged trial drags the mean down; the "
                   "median ignores it.")
    cases = [((85.0, [70.0, 85.0, 90.0]), False, "exactly AT the median is not below it: keep it (use <, not <=)"),
             ((95.0, [70.0, 85.0, 90.0]), False, "95 beats every earlier trial: never prune it"),
             ((85.0, [80.0, 84.0, 86.0, 90.0]), False,
              "with an even count the median is the mean of the middle two (85.0); 85 is not below it"),
             ((84.0, [80.0, 84.0, 86.0, 90.0]), True, "84 is below the median (85.0) of [80, 84, 86, 90]")]
    for args, expected, why in cases:
        got = call_answer(name, should_prune, args[0], list(args[1]))
        if got is not expected:
            raise Hint(f"{name}: should_prune{args} gave {got!r}: {why}.")
    try:
        got = should_prune(50.0, [])
    except Exception as error:  # statistics.median([]) raises
        raise Hint(f"{name}: with no earlier trials your code raised {type(error).__name__}: there is nothing to "
                   "compare with yet, so return False.") from None
    if got is not False:
        raise Hint(f"{name}: with no earlier trials there is nothing to compare with: return False (keep training).")
    return passed(name)


def wasted_trials(count_wasted: Callable) -> str:
    """`count_wasted(grid, important)`: how many grid trials only repeat a value of the one hyperparameter
    that matters (the others don't change the result) — so they teach you nothing new."""
    name = "Exercise 4 (wasted grid trials)"
    grid = {"lr": [0.001, 0.01, 0.1, 1.0], "momentum": [0.85, 0.95], "weight_decay": [1e-5, 1e-3],
            "width": [32, 128]}
    result = call_answer(name, count_wasted, {k: list(v) for k, v in grid.items()}, "lr")
    if result is None:
        return not_attempted(name, "how many trials does the grid run, and how many DIFFERENT learning rates "
                                   "do they try?")
    if result == 28:
        other = call_answer(name, count_wasted, {"lr": [0.01, 0.1], "width": [32, 64, 128]}, "width")
        if other != 3:
            raise Hint(f"{name}: right for the lab's grid, but for a 2 × 3 grid where only width matters "
                       f"you gave {other}; use the `important` argument, not 'lr'.")
        return passed(name)
    if result == 32:
        raise Hint(f"{name}: 32 is every trial; the first trial at each learning rate is not wasted.")
    if result == 4:
        raise Hint(f"{name}: 4 is how many learning rates the grid tries (the useful trials); "
                   "count the others.")
    if result == 8:
        raise Hint(f"{name}: 8 is the trials per learning rate; all but one of them at each rate repeat it.")
    raise Hint(f"{name}: got {result!r}; the grid has 4 × 2 × 2 × 2 trials but only 4 different learning rates.")
