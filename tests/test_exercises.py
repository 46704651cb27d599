"""Each check passes a right answer, gives a hint for a typical wrong one, and waits for an unattempted one."""

import statistics
import time

import pytest

from labkit.exercises import Hint, welcome


def good_timer(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timer_without_warm_up(fn, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def test_median_timer():
    assert "passed" in welcome.median_timer(good_timer)
    with pytest.raises(Hint, match="warm"):
        welcome.median_timer(timer_without_warm_up)
    assert "not attempted" in welcome.median_timer(lambda fn, repeats: None)
    with pytest.raises(Hint, match="ZeroDivisionError"):
        welcome.median_timer(lambda fn, repeats: 1 / 0)


def test_matmul_gflops():
    assert "passed" in welcome.matmul_gflops(lambda n, s: 2 * n**3 / s / 1e9)
    with pytest.raises(Hint, match="2 floating-point"):
        welcome.matmul_gflops(lambda n, s: n**3 / s / 1e9)
    with pytest.raises(Hint, match="divide by 1e9"):
        welcome.matmul_gflops(lambda n, s: 2 * n**3 / s)


def test_intensity():
    assert "passed" in welcome.intensity(lambda n, b: 2 * n**3 / (3 * n * n * b))
    with pytest.raises(Hint, match="bytes"):
        welcome.intensity(lambda n, b: 2 * n**3 / (3 * n * n))
    with pytest.raises(Hint, match="three"):
        welcome.intensity(lambda n, b: 2 * n**3 / (n * n * b))


def test_median_timer_catches_the_mean_with_the_first_call():
    def mean_including_first(fn, repeats):
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return sum(times) / len(times)

    with pytest.raises(Hint, match="warm-up"):
        welcome.median_timer(mean_including_first)
