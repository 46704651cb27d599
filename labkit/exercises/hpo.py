"""Checks for notebooks/12_hyperparameter_search.ipynb: log-uniform sampling, best-so-far, the median
pruning rule, and the grid trials wasted on hyperparameters that don't matter. Each check tries several
inputs, so no constant passes, and names the mistake it recognises."""

from __future__ import annotations

import math
import statistics
from typing import Callable

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import hpo as answers

__all__ = ["log_uniform", "best_so_far", "median_rule", "wasted_trials", "hint", "solution"]


def _close(a, b, rel: float = 1e-6) -> bool:
    try:
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-15)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------ exercise 1: log-uniform sampling

# (low, high, u): ranges over several decades and over powers of two, both ends of u, and u off the middle.
LOG_CASES = [(1e-3, 1.0, 0.5), (1e-5, 1e-1, 0.25), (2.0, 32.0, 0.75), (1e-4, 1e-2, 0.0), (1e-4, 1e-2, 1.0),
             (0.5, 8.0, 0.3)]


def _log_uniform(low: float, high: float, u: float) -> float:
    return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


@exercise("Exercise 1 (log-uniform sampling)", hints=[
    "on a log scale every decade is as wide as every other: as many draws should land between a thousandth "
    "and a hundredth as between a tenth and one. Spread u evenly over something other than the values "
    "themselves.",
    "spread u evenly over the exponents: interpolate between the logarithm of low and the logarithm of "
    "high, so that u of zero gives low and u of one gives high.",
    "then undo the logarithm with the matching exponential, in the same base you took the logarithm in. "
    "Halfway, u of one half, gives the geometric middle of the range.",
])
def log_uniform(sample: Callable) -> None:
    """`sample(low, high, u)`: turn a uniform number u in [0, 1] into a log-uniform value in [low, high]."""
    for low, high, u in LOG_CASES:
        result = ask(sample, low, high, u)
        try:
            value = float(result)
        except (TypeError, ValueError):
            raise Hint(f"return one number, got {type(result).__name__}.") from None
        want = _log_uniform(low, high, u)
        if _close(value, want):
            continue
        case = f"for low {low:g}, high {high:g}, u {u:g} you returned {value:.6g}, expected {want:.6g}"
        ln, l10 = math.log, math.log10
        mistakes = [
            (low + u * (high - low), "that is uniform on a linear scale: almost no draws would land in the "
             "lowest decades. Interpolate the logarithms instead."),
            (10 ** (ln(low) + u * (ln(high) - ln(low))), "you took natural logs but undid them with 10**: use "
             "the same base both ways (math.log with math.exp, or math.log10 with 10**)."),
            (math.exp(l10(low) + u * (l10(high) - l10(low))), "you took log10 but undid it with math.exp: use "
             "the same base both ways."),
            (ln(low) + u * (ln(high) - ln(low)), "that is the exponent: undo the logarithm to get the value."),
            (l10(low) + u * (l10(high) - l10(low)), "that is the exponent: undo the logarithm to get the value."),
            (_log_uniform(high, low, u), "the range is reversed: u = 0 must give low and u = 1 high."),
            (math.sqrt(low * high), "that is the geometric middle whatever u is: the answer must depend on u; "
             "u = 0 must give low and u = 1 high."),
            (math.exp(u * (ln(high) - ln(low))), "the interpolation forgot where it starts: at u = 0 the "
             "exponent is log(low), not 0."),
        ]
        for value_wrong, message in mistakes:
            if _close(value, value_wrong):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: a log-uniform draw interpolates log(low) and log(high) by u, then undoes the log.")


# ------------------------------------------------------------------ exercise 2: best so far

# values per trial (None: pruned). Bests that drop, Nones after a new best, a last value below the best,
# and a single trial; the first trial always finished.
BEST_CASES = [[80.0, None, 78.5, 83.0, None, 82.0, 84.5], [60.0, 72.0, None, None, 70.0, 90.0, 10.0],
              [55.5], [3.0, 1.0, 2.0, None]]


def _running(values: list, keep_none: bool = False, better: Callable = max) -> list:
    best, out = None, []
    for v in values:
        if v is not None:
            best = v if best is None else better(best, v)
        out.append(None if keep_none and v is None else best)
    return out


def _filled(values: list) -> list:
    """Each pruned trial given the previous trial's value (not the best)."""
    out, last = [], None
    for v in values:
        last = v if v is not None else last
        out.append(last)
    return out


def _same(result: list, expected: list) -> bool:
    return len(result) == len(expected) and all(
        (r is None and e is None) or (r is not None and e is not None and _close(r, e)) for r, e in zip(result, expected))


@exercise("Exercise 2 (best so far)", hints=[
    "walk through the trials in order and keep track of something as you go. Which value is the best so "
    "far after each trial, and what does a pruned trial, one without a value, change about it?",
    "keep the largest value seen up to and including each trial; higher accuracy is better, so the best "
    "so far can only stay level or go up.",
    "a pruned trial has no value to compare: skip it, but still give it a place in the output, the best "
    "so far from before it. The output has one number per trial.",
])
def best_so_far(running_best: Callable) -> None:
    """`running_best(values)`: the best value seen up to each trial; None marks a pruned trial (no value)."""
    for values in BEST_CASES:
        try:
            result = running_best(list(values))
        except TypeError as error:
            raise Hint(f"for {values} your code raised TypeError ({error}): a pruned trial's None cannot be "
                       "compared with a number; skip it.") from None
        if result is None:
            result = ask(running_best, list(values))
        try:
            result = list(result)
        except TypeError:
            raise Hint(f"return a list, one number per trial, got a {type(result).__name__}.") from None
        want = _running(values)
        if _same(result, want):
            continue
        case = f"for {values} you returned {result}, expected {want}"
        if len(result) == len([v for v in values if v is not None]) and len(result) != len(values):
            raise Hint(f"{case}: the pruned trials were dropped: return one number per trial; a pruned trial "
                       "still has a best so far, the one before it.")
        if len(result) != len(values):
            raise Hint(f"{case}: return one number per trial ({len(values)}), got {len(result)}.")
        mistakes = [
            (list(values), "these are the trial values themselves: keep the running MAXIMUM."),
            (_filled(values), "these are the trial values, with a pruned trial given the previous trial's "
             "value: keep the running maximum."),
            (_running(values, keep_none=True), "a pruned trial (None) still has a best so far: the previous best."),
            (_running(values, better=min), "that is the running minimum: accuracy is better when higher."),
            ([_running(values)[-1]] * len(values), "that is the best over all trials at every position: the "
             "best so far may only look at the trials up to each one."),
        ]
        for value, message in mistakes:
            if _same(result, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}.")


# ------------------------------------------------------------------ exercise 3: the median rule

# (acc, earlier) -> prune? Chosen so that each wrong rule gets at least one case wrong: a diverged trial
# drags the mean down, an accuracy exactly at the median, even counts (the median is the mean of the middle
# two), an unsorted list, and no earlier trials at all.
MEDIAN_CASES = [(82.0, [70.0, 85.0, 90.0]), (85.0, [70.0, 85.0, 90.0]), (95.0, [70.0, 85.0, 90.0]),
                (87.0, [50.0, 88.0, 89.0]), (85.0, [80.0, 84.0, 86.0, 90.0]), (84.5, [80.0, 84.0, 86.0, 90.0]),
                (84.0, [80.0, 84.0, 86.0, 90.0]), (80.0, [90.0, 75.0, 85.0]), (60.0, [40.0, 30.0, 95.0]),
                (50.0, [])]


def _prune(acc: float, earlier: list, centre: Callable = statistics.median, at_counts: bool = False,
           flip: bool = False) -> bool:
    if not earlier:
        return False
    c = centre(earlier)
    if flip:
        return acc > c
    return acc <= c if at_counts else acc < c


MEDIAN_MISTAKES = [
    (lambda a, e: _prune(a, e, statistics.mean), "that compares with the MEAN: one diverged trial drags the "
     "mean down; the median ignores it."),
    (lambda a, e: _prune(a, e, at_counts=True), "a trial exactly AT the median is not below it: keep it "
     "(use <, not <=)."),
    (lambda a, e: _prune(a, e, lambda v: sorted(v)[len(v) // 2]), "with an even count the median is the mean "
     "of the middle two, not the upper one (statistics.median does that)."),
    (lambda a, e: _prune(a, e, lambda v: sorted(v)[(len(v) - 1) // 2]), "with an even count the median is the "
     "mean of the middle two, not the lower one (statistics.median does that)."),
    (lambda a, e: _prune(a, e, lambda v: v[len(v) // 2]), "that takes the middle of the list as given: the "
     "median is the middle of the SORTED values."),
    (lambda a, e: _prune(a, e, flip=True), "that prunes the good trials: it is the wrong way round; prune "
     "a trial below the median."),
    (lambda a, e: _prune(a, e, max), "that compares with the best earlier trial: the rule uses the median, "
     "so only trials in the bottom half stop."),
]


@exercise("Exercise 3 (the median pruning rule)", hints=[
    "the rule stops a trial that is doing worse than a typical earlier trial at the same epoch. Which "
    "statistic of the earlier accuracies is typical, even when one earlier trial diverged? And what if "
    "there are no earlier trials yet?",
    "use the median, not the mean: the middle of the sorted accuracies, and for an even count the mean of "
    "the two in the middle. The statistics module has it.",
    "prune only when the accuracy is strictly below that median; a trial exactly at it keeps training. "
    "With no earlier trials there is nothing to compare with: keep training. Return True or False.",
])
def median_rule(should_prune: Callable) -> None:
    """`should_prune(acc, earlier)`: stop a trial whose accuracy at this epoch is below the median of the
    earlier (finished) trials' accuracies at the same epoch; never prune when there are none."""
    got = []
    for acc, earlier in MEDIAN_CASES:
        if not earlier:
            try:
                result = should_prune(acc, list(earlier))
            except Exception as error:  # statistics.median([]) raises
                raise Hint(f"with no earlier trials your code raised {type(error).__name__}: there is nothing "
                           "to compare with yet, so return False (keep training).") from None
        else:
            result = ask(should_prune, acc, list(earlier))
        if not isinstance(result, bool):
            raise Hint(f"should_prune({acc}, {earlier}) gave {result!r}: return True (prune) or False (keep "
                       "training).")
        got.append(result)
    want = [_prune(a, e) for a, e in MEDIAN_CASES]
    if got == want:
        return
    for rule, message in MEDIAN_MISTAKES:
        if got == [rule(a, e) for a, e in MEDIAN_CASES]:
            raise Hint(message)
    acc, earlier = next(case for case, g, w in zip(MEDIAN_CASES, got, want) if g != w)
    if not earlier:
        raise Hint("with no earlier trials there is nothing to compare with: return False (keep training).")
    raise Hint(f"should_prune({acc}, {earlier}) gave {not _prune(acc, earlier)}: the median of {earlier} is "
               f"{statistics.median(earlier):g}.")


# ------------------------------------------------------------------ exercise 4: wasted grid trials

# (grid, the knob that matters): the lab's grid, a knob other than the learning rate, knobs of other
# sizes, and a grid of one knob (nothing wasted).
WASTE_CASES = [
    ({"lr": [0.001, 0.01, 0.1, 1.0], "momentum": [0.85, 0.95], "weight_decay": [1e-5, 1e-3], "width": [32, 128]},
     "lr"),
    ({"lr": [0.01, 0.1], "width": [32, 64, 128]}, "width"),
    ({"depth": [1, 2, 3], "dropout": [0.0, 0.5], "width": [16, 32, 64, 128]}, "dropout"),
    ({"lr": [0.01, 0.1, 1.0]}, "lr"),
]


@exercise("Exercise 4 (wasted grid trials)", hints=[
    "count two things: how many trials the whole grid runs, and how many of them teach you something "
    "new about the one knob that matters. The rest only repeat a value already tried.",
    "a grid runs every combination, so its size is the product of the numbers of values of every knob, "
    "not their sum. Only the first trial at each value of the important knob is new.",
    "subtract the number of values of the important knob from the size of the grid; use the knob the "
    "important argument names, whichever it is.",
])
def wasted_trials(count_wasted: Callable) -> None:
    """`count_wasted(grid, important)`: how many grid trials only repeat a value of the one hyperparameter
    that matters (the others don't change the result), so they teach you nothing new."""
    for grid, important in WASTE_CASES:
        copy = {k: list(v) for k, v in grid.items()}
        try:
            result = count_wasted(copy, important)
        except KeyError as error:
            raise Hint(f"for the knobs {list(grid)} your code raised KeyError {error}: use the knob the "
                       "important argument names, not a fixed one.") from None
        if result is None:
            result = ask(count_wasted, copy, important)
        total = math.prod(len(v) for v in grid.values())
        useful = len(grid[important])
        if _close(result, total - useful):
            continue
        case = (f"for a grid of {' × '.join(str(len(v)) for v in grid.values())} values where only "
                f"{important!r} matters you returned {result!r}, expected {total - useful}")
        mistakes = [
            (total, "that is every trial of the grid: the first trial at each value of the important knob is "
             "not wasted."),
            (useful, f"that is how many {'learning rates' if important == 'lr' else 'values of ' + repr(important)} "
             "the grid tries (the useful trials): count the others."),
            (total / useful, "that is the number of trials per value of the important knob: all but one of "
             "them at each value repeat it."),
            (total / useful - 1, "that is the wasted trials per value of the important knob: count them over "
             "all its values."),
            (sum(len(v) for v in grid.values()) - useful, "a grid runs every combination: multiply the numbers "
             "of values, do not add them."),
            (total - len(grid["lr"]) if "lr" in grid else None, "that counts the learning rate as the important "
             "knob: use the important argument."),
            (total - 1, "only one trial is useful in that count: the first trial at EACH value of the "
             "important knob is useful."),
        ]
        for value, message in mistakes:
            if value is not None and _close(result, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}.")


hint, solution = helpers(__name__, answers)
