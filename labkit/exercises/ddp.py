"""Checks for notebooks/06_ddp.ipynb (sharding, gradients of uneven batches, scaling efficiency) and
notebooks/06b_ddp_beyond_data_parallel.ipynb (the pipeline bubble).

The notebooks show the round-robin sampler with drop_last=True (`shard_loader`), the all-reduce divided by the
world size (`allreduce_task`) and the bubble of equal stages. The exercises ask for what they do not show:
the sampler's padding when the examples do not divide evenly, the whole-batch gradient when the ranks' batches
differ in size, and the bubble when the stages take different times. The truths come from torch's own
DistributedSampler and from simulating the pipeline's schedule, not from the formulas of the answer key.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
from torch.utils.data import DistributedSampler

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import ddp as answers

__all__ = ["shard", "average_gradients", "efficiency", "bubble", "hint", "solution"]


def _number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Hint(f"got {value!r} {what}: return one number.") from None


# ------------------------------------------------------------------ exercise 1: which examples each rank sees

def _sampler(n: int, rank: int, world: int) -> list[int]:
    """What torch's DistributedSampler(shuffle=False) actually gives (the truth)."""
    return list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False))


def _ints(result, what: str) -> list[int]:
    try:
        return [int(i) for i in result]
    except (TypeError, ValueError):
        raise Hint(f"got {result!r} {what}: return a list of example indices.") from None


def _source(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


# (n, world_size): one that divides evenly, then three that do not (different remainders, padding of 1 to 3).
SHARD_CASES = [(12, 4), (10, 4), (7, 3), (9, 4), (5, 2)]


@exercise("Exercise 1 (which examples does each rank see?)", hints=[
    "the sampler deals the examples out like cards, one to each rank in turn, starting with the rank's own "
    "number. When the examples do not divide evenly, every rank must still get the same number of them, "
    "and no example may be dropped: where could the missing ones come from?",
    "first work out how many examples each rank gets: the number of examples divided by the number of ranks, "
    "rounded up. The ranks together then need a few more examples than there are.",
    "make the list of all examples longer by repeating the first ones until it holds that many, then deal "
    "the longer list out: each rank takes every world size-th position, starting at its rank.",
])
def shard(fn: Callable) -> None:
    """`fn(n, rank, world_size)`: the indices DistributedSampler(shuffle=False, drop_last=False) gives `rank`
    out of `n` examples (n ≥ world_size), n not necessarily a multiple of world_size."""
    if "DistributedSampler" in _source(fn):
        raise Hint("your answer asks DistributedSampler itself: write the rule it follows yourself.")
    for n, world in SHARD_CASES:
        got = {r: _ints(ask(fn, n, r, world), f"for n={n}, rank={r}, world_size={world}") for r in range(world)}
        want = {r: _sampler(n, r, world) for r in range(world)}
        if got == want:
            continue
        case = f"for n={n} examples on {world} ranks you returned {[got[r] for r in range(world)]}"
        per = -(-n // world)
        mistakes = [
            ({r: list(range(r * per, min((r + 1) * per, n))) for r in range(world)}, "those are contiguous "
             "blocks; the sampler deals round-robin: rank r takes positions r, r + world_size, ..."),
            ({r: list(range(r * (n // world), (r + 1) * (n // world))) for r in range(world)}, "those are "
             "contiguous blocks; the sampler deals round-robin: rank r takes positions r, r + world_size, ..."),
            ({r: want[0] for r in range(world)}, "every rank got rank 0's share: start at `rank`."),
            ({r: list(range(r, n, world)) for r in range(world)}, "the ranks got unequal numbers of examples. "
             "Every rank must take the same number of steps (each step waits for all ranks' all-reduce): "
             "pad the list up to a multiple of world_size."),
            ({r: list(range(r, n - n % world, world)) for r in range(world)}, "the last examples were "
             "dropped: that is drop_last=True. The default keeps every example and pads instead."),
            ({r: (list(range(n)) + [n - 1] * (per * world - n))[r::world] for r in range(world)}, "the "
             "padding repeats the last example; the sampler repeats the first ones, from the start of the list."),
            ({r: (list(range(n)) + [n - 1 - i for i in range(per * world - n)])[r::world] for r in range(world)},
             "the padding repeats examples from the end; the sampler repeats the first ones."),
        ]
        for value, message in mistakes:
            if got == value:
                raise Hint(f"{case}: {message}")
        seen = sorted(i for r in range(world) for i in got[r])
        if set(seen) != set(range(n)):
            raise Hint(f"{case}: every example 0 to {n - 1} must be seen by some rank.")
        raise Hint(f"{case}; the sampler gives {[want[r] for r in range(world)]}.")


# ------------------------------------------------------------------ exercise 2: the gradient of uneven batches

def _grads(shape: tuple[int, ...], world: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(world)]


# (each rank's gradient, each rank's number of examples): uneven batches first (so a plain mean fails),
# 2, 3 and 4 ranks, two shapes; the last case has equal batches, where the plain mean is right.
AVERAGE_CASES = [(_grads((2,), 3, 0), [4, 4, 2]), (_grads((2, 3), 2, 1), [8, 3]),
                 (_grads((3,), 4, 2), [5, 1, 5, 3]), (_grads((2, 2), 2, 3), [6, 6])]


def _weighted(grads: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    return sum(g * w for g, w in zip(grads, weights))


@exercise("Exercise 2 (the whole batch's gradient from uneven batches)", hints=[
    "each rank's gradient is already a mean over its own examples. One process holding every example would "
    "average over all of them: does a rank with few examples deserve as much say as a rank with many?",
    "give each rank's gradient a weight: its share of all the examples. The weights add up to one, so the "
    "result is a weighted mean, element by element, of the ranks' gradients.",
    "multiply each rank's gradient by its number of examples, add these up, and divide by the total number "
    "of examples. Build a new tensor: adding into one of the given gradients changes that rank's gradient.",
])
def average_gradients(fn: Callable) -> None:
    """`fn(grads, counts)`: the gradient of the mean loss over all ranks' examples together, from each rank's
    mean-loss gradient `grads[r]` over `counts[r]` examples; the inputs left unchanged."""
    for grads, counts in AVERAGE_CASES:
        given = [g.clone() for g in grads]
        result = ask(fn, given, list(counts))
        try:
            result = torch.as_tensor(result, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return one tensor, the gradient.") from None
        world, total = len(grads), sum(counts)
        case = f"for {world} ranks with {counts} examples"
        if any(not torch.equal(a, b) for a, b in zip(given, grads)):
            raise Hint(f"{case} your answer changed the ranks' gradients in place (`+=` into one of them): "
                       "build a new tensor and leave the inputs as they were.")
        want = _weighted(grads, [c / total for c in counts])
        if result.shape == want.shape and torch.allclose(result, want, atol=1e-6):
            continue
        if result.numel() == 1:
            raise Hint(f"{case} you returned one number: average element by element, one value per "
                       "gradient entry (the result has the gradients' shape).")
        if result.shape != want.shape:
            raise Hint(f"{case} you returned shape {tuple(result.shape)}: return the gradients' shape "
                       f"{tuple(want.shape)}, averaged over the ranks.")
        mistakes = [
            (_weighted(grads, [1 / world] * world), "that is the plain mean, every rank weighted equally "
             "(what DDP's all-reduce does). With uneven batches a rank's weight is its share of the examples."),
            (_weighted(grads, [1.0] * world), "that is the sum over the ranks: it must be averaged."),
            (_weighted(grads, list(counts)), "the weighted sum was not divided by the total number of examples."),
            (_weighted(grads, [c / world for c in counts]), "the weighted sum was divided by the number of "
             "ranks; divide by the total number of examples."),
            (_weighted(grads, [1 / total] * world), "each rank's gradient is already a mean over its examples: "
             "weight it by its number of examples before dividing by the total."),
            (_weighted(grads, [(1 / c) / sum(1 / k for k in counts) for c in counts]), "the weights are upside "
             "down: a rank with more examples must count more, not less."),
            (grads[0], "that is rank 0's own gradient: combine every rank's."),
        ]
        for value, message in mistakes:
            if torch.allclose(result, value.float(), atol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case} you returned {result.tolist()}; expected {want.tolist()}.")


# ------------------------------------------------------------------ exercise 3: scaling efficiency

# (throughput of 1 rank, of n ranks, n): different n (no fixed divisor passes), one superlinear case.
EFFICIENCY_CASES = [(1000.0, 3000.0, 4), (250.0, 450.0, 2), (80.0, 100.0, 8), (100.0, 450.0, 4)]


@exercise("Exercise 3 (scaling efficiency)", hints=[
    "perfect scaling makes n ranks n times as fast as one. Compare what the n ranks achieved with that "
    "ideal: the answer is a fraction, one for perfect, one half when n ranks give half of the ideal.",
    "first the speedup: how many times the throughput of one rank did the n ranks reach? Then compare that "
    "speedup with the number of ranks.",
    "divide the speedup by the number of ranks. Do not cap the result: a bigger share of the data fitting in "
    "each device's cache can make it exceed one.",
])
def efficiency(fn: Callable) -> None:
    """`fn(throughput_1, throughput_n, n)`: throughput_n / (n × throughput_1)."""
    for t1, tn, n in EFFICIENCY_CASES:
        result = _number(ask(fn, t1, tn, n), f"for {t1:g} → {tn:g} images/s on {n} ranks")
        want = tn / (n * t1)
        if math.isclose(result, want, rel_tol=1e-6):
            continue
        case = f"for {t1:g} → {tn:g} images/s on {n} ranks you returned {result:g}"
        mistakes = [
            (tn / t1, "that is the speedup; efficiency shares it out over the n ranks."),
            (100 * want, "that is a percentage: return a fraction, 1.0 for perfect."),
            (n * t1 / tn, "that is upside down: more throughput from the n ranks must give a higher efficiency."),
            (tn / (2 * t1), "that divides by 2 ranks: use the argument n."),
            (min(want, 1.0), "the result was capped at 1: efficiency can exceed 1 (superlinear scaling)."),
            (tn / (n * t1) * n / (n - 1) if n > 1 else math.nan, "that counts n − 1 ranks: use n."),
        ]
        for value, message in mistakes:
            if math.isclose(result, value, rel_tol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}; 1.0 would mean {n} ranks ran {n}× as fast as one.")


# ------------------------------------------------------------------ exercise 4 (06b): the bubble, unequal stages

def _schedule(stage_ms: list[float], microbatches: int) -> float:
    """The step time of the pipeline, simulated: a stage starts a micro-batch once it has it and is free."""
    done = [0.0] * len(stage_ms)  # when each stage finished its latest micro-batch
    for _ in range(microbatches):
        ready = 0.0
        for s, t in enumerate(stage_ms):
            done[s] = max(done[s], ready) + t
            ready = done[s]
    return done[-1]


def _idle(stage_ms: list[float], microbatches: int, step: float) -> float:
    return 1 - microbatches * sum(stage_ms) / (len(stage_ms) * step)


# (each stage's time per micro-batch in ms, micro-batches): equal stages, a slow first and a slow middle
# stage, one stage (never idle), one micro-batch.
BUBBLE_CASES = [([2.0, 2.0, 2.0, 2.0], 8), ([3.0, 1.0], 4), ([1.0, 2.0, 1.0], 6), ([5.0], 3), ([1.0, 4.0], 1),
                ([2.0, 1.0, 1.0, 3.0], 5)]


@exercise("Exercise 1 of 06b (the pipeline bubble, unequal stages)", hints=[
    "draw the schedule on squared paper, one row per device, one box per micro-batch, each box as long as "
    "its stage takes. When does the last box end, and how much of that time did each row spend working?",
    "the first micro-batch has to pass every stage once. After that, micro-batches leave the pipeline at "
    "the pace of the slowest stage: the faster stages wait for it.",
    "the step lasts the sum of the stage times plus, for every micro-batch after the first, the slowest "
    "stage's time. Each device works its own stage time once per micro-batch; the idle share is what is "
    "left of the step, averaged over the devices.",
])
def bubble(fn: Callable) -> None:
    """`fn(stage_ms, microbatches)`: the mean idle share of the devices in one GPipe pass whose stage s takes
    stage_ms[s] per micro-batch: 1 − M·Σt / (S·(Σt + (M − 1)·max t))."""
    for stage_ms, m in BUBBLE_CASES:
        s = len(stage_ms)
        result = _number(ask(fn, list(stage_ms), m), f"for stages {stage_ms} ms and {m} micro-batches")
        want = _idle(stage_ms, m, _schedule(stage_ms, m))
        if math.isclose(result, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        case = f"for stages taking {stage_ms} ms and {m} micro-batches you returned {result:g}"
        total, slow, fast = sum(stage_ms), max(stage_ms), min(stage_ms)
        mistakes = [
            ((s - 1) / (m + s - 1), "that is the bubble of equal stages (or of stages all as "
             "long as the average one); here the stages take different times, and the slowest one sets the pace."),
            (1 - want, "that is the busy share; the bubble is the idle share."),
            (_idle(stage_ms, m, m * total), "that step has no overlap: one micro-batch at a time through the "
             "whole pipeline. The stages work on different micro-batches at once."),
            (_idle(stage_ms, m, (m + s - 1) * slow), "that lets every slot last as long as the slowest stage, "
             "in lockstep; a stage starts its next micro-batch as soon as it has it."),
            (_idle(stage_ms, m, total + (m - 1) * fast), "the pace after the first micro-batch is set by the "
             "slowest stage, not the fastest."),
            (_idle(stage_ms, m, total + m * slow), "that counts the slowest stage once too often: the first "
             "micro-batch's pass through every stage already includes it."),
            (_idle(stage_ms, m, m * slow), "that forgets filling and draining the pipeline: the first "
             "micro-batch must pass every stage before the last stage starts."),
        ]
        for value, message in mistakes:
            if math.isclose(result, value, rel_tol=1e-6, abs_tol=1e-9):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}; a simulated schedule leaves the devices idle {want:.4g} of the step on average.")


hint, solution = helpers(__name__, answers)
