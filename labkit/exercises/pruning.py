"""Checks for notebooks/07_pruning.ipynb. The notebook shows the unstructured magnitude mask, the channel
pruning and the k-means of weight sharing; its exercises ask for what it does not show: an N:M mask (the
pattern sparse GPU kernels need), the channels to keep, and the storage of shared weights."""

from __future__ import annotations

import math
from typing import Callable

import torch

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import pruning as answers

__all__ = ["n_m_mask", "channels_to_keep", "shared_bytes", "hint", "solution"]


def _weight(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Distinct magnitudes 1 … rows·cols with random signs: no ties, and big negative weights."""
    g = torch.Generator().manual_seed(seed)
    magnitudes = (torch.randperm(rows * cols, generator=g) + 1).float()
    signs = torch.where(torch.rand(rows * cols, generator=g) < 0.5, -1.0, 1.0)
    return (magnitudes * signs).reshape(rows, cols)


def _nm(w: torch.Tensor, n: int, m: int, *, score: Callable = torch.abs, largest: bool = True) -> torch.Tensor:
    groups = score(w).reshape(-1, m)
    keep = groups.topk(n, dim=1, largest=largest).indices
    return torch.zeros_like(groups).scatter_(1, keep, 1.0).reshape(w.shape)


def _global(w: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The same number of weights kept, but the largest |w| of the whole tensor."""
    keep = w.abs().flatten().topk(w.numel() * n // m).indices
    return torch.zeros(w.numel()).scatter_(0, keep, 1.0).reshape(w.shape)


# (weight, n, m): 1:4 first (there keeping the smallest and inverting the mask differ), 2:4 as on GPUs,
# and 3:6 on a wider weight; each weight has several rows.
NM_CASES = [(_weight(3, 8, 1), 1, 4), (_weight(4, 8, 0), 2, 4), (_weight(2, 12, 2), 3, 6)]


@exercise("Exercise 1 (an N:M mask)", hints=[
    "re-read the section on the magnitude mask: it ranks all the weights of a tensor together. Here the "
    "ranking happens inside small groups of consecutive weights along each row, and every group keeps "
    "the same number of weights. Which weights of a group survive?",
    "give the magnitudes a shape in which each group is one row of its own, pick the largest ones in each "
    "such row, and put ones at their places in a tensor of zeros; then give the mask the weight's shape.",
    "n is how many weights each group keeps, m is the size of a group. Rank by magnitude, so a large "
    "negative weight is kept too, and a one in the mask means keep.",
])
def n_m_mask(fn: Callable) -> None:
    """`fn(weight, n, m)` returns a 0/1 mask of the weight's shape that keeps the n largest |w| in every group
    of m consecutive weights of a row."""
    for w, n, m in NM_CASES:
        result = ask(fn, w.clone(), n, m)
        try:
            mask = torch.as_tensor(result).float()
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return a tensor of zeros and ones.") from None
        case = f"for a {tuple(w.shape)} weight at {n}:{m}"
        if mask.shape != w.shape:
            raise Hint(f"{case} the mask has shape {tuple(mask.shape)}: give it the weight's shape.")
        expected = _nm(w, n, m)
        if torch.equal(mask, expected):
            continue
        if not torch.all((mask == 0) | (mask == 1)):
            raise Hint(f"{case} the mask holds values other than 0 and 1: return a mask, not the pruned weights.")
        strided = _nm(w.reshape(w.shape[0], m, -1).transpose(1, 2), n, m).transpose(1, 2).reshape(w.shape)
        mistakes = [
            (_nm(w, n, m, score=lambda t: t), "that ranks by signed value: rank by magnitude, a large "
             "negative weight matters as much as a large positive one."),
            (_nm(w, n, m, largest=False), "that keeps the smallest weights of each group: keep the largest "
             "magnitudes, the ones that matter."),
            (1 - expected, "the mask is inverted: a one means keep, a zero means prune."),
            (_nm(w, m - n, m), f"that keeps {m - n} per group: n is the number each group keeps, not the "
             "number it prunes."),
            (_global(w, n, m), "that ranks the whole tensor at once, like the magnitude mask above: rank "
             "inside each group of m consecutive weights, so that every group keeps exactly n."),
            (_nm(w.T.contiguous(), n, m).T if w.shape[0] % m == 0 else None, "those groups run down the "
             "columns: a group is consecutive weights along a row."),
            (strided, "those groups are strided, every few weights: a group is consecutive weights of a row."),
        ]
        for value, message in mistakes:
            if value is not None and torch.equal(mask, value):
                raise Hint(f"{case}: {message}")
        kept = mask.reshape(-1, m).sum(dim=1)
        if not torch.all(kept == n):
            raise Hint(f"{case} your groups keep {sorted(set(int(k) for k in kept))} weights each: every group "
                       f"of {m} consecutive weights must keep exactly {n}.")
        raise Hint(f"{case} every group keeps {n}, but not the largest magnitudes of its group.")


def _conv(out: int, inp: int, seed: int) -> torch.Tensor:
    return torch.randn(out, inp, 3, 3, generator=torch.Generator().manual_seed(seed)) * 0.1


def _special() -> torch.Tensor:
    """Channel 1 is all negative (a signed sum ranks it last); channel 2 has one big weight (first by L2,
    not by L1); the input channels rank differently from the output channels."""
    w = torch.zeros(5, 2, 3, 3)
    w[0] = 0.1                # L1 1.8
    w[1] = -0.5               # L1 9.0, signed sum -9.0
    w[2, 0, 0, 0] = 2.5       # L1 2.5, L2 2.5 (the largest L2)
    w[3] = 0.2                # L1 3.6, L2 0.85
    w[4, 1] = 0.15            # L1 1.35
    return w


CHANNEL_CASES = [(_special(), 2), (_conv(6, 3, 0), 3), (_conv(8, 4, 1), 5)]


def _top(score: torch.Tensor, keep: int, largest: bool = True) -> list[int]:
    return sorted(int(i) for i in score.topk(keep, largest=largest).indices)


@exercise("Exercise 2 (channels to keep)", hints=[
    "structured pruning keeps whole output channels. Which single number summarises one output channel's "
    "weights, so that a channel of large weights of either sign ranks high?",
    "each output channel is one slice along the first axis; add up the magnitudes over every other axis, "
    "giving one norm per output channel, then take the channels with the largest norms.",
    "return the indices of the kept channels in increasing order, so that the smaller layer keeps the "
    "channels in their original order.",
])
def channels_to_keep(fn: Callable) -> None:
    """`fn(conv_weight, keep)` returns the indices of the `keep` output channels with the largest L1 norm,
    in increasing order."""
    for w, keep in CHANNEL_CASES:
        result = ask(fn, w.clone(), keep)
        try:
            got = [int(i) for i in torch.as_tensor(result).flatten()]
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return the channel indices (a list or a tensor).") from None
        case = f"for a conv weight of shape {tuple(w.shape)}, keep {keep}, you returned {got}"
        l1 = w.abs().sum(dim=(1, 2, 3))
        expected = _top(l1, keep)
        if got == expected:
            continue
        if sorted(got) == expected:
            raise Hint(f"{case}: the right channels, but return them in increasing order (sorted).")
        if len(got) != keep:
            raise Hint(f"{case}: return exactly {keep} channel indices.")
        mistakes = [
            (_top(w.sum(dim=(1, 2, 3)), keep), "that ranks by the signed sum: use the absolute values, a "
             "channel of large negative weights is important too."),
            (_top(l1, keep, largest=False), "those are the channels with the smallest norms: keep the largest."),
            (_top(w.pow(2).sum(dim=(1, 2, 3)), keep), "that ranks by the squared or L2 norm: the exercise asks "
             "for the L1 norm, the sum of magnitudes."),
            (_top(w.abs().sum(dim=(0, 2, 3)), min(keep, w.shape[1])) if keep <= w.shape[1] else None,
             "that ranks the input channels: rank the output channels, the first axis."),
        ]
        for value, message in mistakes:
            if value is not None and sorted(got) == value:
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: those are not the {keep} output channels with the largest L1 norms.")


def _bytes(n: int, k: int, *, bits: Callable = lambda k: math.ceil(math.log2(k)), to_bytes: Callable = math.ceil,
           per_code: float = 1 / 8, entry: int = 4) -> float:
    return to_bytes(n * bits(k) * per_code) + entry * k


# (weights, clusters): 5 and 100 clusters are not powers of two; 1001·3 bits is not a whole number of bytes.
SHARED_CASES = [(1000, 16), (1001, 5), (10, 256), (7, 4), (50_000, 100)]


@exercise("Exercise 3 (the size of shared weights)", hints=[
    "re-read the paragraph on weight sharing: after clustering, a layer is stored as a small table of "
    "values plus one code per weight. How many bits does a code need to tell the clusters apart, and "
    "how big is the table?",
    "a code needs enough whole bits to number every cluster, so round the logarithm up; the codes are "
    "packed tightly, so convert their bits to bytes and round up to whole bytes at the end.",
    "the codebook holds one value per cluster, each a full precision float of four bytes; add it to "
    "the bytes of the codes.",
])
def shared_bytes(fn: Callable) -> None:
    """`fn(n_weights, k)`: bytes to store n weights shared into k values: the codes packed at
    ⌈log2 k⌉ bits each, rounded up to whole bytes, plus a codebook of k fp32 values."""
    for n, k in SHARED_CASES:
        result = ask(fn, n, k)
        try:
            got = float(result)
        except (TypeError, ValueError):
            raise Hint(f"got a {type(result).__name__}: return a number of bytes.") from None
        want = _bytes(n, k)
        if got == want:
            continue
        case = f"for {n} weights in {k} clusters you returned {got:g} bytes"
        mistakes = [
            (_bytes(n, k, bits=math.log2), "a code is a whole number of bits: round the logarithm up."),
            (_bytes(n, k, bits=lambda k: math.log2(k), to_bytes=lambda v: v), "a code is a whole number of "
             "bits: round the logarithm up, and count whole bytes."),
            (_bytes(n, k, bits=lambda k: math.floor(math.log2(k))), "rounding the logarithm down leaves too "
             "few bits to number every cluster: round up."),
            (_bytes(n, k, per_code=1), "that counts the codes in bits: convert them to bytes."),
            (_bytes(n, k, entry=0), "the codebook is missing: the k shared values are stored too."),
            (_bytes(n, k, entry=1), "a codebook value is an fp32 number, four bytes, not one."),
            (_bytes(n, k, bits=lambda k: 8, per_code=1 / 8), "that spends a whole byte per code: pack the "
             "codes at just the bits they need."),
            (_bytes(n, k, to_bytes=math.floor), "the packed codes were rounded down: a partly used byte is "
             "still stored, round up."),
            (_bytes(n, k, to_bytes=lambda v: v), "count whole bytes: round the packed codes up."),
            (4 * n, "that is the dense fp32 size, before sharing."),
        ]
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-9):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: that is not the bytes of the packed codes plus the codebook. Work out the bits "
                   "per code first.")


hint, solution = helpers(__name__, answers)
