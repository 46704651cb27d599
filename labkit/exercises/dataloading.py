"""Checks for notebooks/02_data_loading.ipynb: the speed-up bound, batched augmentation, shuffled batches."""

from __future__ import annotations

from typing import Callable

import torch

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def speedup_bound(bound: Callable) -> str:
    """`bound(wait_ms, compute_ms)`: the most a perfect input pipeline (zero wait) can speed a step up."""
    name = "Exercise 1 (how much can a faster pipeline help?)"
    result = call_answer(name, bound, 30.0, 10.0)
    if result is None:
        return not_attempted(name, "a perfect pipeline removes the wait but not the compute: "
                                   "compare the step time now with the step time then.")
    if close(result, 4.0):
        if not close(call_answer(name, bound, 5.0, 45.0), 50 / 45):
            raise Hint(f"{name}: right for (30, 10) but not for (5, 45): use both arguments, no constants.")
        return passed(name)
    if close(result, 3.0):
        raise Hint(f"{name}: got {result:g} = wait / compute; the step still computes afterwards: (wait + compute) / compute.")
    if close(result, 0.75) or close(result, 0.25):
        raise Hint(f"{name}: got {result:g}, a fraction of the step; the bound is a ratio of step times (above 1).")
    raise Hint(f"{name}: got {result:g} for 30 ms waiting and 10 ms computing; what does a step take with no wait?")


def _reference_flip(x: torch.Tensor, flip: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    out = (x.float() / 255 - mean) / std
    return torch.stack([img.flip(-1) if f else img for img, f in zip(out, flip)])


def normalise_and_flip(fn: Callable) -> str:
    """`fn(x_uint8, flip, mean, std)`: normalise a (N, 1, H, W) uint8 batch and mirror left-right the
    images where `flip` is True — for the whole batch at once, matching a per-image loop."""
    name = "Exercise 2 (a batched transform)"
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (6, 1, 4, 5), generator=g, dtype=torch.uint8)
    flip = torch.tensor([True, False, True, True, False, False])
    mean, std = 0.25, 0.5
    result = call_answer(name, fn, x.clone(), flip.clone(), mean, std)
    if result is None:
        return not_attempted(name, "scale to [0, 1] and normalise, then choose per image between the mirrored "
                                   "batch and the original (torch.where broadcasts a mask shaped (N, 1, 1, 1)).")
    if not isinstance(result, torch.Tensor) or result.shape != x.shape:
        raise Hint(f"{name}: return a tensor shaped like the input {tuple(x.shape)}, "
                   f"got {getattr(result, 'shape', type(result).__name__)}.")
    expected = _reference_flip(x, flip, mean, std)
    if torch.allclose(result.float(), expected, atol=1e-5):
        return passed(name)
    if torch.allclose(result.float(), _reference_flip(x, torch.zeros_like(flip), mean, std), atol=1e-5):
        raise Hint(f"{name}: no image was mirrored: use `flip` to choose, per image, between x.flip(-1) and x.")
    if torch.allclose(result.float(), _reference_flip(x, torch.ones_like(flip), mean, std), atol=1e-5):
        raise Hint(f"{name}: every image was mirrored; only those where flip is True should be.")
    upside_down = torch.where(flip[:, None, None, None], expected.flip(-1).flip(-2), expected)
    if torch.allclose(result.float(), upside_down, atol=1e-5):
        raise Hint(f"{name}: the flipped images are upside down: left-right is the last dimension (-1), rows are -2.")
    if torch.allclose(result.float(), expected * std + mean, atol=1e-5):
        raise Hint(f"{name}: the pixels are in [0, 1] but not normalised: subtract mean, divide by std.")
    if torch.allclose(result.float(), ((x.float() - mean) / std).where(
            ~flip[:, None, None, None], ((x.float() - mean) / std).flip(-1)), atol=1e-3):
        raise Hint(f"{name}: scale the uint8 pixels to [0, 1] (divide by 255) before normalising.")
    raise Hint(f"{name}: the values differ from a per-image loop; normalise first: (x / 255 - mean) / std.")


def shuffled_batches(fn: Callable) -> str:
    """`fn(n, batch_size, seed)`: a list of index tensors that visits 0..n-1 once each, in a shuffled
    order that the seed repeats, in batches of `batch_size` (the last may be smaller)."""
    name = "Exercise 3 (the batched loader's index stream)"
    result = call_answer(name, fn, 10, 4, 0)
    if result is None:
        return not_attempted(name, "torch.randperm(n, generator=torch.Generator().manual_seed(seed)), "
                                   "then slice it every batch_size positions.")
    try:
        sizes = [len(b) for b in result]
        flat = [int(i) for b in result for i in b]
    except TypeError:
        raise Hint(f"{name}: return a list of batches, each a tensor (or list) of indices.") from None
    if sizes[:2] == [4, 4] and sum(sizes) == 8:
        raise Hint(f"{name}: {sizes} misses the last 2 images: keep the final, smaller batch.")
    if sorted(flat) != list(range(10)):
        raise Hint(f"{name}: the batches hold {sorted(flat)}; every index 0..9 must appear exactly once "
                   "(sampling with replacement repeats some and drops others: use a permutation).")
    if sizes != [4, 4, 2]:
        raise Hint(f"{name}: batch sizes {sizes}; for n=10 and batch_size=4 they should be [4, 4, 2].")
    if flat == list(range(10)):
        raise Hint(f"{name}: the order is 0, 1, 2, …: shuffle it (a permutation), or every epoch sees the same batches.")
    again = [int(i) for b in call_answer(name, fn, 10, 4, 0) for i in b]
    other = [int(i) for b in call_answer(name, fn, 10, 4, 1) for i in b]
    if again != flat:
        raise Hint(f"{name}: the same seed gave another order: draw from torch.Generator().manual_seed(seed).")
    if other == flat:
        raise Hint(f"{name}: seeds 0 and 1 gave the same order: the seed must choose the shuffle.")
    return passed(name)
