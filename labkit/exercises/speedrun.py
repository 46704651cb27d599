"""Checks for notebooks/11_speedrun.ipynb: time to target, a warm-up factor, a marginal gain, and gradient
accumulation with a shorter last micro-batch. The notebook shows accumulation over k equal micro-batches
(`sr.accumulated_step`); exercise 4 asks for what it does not show: micro-batches of a given size, where the
last one may be shorter, and the checker watches the backward passes happen one micro-batch at a time."""

from __future__ import annotations

import math
from typing import Callable

import pandas as pd
import torch
from torch.nn import functional as F

from labkit.exercises import Hint, ask, call_answer, exercise, helpers
from labkit.exercises.answers import speedrun as answers

__all__ = ["time_to_target", "warmup", "marginal_gain", "accumulation", "hint", "solution"]


def _close(a, b, rel: float = 1e-6) -> bool:
    try:
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------ exercise 1: time to target

def _history(epochs, accs, times) -> pd.DataFrame:
    return pd.DataFrame({"epoch": epochs, "test_acc": accs, "train_time_s": times})


# (history, target): one row exactly AT the target (a strict > is wrong), a best row that is not the last one,
# epochs that differ from the times, and targets that are never reached (the answer is None).
H1 = _history([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0.71, 0.80, 0.86, 0.84, 0.87, 0.88], [1.5, 3.0, 4.5, 6.0, 7.5, 9.0])
H2 = _history([1, 2, 3, 4], [0.5, 0.62, 0.7, 0.69], [2.0, 3.9, 6.1, 8.0])
TTT_CASES = [(H2, 0.6), (H1, 0.85), (H1, 0.86), (H2, 0.7), (H1, 0.72)]
TTT_NEVER = [(H1, 0.95), (H2, 0.75)]


def _first(history: pd.DataFrame, target: float, strict: bool = False, column: str = "train_time_s"):
    hit = history[history["test_acc"] > target] if strict else history[history["test_acc"] >= target]
    return None if hit.empty else float(hit[column].iloc[0])


@exercise("Exercise 1 (time to target)", hints=[
    "the clock of a run is read off its history: which evaluation is the first that is good enough, and "
    "which column of that row says how long training had run by then? A run that never gets there has no "
    "time at all.",
    "keep the rows whose test accuracy is at or above the target; an accuracy exactly equal to the target "
    "counts. Of those, the earliest row decides.",
    "the training time column is already cumulative: read it from that row, do not add rows up and do not "
    "return the epoch. When no row qualifies, return None, not a made-up time.",
])
def time_to_target(fn: Callable) -> None:
    """`fn(history, target_acc)`: training seconds at the FIRST evaluation at or above the target; None if never."""
    for history, target in TTT_CASES:
        result = ask(fn, history.copy(), target)
        want = _first(history, target)
        if _close(result, want):
            continue
        case = f"for target {target} and a history with test_acc {history['test_acc'].tolist()} you returned {result!r}"
        mistakes = [
            (_first(history, target, strict=True), "that is the first evaluation strictly above the target: "
             "'at or above' includes an accuracy equal to it."),
            (_first(history, target, column="epoch"), "that is the row's epoch: return its train_time_s, seconds."),
            (float(history["train_time_s"].iloc[-1]), "that is the end of training: the clock stops at the "
             "FIRST evaluation at or above the target."),
            (float(history["train_time_s"].iloc[int(history["test_acc"].idxmax())]), "that is the time of the "
             "best accuracy: the clock stops at the first evaluation good enough, not the best one."),
            (float(history["train_time_s"][history["test_acc"] >= target].sum()), "train_time_s is already "
             "cumulative: read it from the first good row, do not add rows up."),
            (float(history["train_time_s"][history.index <= history.index[history["test_acc"] >= target][0]].sum()),
             "train_time_s is already cumulative: read it from the first good row, do not add rows up."),
        ]
        for value, message in mistakes:
            if _close(result, value):
                raise Hint(f"{case}: {message}")
        later = history["train_time_s"][(history["test_acc"] >= target) & (history["train_time_s"] > want)]
        if any(_close(result, t) for t in later):
            raise Hint(f"{case}, expected {want}: that is a later evaluation; the clock stops at the FIRST one at "
                       "or ABOVE the target.")
        raise Hint(f"{case}, expected {want}: check every argument is used (no constant passes).")
    for history, target in TTT_NEVER:
        result = call_answer("time to target", fn, history.copy(), target)
        if result is not None:
            raise Hint(f"for target {target}, which this run never reaches, you returned {result!r}: a run that "
                       "never reaches the target must give None (reported as 'not reached', never given a "
                       "made-up time).")


# ------------------------------------------------------------------ exercise 2: a linear warm-up

def _warm(step: int, n: int, start: float = 0.1, rise: float = 0.9, cap: bool = True, ahead: int = 0) -> float:
    if n <= 0 or (cap and step >= n):
        return 1.0
    return start + rise * (step + ahead) / n


# (step, warmup_steps): several warm-up lengths (no constant plan passes), the first step, the middle, the last
# warm-up step, the end and past it, and no warm-up at all.
WARM_CASES = [(0, 10), (5, 10), (9, 10), (10, 10), (50, 10), (0, 4), (3, 4), (7, 4), (2, 7), (6, 7), (20, 7)]
NO_WARMUP = [(0, 0), (3, 0)]


@exercise("Exercise 2 (a linear warm-up)", hints=[
    "think of the rate's multiplier as a straight line over the warm-up steps: where does it start, where "
    "must it arrive, and what happens once the warm-up is over? A run without warm-up must work too.",
    "at the first step the multiplier is one tenth, not zero: a zero rate would waste that step. It grows "
    "by the same amount every step and reaches exactly one at the end of the warm-up.",
    "the slope is what is left to climb, nine tenths, spread over the warm-up steps. From the end of the "
    "warm-up on, and always when there are no warm-up steps, the multiplier is one; never divide by zero.",
])
def warmup(fn: Callable) -> None:
    """`fn(step, warmup_steps)`: the rate's multiplier, rising linearly from 0.1 at step 0 to 1 at
    `warmup_steps`, and 1 from then on (and always 1 when warmup_steps is 0)."""
    for step, n in WARM_CASES:
        result = ask(fn, step, n)
        want = _warm(step, n)
        if _close(result, want):
            continue
        case = f"at step {step} of a {n}-step warm-up you returned {result!r}, expected {want:g}"
        mistakes = [
            (_warm(step, n, start=0.0, rise=1.0), "the warm-up starts at zero: a rate of 0 wastes the first "
             "step; start from 0.1."),
            (_warm(step, n, cap=False), "the factor keeps growing after the warm-up: from step warmup_steps on "
             "it stays 1."),
            (_warm(step, n, rise=1.0), "that overshoots: starting from 0.1 only 0.9 is left to climb, or the "
             "factor goes past 1 at the end."),
            (_warm(step, n, ahead=1), "the factor is one step ahead: at step 0 it must be exactly 0.1."),
            (0.1 + 0.9 * (step // n) if step < n else 1.0, "that is whole-number division (//): the factor "
             "must rise a little every step."),
            (_warm(step, 10), "the result is right for a 10-step warm-up only: use the warmup_steps argument."),
        ]
        for value, message in mistakes:
            if _close(result, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: the factor must be a straight line from 0.1 at step 0 to 1 at step warmup_steps.")
    for step, n in NO_WARMUP:
        try:
            result = fn(step, n)
        except ZeroDivisionError:
            raise Hint("with warmup_steps = 0 your code divided by zero: no warm-up means the factor is 1 "
                       "from the start.") from None
        except Exception as error:  # the learner's code failed: say so in one line
            raise Hint(f"with warmup_steps = 0 your code raised {type(error).__name__}: {error}") from None
        if not _close(result, 1.0):
            raise Hint(f"with warmup_steps = 0 (no warm-up) you returned {result!r} at step {step}: "
                       "return 1.")


# ------------------------------------------------------------------ exercise 3: a row's marginal gain

# (before, after): faster, slower, unchanged and a large gain; no constant passes.
GAIN_CASES = [(12.0, 8.0), (6.0, 8.0), (10.0, 2.5), (5.0, 5.0), (3.0, 7.5)]


@exercise("Exercise 3 (the marginal gain of a row)", hints=[
    "a gain says how many times faster the new row reaches the target than the row above it. Which of the "
    "two times goes on top, and what must a switch that made things slower give?",
    "it is a ratio, not a difference in seconds and not a percentage: above one means the switch helped, "
    "exactly one means no change, below one means it made the run slower.",
    "divide the time before the switch by the time after it.",
])
def marginal_gain(fn: Callable) -> None:
    """`fn(time_before_s, time_after_s)`: how many times faster to the target the new row is than the one before."""
    for before, after in GAIN_CASES:
        result = ask(fn, before, after)
        want = before / after
        if _close(result, want):
            continue
        case = f"from {before} s before to {after} s after you returned {result!r}, expected {want:.3g}"
        mistakes = [
            (max(before, after) / min(before, after), "that is never below 1: a switch that made the run "
             "slower must give a gain below 1."),
            (after / before, "that is after / before, upside down: a speedup is before / after (above 1 = faster)."),
            (before - after, "that is the seconds saved: the table reports a ratio."),
            ((before - after) / before, "that is the share of the time saved: report before / after."),
            (100 * (before - after) / before, "that is the percentage of time saved: report before / after."),
        ]
        for value, message in mistakes:
            if _close(result, value):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: check that both arguments are used (no constant passes).")


# ------------------------------------------------------------------ exercise 4: accumulation, last micro-batch shorter

# (rows, micro-batch size, seed): a shorter last micro-batch (10 = 4 + 4 + 2, 9 = 2 + 2 + 2 + 2 + 1) and one
# that divides evenly (12 = 3 × 4), so dividing by the number of micro-batches is caught where it is wrong.
ACCUM_CASES = [(10, 4, 0), (12, 3, 1), (9, 2, 2)]


def _problem(rows: int, seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(rows, 6, generator=g), torch.randint(0, 3, (rows,), generator=g)
    torch.manual_seed(seed)
    return torch.nn.Linear(6, 3), X, y


def _grads(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, micro: int, weight: Callable,
           last_only: bool = False) -> list[torch.Tensor]:
    """The gradients of each micro-batch's mean loss times weight(rows in it, rows, micro-batches), summed."""
    model.zero_grad(set_to_none=True)
    chunks = list(zip(X.split(micro), y.split(micro)))
    for xs, ys in chunks[-1:] if last_only else chunks:
        (F.cross_entropy(model(xs), ys) * weight(len(xs), len(X), len(chunks))).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return grads


def _watch(model: torch.nn.Module) -> tuple[list[tuple[str, int]], Callable]:
    """Record each forward pass that builds a graph ("forward", rows) and each backward pass through it
    ("backward", rows); a forward pass under torch.no_grad() keeps no activations and is not recorded."""
    events: list[tuple[str, int]] = []

    def on_forward(module, inputs, output):
        if output.requires_grad:
            events.append(("forward", output.shape[0]))
            output.register_hook(lambda grad: events.append(("backward", grad.shape[0])))

    return events, model.register_forward_hook(on_forward).remove


@exercise("Exercise 4 (accumulation with a shorter last micro-batch)", hints=[
    "re-read the section on gradient accumulation: there the batch splits into equal micro-batches. Here "
    "every micro-batch has a given size and the last one may be shorter. How much must each micro-batch "
    "count, so that the gradients that add up equal those of one big batch?",
    "run forward and backward on one micro-batch at a time, so that only one micro-batch's activations are "
    "alive, and let the gradients add up: never zero them in between. Dividing by the number of "
    "micro-batches is only right when all are the same size.",
    "each micro-batch's mean loss counts in proportion to its rows: scale it by its number of rows over "
    "the rows of the whole batch before its backward pass. Return the whole batch's mean loss, the sum of "
    "those scaled losses, as a float.",
])
def accumulation(fn: Callable) -> None:
    """`fn(model, X, y, micro_batch)`: feed (X, y) as micro-batches of `micro_batch` rows (the last may be
    shorter), one backward pass each, so that .grad ends equal to the gradient of ONE mean cross-entropy over
    the whole batch (no optimizer step); return that mean loss as a float."""
    for rows, micro, seed in ACCUM_CASES:
        model, X, y = _problem(rows, seed)
        expected = _grads(model, X, y, micro, lambda n, total, k: n / total)
        with torch.no_grad():
            expected_loss = float(F.cross_entropy(model(X), y))
        case = f"for a batch of {rows} rows in micro-batches of {micro}"
        events, unwatch = _watch(model)
        try:
            result = ask(fn, model, X.clone(), y.clone(), micro)
        finally:
            unwatch()
        grads = [p.grad for p in model.parameters()]
        if any(g is None for g in grads):
            raise Hint(f"{case} the parameters have no .grad: call backward() on each micro-batch's loss.")
        sizes = [n for kind, n in events if kind == "backward"]
        if any(n > micro for n in sizes):
            if rows in sizes:
                raise Hint(f"{case}: you ran one backward pass over the whole batch of {rows} rows: that is no "
                           "accumulation at all. Run forward and backward on each micro-batch.")
            raise Hint(f"{case}: your micro-batches have {max(sizes)} rows: micro_batch is the size of a "
                       "micro-batch, not their number.")
        want_sizes = [len(c) for c in X.split(micro)]
        kinds = [kind for kind, _ in events]
        if sizes and kinds[:2 * len(sizes)] != ["forward", "backward"] * len(sizes):
            raise Hint(f"{case}: every forward pass ran before the first backward pass, so all micro-batches' "
                       "activations were kept at once: run each micro-batch's backward before the next forward.")
        if sorted(sizes) != sorted(want_sizes) and len(sizes) == micro:
            raise Hint(f"{case}: you split the batch into {micro} micro-batches of {sizes} rows: micro_batch is "
                       "the size of a micro-batch, not their number.")
        if sorted(sizes) != sorted(want_sizes):
            raise Hint(f"{case}: the backward passes ran on micro-batches of {sizes} rows, expected {want_sizes}: "
                       "every row must go through exactly one micro-batch.")
        if not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, expected)):
            mistakes = [
                (lambda n, total, k: 1 / k, False, "each micro-batch was divided by the number of micro-batches: "
                 "that is right only when all are the same size; here the last one is shorter, so weight "
                 "each by its share of the rows."),
                (lambda n, total, k: 1.0, False, "the gradients are too big: each micro-batch's mean loss was "
                 "not divided at all; scale it by its share of the rows."),
                (lambda n, total, k: n / total, True, "only the last micro-batch's gradient is left: the "
                 "gradients were zeroed between micro-batches. Accumulating means letting them add up."),
                (lambda n, total, k: 1 / k, True, "only the last micro-batch's gradient is left: the gradients "
                 "were zeroed between micro-batches. Accumulating means letting them add up."),
                (lambda n, total, k: 1.0, True, "only the last micro-batch's gradient is left: the gradients "
                 "were zeroed between micro-batches. Accumulating means letting them add up."),
                (lambda n, total, k: n / total / k, False, "the gradients are too small: each micro-batch was "
                 "scaled twice, by its share and again by the number of micro-batches."),
            ]
            for weight, last_only, message in mistakes:
                if all(torch.allclose(a, b, atol=1e-6)
                       for a, b in zip(grads, _grads(model, X, y, micro, weight, last_only))):
                    raise Hint(f"{case}: {message}")
            raise Hint(f"{case}: the summed gradients differ from the big batch's mean loss gradient.")
        try:
            loss = float(result)
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"{case}: the gradients are right; return the whole batch's mean loss as one float, "
                       f"got a {type(result).__name__}.") from None
        if not _close(loss, expected_loss, rel=1e-5):
            last = float(F.cross_entropy(model(X.split(micro)[-1]), y.split(micro)[-1]).detach())
            if _close(loss, last, rel=1e-5) or _close(loss, last * len(X.split(micro)[-1]) / rows, rel=1e-5):
                raise Hint(f"{case}: the gradients are right, but you returned the last micro-batch's loss: "
                           "return the whole batch's mean loss, the sum over all micro-batches.")
            raise Hint(f"{case}: the gradients are right, but the loss you returned ({loss:.4g}) is not the "
                       f"whole batch's mean loss ({expected_loss:.4g}).")


hint, solution = helpers(__name__, answers)
