"""Reference answers for notebooks/08_quantization.ipynb (the notebook imports `torch` and `math`)."""

import torch


def my_scale_zero_point(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)  # the range must contain 0, so that 0 is exact
    q_min, q_max = -2 ** (bits - 1), 2 ** (bits - 1) - 1  # signed: [-128, 127] at 8 bits
    scale = (hi - lo) / (q_max - q_min)  # 2^bits levels, 2^bits - 1 steps between them
    zero_point = round(q_min - lo / scale)  # lo lands on q_min; an integer, so 0 maps exactly
    return scale, zero_point


def my_quantize_dequantize(x, scale, zero_point, bits):
    q_min, q_max = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(x / scale) + zero_point, q_min, q_max)  # the nearest level, inside the range
    return (q - zero_point) * scale  # back to the float that level stands for


def my_group_scales(weight, bits, group_size):
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // group_size, group_size)  # consecutive weights of a row
    return groups.abs().amax(dim=2) / (2 ** (bits - 1) - 1)  # symmetric: the largest |w| maps to the top level


KEY = {"scale_zero_point": my_scale_zero_point, "quantize_dequantize": my_quantize_dequantize,
       "group_scales": my_group_scales}
