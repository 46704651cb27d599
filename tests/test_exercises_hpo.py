"""The exercise catalogue of notebook 12_hyperparameter_search (labkit.exercises.hpo): per exercise, the
answer key passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each
mistake learners really make (written as the code they write) gets a Hint that names it. Plus: no constant
passes, other correct answers pass, and the notebook's exercise cells match the keys."""

import inspect
import json
import math
import statistics
from pathlib import Path

import pytest

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint
from labkit.exercises import hpo as check
from labkit.exercises.answers import hpo as key

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "12_hyperparameter_search.ipynb"


# ---------------------------------------------------------------- exercise 1: log-uniform sampling

def log_stub(low, high, u):
    # YOUR CODE
    ...


def log_forgot_return(low, high, u):
    math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def log_linear(low, high, u):
    return low + u * (high - low)


def log_mixed_bases(low, high, u):
    return 10 ** (math.log(low) + u * (math.log(high) - math.log(low)))


def log_exponent_only(low, high, u):
    return math.log10(low) + u * (math.log10(high) - math.log10(low))


def log_reversed(low, high, u):
    return math.exp(math.log(high) + u * (math.log(low) - math.log(high)))


def log_ignores_u(low, high, u):
    return math.sqrt(low * high)


def log_no_offset(low, high, u):
    return math.exp(u * math.log(high / low))


def log_base_10(low, high, u):  # a correct answer in another base
    return 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))


def log_power(low, high, u):  # a correct answer written as a power
    return low * (high / low) ** u


def log_hard_coded(low, high, u):
    return 0.0316227766


# ---------------------------------------------------------------- exercise 2: best so far

def best_stub(values):
    # YOUR CODE
    ...


def best_forgot_return(values):
    best, out = None, []
    for v in values:
        if v is not None and (best is None or v > best):
            best = v
        out.append(best)


def best_the_values(values):
    return list(values)


def best_keeps_none(values):
    best, out = None, []
    for v in values:
        if v is None:
            out.append(None)
            continue
        best = v if best is None else max(best, v)
        out.append(best)
    return out


def best_drops_pruned(values):
    best, out = None, []
    for v in values:
        if v is None:
            continue
        best = v if best is None else max(best, v)
        out.append(best)
    return out


def best_crashes_on_none(values):
    best, out = values[0], []
    for v in values:
        best = max(best, v)
        out.append(best)
    return out


def best_running_min(values):
    best, out = None, []
    for v in values:
        if v is not None:
            best = v if best is None else min(best, v)
        out.append(best)
    return out


def best_overall(values):
    top = max(v for v in values if v is not None)
    return [top] * len(values)


def best_previous_value(values):
    out, last = [], None
    for v in values:
        if v is not None:
            last = v
        out.append(last)
    return out


def best_hard_coded(values):
    return [80.0, 80.0, 80.0, 83.0, 83.0, 83.0, 84.5]


# ---------------------------------------------------------------- exercise 3: the median rule

def prune_stub(acc, earlier):
    # YOUR CODE
    ...


def prune_forgot_return(acc, earlier):
    if not earlier:
        return False
    acc < statistics.median(earlier)


def prune_mean(acc, earlier):
    if not earlier:
        return False
    return acc < statistics.mean(earlier)


def prune_at_median(acc, earlier):
    if not earlier:
        return False
    return acc <= statistics.median(earlier)


def prune_empty_crashes(acc, earlier):
    return acc < statistics.median(earlier)


def prune_upper_middle(acc, earlier):
    if not earlier:
        return False
    return acc < sorted(earlier)[len(earlier) // 2]


def prune_unsorted_middle(acc, earlier):
    if not earlier:
        return False
    return acc < earlier[len(earlier) // 2]


def prune_wrong_way(acc, earlier):
    if not earlier:
        return False
    return acc > statistics.median(earlier)


def prune_below_best(acc, earlier):
    if not earlier:
        return False
    return acc < max(earlier)


def prune_numpy_bool(acc, earlier):
    import numpy as np
    return bool(earlier) and np.median(earlier) > acc


def prune_hard_coded(acc, earlier):
    return True


def prune_sorted_even(acc, earlier):  # a correct answer written by hand
    if len(earlier) == 0:
        return False
    s, n = sorted(earlier), len(earlier)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return acc < median


# ---------------------------------------------------------------- exercise 4: wasted grid trials

def waste_stub(grid, important):
    # YOUR CODE
    ...


def waste_forgot_return(grid, important):
    trials = math.prod(len(v) for v in grid.values())
    trials - len(grid[important])


def waste_every_trial(grid, important):
    return math.prod(len(v) for v in grid.values())


def waste_useful_count(grid, important):
    return len(grid[important])


def waste_per_value(grid, important):
    return math.prod(len(v) for v in grid.values()) // len(grid[important])


def waste_summed(grid, important):
    return sum(len(v) for v in grid.values()) - len(grid[important])


def waste_always_lr(grid, important):
    return math.prod(len(v) for v in grid.values()) - len(grid["lr"])


def waste_minus_one(grid, important):
    return math.prod(len(v) for v in grid.values()) - 1


def waste_hard_coded(grid, important):
    return 28


CATALOGUE = {
    "log_uniform": (check.log_uniform, key.log_uniform, log_stub, log_forgot_return, {
        "linear": (log_linear, "linear scale"),
        "mixed bases": (log_mixed_bases, "same base"),
        "exponent not undone": (log_exponent_only, "exponent"),
        "reversed": (log_reversed, "reversed"),
        "ignores u": (log_ignores_u, "depend on u"),
        "no offset": (log_no_offset, "where it starts"),
        "hard-coded": (log_hard_coded, "interpolates"),
    }),
    "best_so_far": (check.best_so_far, key.running_best, best_stub, best_forgot_return, {
        "the values": (best_the_values, "running MAXIMUM"),
        "None kept": (best_keeps_none, "previous best"),
        "pruned dropped": (best_drops_pruned, "dropped"),
        "crashes on None": (best_crashes_on_none, "skip it"),
        "running minimum": (best_running_min, "minimum"),
        "best overall": (best_overall, "up to each"),
        "previous value": (best_previous_value, "previous trial's value"),
        "hard-coded": (best_hard_coded, "expected"),
    }),
    "median_rule": (check.median_rule, key.should_prune, prune_stub, prune_forgot_return, {
        "mean": (prune_mean, "MEAN"),
        "at the median": (prune_at_median, "AT the median"),
        "empty crashes": (prune_empty_crashes, "no earlier trials"),
        "upper middle": (prune_upper_middle, "middle two"),
        "unsorted middle": (prune_unsorted_middle, "SORTED"),
        "wrong way round": (prune_wrong_way, "wrong way round"),
        "below the best": (prune_below_best, "best earlier trial"),
        "numpy bool": (prune_numpy_bool, "True (prune) or False"),
        "hard-coded": (prune_hard_coded, "gave"),
    }),
    "wasted_trials": (check.wasted_trials, key.count_wasted, waste_stub, waste_forgot_return, {
        "every trial": (waste_every_trial, "every trial"),
        "useful count": (waste_useful_count, "useful trials"),
        "per value": (waste_per_value, "per value"),
        "summed": (waste_summed, "multiply"),
        "always lr": (waste_always_lr, "important argument"),
        "minus one": (waste_minus_one, "EACH value"),
        "hard-coded": (waste_hard_coded, "expected"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("check_fn, answer", [(check.log_uniform, log_base_10), (check.log_uniform, log_power),
                                              (check.median_rule, prune_sorted_even)])
def test_other_correct_answers_pass(check_fn, answer):
    assert "passed" in check_fn(answer)


def test_the_median_cases_tell_every_wrong_rule_apart():
    want = [check._prune(a, e) for a, e in check.MEDIAN_CASES]
    rules = [[rule(a, e) for a, e in check.MEDIAN_CASES] for rule, _ in check.MEDIAN_MISTAKES]
    assert all(r != want for r in rules)
    assert len({tuple(r) for r in rules}) == len(rules)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("hpo", "median_rule"))
    check.median_rule(prune_stub)
    assert "try it first" in check.solution("median_rule")
    with pytest.raises(Hint):
        check.median_rule(prune_mean)
    assert "def should_prune(acc, earlier):" in check.solution("median_rule")


def test_every_exercise_cell_of_the_notebook_has_a_key_with_the_stubs_name():
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    for name, (_, answer, stub, *_) in CATALOGUE.items():
        cell = next(c for c in cells if f"check.{name}(" in c)
        assert f"def {answer.__name__}{inspect.signature(stub)}:" in cell, name
