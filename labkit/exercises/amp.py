"""Checks for notebooks/03_mixed_precision.ipynb: precision, loss scaling, an autocast training step."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def values_between_1_and_2(count: Callable) -> str:
    """`count(dtype)`: how many values the format can store in [1, 2) (2 ** mantissa bits)."""
    name = "Exercise 1 (how fine is each format?)"
    result = call_answer(name, count, torch.bfloat16)
    if result is None:
        return not_attempted(name, "torch.finfo(dtype).eps is the gap between 1 and the next value.")
    expected = {torch.bfloat16: 128, torch.float16: 1024, torch.float32: 2**23}
    got = {torch.bfloat16: result} | {d: call_answer(name, count, d) for d in (torch.float16, torch.float32)}
    if all(close(got[d], expected[d]) for d in expected):
        return passed(name)
    if close(got[torch.bfloat16], 1 / 128 / 128) or close(got[torch.bfloat16], 1 / 128):
        raise Hint(f"{name}: got {got[torch.bfloat16]:g} for bf16: eps is the *gap*; how many gaps fit between 1 and 2?")
    if close(got[torch.bfloat16], 256) or close(got[torch.float16], 2048):
        raise Hint(f"{name}: got {got[torch.bfloat16]:g} (bf16), {got[torch.float16]:g} (fp16): "
                   "count [1, 2) only, the gaps, not the gaps plus one exponent step.")
    raise Hint(f"{name}: got {got[torch.bfloat16]} (bf16), {got[torch.float16]} (fp16), {got[torch.float32]} "
               "(fp32); expected 1 / eps for each.")


def min_loss_scale(scale_for: Callable) -> str:
    """`scale_for(g)`: the smallest power of two S such that g·S is a *normal* fp16 number (≥ 2**-14)."""
    name = "Exercise 2 (a loss scale that saves a gradient)"
    result = call_answer(name, scale_for, 1e-7)
    if result is None:
        return not_attempted(name, "fp16's smallest normal is torch.finfo(torch.float16).tiny = 2**-14; "
                                   "find the smallest k with g·2**k ≥ that.")
    cases = {1e-7: 1024.0, 3e-5: 4.0, 1e-3: 1.0, 6.103515625e-05: 1.0}
    got = {1e-7: result} | {g: call_answer(name, scale_for, g) for g in list(cases)[1:]}
    if all(close(got[g], s) for g, s in cases.items()):
        return passed(name)
    if close(got[1e-7], 1.0):
        raise Hint(f"{name}: got 1 for g=1e-7: it survives as a subnormal, but with ≈ 3 of fp16's 10 bits; "
                   "aim for the smallest *normal* number, torch.finfo(torch.float16).tiny.")
    if not _power_of_two(got[1e-7]):
        raise Hint(f"{name}: got {got[1e-7]:g} for g=1e-7: GradScaler uses powers of two (exact to multiply and divide).")
    if close(got[1e-7], 2048.0) or close(got[3e-5], 8.0):
        raise Hint(f"{name}: got {got[1e-7]:g} for 1e-7 and {got[3e-5]:g} for 3e-5: one power of two too many; "
                   "take the smallest that reaches 2**-14.")
    if close(got[1e-3], 0.125) or (got[1e-3] is not None and got[1e-3] < 1):
        raise Hint(f"{name}: got {got[1e-3]:g} for g=1e-3, which is already normal: never scale down, return 1.")
    raise Hint(f"{name}: got {got}; expected {cases}.")


def _power_of_two(value) -> bool:
    try:
        return value > 0 and math.log2(value) == round(math.log2(value))
    except (TypeError, ValueError):
        return False


class _Recorder(nn.Module):
    """A tiny model that records whether its linear layer ran under CPU autocast, and in which dtype."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 3)
        self.seen: list[tuple[bool, torch.dtype]] = []

    def forward(self, x):
        out = self.fc(x)
        self.seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out


def amp_step(step: Callable) -> str:
    """`step(model, opt, X, y)`: one bf16 mixed-precision training step on the CPU; returns the loss."""
    name = "Exercise 3 (a mixed-precision training step)"
    model = _Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    before = model.fc.weight.detach().clone()
    result = call_answer(name, step, model, opt, X, y)
    if result is None and not model.seen:
        return not_attempted(name, "wrap the forward pass and the loss in "
                                   "torch.autocast(device_type='cpu', dtype=torch.bfloat16), then backward and step.")
    if not model.seen:
        raise Hint(f"{name}: the model was never called: compute logits = model(X).")
    enabled, dtype = model.seen[-1]
    if not enabled:
        raise Hint(f"{name}: the forward pass ran without autocast: put it inside "
                   "`with torch.autocast(device_type='cpu', dtype=torch.bfloat16):`.")
    if dtype == torch.float16:
        raise Hint(f"{name}: you chose fp16; on a CPU use bf16 (fp32's range: no GradScaler needed).")
    if dtype != torch.bfloat16:
        raise Hint(f"{name}: the linear layer computed in {dtype}: ask autocast for dtype=torch.bfloat16.")
    if torch.equal(before, model.fc.weight.detach()):
        raise Hint(f"{name}: the weights did not change: call loss.backward() and opt.step().")
    if model.fc.weight.dtype != torch.float32:
        raise Hint(f"{name}: the weights became {model.fc.weight.dtype}: autocast keeps them fp32; don't call .bfloat16().")
    if not isinstance(result, torch.Tensor) or result.dim() != 0:
        raise Hint(f"{name}: return the loss (a 0-dim tensor), got {type(result).__name__}.")
    return passed(name)
