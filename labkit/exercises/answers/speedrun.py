"""Reference answers for notebooks/11_speedrun.ipynb (the notebook imports `pd`, `torch` and `F`)."""

from torch.nn import functional as F


def time_to_target(history, target_acc):
    reached = history[history["test_acc"] >= target_acc]  # at or above: equal to the target counts
    if reached.empty:
        return None  # never reached: no time, not a made-up one
    return float(reached["train_time_s"].iloc[0])  # the first such evaluation; the column is cumulative


def warmup(step, warmup_steps):
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0  # no warm-up, or the warm-up is over
    return 0.1 + 0.9 * step / warmup_steps  # a straight line from 0.1 at step 0 to 1 at warmup_steps


def marginal_gain(time_before_s, time_after_s):
    return time_before_s / time_after_s  # above 1: faster; below 1: the switch made it slower


def accumulate(model, X, y, micro_batch):
    total = 0.0
    for xs, ys in zip(X.split(micro_batch), y.split(micro_batch)):  # the last one may be shorter
        loss = F.cross_entropy(model(xs), ys) * len(xs) / len(X)  # each counts by its share of the rows
        loss.backward()  # one micro-batch's activations at a time; gradients add up in .grad
        total += loss.item()
    return total  # the whole batch's mean loss


KEY = {"time_to_target": time_to_target, "warmup": warmup, "marginal_gain": marginal_gain,
       "accumulation": accumulate}
