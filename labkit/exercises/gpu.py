"""Checks for notebooks/01_gpu.ipynb: arithmetic intensity of a layer, copy time, when compiling pays."""

from __future__ import annotations

import math
from typing import Callable

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def linear_intensity(intensity: Callable) -> str:
    """`intensity(batch, d, bytes_per_element)`: FLOPs per byte of a d→d linear layer on a batch
    (x: batch×d read, W: d×d read, y: batch×d written; 2·batch·d² FLOPs)."""
    name = "Exercise 1 (intensity of a linear layer)"
    result = call_answer(name, intensity, 1, 1024, 4)
    if result is None:
        return not_attempted(name, "FLOPs are 2·batch·d²; bytes are (batch·d + d·d + batch·d) × bytes_per_element.")
    expected = {b: 2 * b * 1024**2 / ((2 * b * 1024 + 1024**2) * 4) for b in (1, 256)}
    big = call_answer(name, intensity, 256, 1024, 4)
    if close(result, expected[1]) and close(big, expected[256]):
        return passed(name)
    if close(result, expected[1] * 4):
        raise Hint(f"{name}: got {result:g} for batch 1: divide by bytes, not elements (fp32 is 4 bytes).")
    if close(big, 2 * 256 * 1024**2 / (1024**2 * 4)):
        raise Hint(f"{name}: for batch 256 you count only the weights: the input and output move too.")
    if close(big, 2 * 256 * 1024**2 / (2 * 256 * 1024 * 4)):
        raise Hint(f"{name}: for batch 256 you count only the activations: the d×d weight matrix is read too.")
    raise Hint(f"{name}: got {result:g} (batch 1) and {big:g} (batch 256); expected 2·b·d² FLOPs over "
               "(2·b·d + d²)·bytes_per_element bytes.")


def copy_ms(copy_time: Callable) -> str:
    """`copy_time(megabytes, gb_per_s)`: milliseconds to move `megabytes` (10^6 bytes) over a link of `gb_per_s` (10^9 B/s)."""
    name = "Exercise 2 (how long a copy takes)"
    result = call_answer(name, copy_time, 100, 25)
    if result is None:
        return not_attempted(name, "time = bytes / (bytes per second); then convert seconds to milliseconds.")
    if close(result, 4.0):
        return passed(name)
    if close(result, 0.004):
        raise Hint(f"{name}: got {result:g}: that is seconds, the question asks for milliseconds.")
    if close(result, 4000.0) or close(result, 4e-6):
        raise Hint(f"{name}: got {result:g}: check the units: MB is 10^6 bytes and GB/s is 10^9 bytes per second.")
    raise Hint(f"{name}: got {result:g} for 100 MB at 25 GB/s; divide the bytes by the bytes per second.")


def break_even(calls: Callable) -> str:
    """`calls(compile_s, eager_ms, compiled_ms)`: calls after which compiling has paid off; math.inf if never."""
    name = "Exercise 3 (when does compiling pay?)"
    result = call_answer(name, calls, 20.0, 10.0, 6.0)
    if result is None:
        return not_attempted(name, "each call saves (eager_ms − compiled_ms); how many savings add up to compile_s?")
    if close(result, 5000.0):
        never = call_answer(name, calls, 20.0, 10.0, 12.0)
        if never is not None and math.isinf(never) and never > 0:
            return passed(name)
        raise Hint(f"{name}: when the compiled version is slower (12 ms vs 10 ms eager), it never pays: "
                   f"return math.inf (got {never!r}).")
    if close(result, 5.0):
        raise Hint(f"{name}: got {result:g}: compile_s is in seconds but the call times are in milliseconds.")
    if close(result, 2000.0) or close(result, 2.0):
        raise Hint(f"{name}: got {result:g}: a call saves the *difference* eager − compiled, not the eager time.")
    raise Hint(f"{name}: got {result:g} for 20 s of compiling, 10 ms eager, 6 ms compiled.")
