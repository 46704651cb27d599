"""labkit.techniques.gpu on the CPU (the same functions take the CUDA paths on a GPU), and its exercise checks."""

import json
import math

import pytest
import torch

from labkit import LabkitError, bench, models, paths
from labkit.exercises import Hint
from labkit.exercises import gpu as check
from labkit.techniques import gpu
from labkit.ui import gpu as gpu_ui


def test_matmul_sweep_reports_fraction_of_peak():
    points = gpu.matmul_sweep([16, 128], "cpu", min_run_time=0.01)
    assert [p["n"] for p in points] == [16, 128]
    peak = gpu.device_peak_gflops("cpu")
    for p in points:
        assert p["gflops"] > 0 and p["fraction_of_peak"] == pytest.approx(p["gflops"] / peak)
    assert points[1]["intensity"] > points[0]["intensity"]
    with pytest.raises(LabkitError, match="at least 1"):
        gpu.matmul_sweep([0], "cpu")
    with pytest.raises(LabkitError, match="non-empty"):
        gpu.matmul_sweep([], "cpu")


def test_matmul_sweep_is_benchs_sweep_plus_the_fraction_of_peak(monkeypatch):
    calls = []
    points = [{"n": 8, "gflops": 2.0}, {"n": 4, "gflops": 1.0}]
    monkeypatch.setattr(bench, "matmul_sweep", lambda sizes, **kw: calls.append((sizes, kw)) or points)
    monkeypatch.setattr(gpu, "device_peak_gflops", lambda dev: 8.0)
    out = gpu.matmul_sweep((8, 4), "cpu", min_run_time=0.3, rounds=3)
    assert [p["fraction_of_peak"] for p in out] == [0.25, 0.125]
    # the 0.3 s are shared by the 3 passes
    assert calls == [([8, 4], {"device": "cpu", "min_run_time": pytest.approx(0.1), "rounds": 3})]


def test_batch_sweep_counts_images_per_second():
    rows = gpu.batch_sweep([1, 8], "cpu", model_name="mlp", min_run_time=0.01)
    assert [r["batch_size"] for r in rows] == [1, 8]
    for r in rows:
        assert r["images_per_s"] == pytest.approx(r["batch_size"] / r["ms_per_step"] * 1e3)
    with pytest.raises(LabkitError):
        gpu.batch_sweep([-1], "cpu")


def test_measure_batch_uses_the_threads_asked_for_and_restores_them(monkeypatch):
    before = torch.get_num_threads()
    seen = []
    real = gpu.batch_sweep
    monkeypatch.setattr(gpu, "batch_sweep", lambda *a, **kw: seen.append(torch.get_num_threads()) or real(*a, **kw))
    row = gpu.measure_batch("mlp", 4, 1, "cpu", min_run_time=0.01)
    assert seen == [1] and torch.get_num_threads() == before
    assert row["batch_size"] == 4 and row["images_per_s"] == pytest.approx(4 / row["ms_per_step"] * 1e3)
    for bad in (0, gpu.MAX_BATCH + 1):
        with pytest.raises(LabkitError, match="between 1 and 4096"):
            gpu.measure_batch("mlp", bad, 1)
    with pytest.raises(LabkitError, match="at least 1"):
        gpu.measure_batch("mlp", 4, 0)
    assert torch.get_num_threads() == before


def test_batch_explorer_adds_a_point_per_measure_and_refuses_a_bad_batch(capsys):
    explorer = gpu_ui.BatchExplorer("cpu", min_run_time=0.01)
    row = explorer.measure(model="mlp", batch_size=4, threads=1)
    assert row["batch_size"] == 4 and explorer.curves == {"mlp, 1 thread(s)": [row]} and explorer.image.value
    assert "batch=4" in explorer.summary
    assert explorer.measure(batch_size=0) is None and "between 1 and 4096" in explorer.message.value
    assert "Traceback" not in capsys.readouterr().out


def test_steps_with_sync_train_and_return_the_same_mean_loss_either_way():
    batches = [(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])) for _ in range(3)]
    losses = []
    for item_every_step in (True, False):
        torch.manual_seed(0)
        model = models.MLP()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        before = torch.nn.utils.parameters_to_vector(model.parameters()).clone()
        losses.append(gpu.steps_with_sync(model, opt, batches, item_every_step))
        assert not torch.equal(before, torch.nn.utils.parameters_to_vector(model.parameters()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_copy_rows_on_cpu_shows_no_copy_and_a_real_one():
    rows = gpu.copy_rows(1, "cpu", min_run_time=0.01)
    assert "no copy" in rows[0]["copy"] and rows[0]["gb_per_s"] is None
    assert rows[1]["gb_per_s"] > 0
    with pytest.raises(LabkitError, match="at least 1"):
        gpu.copy_rows(0)


def test_item_every_step_and_at_the_end_give_the_same_loss():
    torch.manual_seed(0)
    batches = [(torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))) for _ in range(5)]
    results = []
    for every in (True, False):
        torch.manual_seed(1)
        model = models.MLP()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        results.append(gpu.steps_with_sync(model, opt, batches, every))
    assert results[0] == pytest.approx(results[1], rel=1e-5)
    numbers = gpu.sync_cost("cpu", steps=5, rounds=1)
    assert numbers["item_every_step_ms"] > 0 and numbers["item_at_end_ms"] > 0
    with pytest.raises(LabkitError):
        gpu.sync_cost("cpu", steps=0)


def test_time_with_threads_restores_the_thread_count():
    before = torch.get_num_threads()
    seen = []
    timing = gpu.time_with_threads(lambda: seen.append(torch.get_num_threads()), 1, min_run_time=0.01)
    assert timing.num_threads == 1 and 1 in seen  # the timed calls really ran on one thread
    assert torch.get_num_threads() == before
    with pytest.raises(LabkitError, match="at least 1"):
        gpu.time_with_threads(lambda: None, 0)
    assert torch.get_num_threads() == before


def test_channels_last_really_changes_the_layout():
    model, x = gpu.to_channels_last(models.SmallCNN(), torch.randn(2, 1, 28, 28))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_forward_variants_without_compile():
    cfg = gpu.GPUConfig(forward_batch=8, compile_model=False, min_run_time=0.01)
    card, extra = gpu.forward_variants(cfg, "cpu")
    assert card.baseline == "eager" and "channels_last" in card.variants
    assert extra["compile_speedup"] is None


def test_break_even_calls():
    assert gpu.break_even_calls(10.0, 5.0, 4.0) == pytest.approx(10_000)
    assert math.isinf(gpu.break_even_calls(10.0, 5.0, 6.0))


def test_reference_text_without_and_with_a_file(tmp_path):
    assert "No reference results" in gpu.reference_text("gpu", tmp_path)
    assert "labkit bench gpu amp --record" in gpu.reference_text("gpu", tmp_path)
    payload = {"name": "gpu", "mode": "full", "headline": {"matmul_gflops": 50000.0, "device": "cuda"},
               "provenance": {"date": "2026-01-01", "command": "labkit bench gpu --record",
                              "machine": {"gpu": "NVIDIA H100", "torch": "2.13.0", "commit": "abc"}}}
    (tmp_path / "gpu_nvidia-h100.json").write_text(json.dumps(payload))
    text = gpu.reference_text("gpu", tmp_path)
    assert "REFERENCE" in text and "NVIDIA H100" in text and "2026-01-01" in text and "5e+04" in text
    (tmp_path / "gpu_broken.json").write_text("{")
    with pytest.raises(LabkitError, match="not a readable reference"):
        gpu.reference_reports("gpu", tmp_path)


def test_headline_smoke_keys():
    report = gpu.headline("smoke")
    assert set(report.headline) == {"matmul_gflops", "peak_gflops", "fraction_of_peak", "device", "compile_speedup"}
    assert report.headline["matmul_gflops"] > 0
    assert report.headline["fraction_of_peak"] == pytest.approx(
        report.headline["matmul_gflops"] / report.headline["peak_gflops"])
    json.loads(report.to_json())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_copies_pinned_and_pageable():
    rows = gpu.copy_rows(8, "cuda", min_run_time=0.05)
    assert [r["copy"].split(" ")[0] for r in rows] == ["pageable", "pinned", "pinned"]


# ---------------------------------------------------------------- exercise checks


def test_check_copy_ms():
    assert "passed" in check.copy_ms(lambda mb, gbs: mb * 1e6 / (gbs * 1e9) * 1e3)
    with pytest.raises(Hint, match="seconds"):
        check.copy_ms(lambda mb, gbs: mb * 1e6 / (gbs * 1e9))
    assert "not attempted" in check.copy_ms(lambda mb, gbs: None)


def test_check_break_even():
    assert "passed" in check.break_even(gpu.break_even_calls)
    with pytest.raises(Hint, match="math.inf"):
        check.break_even(lambda c, e, k: 1e3 * c / (e - k))
    with pytest.raises(Hint, match="milliseconds"):
        check.break_even(lambda c, e, k: c / (e - k))
    assert "not attempted" in check.break_even(lambda c, e, k: None)


def test_thread_comparison_times_one_and_all_threads_and_restores_the_count():
    before = torch.get_num_threads()
    seen = []
    numbers = gpu.thread_comparison(lambda: seen.append(torch.get_num_threads()), min_run_time=0.01, rounds=1)
    assert numbers["one"].num_threads == 1 and numbers["all"].num_threads == before == numbers["threads"]
    assert 1 in seen and before in seen
    assert numbers["speedup"] == pytest.approx(numbers["one"].median_s / numbers["all"].median_s)
    assert torch.get_num_threads() == before


def test_shared_files_come_from_labkit_paths():
    assert gpu.REFERENCE_DIR == paths.REFERENCE_DIR


def test_compile_model_agrees_with_eager():
    model = models.MLP(width=8).eval()
    x = torch.randn(4, 1, 28, 28)
    try:
        compiled, seconds, diff = gpu.compile_model(model, x, "cpu")
    except Exception as error:  # no compiler on this machine: forward_variants reports it instead
        pytest.skip(f"torch.compile unavailable: {error}")
    assert seconds > 0 and diff < 1e-3
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-4)
