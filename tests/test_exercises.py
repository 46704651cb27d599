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


def _timed(fn, n, clock=None):
    clock = clock or time.perf_counter
    times = []
    for _ in range(n):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


# The mistakes learners make with this exercise, each with the word its hint must contain.
TIMER_MISTAKES = {
    "no warm-up, total / repeats": (timer_without_warm_up, "warm-up"),
    "no warm-up, median": (lambda fn, r: statistics.median(_timed(fn, r)), "warm-up"),
    "mean after warm-up": (lambda fn, r: (fn(), statistics.fmean(_timed(fn, r)))[1], "mean"),
    "milliseconds": (lambda fn, r: (fn(), 1000 * statistics.median(_timed(fn, r)))[1], "milliseconds"),
    "total of the timed calls": (lambda fn, r: (fn(), sum(_timed(fn, r)))[1], "total"),
    "fastest call": (lambda fn, r: (fn(), min(_timed(fn, r)))[1], "fastest"),
    "time.time, not perf_counter": (lambda fn, r: (fn(), statistics.median(_timed(fn, r, time.time)))[1],
                                    "perf_counter"),
    "two warm-up calls": (lambda fn, r: (fn(), fn(), statistics.median(_timed(fn, r)))[2], "one"),
    "forgot return": (lambda fn, r: (fn(), statistics.median(_timed(fn, r)), None)[2], "return"),
}


def test_median_timer_answer_key_passes_and_the_stub_is_not_attempted():
    assert "passed" in welcome.median_timer(good_timer)
    assert "not attempted" in welcome.median_timer(lambda fn, repeats: None)
    with pytest.raises(Hint, match="ZeroDivisionError"):
        welcome.median_timer(lambda fn, repeats: 1 / 0)


@pytest.mark.parametrize("mistake", TIMER_MISTAKES, ids=str)
def test_median_timer_names_each_mistake(mistake):
    answer, word = TIMER_MISTAKES[mistake]
    with pytest.raises(Hint, match=word):
        welcome.median_timer(answer)


def test_median_timer_passes_a_right_answer_on_a_busy_machine():
    """The checker's clock is scripted: a right answer passes however slow the machine is."""
    def slow_right_answer(fn, repeats):
        time.sleep(0.01)  # a busy laptop: real time passes between the calls
        return good_timer(fn, repeats)
    assert "passed" in welcome.median_timer(slow_right_answer)


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
