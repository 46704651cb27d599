"""Reference answers for notebooks/00_welcome.ipynb (the notebook imports `time` and `statistics`)."""

import statistics
import time


def median_timer(fn, repeats):
    fn()  # warm-up: the first call pays one-off costs, so it is not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)  # one slow call does not move the median


def gflops(m, k, n, seconds):
    flops = 2 * m * k * n  # m·n outputs, each k multiply-adds of 2 FLOPs
    return flops / seconds / 1e9


def arithmetic_intensity(m, k, n, bytes_per_element):
    flops = 2 * m * k * n
    bytes_moved = (m * k + k * n + m * n) * bytes_per_element  # read A and B, write C
    return flops / bytes_moved


KEY = {"median_timer": median_timer, "matmul_gflops": gflops, "intensity": arithmetic_intensity}
