"""The exercise catalogue of notebooks 00 and 08: per exercise, the answer key passes, the shipped stub is
"not attempted", an answer that forgets `return` is told so, and each mistake learners really make (written
as the code they write) gets a Hint that names it. Plus: hints come in words, and the solution only on request."""

import math
import statistics
import time

import pytest
import torch

from exercise_catalogue import CODE_OR_FORMULA, CatalogueTests
from labkit import exercises
from labkit.exercises import Hint, NotAttempted
from labkit.exercises import quantization as q_check
from labkit.exercises import welcome as w_check
from labkit.exercises.answers import quantization as q_key
from labkit.exercises.answers import welcome as w_key


# ---------------------------------------------------------------- 00_welcome, exercise 1: a correct timer

def timer_stub(fn, repeats):
    # YOUR CODE
    ...


def timer_forgot_return(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    statistics.median(times)


def timer_no_warm_up(fn, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def timer_no_warm_up_median(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timer_mean(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def timer_loop_total_over_repeats(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def timer_mean_with_warm_up_timed(fn, repeats):
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


def timer_median_with_warm_up_timed(fn, repeats):
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timer_milliseconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def timer_fastest(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def timer_total(fn, repeats):
    fn()
    total = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        total += time.perf_counter() - start
    return total


def timer_wall_clock(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.time()
        fn()
        times.append(time.time() - start)
    return statistics.median(times)


def timer_two_warm_ups(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timer_hard_coded(fn, repeats):
    fn()
    for _ in range(repeats):
        fn()
    return 0.004


# ---------------------------------------------------------------- 00_welcome, exercise 2: GFLOP/s

def gflops_stub(m, k, n, seconds):
    # YOUR CODE
    ...


def gflops_forgot_return(m, k, n, seconds):
    flops = 2 * m * k * n
    flops / seconds / 1e9


def gflops_one_flop_per_multiply_add(m, k, n, seconds):
    return m * k * n / seconds / 1e9


def gflops_flop_per_second(m, k, n, seconds):
    return 2 * m * k * n / seconds


def gflops_mflop(m, k, n, seconds):
    return 2 * m * k * n / seconds / 1e6


def gflops_square_formula(m, k, n, seconds):
    return 2 * n**3 / seconds / 1e9


def gflops_times_seconds(m, k, n, seconds):
    return 2 * m * k * n * seconds / 1e9


def gflops_outputs_only(m, k, n, seconds):
    return 2 * m * n / seconds / 1e9


def gflops_hard_coded(m, k, n, seconds):
    return 100.0


# ---------------------------------------------------------------- 00_welcome, exercise 3: arithmetic intensity

def intensity_stub(m, k, n, bytes_per_element):
    # YOUR CODE
    ...


def intensity_forgot_return(m, k, n, bytes_per_element):
    flops = 2 * m * k * n
    moved = (m * k + k * n + m * n) * bytes_per_element
    print(flops / moved)


def intensity_elements_not_bytes(m, k, n, bytes_per_element):
    return 2 * m * k * n / (m * k + k * n + m * n)


def intensity_inputs_only(m, k, n, bytes_per_element):
    return 2 * m * k * n / ((m * k + k * n) * bytes_per_element)


def intensity_square_formula(m, k, n, bytes_per_element):
    return 2 * n**3 / (3 * n * n * bytes_per_element)


def intensity_integer_division(m, k, n, bytes_per_element):
    return 2 * m * k * n // ((m * k + k * n + m * n) * bytes_per_element)


def intensity_one_flop_per_multiply_add(m, k, n, bytes_per_element):
    return m * k * n / ((m * k + k * n + m * n) * bytes_per_element)


def intensity_bits(m, k, n, bytes_per_element):
    return 2 * m * k * n / ((m * k + k * n + m * n) * bytes_per_element * 8)


# ---------------------------------------------------------------- 08_quantization, exercise 1: scale and zero point

def szp_stub(x_min, x_max, bits):
    # YOUR CODE
    ...


def szp_forgot_return(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    zero_point = round(-(2 ** (bits - 1)) - lo / scale)  # noqa: F841


def szp_levels_not_steps(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / 2**bits
    return scale, round(-(2 ** (bits - 1)) - lo / scale)


def szp_unsigned(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, round(-lo / scale)


def szp_not_rounded(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, -(2 ** (bits - 1)) - lo / scale


def szp_floor(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, math.floor(-(2 ** (bits - 1)) - lo / scale)


def szp_int_truncates(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, int(-(2 ** (bits - 1)) - lo / scale)


def szp_range_without_zero(x_min, x_max, bits):
    scale = (x_max - x_min) / (2**bits - 1)
    return scale, round(-(2 ** (bits - 1)) - x_min / scale)


def szp_wrong_sign(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, round(2 ** (bits - 1) + lo / scale)


def szp_symmetric(x_min, x_max, bits):
    return max(abs(x_min), abs(x_max)) / (2 ** (bits - 1) - 1), 0


def szp_eight_bits_only(x_min, x_max, bits):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / 255
    return scale, round(-128 - lo / scale)


# ---------------------------------------------------------------- 08_quantization, exercise 2: quantize and dequantize

def qdq_stub(x, scale, zero_point, bits):
    # YOUR CODE
    ...


def qdq_forgot_return(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x / scale) + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    x = (q - zero_point) * scale


def qdq_no_clamp(x, scale, zero_point, bits):
    q = torch.round(x / scale) + zero_point
    return (q - zero_point) * scale


def qdq_no_lower_clamp(x, scale, zero_point, bits):
    q = torch.round(x / scale) + zero_point
    q = torch.clamp(q, max=2 ** (bits - 1) - 1)
    return (q - zero_point) * scale


def qdq_no_upper_clamp(x, scale, zero_point, bits):
    q = (torch.round(x / scale) + zero_point).clamp(min=-(2 ** (bits - 1)))
    return (q - zero_point) * scale


def qdq_unsigned_clamp(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, 2**bits - 1)
    return (q - zero_point) * scale


def qdq_symmetric_clamp(x, scale, zero_point, bits):
    top = 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(x / scale) + zero_point, -top, top)
    return (q - zero_point) * scale


def qdq_floor(x, scale, zero_point, bits):
    q = torch.clamp(torch.floor(x / scale) + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (q - zero_point) * scale


def qdq_int_cast(x, scale, zero_point, bits):
    q = torch.clamp((x / scale).int() + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (q - zero_point) * scale


def qdq_returns_integers(x, scale, zero_point, bits):
    return torch.clamp(torch.round(x / scale) + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def qdq_forgets_zero_point_on_the_way_back(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x / scale) + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return q * scale


# ---------------------------------------------------------------- 08_quantization, exercise 3: scales per group

def groups_stub(weight, bits, group_size):
    # YOUR CODE
    ...


def groups_forgot_return(weight, bits, group_size):
    rows, cols = weight.shape
    weight.reshape(rows, cols // group_size, group_size).abs().amax(dim=2) / (2 ** (bits - 1) - 1)


def groups_max_not_abs(weight, bits, group_size):
    rows, cols = weight.shape
    return weight.reshape(rows, cols // group_size, group_size).amax(dim=2) / (2 ** (bits - 1) - 1)


def groups_half_the_levels(weight, bits, group_size):
    rows, cols = weight.shape
    return weight.reshape(rows, cols // group_size, group_size).abs().amax(dim=2) / 2 ** (bits - 1)


def groups_unsigned_top(weight, bits, group_size):
    rows, cols = weight.shape
    return weight.reshape(rows, cols // group_size, group_size).abs().amax(dim=2) / (2**bits - 1)


def groups_per_row(weight, bits, group_size):
    return weight.abs().amax(dim=1) / (2 ** (bits - 1) - 1)


def groups_per_tensor(weight, bits, group_size):
    return weight.abs().max() / (2 ** (bits - 1) - 1)


def groups_strided(weight, bits, group_size):
    rows, cols = weight.shape
    return weight.reshape(rows, group_size, cols // group_size).abs().amax(dim=1) / (2 ** (bits - 1) - 1)


def groups_flat(weight, bits, group_size):
    return weight.reshape(-1, group_size).abs().amax(dim=1) / (2 ** (bits - 1) - 1)


def groups_eight_bits_only(weight, bits, group_size):
    rows, cols = weight.shape
    return weight.reshape(rows, cols // group_size, group_size).abs().amax(dim=2) / 127


# ---------------------------------------------------------------- the catalogue

# check, answer key, stub, forgot-return, {mistake: (student code, a word its hint must contain)}
CATALOGUE = {
    "welcome.median_timer": (w_check.median_timer, w_key.median_timer, timer_stub, timer_forgot_return, {
        "no warm-up, total / repeats": (timer_no_warm_up, "no warm-up"),
        "no warm-up, median": (timer_no_warm_up_median, "no warm-up"),
        "mean instead of median": (timer_mean, "the mean"),
        "loop total / repeats (a mean)": (timer_loop_total_over_repeats, "the mean"),
        "mean with the warm-up timed": (timer_mean_with_warm_up_timed, "warm-up included"),
        "median with the warm-up timed": (timer_median_with_warm_up_timed, "warm-up included"),
        "milliseconds": (timer_milliseconds, "milliseconds"),
        "fastest call": (timer_fastest, "fastest"),
        "total": (timer_total, "total"),
        "time.time": (timer_wall_clock, "perf_counter"),
        "two warm-up calls": (timer_two_warm_ups, "one"),
        "hard-coded": (timer_hard_coded, "not the median"),
    }),
    "welcome.matmul_gflops": (w_check.matmul_gflops, w_key.gflops, gflops_stub, gflops_forgot_return, {
        "one FLOP per multiply-add": (gflops_one_flop_per_multiply_add, "two floating-point"),
        "FLOP/s": (gflops_flop_per_second, "that is FLOP/s"),
        "MFLOP/s": (gflops_mflop, "MFLOP"),
        "square formula": (gflops_square_formula, "square"),
        "times seconds": (gflops_times_seconds, "per second"),
        "outputs only": (gflops_outputs_only, "sums k terms"),
        "hard-coded": (gflops_hard_coded, "every argument"),
    }),
    "welcome.intensity": (w_check.intensity, w_key.arithmetic_intensity, intensity_stub, intensity_forgot_return, {
        "elements, not bytes": (intensity_elements_not_bytes, "divide by bytes"),
        "inputs only": (intensity_inputs_only, "output is written"),
        "square formula": (intensity_square_formula, "square"),
        "integer division": (intensity_integer_division, "integer division"),
        "one FLOP per multiply-add": (intensity_one_flop_per_multiply_add, "two floating-point"),
        "bits": (intensity_bits, "bits"),
    }),
    "quantization.scale_zero_point": (q_check.scale_zero_point, q_key.my_scale_zero_point, szp_stub,
                                      szp_forgot_return, {
        "levels, not steps (off by one)": (szp_levels_not_steps, "number of levels"),
        "unsigned range": (szp_unsigned, "unsigned"),
        "zero point not rounded": (szp_not_rounded, "rounded to an integer"),
        "floor for round": (szp_floor, "floor"),
        "int() truncates": (szp_int_truncates, "truncated"),
        "range not widened to 0": (szp_range_without_zero, "contain 0"),
        "wrong sign": (szp_wrong_sign, "wrong sign"),
        "symmetric instead": (szp_symmetric, "symmetric"),
        "8 bits only": (szp_eight_bits_only, "8 bits only"),
    }),
    "quantization.quantize_dequantize": (q_check.quantize_dequantize, q_key.my_quantize_dequantize, qdq_stub,
                                         qdq_forgot_return, {
        "no clamp": (qdq_no_clamp, "nothing was clamped"),
        "no lower clamp": (qdq_no_lower_clamp, "past the bottom were not"),
        "no upper clamp": (qdq_no_upper_clamp, "past the top were not"),
        "unsigned clamp": (qdq_unsigned_clamp, "unsigned"),
        "symmetric clamp": (qdq_symmetric_clamp, "symmetric"),
        "floor for round": (qdq_floor, "floor"),
        "int cast truncates": (qdq_int_cast, "truncates"),
        "returns the integers": (qdq_returns_integers, "integers"),
        "zero point forgotten on the way back": (qdq_forgets_zero_point_on_the_way_back, "zero point"),
    }),
    "quantization.group_scales": (q_check.group_scales, q_key.my_group_scales, groups_stub, groups_forgot_return, {
        "max, not max |w|": (groups_max_not_abs, "magnitude"),
        "half the levels (off by one)": (groups_half_the_levels, "one less"),
        "unsigned top level": (groups_unsigned_top, "unsigned"),
        "per row": (groups_per_row, "per channel"),
        "per tensor": (groups_per_tensor, "per tensor"),
        "strided groups (wrong axis)": (groups_strided, "strided"),
        "flat shape": (groups_flat, "shape"),
        "8 bits only": (groups_eight_bits_only, "8 bits only"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


def test_a_learner_error_is_reported_in_one_line():
    def crashes(fn, repeats):
        return 1 / 0
    with pytest.raises(Hint, match="your code raised ZeroDivisionError"):
        w_check.median_timer(crashes)


def test_the_timer_check_passes_a_right_answer_on_a_busy_machine():
    """The checker's clock is scripted: a right answer passes however slow the machine is."""
    def slow_right_answer(fn, repeats):
        time.sleep(0.01)  # a busy laptop: real time passes between the calls
        return w_key.median_timer(fn, repeats)
    assert "passed" in w_check.median_timer(slow_right_answer)


def test_the_timer_check_sees_perf_counter_imported_by_name():
    namespace = {}
    exec("from time import perf_counter\nimport statistics\n"
         "def timer(fn, repeats):\n    fn()\n    times = []\n    for _ in range(repeats):\n"
         "        t = perf_counter()\n        fn()\n        times.append(perf_counter() - t)\n"
         "    return statistics.median(times)\n", namespace)
    assert "passed" in w_check.median_timer(namespace["timer"])
    assert namespace["perf_counter"] is time.perf_counter  # put back


def test_nbgraders_stub_and_a_lambda_stub_are_not_attempted():
    def nbgrader_stub(m, k, n, seconds):
        # YOUR CODE HERE
        raise NotImplementedError()
    assert "not attempted" in w_check.matmul_gflops(nbgrader_stub)
    assert "not attempted" in w_check.matmul_gflops(lambda m, k, n, s: None)


def test_under_nbgrader_an_untouched_exercise_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted, match="not attempted"):
        q_check.group_scales(groups_stub)


# ---------------------------------------------------------------- hints in words, the solution on request


def test_the_heuristic_catches_a_formula():
    for leaked in ("scale = (x_max − x_min) / (2^bits − 1)", "take weight.abs().amax(dim=1)",
                   "an n×n product does 2·n³ FLOPs", "use statistics.median"):
        assert CODE_OR_FORMULA.search(leaked), leaked


def test_hints_come_one_level_at_a_time_for_the_exercise_checked_last(capsys):
    q_check.scale_zero_point(szp_stub)  # level 1, the nudge
    assert "Hint 2 of 3" in q_check.hint()
    assert "Hint 3 of 3" in q_check.hint() and "last hint" in capsys.readouterr().out
    assert "Hint 3 of 3" in q_check.hint()  # stays at the last
    assert "Hint 2 of 3 for Exercise 3" in q_check.hint("group_scales", 2)
    assert "Hint 1 of 3 for Exercise 1 (a correct timer)" in w_check.hint("median_timer", 1)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("welcome", "intensity"))
    w_check.intensity(intensity_stub)  # untouched: no attempt
    refused = w_check.solution("intensity")
    assert "try it first" in refused and "bytes_moved" not in refused
    with pytest.raises(Hint):
        w_check.intensity(intensity_inputs_only)
    shown = w_check.solution("intensity")
    assert "def arithmetic_intensity(m, k, n, bytes_per_element):" in shown and "bytes_moved" in shown


def test_while_grading_a_marked_cell_runs_nothing_and_others_run_as_written():
    marked = [f"{exercises.SKIP_MARK}: the exercises do not need this cell\n", "train_for_an_hour()\n"]
    assert exercises.skip_marked_cells(marked) == ["print('skipped while nbgrader grades: the exercises do not "
                                                   "need this cell')\n"]
    assert exercises.skip_marked_cells(["x = 1\n"]) == ["x = 1\n"]
