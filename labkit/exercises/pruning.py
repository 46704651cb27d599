"""Checks for notebooks/07_pruning.ipynb: a magnitude mask, channels to keep, weight sharing."""

from __future__ import annotations

from typing import Callable

import torch

from labkit.exercises import Hint, call_answer, not_attempted, passed

# A 5×5 weight checkable by hand: its absolute values are 1 … 25, each once.
HAND_WEIGHT = torch.tensor([[-3., 14., 7., -22., 1.],
                            [9., -18., 25., 4., -11.],
                            [16., 2., -8., 19., -13.],
                            [-6., 21., 10., -15., 5.],
                            [12., -24., 17., 20., -23.]])


def magnitude_mask(fn: Callable) -> str:
    """`fn(weight, sparsity)` returns a 0/1 mask that zeroes the `sparsity` fraction with the smallest |w|."""
    name = "Exercise 1 (a magnitude mask)"
    mask = call_answer(name, fn, HAND_WEIGHT.clone(), 0.6)
    if mask is None:
        return not_attempted(name, "rank |w|, and set the mask to 0 for the round(sparsity · numel) smallest.")
    mask = torch.as_tensor(mask).float()
    if mask.shape != HAND_WEIGHT.shape:
        raise Hint(f"{name}: the mask has shape {tuple(mask.shape)}; it must have the weight's shape (5, 5).")
    expected = (HAND_WEIGHT.abs() > 15).float()  # 60 % of 25 = 15 weights pruned: |w| = 1 … 15
    if torch.equal(mask, expected):
        return passed(name)
    if torch.equal(mask, (HAND_WEIGHT > 15).float()) or torch.equal(mask, (HAND_WEIGHT > -HAND_WEIGHT.abs().max()).float()):
        raise Hint(f"{name}: rank by magnitude |w|, not by signed value: -24 is a big weight.")
    if torch.equal(mask, 1 - expected):
        raise Hint(f"{name}: the mask is inverted: 1 means keep (large |w|), 0 means prune.")
    kept = int(mask.sum())
    raise Hint(f"{name}: your mask keeps {kept} of 25 weights; at sparsity 0.6 it should keep 10, the largest |w|.")


def channels_to_keep(fn: Callable) -> str:
    """`fn(conv_weight, keep)` returns the indices of the `keep` output channels with the largest L1 norm, sorted."""
    name = "Exercise 2 (channels to keep)"
    weight = torch.zeros(4, 2, 3, 3)
    weight[0] = 0.1
    weight[1] = -0.5          # large L1 norm (negative values count by magnitude)
    weight[2, 0] = 0.3        # L1 = 9 × 0.3 = 2.7
    weight[3] = 0.2           # L1 = 18 × 0.2 = 3.6
    result = call_answer(name, fn, weight, 2)
    if result is None:
        return not_attempted(name, "sum |w| over each output channel (dims 1, 2, 3), take the top `keep`, sort them.")
    result = [int(i) for i in torch.as_tensor(result).flatten()]
    if result == [1, 3]:
        return passed(name)
    if sorted(result) == [1, 3]:
        raise Hint(f"{name}: got {result}: right channels, but keep them in their original order (sorted).")
    if sorted(result) == [2, 3]:
        raise Hint(f"{name}: got {result}: use the absolute values |w| — channel 1 is all -0.5.")
    raise Hint(f"{name}: got {result}; rank output channels (dim 0) by the sum of |w| over the other dims.")


def share(fn: Callable) -> str:
    """`fn(values, centroids)` replaces each value by its nearest centroid (one k-means assignment step)."""
    name = "Exercise 3 (weight sharing)"
    values = torch.tensor([0.05, -0.9, 0.4, 0.61, -0.2, 1.3])
    centroids = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    result = call_answer(name, fn, values, centroids)
    if result is None:
        return not_attempted(name, "for each value, find argmin |value − centroid| and take that centroid.")
    result = torch.as_tensor(result).float()
    expected = torch.tensor([0.0, -1.0, 0.5, 0.5, 0.0, 1.0])
    if result.shape != values.shape:
        raise Hint(f"{name}: got shape {tuple(result.shape)}: return one shared value per input value.")
    if torch.allclose(result, expected):
        return passed(name)
    if torch.allclose(result, torch.tensor([1.0, 0.0, 2.0, 2.0, 1.0, 3.0])):
        raise Hint(f"{name}: you returned the codes (indices); return the centroid values themselves.")
    raise Hint(f"{name}: got {result.tolist()}; each value should become the centroid closest to it.")
