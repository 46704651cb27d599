"""Reference answers for notebooks/12_hyperparameter_search.ipynb (the notebook imports `math` and
`statistics`)."""

import math
import statistics


def log_uniform(low, high, u):
    exponent = math.log(low) + u * (math.log(high) - math.log(low))  # u spread evenly over the exponents
    return math.exp(exponent)  # undone in the same base


def running_best(values):
    best, out = None, []
    for value in values:
        if value is not None and (best is None or value > best):  # a pruned trial (None) changes nothing
            best = value
        out.append(best)  # one number per trial
    return out


def should_prune(acc, earlier):
    if not earlier:
        return False  # nothing to compare with yet: keep training
    return acc < statistics.median(earlier)  # strictly below the median; a diverged trial can't drag it down


def count_wasted(grid, important):
    trials = math.prod(len(values) for values in grid.values())  # every combination
    return trials - len(grid[important])  # the first trial at each value of the important knob is new


KEY = {"log_uniform": log_uniform, "best_so_far": running_best, "median_rule": should_prune,
       "wasted_trials": count_wasted}
