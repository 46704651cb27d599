"""Checks for notebooks/08_quantization.ipynb: the notebook shows the unsigned, per-tensor and per-channel
mappings; its exercises ask for what it does not show: a signed grid, and one scale per group of weights."""

from __future__ import annotations

import math
from typing import Callable

import torch

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import quantization as answers

__all__ = ["scale_zero_point", "quantize_dequantize", "group_scales", "hint", "solution"]


def _signed(bits: int) -> tuple[int, int]:
    return -2 ** (bits - 1), 2 ** (bits - 1) - 1


def _affine(x_min: float, x_max: float, bits: int, *, steps: int | None = None, q_min: int | None = None,
            contain_zero: bool = True, rounding: Callable = round) -> tuple[float, float]:
    """(scale, zero point) of an asymmetric grid, with knobs for the mistakes the checker recognises."""
    lo, hi = (min(x_min, 0.0), max(x_max, 0.0)) if contain_zero else (x_min, x_max)
    scale = (hi - lo) / (steps if steps is not None else 2 ** bits - 1)
    q_min = _signed(bits)[0] if q_min is None else q_min
    return scale, rounding(q_min - lo / scale)


# (x_min, x_max, bits): the unrounded zero points are -43.25 (floor is wrong) and -2.75 (truncation is wrong),
# one range lies above 0 and one below (the range must be widened to contain 0), and the bits vary.
RANGES = [(-1.13, 2.27, 8), (-1.05, 1.95, 4), (-2.35, 0.65, 4), (0.5, 2.0, 8), (-3.0, -1.0, 6), (-0.3, 0.7, 8)]


@exercise("Exercise 1 (scale and zero point, signed)", hints=[
    "re-read the section on scale and zero point: the mapping shown there lands on unsigned integers. "
    "What changes when the integers are signed, which levels exist now, and where must the smallest real "
    "value land? Also keep in mind which real number must stay exactly representable.",
    "the step size does not care whether the integers are signed: it is the width of the real range, "
    "widened to contain zero, divided by the number of steps between the lowest and highest level. "
    "Count steps, not levels.",
    "the zero point is the integer that the real zero lands on. Start from the lowest level, the one the "
    "lowest real value maps to, and move up by that value's distance from zero measured in steps. Round "
    "to the nearest integer.",
])
def scale_zero_point(fn: Callable) -> None:
    """`fn(x_min, x_max, bits)` returns (scale, zero_point) mapping [x_min, x_max], widened to contain 0,
    onto the signed integers [−2^(bits−1), 2^(bits−1) − 1]; the zero point is an integer."""
    for x_min, x_max, bits in RANGES:
        result = ask(fn, x_min, x_max, bits)
        try:
            scale, zero_point = (float(v) for v in result)
        except (TypeError, ValueError):
            raise Hint(f"got {result!r}: return two numbers, (scale, zero_point).") from None
        want_scale, want_zp = _affine(x_min, x_max, bits)
        if math.isclose(scale, want_scale, rel_tol=1e-6) and zero_point == want_zp:
            continue
        case = f"for [{x_min}, {x_max}] at {bits} bits you returned scale {scale:.6g}, zero point {zero_point:g}"
        mistakes = [
            (_affine(x_min, x_max, bits, steps=2 ** bits), "the scale divides by the number of levels: "
             f"{bits} bits give {2 ** bits} levels but one step fewer between them."),
            (_affine(x_min, x_max, bits, steps=2 ** bits - 2), "the scale is one step short: count the "
             "steps between the lowest and the highest level of the signed range."),
            (_affine(x_min, x_max, bits, q_min=0), "that zero point is for the unsigned range, which starts "
             "at 0: the signed range starts below zero."),
            (_affine(x_min, x_max, bits, rounding=lambda v: v), "the zero point must be rounded to an "
             "integer, so that the real 0 maps exactly onto a level."),
            (_affine(x_min, x_max, bits, rounding=math.floor), "the zero point was rounded down (floor): "
             "round to the nearest integer instead."),
            (_affine(x_min, x_max, bits, rounding=math.trunc), "the zero point was truncated toward zero "
             "(int() does that): round to the nearest integer instead."),
            (_affine(x_min, x_max, bits, contain_zero=False), "this range does not contain 0. Widen it "
             "to contain 0 first, or the real 0 is not exactly representable."),
            ((_affine(x_min, x_max, bits)[0], -_affine(x_min, x_max, bits)[1]), "the zero point has the wrong "
             "sign: the smallest real value must land on the lowest level."),
            ((max(abs(x_min), abs(x_max)) / (2 ** (bits - 1) - 1), 0.0), "that is the symmetric scheme (zero "
             "point 0): the exercise asks for the asymmetric one, which uses the whole range from min to max."),
            (_affine(x_min, x_max, 8), "the result is right for 8 bits only: use the `bits` argument."),
        ]
        for (s, z), message in mistakes:
            if math.isclose(scale, s, rel_tol=1e-6) and math.isclose(zero_point, z, rel_tol=1e-9, abs_tol=1e-9):
                raise Hint(f"{case}: {message}")
        if not math.isclose(scale, want_scale, rel_tol=1e-6):
            raise Hint(f"{case}: that scale does not spread this range over the signed {bits}-bit levels.")
        raise Hint(f"{case}: the scale is right, the zero point is not: which level must x_min land on?")


def _show(t: torch.Tensor) -> list:
    """A tensor as a short list for a message (float32's 1.100000023841858 as 1.1)."""
    return torch.round(t.detach().double() * 1e4).div(1e4).tolist()


def _qdq(x: torch.Tensor, scale: float, zp: int, q_min: float, q_max: float,
         to_int: Callable = torch.round, back: bool = True, with_zp: bool = True) -> torch.Tensor:
    """Quantize-dequantize with knobs for the mistakes the checker recognises."""
    q = torch.clamp(to_int(x / scale) + zp, q_min, q_max)
    return ((q - zp) if with_zp else q) * scale if back else q


# (x, scale, zero point, bits). The first case has values past both ends of the 3-bit range [-4, 3] and
# fractions where round, floor and truncation differ; the others vary every argument (no constant passes).
QDQ_CASES = [
    (torch.tensor([-3.0, -1.1, -0.2, 0.0, 0.9, 1.3, 5.0]), 0.5, 1, 3),
    (torch.tensor([[-0.7, 0.31, 0.05], [1.6, -2.9, 0.62]]), 0.02, -10, 8),
    (torch.tensor([-2.0, -0.33, 0.1, 0.72, 2.0]), 0.25, -2, 4),
]


@exercise("Exercise 2 (quantize and dequantize, signed)", hints=[
    "re-read the section on scale and zero point, then think it through for the signed levels of "
    "exercise 1. Which integer is nearest to a value, what happens to values past either end of the "
    "levels, and what real number does a level stand for?",
    "three steps in order: divide by the scale, round to the nearest integer and shift by the zero point; "
    "keep the result between the lowest and the highest signed level, at both ends; then map it back.",
    "to map back, undo the shift by the zero point and then undo the division by the scale. Return floats "
    "of the same shape as x, not the integers.",
])
def quantize_dequantize(fn: Callable) -> None:
    """`fn(x, scale, zero_point, bits)` rounds x to the signed grid, clamps to [−2^(bits−1), 2^(bits−1) − 1]
    and maps back to floats."""
    for x, scale, zp, bits in QDQ_CASES:
        result = ask(fn, x.clone(), scale, zp, bits)
        try:
            result = torch.as_tensor(result).float()
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return a tensor of floats.") from None
        if result.shape != x.shape:
            raise Hint(f"got shape {tuple(result.shape)} for an input of shape {tuple(x.shape)}: "
                       "return one value per input value.")
        lo, hi = _signed(bits)
        if torch.allclose(result, _qdq(x, scale, zp, lo, hi), atol=1e-6):
            continue
        case = f"for x={_show(x)}, scale {scale}, zero point {zp}, {bits} bits you returned {_show(result)}"
        inf = math.inf
        mistakes = [
            (_qdq(x, scale, zp, lo, inf), "the values past the bottom were clamped but those past the top "
             "were not: clamp at both ends."),
            (_qdq(x, scale, zp, -inf, hi), "the values past the top were clamped but those past the bottom "
             "were not: clamp at both ends."),
            (_qdq(x, scale, zp, -inf, inf), "nothing was clamped: a value past either end of the levels must "
             "land on the end level."),
            (_qdq(x, scale, zp, 0, 2 ** bits - 1), "that clamps to the unsigned range: the signed levels "
             "run from below zero to above it."),
            (_qdq(x, scale, zp, -hi, hi), "that clamps to the symmetric range: the signed range has one more "
             "level at the bottom than at the top."),
            (_qdq(x, scale, zp, lo, hi, torch.floor), "that rounds down (floor): round to the nearest level."),
            (_qdq(x, scale, zp, lo, hi, torch.trunc), "that truncates toward zero (a cast to int does that): "
             "round to the nearest level."),
            (_qdq(x, scale, zp, lo, hi, back=False), "those are the integers: map them back to the floats "
             "they stand for."),
            (_qdq(x, scale, zp, lo, hi, with_zp=False), "mapping back forgot the zero point: undo the shift "
             "before scaling."),
            (x, "that is x itself: round it to the grid."),
        ]
        for value, message in mistakes:
            if torch.allclose(result, value.float(), atol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: those are not the grid's values for x. Check each step on the first value by hand.")


def _weight(rows: int, cols: int, seed: int) -> torch.Tensor:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    w[0, 1] = -3.5  # a row whose largest magnitude is negative
    return w


# (weight, bits, group size): two shapes, two bit widths; each row's groups have different maxima.
GROUP_CASES = [(_weight(4, 8, 0), 8, 4), (_weight(3, 12, 1), 4, 3), (_weight(2, 6, 2), 8, 2)]


def _group_scales(w: torch.Tensor, group: int, top: float, reduce: Callable) -> torch.Tensor:
    return reduce(w.reshape(w.shape[0], w.shape[1] // group, group)) / top


@exercise("Exercise 3 (scales per group)", hints=[
    "re-read the part on per tensor or per channel: a scale per row fits each row. Here each row is cut "
    "into groups of consecutive weights, and each group gets its own symmetric scale. Which weight of a "
    "group decides its scale, and which level must it land on?",
    "give the tensor a shape in which each group is its own axis, rows first, then groups, then the "
    "weights inside a group, and reduce over the last axis only.",
    "in each group take the largest magnitude, so that negative weights count too, and divide by the top "
    "level of the symmetric signed grid, which is one less than half the number of levels.",
])
def group_scales(fn: Callable) -> None:
    """`fn(weight, bits, group_size)`: one symmetric scale per group of `group_size` consecutive weights in a
    row, shape (rows, columns // group_size): max |w| of the group / (2^(bits−1) − 1)."""
    for w, bits, g in GROUP_CASES:
        result = ask(fn, w.clone(), bits, g)
        try:
            result = torch.as_tensor(result).float()
        except (TypeError, ValueError, RuntimeError):
            raise Hint(f"got a {type(result).__name__}: return a tensor of scales.") from None
        top = 2 ** (bits - 1) - 1
        expected = _group_scales(w, g, top, lambda t: t.abs().amax(dim=2))
        if result.shape == expected.shape and torch.allclose(result, expected, rtol=1e-5):
            continue
        case = f"for a {tuple(w.shape)} weight, {bits} bits, groups of {g}"
        if result.numel() == 1:
            raise Hint(f"{case} you returned one scale for the whole tensor (per tensor): return one per group.")
        if result.numel() == w.shape[0]:
            raise Hint(f"{case} you returned one scale per row (per channel): return one per group of "
                       f"{g} weights in each row.")
        if result.numel() == expected.numel() and result.shape != expected.shape:
            if torch.allclose(result.reshape(expected.shape), expected, rtol=1e-5):
                raise Hint(f"{case} the values are right but the shape is {tuple(result.shape)}: return "
                           f"{tuple(expected.shape)}, one row of scales per row of the weight.")
        mistakes = [
            (_group_scales(w, g, top, lambda t: t.amax(dim=2)), "that takes each group's largest weight, "
             "not its largest magnitude: a negative weight can be the largest in absolute value."),
            (_group_scales(w, g, top + 1, lambda t: t.abs().amax(dim=2)), "that divides by half the number "
             "of levels: the symmetric grid's top level is one less."),
            (_group_scales(w, g, 2 ** bits - 1, lambda t: t.abs().amax(dim=2)), "that divides by the "
             "unsigned top level: a symmetric grid spends half its levels on negative weights."),
            (_group_scales(w, g, 127, lambda t: t.abs().amax(dim=2)), "the result is right for 8 bits only: "
             "use the `bits` argument."),
            (w.reshape(w.shape[0], g, w.shape[1] // g).abs().amax(dim=1) / top, "those groups are strided "
             "(every k-th weight): a group is consecutive weights of a row."),
            (w.T.reshape(w.shape[1], -1, g).abs().amax(dim=2).T.reshape(-1) / top
             if w.shape[0] % g == 0 else None, "those groups run down the columns: a group is consecutive "
             "weights along a row."),
        ]
        for value, message in mistakes:
            if value is not None and value.numel() == result.numel() and torch.allclose(
                    result.flatten(), value.flatten(), rtol=1e-5):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case} you returned {_show(result)}: those are not the groups' scales.")


hint, solution = helpers(__name__, answers)
