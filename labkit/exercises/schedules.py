"""Checks for notebooks/04_lr_schedules.ipynb: a warm-up + cosine lambda, bias-corrected smoothing and
the linear scaling rule; and for notebooks/04b_plateaus_and_early_stopping.ipynb: early stopping by hand."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.optim import lr_scheduler

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def _expected_warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(fn: Callable) -> str:
    """`fn(step, warmup_steps, total_steps)`: the lr multiplier for LambdaLR, 0 → 1 linearly, then cosine → 0."""
    name = "Exercise 1 (warm-up + cosine as a LambdaLR)"
    cases = [(0, 10, 100), (5, 10, 100), (10, 10, 100), (55, 10, 100), (100, 10, 100), (30, 10, 100)]
    got = [call_answer(name, fn, *case) for case in cases]
    if all(g is None for g in got):
        return not_attempted(name, "below warmup_steps return step / warmup_steps; after it, "
                                   "0.5 · (1 + cos(π · progress)) with progress going from 0 to 1.")
    if any(g is None for g in got):
        raise Hint(f"{name}: some steps returned None: return a number for every step.")
    values = dict(zip(cases, got))
    if any(g > 1.0 + 1e-9 for g in got):
        raise Hint(f"{name}: got a value above 1 ({max(got):g}): return the multiplier of the peak rate "
                   "(between 0 and 1), not the rate itself.")
    if not (close(values[(5, 10, 100)], 0.5) and abs(values[(0, 10, 100)]) < 1e-9):
        raise Hint(f"{name}: during warm-up the multiplier should grow linearly from 0 at step 0 "
                   f"(you gave {values[(0, 10, 100)]:g} at step 0 and {values[(5, 10, 100)]:g} at step 5 of 10).")
    if not close(values[(10, 10, 100)], 1.0):
        raise Hint(f"{name}: at the end of warm-up (step 10) the multiplier should be 1, got {values[(10, 10, 100)]:g}.")
    if values[(100, 10, 100)] > 0.01:
        raise Hint(f"{name}: at total_steps the rate should have decayed to 0, got {values[(100, 10, 100)]:g}: "
                   "check the sign inside 0.5 · (1 + cos(...)).")
    if not close(values[(55, 10, 100)], 0.5):
        raise Hint(f"{name}: halfway through the decay (step 55 of 10..100) expected 0.5, got "
                   f"{values[(55, 10, 100)]:g}: count the cosine's progress from the end of warm-up, "
                   "(step − warmup_steps) / (total_steps − warmup_steps).")
    if not close(values[(30, 10, 100)], _expected_warmup_cosine(30, 10, 100)):
        raise Hint(f"{name}: step 30 gave {values[(30, 10, 100)]:g}: is the decay a cosine (not a straight line)?")
    # And it really drives a scheduler: the rate LambdaLR sets follows the function.
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = lr_scheduler.LambdaLR(opt, lambda step: fn(step, 10, 100))
    for _ in range(10):
        opt.step()
        sched.step()
    if not close(opt.param_groups[0]["lr"], 0.1):
        raise Hint(f"{name}: inside LambdaLR after 10 steps the rate is {opt.param_groups[0]['lr']:g}, expected 0.1.")
    return passed(name)


def smoothing(smooth: Callable) -> str:
    """`smooth(losses, beta)`: exponential moving average, bias-corrected."""
    name = "Exercise 2 (smoothing the range test's loss)"
    got = call_answer(name, smooth, [4.0, 2.0, 2.0], 0.5)
    if got is None:
        return not_attempted(name, "keep avg = β·avg + (1 − β)·loss starting from avg = 0, and "
                                   "append avg / (1 − β**i) for the i-th loss (i from 1).")
    got = [float(v) for v in got]
    expected = [4.0, 2.0 / 0.75, 2.0 / 0.875]
    if len(got) != 3:
        raise Hint(f"{name}: return one smoothed value per loss (3 here), got {len(got)}.")
    if all(close(g, e) for g, e in zip(got, expected)):
        return passed(name)
    if all(close(g, e) for g, e in zip(got, [2.0, 2.0, 2.0])):
        raise Hint(f"{name}: got {got}: the average starts at 0, so early values are too small; "
                   "divide by (1 − β**i) to correct that bias.")
    if all(close(g, e) for g, e in zip(got, [4.0, 3.0, 2.5])):
        raise Hint(f"{name}: got {got}: that average starts from the first loss; start it from 0 and correct "
                   "the bias instead (the lab's range test does).")
    raise Hint(f"{name}: for losses [4, 2, 2] and β = 0.5 got {[round(g, 4) for g in got]}; "
               "check the order of β and (1 − β) in the update.")


def early_stopping(stopping_epoch: Callable) -> str:
    """`stopping_epoch(val_accs, patience)`: the epoch (from 1) at which early stopping ends training."""
    name = "Exercise 1 of 04b (early stopping by hand)"
    accs = [0.80, 0.79, 0.84, 0.85, 0.84, 0.86, 0.85, 0.85, 0.88, 0.87]
    got = call_answer(name, stopping_epoch, accs, 2)
    if got is None:
        return not_attempted(name, "track the best accuracy and a count of epochs without improvement; "
                                   "reset the count on an improvement, stop when it reaches patience.")
    if got == 8:
        never = call_answer(name, stopping_epoch, [0.5, 0.6, 0.7], 2)
        if never != 3:
            raise Hint(f"{name}: accuracies that always improve should run all 3 epochs, got {never}.")
        return passed(name)
    if got == 5:
        raise Hint(f"{name}: got 5: reset the count of bad epochs whenever the accuracy improves.")
    if got == 7:
        raise Hint(f"{name}: got 7: count epochs from 1 (the first epoch is epoch 1).")
    if got in (9, 10):
        raise Hint(f"{name}: got {got}: stop as soon as `patience` epochs in a row have not improved.")
    raise Hint(f"{name}: got {got}; walk through the accuracies by hand with patience 2.")


def linear_scaling(scaled_lr: Callable) -> str:
    """`scaled_lr(base_lr, base_batch, batch)`: the linear scaling rule."""
    name = "Exercise 3 (the linear scaling rule)"
    got = call_answer(name, scaled_lr, 0.05, 128, 512)
    if got is None:
        return not_attempted(name, "k times the batch, k times the rate.")
    if close(got, 0.2):
        return passed(name)
    if close(got, 0.1):
        raise Hint(f"{name}: got {got:g}: that is square-root scaling (used for Adam); the linear rule multiplies by k.")
    if close(got, 0.0125):
        raise Hint(f"{name}: got {got:g}: a bigger batch gets a bigger rate, not a smaller one.")
    raise Hint(f"{name}: got {got:g} for 0.05 at batch 128 scaled to batch 512.")
