import statistics
import time

import pytest
import torch
from torch.utils import benchmark as tbench

from labkit import LabkitError, bench, env, models


def test_time_fn_orders_two_known_durations_measured_side_by_side():
    """Ratios and lower bounds only: a busy machine makes every call slower, never faster than asked."""
    rounds = [(bench.time_fn(lambda: time.sleep(0.002), min_run_time=0.05, min_repeats=5),
               bench.time_fn(lambda: time.sleep(0.008), min_run_time=0.05, min_repeats=5)) for _ in range(3)]
    short, long = rounds[0]
    assert short.median_s >= 0.002 and long.median_s >= 0.008  # sleep never returns early
    # 4x the work; load only adds delay, so the least disturbed of three rounds in turns is compared
    assert min(lg.median_s for _, lg in rounds) / min(sh.median_s for sh, _ in rounds) > 1.5
    assert short.repeats >= 5 and short.min_s <= short.median_s <= short.max_s
    q1, _, q3 = statistics.quantiles(short.times_s, n=4, method="inclusive")
    assert short.iqr_s == pytest.approx(q3 - q1) and short.median_s == statistics.median(short.times_s)
    assert short.num_threads == torch.get_num_threads()
    assert "median of" in str(short)


def test_time_fn_agrees_with_torch_benchmark():
    """Same operation on one thread, measured in turns (load hits both alike): the same ballpark.
    (Two intra-op threads on a busy 2-core machine wait for each other: one thread is steadier.)"""
    a = torch.randn(256, 256)
    timer = tbench.Timer("a @ a", globals={"a": a}, num_threads=1)
    ratios = [bench.time_fn(lambda: a @ a, min_run_time=0.05, num_threads=1).median_s
              / timer.blocked_autorange(min_run_time=0.05).median for _ in range(5)]
    assert 0.5 < statistics.median(ratios) < 2.0


def _slow_first_calls(n: int):
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.1 if len(calls) <= n else 0.001)
    return fn


def test_warm_up_keeps_slow_first_calls_out():
    """A timed block holding one of the 0.1 s first calls takes at least 0.1 s / calls per block."""
    warm = bench.time_fn(_slow_first_calls(3), min_run_time=0.05, warmup=3)
    cold = bench.time_fn(_slow_first_calls(3), min_run_time=0.05, warmup=0)
    assert cold.max_s >= 0.1 / cold.calls_per_repeat   # without warm-up slow calls are timed ...
    assert warm.max_s < 0.1 / warm.calls_per_repeat    # ... with it, they are not


def test_bad_timer_arguments():
    with pytest.raises(LabkitError):
        bench.time_fn(lambda: None, min_repeats=0)


def _fixed_timing(median_s: float) -> bench.Timing:
    return bench.Timing(median_s=median_s, iqr_s=0.0, min_s=median_s, max_s=median_s, repeats=5,
                        calls_per_repeat=1, num_threads=1, device="cpu")


def test_matmul_gflops_counts_two_n_cubed(monkeypatch):
    monkeypatch.setattr(bench, "time_fn", lambda *a, **k: _fixed_timing(0.001))
    result = bench.matmul_gflops(128)
    assert result["gflops"] == pytest.approx(2 * 128**3 / 0.001 / 1e9)  # n^3 multiply-adds, 2 FLOPs each
    assert result["intensity"] == pytest.approx(2 * 128**3 / (3 * 128 * 128 * 4))
    with pytest.raises(LabkitError):
        bench.matmul_gflops(0)


def test_cpu_peak_is_threads_times_clock_times_flops_per_cycle(monkeypatch):
    monkeypatch.setenv("LABKIT_CPU_GHZ", "2.0")
    monkeypatch.setattr(bench.env, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    assert bench.cpu_peak_gflops(threads=2) == pytest.approx(2 * 2.0 * 32)  # two 8-wide FMA units
    monkeypatch.setattr(bench.env, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))
    assert bench.cpu_peak_gflops(threads=1) == pytest.approx(2.0 * 64)


def test_sizes_and_gpu_peak():
    assert bench.model_size_mb(models.MLP()) == pytest.approx(4 * models.count_params(models.MLP()) / 1e6, rel=0.05)
    if not torch.cuda.is_available():
        with pytest.raises(LabkitError):
            bench.gpu_peak_gflops()


def test_peak_memory_sees_a_large_allocation():
    mb = bench.peak_memory_mb(lambda: torch.ones(25_000_000).sum())  # 100 MB of float32
    if mb is not None:  # None where the OS cannot say
        assert 80 < mb < 400


def test_throughput_agrees_with_an_independent_count():
    """Items per second from the timer against a plain count of calls in a wall-clock window, in turns."""
    a = torch.randn(192, 192)
    ratios = []
    with env.cpu_threads(1):
        for _ in range(5):
            rate, _ = bench.throughput(lambda: a @ a, 192, min_run_time=0.05, num_threads=1)
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < 0.05:
                a @ a
                calls += 1
            ratios.append(rate / (192 * calls / (time.perf_counter() - start)))
    assert 0.5 < statistics.median(ratios) < 2.0


def test_copy_bandwidth_is_positive():
    assert bench.copy_bandwidth_gbs(8) > 0.1
    with pytest.raises(LabkitError):
        bench.copy_bandwidth_gbs(0)


def test_time_train_step_times_a_real_step():
    model = models.MLP()
    before = [p.detach().clone() for p in model.parameters()]
    timing = bench.time_train_step(model, batch=32, min_run_time=0.05)
    assert timing.median_s > 0 and timing.repeats >= 5
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it really stepped


def test_time_interleaved_alternates_and_keeps_each_variants_median_pass():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = bench.time_interleaved(fns, min_run_time=0.01, rounds=3)
    assert set(timings) == {"a", "b"} and all(t.median_s > 0 for t in timings.values())
    runs = [v for i, v in enumerate(order) if i == 0 or v != order[i - 1]]
    assert runs == ["a", "b", "a", "b"]  # passes a b | b a | a b: the order alternates
    with pytest.raises(LabkitError):
        bench.time_interleaved({}, rounds=1)
    slow = bench.time_interleaved({"sleep": lambda: time.sleep(0.004), "none": lambda: None},
                                  min_run_time=0.02, num_threads={"sleep": 1, "none": 2})
    assert slow["sleep"].median_s > slow["none"].median_s and slow["sleep"].num_threads == 1


def test_matmul_sweep_returns_one_point_per_size_in_order():
    points = bench.matmul_sweep([8, 64], min_run_time=0.01, rounds=2)
    assert [p["n"] for p in points] == [8, 64] and all(p["gflops"] > 0 for p in points)
    with pytest.raises(LabkitError):
        bench.matmul_sweep([])


def test_time_train_steps_times_each_model_and_really_steps():
    small, big = models.MLP(width=8), models.MLP(width=512)
    before = [p.detach().clone() for p in small.parameters()]
    ms = bench.time_train_steps({"small": small, "big": big}, batch=32, min_run_time=0.02, rounds=2)
    assert set(ms) == {"small", "big"} and ms["big"] > ms["small"] > 0   # 64× the weights: clearly slower
    assert any(not torch.equal(a, b) for a, b in zip(before, small.parameters()))
