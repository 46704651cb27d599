"""Checks for notebooks/03_mixed_precision.ipynb. The notebook shows each format's eps and mantissa bits and
the training step with autocast and GradScaler; its exercises ask for what it does not show: the gap between
neighbouring numbers away from 1, the smallest loss scale that saves a gradient, and loss scaling done by hand."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from labkit.exercises import Hint, ask, close, exercise, helpers
from labkit.exercises.answers import amp as answers

__all__ = ["spacing", "min_loss_scale", "loss_scaled_step", "hint", "solution"]


def _gap(x: float, dtype: torch.dtype, exponent: Callable = math.floor) -> float:
    return torch.finfo(dtype).eps * 2.0 ** exponent(math.log2(abs(x)))


# (x, dtype): values above and below 1, a negative one, one just below a power of two (rounding the exponent
# to nearest is wrong), and an exact power of two (ceil is wrong); every format.
SPACING_CASES = [(0.3, torch.float16), (1000.0, torch.bfloat16), (-3.0, torch.float32), (1.0, torch.bfloat16),
                 (70.0, torch.float16), (1e6, torch.float32), (5.0, torch.float64), (0.01, torch.bfloat16)]


@exercise("Exercise 1 (the gap between neighbours)", hints=[
    "the table in section 1 gives each format's eps, the gap just above 1. A float keeps the same number "
    "of steps between every two neighbouring powers of two. What does that mean for the gap near a "
    "large number, or a small one?",
    "find the power of two just below the magnitude of x, the start of the interval it lies in; the gap "
    "there is eps times that power of two.",
    "take the logarithm in base two of the magnitude and round it down, not to the nearest integer, so "
    "that a number just below a power of two stays in the interval below.",
])
def spacing(fn: Callable) -> None:
    """`fn(x, dtype)`: the gap between x and the next larger number of the format (x a normal number)."""
    for x, dtype in SPACING_CASES:
        result = ask(fn, x, dtype)
        try:
            got = float(result)
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return a number, the gap.") from None
        want = _gap(x, dtype)
        if close(got, want, rel=1e-6):
            continue
        name = str(dtype).replace("torch.", "")
        case = f"for x = {x:g} in {name} you returned {got:.6g}"
        eps = torch.finfo(dtype).eps
        mistakes = [
            (eps, "that is eps, the gap at 1: the gap grows with the size of x."),
            (eps * abs(x), "that is eps times x itself: the gap is constant between two powers of two, so "
             "use the power of two just below x."),
            (_gap(x, dtype, round), "the exponent was rounded to nearest: round it down, x lies above that "
             "power of two."),
            (_gap(x, dtype, math.ceil), "that is the gap of the interval above: round the exponent down."),
            (_gap(x, dtype) / 2, "half the gap: that is the largest rounding error, not the distance to the "
             "next number."),
            (_gap(x, torch.bfloat16), "the result is right for bf16 only: use the `dtype` argument."),
            (_gap(x, torch.float32), "the result is right for fp32 only: use the `dtype` argument."),
        ]
        for value, message in mistakes:
            if close(got, value, rel=1e-6):
                raise Hint(f"{case}: {message}")
        if x < 0 and close(got, -want, rel=1e-6):
            raise Hint(f"{case}: a gap is a distance, positive: use the magnitude of x.")
        raise Hint(f"{case}: that is not the distance to the next {name} number.")


TINY = 2.0 ** -14  # fp16's smallest normal number


def _scale(g: float, target: float = TINY, rounding: Callable = math.ceil, floor_at_one: bool = True) -> float:
    k = rounding(math.log2(target / g))
    return 2.0 ** (max(0, k) if floor_at_one else k)


# g: far below (1e-7, 5e-9), just below (3e-5), exactly 2^-20 and 2^-14 (strict "greater than" is wrong),
# and already normal (1e-3: never scale down).
SCALE_CASES = [1e-7, 3e-5, 2.0 ** -20, 5e-9, 2.0 ** -14, 1e-3, 0.5]


@exercise("Exercise 2 (a loss scale that saves a gradient)", hints=[
    "section 2 showed gradients falling below fp16's smallest normal number. Multiplying by a power of "
    "two shifts a number without rounding it. How many doublings does this gradient need to reach the "
    "smallest normal number, and what if it is already there?",
    "count the doublings with a logarithm in base two of the ratio between the smallest normal number and "
    "the gradient; round that count up, because a gradient that is still short stays subnormal.",
    "reaching the smallest normal exactly is enough. A gradient that is already normal needs no scaling, "
    "so the scale never goes below one.",
])
def min_loss_scale(fn: Callable) -> None:
    """`fn(g)`: the smallest power of two S ≥ 1 such that g·S ≥ 2^-14 (fp16's smallest normal)."""
    for g in SCALE_CASES:
        result = ask(fn, g)
        try:
            got = float(result)
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return a number, the scale.") from None
        want = _scale(g)
        if close(got, want, rel=1e-9):
            continue
        case = f"for g = {g:.4g} you returned {got:g}"
        if got <= 0 or not math.isfinite(got) or not close(2.0 ** round(math.log2(got)), got, rel=1e-9):
            if close(got, TINY / g, rel=1e-6):
                raise Hint(f"{case}: that is the exact ratio, not a power of two: scale by powers of two, "
                           "which multiply and divide without rounding.")
            raise Hint(f"{case}: that is not a power of two; GradScaler's scales are powers of two, exact to "
                       "multiply and divide.")
        mistakes = [
            (_scale(g, target=2.0 ** -24), "that only lifts g above the smallest subnormal: it survives but "
             "keeps only a few bits. Aim for the smallest normal number."),
            (_scale(g, floor_at_one=False), "that scales a gradient that is already normal down: the scale "
             "never goes below one."),
            (_scale(g, rounding=math.floor), "g times that scale is still below the smallest normal number: "
             "round the number of doublings up."),
            (_scale(g, rounding=lambda v: math.floor(v) + 1), "one power of two too many where g lands exactly "
             "on the smallest normal: reaching it is enough."),
            (2 * want, "one power of two too many: take the smallest that reaches the smallest normal."),
        ]
        for value, message in mistakes:
            if close(got, value, rel=1e-9):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: g times that scale is {g * got:.3g}; the smallest scale that reaches 2^-14 is "
                   "another power of two.")


class _Recorder(nn.Module):
    """A tiny model that records, per forward pass, whether autocast was on and in which dtype its layer
    computed, and the size of the gradient that backward sends into its output."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(8, 3)
        self.seen: list[tuple[bool, torch.dtype]] = []
        self.out_grads: list[float] = []

    def forward(self, x):
        out = self.fc(x)
        self.seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        if out.requires_grad:
            out.register_hook(lambda g: self.out_grads.append(float(g.float().abs().sum())))
        return out


def _batch(seed: int, size: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 8, generator=g) * size, torch.randint(0, 3, (16,), generator=g)


def _reference(X: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[_Recorder, list[torch.Tensor]]:
    """Unscaled bf16 steps (the same numbers, since a power-of-two scale is exact): weights and losses."""
    model = _Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.detach().float())
    return model, losses


@exercise("Exercise 3 (loss scaling by hand)", hints=[
    "section 2 describes what GradScaler does, in words; here you do it yourself in one training step. "
    "What happens to the loss before backward, to the gradients before the optimizer sees them, and "
    "when is a step not taken at all?",
    "run the forward pass and the loss under bf16 autocast on the CPU. Multiply the loss by the scale "
    "before backward; then divide every parameter's gradient by the same scale, so that the optimizer "
    "sees the true gradients.",
    "if any gradient is infinite or not a number after that, skip the optimizer step. Either way clear "
    "the gradients for the next step, and return the loss itself, not the scaled one.",
])
def loss_scaled_step(fn: Callable) -> None:
    """`fn(model, opt, X, y, scale)`: one bf16 autocast step on the CPU with a static loss scale done by hand:
    scale the loss, unscale the gradients, skip the step on inf/NaN, clear the gradients; returns the loss."""
    scale = 1024.0
    X, y = _batch(0)
    model = _Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.fc.weight.detach().clone()
    ref, ref_losses = _reference(X, y, 1)
    result = ask(fn, model, opt, X, y, scale)
    if not model.seen:
        raise Hint("the model was never called: compute the logits with the model on X.")
    enabled, dtype = model.seen[-1]
    if not enabled:
        raise Hint("the forward pass ran without autocast: run the forward pass and the loss inside "
                   "a bf16 autocast block for the CPU.")
    if dtype == torch.float16:
        raise Hint("the layer computed in fp16: on a CPU use bf16.")
    if dtype != torch.bfloat16:
        raise Hint(f"the layer computed in {dtype}: ask autocast for bf16.")
    if model.fc.weight.dtype != torch.float32:
        raise Hint(f"the weights became {model.fc.weight.dtype}: autocast keeps them fp32, so don't convert "
                   "the model.")
    if not model.out_grads:
        raise Hint("no gradient reached the model: call backward on the scaled loss.")
    ratio = model.out_grads[-1] / ref.out_grads[-1]
    if close(ratio, 1.0, rel=1e-2):
        raise Hint(f"backward ran on the loss without the scale: multiply the loss by the scale ({scale:g}) "
                   "before backward, that is what keeps small gradients representable.")
    if not close(ratio, scale, rel=1e-2):
        raise Hint(f"the gradients reaching the model were {ratio:.4g} times the unscaled ones: multiply the "
                   f"loss by the scale ({scale:g}), once, before backward.")
    moved = model.fc.weight.detach() - before
    want = ref.fc.weight.detach() - before
    if torch.equal(moved, torch.zeros_like(moved)):
        raise Hint("the weights did not change: take the optimizer step when the gradients are finite.")
    if torch.allclose(moved, want * scale, rtol=1e-2, atol=1e-6):
        raise Hint(f"the step was {scale:g} times too large: unscale, divide the gradients by the scale "
                   "before the optimizer step.")
    if not torch.allclose(moved, want, rtol=1e-2, atol=1e-6):
        raise Hint("the weights moved, but not by the unscaled gradient step: divide every gradient by the "
                   "scale exactly once before the optimizer step.")
    if not isinstance(result, torch.Tensor) or result.numel() != 1:
        raise Hint(f"return the loss (a one-number tensor), got {type(result).__name__}.")
    loss, want_loss = float(result.detach()), float(ref_losses[0])
    if close(loss, want_loss * scale, rel=1e-3):
        raise Hint("you returned the scaled loss: return the loss itself, so the printed loss means something.")
    if not close(loss, want_loss, rel=1e-3):
        raise Hint(f"returned {loss:.4g}, but this batch's loss is {want_loss:.4g}.")

    # a second step on the same model, at scale 1: gradients left over from the first would be added to its own
    ask(fn, model, opt, X, y, 1.0)
    ref2, _ = _reference(X, y, 2)
    if not torch.allclose(model.fc.weight.detach(), ref2.fc.weight.detach(), rtol=1e-3, atol=1e-6):
        raise Hint("the second step went wrong: the first step's gradients were still there and were added "
                   "to the new ones. Zero the gradients after each step.")

    # an overflow: a huge scale makes the scaled gradients infinite; the step must be skipped
    big_X, big_y = _batch(1, size=1e4)
    model = _Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    ask(fn, model, opt, big_X, big_y, 2.0 ** 120)
    after = list(model.parameters())
    if not all(torch.isfinite(p).all() for p in after):
        raise Hint("with a scale so large that the gradients overflowed to infinity, your step wrote inf or "
                   "NaN into the weights: skip the optimizer step when any gradient is not finite.")
    if not all(torch.equal(b, p.detach()) for b, p in zip(before, after)):
        raise Hint("with a scale so large that the gradients overflowed, the weights still changed: skip the "
                   "whole optimizer step when any gradient is not finite.")


hint, solution = helpers(__name__, answers)
