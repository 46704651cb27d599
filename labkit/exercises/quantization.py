"""Checks for notebooks/08_quantization.ipynb: scale and zero point, quantize-dequantize, per-channel scales."""

from __future__ import annotations

from typing import Callable

import torch

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def scale_zero_point(fn: Callable) -> str:
    """`fn(x_min, x_max, bits)` returns (scale, zero_point) mapping [x_min, x_max] onto [0, 2^bits − 1]."""
    name = "Exercise 1 (scale and zero point)"
    result = call_answer(name, fn, -1.0, 3.0, 8)
    if result is None:
        return not_attempted(name, "scale = (x_max − x_min) / (2^bits − 1); zero_point = round(−x_min / scale).")
    scale, zero_point = (float(v) for v in result)
    if close(scale, 4 / 255) and close(zero_point, 64.0):
        return passed(name)
    if close(scale, 4 / 256):
        raise Hint(f"{name}: scale {scale:.5f}: 8 bits give 256 levels but only 255 steps between them.")
    if close(scale, 4 / 255) and close(zero_point, 63.75):
        raise Hint(f"{name}: zero_point {zero_point}: round it, so that the real 0 is exactly representable.")
    if close(scale, 4 / 255) and close(zero_point, -64.0):
        raise Hint(f"{name}: zero_point {zero_point}: x_min must map to 0, so zero_point = −x_min / scale.")
    raise Hint(f"{name}: got scale {scale:.5f}, zero_point {zero_point}; for [-1, 3] at 8 bits expect about 0.0157 and 64.")


def quantize_dequantize(fn: Callable) -> str:
    """`fn(x, scale, zero_point, bits)` rounds x to the grid, clamps to [0, 2^bits − 1] and maps back to floats."""
    name = "Exercise 2 (quantize and dequantize)"
    x = torch.tensor([-1.2, -0.26, 0.0, 0.74, 2.9])
    result = call_answer(name, fn, x, 0.5, 2, 3)
    if result is None:
        return not_attempted(name, "q = clamp(round(x / scale) + zero_point, 0, 2^bits − 1); return (q − zero_point) · scale.")
    result = torch.as_tensor(result).float()
    expected = torch.tensor([-1.0, -0.5, 0.0, 0.5, 2.5])
    if result.shape != x.shape:
        raise Hint(f"{name}: got shape {tuple(result.shape)}: return one value per input value.")
    if torch.allclose(result, expected):
        return passed(name)
    if torch.allclose(result[:4], x[:4]):
        raise Hint(f"{name}: got {result.tolist()}: the result must lie on the grid — round before mapping back.")
    if torch.allclose(result, torch.tensor([-1.0, -0.5, 0.0, 0.5, 3.0])):
        raise Hint(f"{name}: got {result.tolist()}: clamp q to [0, 2^bits − 1] — 3 bits stop at q = 7.")
    if torch.allclose(result, torch.tensor([0.0, 1.0, 2.0, 3.0, 7.0])):
        raise Hint(f"{name}: got {result.tolist()}: those are the integers q; dequantize: (q − zero_point) · scale.")
    raise Hint(f"{name}: got {result.tolist()}; with scale 0.5, zero point 2 and 3 bits the grid is −1.0, −0.5, … 2.5.")


def per_channel_scales(fn: Callable) -> str:
    """`fn(weight, bits)` returns one symmetric scale per output row: max |w_row| / (2^(bits−1) − 1)."""
    name = "Exercise 3 (per-channel scales)"
    weight = torch.tensor([[0.1, -0.2, 0.05], [4.0, -1.0, 2.0], [-0.7, 0.3, 0.0]])
    result = call_answer(name, fn, weight, 8)
    if result is None:
        return not_attempted(name, "take weight.abs().amax(dim=1) and divide by 2^(bits−1) − 1 = 127.")
    result = torch.as_tensor(result).float().flatten()
    expected = torch.tensor([0.2, 4.0, 0.7]) / 127
    if result.shape == expected.shape and torch.allclose(result, expected):
        return passed(name)
    if result.numel() == 1:
        raise Hint(f"{name}: one scale for the whole tensor is per-tensor; return one per row (dim 1 reduced).")
    if result.shape == expected.shape and torch.allclose(result, torch.tensor([0.1, 4.0, 0.3]) / 127):
        raise Hint(f"{name}: use the absolute value: the row's largest |w|, not its largest w.")
    if result.shape == expected.shape and torch.allclose(result, expected * 127 / 128):
        raise Hint(f"{name}: symmetric int8 uses [-127, 127]: divide by 127, not 128.")
    if result.shape == expected.shape and torch.allclose(result, torch.tensor([4.0, 1.0, 2.0]) / 127):
        raise Hint(f"{name}: reduce over each row (dim=1), not each column.")
    raise Hint(f"{name}: got {result.tolist()}; expect max |w| of each row divided by 127.")
