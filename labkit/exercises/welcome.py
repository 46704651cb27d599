"""Checks for notebooks/00_welcome.ipynb: timing correctly, GFLOP/s, arithmetic intensity."""

from __future__ import annotations

import math
import statistics
import threading
import time
from typing import Callable

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


class _ScriptedClock:
    """`time.perf_counter` as the checker's thread sees it: time passes only inside `fn`, by scripted
    durations, so the check is exact on any machine, idle or busy (other threads get the real clock)."""

    def __init__(self, durations_s: list[float]):
        self.durations, self.now, self.calls = list(durations_s), 1000.0, 0
        self.thread, self.real = threading.get_ident(), time.perf_counter

    def __call__(self) -> float:
        return self.now if threading.get_ident() == self.thread else self.real()

    def fn(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def median_timer(timer: Callable) -> str:
    """`timer(fn, repeats)` must call fn once untimed, time `repeats` calls with time.perf_counter and
    return their median in seconds. Checked on two scripted runs: a slow first call and one outlier."""
    name = "Exercise 1 (a correct timer)"
    scripts = {5: [0.060, 0.004, 0.005, 0.003, 0.040, 0.004],
               7: [0.060, 0.007, 0.009, 0.008, 0.030, 0.006, 0.009, 0.008]}
    for repeats, durations in scripts.items():
        clock = _ScriptedClock(durations)
        real, time.perf_counter = time.perf_counter, clock
        try:
            result = call_answer(name, timer, clock.fn, repeats)
        finally:
            time.perf_counter = real
        if result is None:
            if clock.calls == 0:
                return not_attempted(name, "re-read the exercise: what happens before the first timed call, "
                                           "and which statistic does one slow call not move?")
            raise Hint(f"{name}: your function called fn {clock.calls} times but returned nothing: "
                       "did you forget `return`?")
        _check_timer_result(name, float(result), repeats, clock.calls, durations)
    return passed(name)


def _check_timer_result(name: str, result: float, repeats: int, calls: int, durations: list[float]) -> None:
    """Name the mistake behind a wrong timer result (durations[0] is the slow first call)."""
    steady, cold = durations[1:repeats + 1], durations[:repeats]
    if calls == repeats:
        raise Hint(f"{name}: fn was called {calls} times for repeats={repeats}: the first, slow call was timed "
                   "(no warm-up). What should happen before the clock starts?")
    if calls != repeats + 1:
        raise Hint(f"{name}: fn was called {calls} times for repeats={repeats}: the exercise asks for one "
                   f"untimed call and then {repeats} timed ones.")
    if math.isclose(result, statistics.median(steady), rel_tol=1e-6):
        return
    if math.isclose(result, statistics.fmean(durations[:repeats + 1]), rel_tol=1e-6):
        raise Hint(f"{name}: that is the mean of every call, the slow first one (the warm-up) included: "
                   "which calls belong in the timings, and which statistic does one outlier not move?")
    if any(math.isclose(result, statistics.fmean(xs), rel_tol=1e-6) for xs in (steady, cold)):
        raise Hint(f"{name}: that is the mean. One slow call (a preemption, a cache miss) pulls the mean up: "
                   "which statistic does one outlier not move?")
    if math.isclose(result, 1000 * statistics.median(steady), rel_tol=1e-6):
        raise Hint(f"{name}: return seconds per call, not milliseconds.")
    if math.isclose(result, min(steady), rel_tol=1e-6):
        raise Hint(f"{name}: that is the fastest call, a best case that a busy machine rarely repeats: "
                   "the lab reports the typical call.")
    if math.isclose(result, sum(steady), rel_tol=1e-6):
        raise Hint(f"{name}: that is the total of the timed calls: return a value per call.")
    if result < 1e-4:
        raise Hint(f"{name}: your times do not follow fn's duration: read the clock with time.perf_counter() "
                   "(monotonic, made for timing) right before and right after each call.")
    raise Hint(f"{name}: got {1e3 * result:.2f} ms per call, which is not the median of the timed calls: "
               "time each call on its own.")


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
