"""Checks for notebooks/02_data_loading.ipynb: the speed-up bound, a batched transform, and a sampler whose
epochs can be replayed.

The notebook shows `BatchLoader` (one shuffle per epoch from a generator seeded once), so exercise 3 asks
for what it does not show: an epoch's batches computed from (seed, epoch) alone, as a resumed run needs,
with the leftover batch dropped and the training's own random streams left alone."""

from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import dataloading as answers

__all__ = ["speedup_bound", "normalise_and_flip", "shuffled_batches", "hint", "solution"]


def _number(result: object, what: str) -> float:
    try:
        return float(result)
    except (TypeError, ValueError):
        raise Hint(f"got {result!r}: return one number, {what}.") from None


# ------------------------------------------------------------------ exercise 1

# (wait ms, compute ms): the text's example, compute-bound, no wait at all, a mostly waiting step
STEPS = [(30.0, 10.0), (5.0, 45.0), (0.0, 20.0), (12.0, 4.0), (7.5, 2.5)]


@exercise("Exercise 1 (how much can a faster pipeline help?)", hints=[
    "a perfect pipeline removes the wait but not the compute. Compare how long a step takes now with how long "
    "it would take then: the bound is the ratio of the two step times.",
    "a step now lasts the wait plus the compute; with a perfect pipeline only the compute is left. A speed-up "
    "says how many times faster, so it is never below one.",
    "divide the old step time by the new one, not the wait alone, and not the other way round.",
])
def speedup_bound(fn: Callable) -> None:
    """`fn(wait_ms, compute_ms)`: the most a perfect input pipeline (zero wait) can speed a step up."""
    for wait, compute in STEPS:
        got = _number(ask(fn, wait, compute), "the speed-up")
        want = (wait + compute) / compute
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        case = f"for {wait:g} ms waiting and {compute:g} ms computing you returned {got:g}"
        mistakes = [
            (wait / compute, "that is wait over compute; after the wait is gone the step still computes: compare "
             "the whole step before with the step after."),
            (compute / (wait + compute), "that is the fraction of the step spent computing; the bound is the "
             "ratio of the step times, old over new, at least 1."),
            (wait / (wait + compute), "that is the fraction of the step spent waiting; the bound is the ratio "
             "of the step times, old over new, at least 1."),
            (100 * wait / compute, "that is the gain in percent; return the ratio of the step times."),
            (wait, "that is the time saved per step, in ms; return how many times faster the step gets."),
            (1 + compute / wait if wait else math.nan, "the wait and the compute are swapped: only the wait "
             "goes away."),
        ]
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}; expected {want:g}. What does a step take with no wait?")


# ------------------------------------------------------------------ exercise 2

class _CountOps(TorchFunctionMode):
    """Counts the torch operations a function runs: a batched transform runs as many for 4 images as for 64."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _reference_flip(x: torch.Tensor, flip: torch.Tensor, mean: float, std: float, *, scale: float = 255.0,
                    dim: int = -1, divide: bool = True) -> torch.Tensor:
    out = x.float() / scale - mean
    out = out / std if divide else out
    return torch.where(flip[:, None, None, None], out.flip(dim), out)


def _batch(n: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, h, w), generator=g, dtype=torch.uint8)
    flip = torch.rand(n, generator=g) < 0.5
    flip[0], flip[1] = True, False  # both kinds in every batch
    return x, flip


# (images, height, width, mean, std): non-square images, so rows and columns cannot be confused
BATCHES = [(6, 4, 5, 0.25, 0.5), (9, 7, 3, 0.1307, 0.3081), (4, 5, 6, 0.5, 2.0)]


@exercise("Exercise 2 (a batched transform)", hints=[
    "two steps, each for the whole batch at once: bring the pixels to the normalised scale, then choose per "
    "image between the mirrored picture and the original. No loop over images.",
    "pixels stored as bytes go from zero to two hundred fifty five: scale them into the unit interval first, "
    "then subtract the mean and divide by the standard deviation.",
    "mirror the whole batch along the last dimension, the columns, then pick per image with a boolean mask "
    "shaped so that it broadcasts over channels, rows and columns; torch has a function that picks elementwise "
    "between two tensors by a mask.",
])
def normalise_and_flip(fn: Callable) -> None:
    """`fn(x_uint8, flip, mean, std)`: normalise a (N, 1, H, W) uint8 batch and mirror left-right the
    images where `flip` is True: for the whole batch at once, matching a per-image loop."""
    for n, h, w, mean, std in BATCHES:
        x, flip = _batch(n, h, w, seed=n)
        result = ask(fn, x.clone(), flip.clone(), mean, std)
        case = f"for {n} images of {h}×{w}, mean {mean}, std {std}"
        if not isinstance(result, torch.Tensor) or result.shape != x.shape:
            raise Hint(f"{case}: return a tensor shaped like the input {tuple(x.shape)}, "
                       f"got {getattr(result, 'shape', type(result).__name__)}.")
        if not result.is_floating_point():
            raise Hint(f"{case}: you returned {result.dtype} pixels: normalised values are fractions, convert "
                       "to float first.")
        got = result.float()
        if torch.allclose(got, _reference_flip(x, flip, mean, std), atol=1e-5):
            continue
        mistakes = [
            (_reference_flip(x, torch.zeros_like(flip), mean, std), "no image was mirrored: use `flip` to choose, "
             "per image, between the mirrored batch and the original."),
            (_reference_flip(x, torch.ones_like(flip), mean, std), "every image was mirrored; only those where "
             "flip is True should be."),
            (_reference_flip(x, ~flip, mean, std), "the images where flip is False were mirrored: the mask is "
             "the wrong way round."),
            (_reference_flip(x, flip, mean, std, dim=-2), "the flipped images are upside down: left-right is the "
             "last dimension (-1), rows are -2."),
            (_reference_flip(x, flip, mean, std, scale=1.0), "the pixels were not scaled to [0, 1]: divide the "
             "uint8 values by 255 before normalising."),
            (_reference_flip(x, flip, 0.0, 1.0), "the pixels are in [0, 1] but not normalised: subtract the mean "
             "and divide by the std."),
            (_reference_flip(x, flip, mean, std, divide=False), "the mean was subtracted but nothing was divided "
             "by the std."),
            (_reference_flip(x, flip, mean, std, scale=1.0) / 255, "the division by 255 came after "
             "normalising: scale to [0, 1] first, then subtract the mean and divide by the std."),
            (_reference_flip(x, flip, mean / std, 1.0), "only the mean was divided by the std (missing "
             "parentheses?): normalise as (x / 255 − mean) / std."),
        ]
        for value, message in mistakes:
            if torch.allclose(got, value, atol=1e-4):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case} the values differ from a per-image loop; normalise first: (x / 255 − mean) / std.")
    ops = []
    for n in (4, 64):
        x, flip = _batch(n, 5, 6, seed=n)
        with _CountOps() as counter:
            fn(x, flip, 0.25, 0.5)
        ops.append(counter.ops)
    if ops[1] > ops[0]:
        raise Hint(f"the values are right, but your transform runs {ops[0]} torch operations for 4 images and "
                   f"{ops[1]} for 64: that is a Python loop over images. Do it for the whole batch at once.")


# ------------------------------------------------------------------ exercise 3

def _indices(result: object) -> list[list[int]]:
    try:
        return [[int(i) for i in batch] for batch in result]
    except (TypeError, ValueError):
        raise Hint("return a list of batches, each a tensor (or list) of indices.") from None


def _global_states() -> tuple:
    return torch.get_rng_state(), random.getstate(), np.random.get_state()


def _same_states(a: tuple, b: tuple) -> bool:
    return (torch.equal(a[0], b[0]) and a[1] == b[1] and a[2][0] == b[2][0] and np.array_equal(a[2][1], b[2][1])
            and a[2][2:] == b[2][2:])


# (n, batch_size): leftovers of 2, 0, 1 and 4 images
LOADERS = [(10, 4), (12, 4), (7, 3), (100, 32)]


@exercise("Exercise 3 (a sampler that can replay any epoch)", hints=[
    "the loader shown above seeds one generator once, so epoch seven's order exists only after epochs zero to "
    "six ran. Here each epoch's order must come from the seed and the epoch number alone, from a generator "
    "of your own.",
    "make a fresh generator in every call, seeded from both the seed and the epoch, draw one permutation of "
    "all the indices, and cut it into full batches; the leftover indices at the end are dropped.",
    "shuffle first and drop afterwards, so that each epoch leaves out different images. Leave torch's global "
    "random generator alone: reseeding it would also reset the model's dropout and initialisation streams.",
])
def shuffled_batches(fn: Callable) -> None:
    """`fn(n, batch_size, seed, epoch)`: the batches of one epoch: a shuffle that depends on (seed, epoch)
    alone, full batches only (the leftover dropped), indices 0..n−1 at most once, global RNGs untouched."""
    for n, bs in LOADERS:
        before = _global_states()
        batches = _indices(ask(fn, n, bs, 0, 0))
        touched = not _same_states(before, _global_states())
        case = f"for n = {n}, batch_size = {bs}"
        sizes = [len(b) for b in batches]
        flat = [i for b in batches for i in b]
        if n % bs and sizes == [bs] * (n // bs) + [n % bs]:
            raise Hint(f"{case} the batch sizes are {sizes}: drop the last, smaller batch (drop_last), so every "
                       "step sees a full batch.")
        if any(i < 0 or i >= n for i in flat):
            raise Hint(f"{case} some indices lie outside 0 … {n - 1}.")
        if len(set(flat)) != len(flat):
            raise Hint(f"{case} some indices appear twice in one epoch: sampling with replacement repeats some "
                       "images and skips others; draw a permutation.")
        if sizes != [bs] * (n // bs):
            raise Hint(f"{case} the batch sizes are {sizes}; expected {n // bs} full batches of {bs}.")
        if flat == sorted(flat):
            raise Hint(f"{case} the indices come in increasing order: shuffle them, or every epoch sees the same "
                       "batches.")
        if touched:
            raise Hint(f"{case} your sampler changed a global random generator (torch.manual_seed, "
                       "random.seed, np.random.seed or drawing from one): that shifts the model's own random "
                       "stream. Draw from a generator of your own, such as torch.Generator().manual_seed(…).")
    n, bs = 100, 8
    replay = [_indices(ask(fn, n, bs, 3, 5)) for _ in range(2)]
    if replay[0] != replay[1]:
        raise Hint("two calls with the same seed and epoch gave different orders: the order must depend on "
                   "(seed, epoch) alone, not on earlier calls or on a generator made outside your function.")
    epochs = [_indices(ask(fn, n, bs, 3, e)) for e in range(4)]
    if epochs[0] == epochs[1] == epochs[2]:
        raise Hint("epochs 0, 1 and 2 gave the same order: the epoch must change the shuffle.")
    if _indices(ask(fn, n, bs, 4, 5)) == replay[0]:
        raise Hint("seeds 3 and 4 gave the same order: the seed must choose the shuffle.")
    seen = {i for epoch in (_indices(ask(fn, 10, 4, 0, e)) for e in range(8)) for b in epoch for i in b}
    if seen != set(range(10)):
        raise Hint(f"over 8 epochs with n = 10, batch_size = 4, images {sorted(set(range(10)) - seen)} were never "
                   "seen: the same indices are dropped every epoch. Shuffle first, then drop the leftover.")


hint, solution = helpers(__name__, answers)
