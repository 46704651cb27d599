import time

import pytest
import torch
from torch.utils import benchmark as tbench

from labkit import LabkitError, bench, models


def test_time_fn_reports_median_and_spread_of_a_known_duration():
    timing = bench.time_fn(lambda: time.sleep(0.002), min_run_time=0.1, min_repeats=5)
    assert 0.0019 < timing.median_s < 0.004
    assert timing.repeats >= 5 and timing.iqr_s >= 0 and timing.min_s <= timing.median_s <= timing.max_s
    assert timing.num_threads == torch.get_num_threads()
    assert "median of" in str(timing)


def test_time_fn_agrees_with_torch_benchmark():
    a = torch.randn(256, 256)
    ours = bench.time_fn(lambda: a @ a, min_run_time=0.2).median_s
    ref = tbench.Timer("a @ a", globals={"a": a}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=0.2).median
    assert abs(ours - ref) / ref < 0.5  # same operation, same threads: same ballpark even on a busy machine


def test_warm_up_keeps_a_slow_first_call_out():
    calls = []
    timing = bench.time_fn(lambda: (calls.append(1), time.sleep(0.05 if len(calls) == 1 else 0.001)),
                           min_run_time=0.05, warmup=1)
    assert timing.max_s < 0.02


def test_bad_timer_arguments():
    with pytest.raises(LabkitError):
        bench.time_fn(lambda: None, min_repeats=0)


def test_matmul_gflops_counts_two_n_cubed():
    result = bench.matmul_gflops(128, min_run_time=0.05)
    assert result["gflops"] == pytest.approx(2 * 128**3 / result["median_s"] / 1e9)
    assert result["intensity"] == pytest.approx(2 * 128**3 / (3 * 128 * 128 * 4))
    with pytest.raises(LabkitError):
        bench.matmul_gflops(0)


def test_peaks_and_sizes():
    assert bench.cpu_peak_gflops() > 0
    assert bench.model_size_mb(models.MLP()) == pytest.approx(4 * models.count_params(models.MLP()) / 1e6, rel=0.05)
    if not torch.cuda.is_available():
        with pytest.raises(LabkitError):
            bench.gpu_peak_gflops()


def test_peak_memory_sees_a_large_allocation():
    mb = bench.peak_memory_mb(lambda: torch.ones(25_000_000).sum())  # 100 MB of float32
    if mb is not None:  # None where the OS cannot say
        assert 80 < mb < 400


def test_throughput_is_items_over_median():
    rate, timing = bench.throughput(lambda: time.sleep(0.002), 10, min_run_time=0.05)
    assert rate == pytest.approx(10 / timing.median_s)


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
