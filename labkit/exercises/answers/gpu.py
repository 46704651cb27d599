"""Reference answers for notebooks/01_gpu.ipynb (the notebook imports `math`)."""

import math


def intensity(batch, d, bytes_per_element):
    flops = 2 * batch * d * d  # every weight meets every example: a multiply and an add
    numbers_moved = batch * d + d * d + batch * d  # read the input and the weights, write the output
    return flops / (numbers_moved * bytes_per_element)


def copy_time(megabytes, gb_per_s):
    seconds = megabytes * 1e6 / (gb_per_s * 1e9)  # bytes / (bytes per second)
    return seconds * 1e3


def calls_to_break_even(compile_s, eager_ms, compiled_ms):
    saved_ms = eager_ms - compiled_ms  # what one compiled call gives back
    if saved_ms <= 0:
        return math.inf  # not faster: compiling never pays
    return compile_s * 1e3 / saved_ms


KEY = {"linear_intensity": intensity, "copy_ms": copy_time, "break_even": calls_to_break_even}
