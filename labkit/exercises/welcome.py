"""Checks for notebooks/00_welcome.ipynb: timing correctly, GFLOP/s and arithmetic intensity of a matmul."""

from __future__ import annotations

import math
import statistics
import threading
import time
from typing import Callable

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import welcome as answers

__all__ = ["median_timer", "matmul_gflops", "intensity", "hint", "solution"]


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


def _run_with_clock(timer: Callable, clock: _ScriptedClock, repeats: int):
    """Call `timer(clock.fn, repeats)` with time.perf_counter scripted, also where the learner's code
    imported it by name (`from time import perf_counter`)."""
    real = time.perf_counter
    names = getattr(timer, "__globals__", {})
    aliases = [name for name, value in list(names.items()) if value is real]
    time.perf_counter = clock
    for name in aliases:
        names[name] = clock
    try:
        return ask(timer, clock.fn, repeats)
    finally:
        time.perf_counter = real
        for name in aliases:
            names[name] = real


# Scripted durations (s): a slow first call, then one outlier among the timed calls. Mean, median, the
# warm-up timed or not, all give different numbers; the medians differ between scripts (no constant passes).
TIMER_SCRIPTS = {5: [0.060, 0.004, 0.005, 0.003, 0.040, 0.004],
                 7: [0.090, 0.007, 0.009, 0.008, 0.030, 0.006, 0.009, 0.010]}


@exercise("Exercise 1 (a correct timer)", hints=[
    "re-read the section on measuring time, the naive way and the right way. What does the very first "
    "call pay for that later calls do not, and which summary of many readings is not pulled by one slow one?",
    "two things happen in order: one call whose time you throw away, then the timed calls, each timed on "
    "its own with the clock made for timing in the time module. Collect those times in a list.",
    "the summary to return is the middle value of the timed calls, in seconds, as the statistics module "
    "computes it. Not the average: one slow call moves the average but not the middle value.",
])
def median_timer(timer: Callable) -> None:
    """`timer(fn, repeats)` calls fn once untimed, times `repeats` calls with time.perf_counter and returns
    their median in seconds. Observed on scripted clocks: how often fn ran, and which statistic came back."""
    for repeats, durations in TIMER_SCRIPTS.items():
        clock = _ScriptedClock(durations)
        result = _run_with_clock(timer, clock, repeats)
        _check_timer_result(float(result), repeats, clock.calls, durations)


def _check_timer_result(result: float, repeats: int, calls: int, durations: list[float]) -> None:
    """Name the mistake behind a wrong timer result (durations[0] is the slow first call)."""
    steady, cold = durations[1:repeats + 1], durations[:repeats]
    if calls == repeats:
        raise Hint(f"fn was called {calls} times for repeats={repeats}, so the slow first call was timed: "
                   "there was no warm-up. What should happen before the clock starts?")
    if calls != repeats + 1:
        raise Hint(f"fn was called {calls} times for repeats={repeats}: the exercise asks for one "
                   f"untimed warm-up call and then {repeats} timed ones.")
    if math.isclose(result, statistics.median(steady), rel_tol=1e-6):
        return
    candidates = [
        (statistics.fmean(durations[:repeats + 1]), "that is the mean of every call, the slow warm-up "
         "included: the warm-up is not a timing, and which statistic does one outlier not move?"),
        (statistics.median(durations[:repeats + 1]), "that is the median of every call, the warm-up "
         "included: the warm-up call is there to be thrown away, not timed."),
        (statistics.fmean(steady), "that is the mean. One slow call (a preemption, a cache miss) pulls the "
         "mean up: which statistic does one outlier not move?"),
        (statistics.fmean(cold), "that is the mean. One slow call (a preemption, a cache miss) pulls the "
         "mean up: which statistic does one outlier not move?"),
        (1000 * statistics.median(steady), "return seconds per call, not milliseconds."),
        (min(steady), "that is the fastest call, a best case that a busy machine rarely repeats: the lab "
         "reports the typical call."),
        (sum(steady), "that is the total of the timed calls: return a value per call."),
    ]
    for value, message in candidates:
        if math.isclose(result, value, rel_tol=1e-6):
            raise Hint(message)
    if result < min(durations) / 10:
        raise Hint("your times do not follow fn's duration: read the clock with time.perf_counter() "
                   "(monotonic, made for timing) right before and right after each call.")
    raise Hint(f"got {1e3 * result:.2f} ms per call, which is not the median of the timed calls: "
               "time each call on its own.")


# (m, k, n, seconds): square and not, so a formula for one shape, or a constant, fails somewhere.
MATMULS = [(1000, 1000, 1000, 0.02), (64, 300, 50, 0.001), (7, 3, 5, 2e-6), (512, 256, 1024, 0.5)]


def _gflops(m: int, k: int, n: int, seconds: float) -> float:
    return 2 * m * k * n / seconds / 1e9


@exercise("Exercise 2 (GFLOP/s of a matrix product)", hints=[
    "count the work first: how many numbers does the product produce, how much work goes into each of "
    "them, and how many floating-point operations is one multiply-add? Then think about what giga means.",
    "each output is a sum over the shared dimension, one multiply and one add per term. Multiply the "
    "count of outputs by the length of that sum, and by the operations per term.",
    "divide the operation count by the seconds for a rate, and that rate by a billion for GFLOP per second.",
])
def matmul_gflops(gflops: Callable) -> None:
    """`gflops(m, k, n, seconds)`: GFLOP/s of one (m×k)·(k×n) product that took `seconds`."""
    for m, k, n, s in MATMULS:
        result = float(ask(gflops, m, k, n, s))
        expected = _gflops(m, k, n, s)
        if math.isclose(result, expected, rel_tol=1e-6):
            continue
        case = f"for m={m}, k={k}, n={n} in {s:g} s you returned {result:g}"
        mistakes = [
            (expected / 2, "a multiply-add is two floating-point operations, not one."),
            (expected * 1e9, "that is FLOP/s: the exercise asks for GFLOP/s, a billion times fewer."),
            (expected * 1e3, "that is MFLOP/s: a GFLOP is a thousand MFLOP."),
            (2 * m * k * n * s / 1e9, "that is the work times the seconds: a rate is work per second."),
            (_gflops(n, n, n, s), "that formula is for square matrices: each of m, k and n counts on its own."),
            (_gflops(m, m, m, s), "that formula is for square matrices: each of m, k and n counts on its own."),
            (2 * m * n / s / 1e9, "that counts one multiply-add per output, but each output sums k terms."),
        ]
        reject_known(result, mistakes, case, "the GFLOP/s")


def reject_known(result: float, mistakes: list[tuple[float, str]], case: str, quantity: str) -> None:
    """Raise the Hint of the catalogued mistake whose value `result` equals, or a general one."""
    for value, message in mistakes:
        if math.isclose(result, value, rel_tol=1e-6):
            raise Hint(f"{case}: {message}")
    raise Hint(f"{case}, which is not {quantity} of that product. Does your answer use every argument?")


def _intensity(m: int, k: int, n: int, b: int) -> float:
    return 2 * m * k * n / ((m * k + k * n + m * n) * b)


# (m, k, n, bytes per element): fp32, fp16, int8 shapes; the last gives a fraction (no integer answer).
SHAPES = [(512, 512, 512, 4), (64, 300, 50, 2), (1000, 10, 3, 1), (7, 5, 3, 4)]


@exercise("Exercise 3 (arithmetic intensity)", hints=[
    "intensity is work per byte moved. You already counted the work in exercise 2. For the bytes: which "
    "matrices are read, which is written, and how big is each one?",
    "there are three matrices, and each has its own shape: the two inputs are read once and the output "
    "is written once. Count their elements, then turn elements into bytes.",
    "the bytes moved are all the elements of the three matrices times the bytes one element takes; "
    "divide the FLOPs by that. Use true division: the answer is rarely a whole number.",
])
def intensity(arithmetic_intensity: Callable) -> None:
    """`arithmetic_intensity(m, k, n, bytes_per_element)`: FLOPs per byte moved by an (m×k)·(k×n) product
    (read A and B, write C once each)."""
    for m, k, n, b in SHAPES:
        result = float(ask(arithmetic_intensity, m, k, n, b))
        expected = _intensity(m, k, n, b)
        if math.isclose(result, expected, rel_tol=1e-6):
            continue
        case = f"for m={m}, k={k}, n={n} and {b}-byte elements you returned {result:g}"
        flops = 2 * m * k * n
        mistakes = [
            (expected * b, "that is FLOPs per element: divide by bytes, and an element takes several bytes."),
            (flops / ((m * k + k * n) * b), "the output is written to memory too: count all three matrices."),
            (flops / (m * n * b), "the inputs are read from memory too: count all three matrices."),
            (expected / 2, "a multiply-add is two floating-point operations, not one."),
            (_intensity(n, n, n, b), "that formula is for square matrices: each matrix has its own shape."),
            (_intensity(m, m, m, b), "that formula is for square matrices: each matrix has its own shape."),
            (float(flops // ((m * k + k * n + m * n) * b)), "the answer was rounded down to a whole number: "
             "that is integer division, use true division."),
            (expected / 8, "that counts bits, not bytes."),
        ]
        reject_known(result, mistakes, case, "FLOPs per byte")


hint, solution = helpers(__name__, answers)
