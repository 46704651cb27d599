"""Checks for notebooks/00_welcome.ipynb: timing correctly, GFLOP/s, arithmetic intensity."""

from __future__ import annotations

import time
from typing import Callable

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def median_timer(timer: Callable) -> str:
    """`timer(fn, repeats)` must warm up, time each call with a monotonic clock and return the median (s)."""
    name = "Exercise 1 (a correct timer)"
    calls = {"n": 0}

    def slow_first_call() -> None:
        calls["n"] += 1
        time.sleep(0.060 if calls["n"] == 1 else 0.004)  # the first call pays a one-off cost

    result = call_answer(name, timer, slow_first_call, 5)
    if result is None:
        return not_attempted(name, "call fn once untimed, then time each call with time.perf_counter() "
                                   "and return statistics.median of the times.")
    if calls["n"] < 6:
        raise Hint(f"{name}: fn was called {calls['n']} time(s); warm up once and then time `repeats` calls.")
    if result > 0.010:
        raise Hint(f"{name}: got {1e3 * result:.1f} ms, but a steady call takes about 4 ms. "
                   "Is the first (warm-up) call in your timings, or is it the mean instead of the median?")
    if result < 0.003:
        raise Hint(f"{name}: got {1e3 * result:.2f} ms, less than the call can take: return seconds per call.")
    return passed(name)


def matmul_gflops(gflops: Callable) -> str:
    """`gflops(n, seconds)`: GFLOP/s of one n×n by n×n product that took `seconds`."""
    name = "Exercise 2 (GFLOP/s of a matrix product)"
    result = call_answer(name, gflops, 1000, 0.02)
    if result is None:
        return not_attempted(name, "an n×n matrix product does n³ multiply-adds; each is 2 FLOPs.")
    if close(result, 100.0):
        return passed(name)
    if close(result, 50.0):
        raise Hint(f"{name}: got {result:g}: a multiply-add counts as 2 floating-point operations.")
    if close(result, 100e9) or close(result, 1e11):
        raise Hint(f"{name}: got {result:g}: that is FLOP/s, divide by 1e9 for GFLOP/s.")
    raise Hint(f"{name}: got {result:g} for n=1000 in 0.02 s; count the operations as 2·n³.")


def intensity(arithmetic_intensity: Callable) -> str:
    """`arithmetic_intensity(n, bytes_per_element)`: FLOPs per byte moved for an n×n matmul
    (read A and B, write C once each)."""
    name = "Exercise 3 (arithmetic intensity)"
    result = call_answer(name, arithmetic_intensity, 512, 4)
    if result is None:
        return not_attempted(name, "FLOPs are 2·n³; bytes are three n×n matrices times the bytes per element.")
    expected = 2 * 512**3 / (3 * 512 * 512 * 4)
    if close(result, expected):
        return passed(name)
    if close(result, expected * 4):
        raise Hint(f"{name}: got {result:g}: divide by bytes, not elements (fp32 is 4 bytes).")
    if close(result, expected * 3) or close(result, expected * 1.5):
        raise Hint(f"{name}: got {result:g}: count all three matrices, A and B read and C written.")
    raise Hint(f"{name}: got {result:g}; expected FLOPs / bytes moved for n=512 in fp32.")
