import math

import pytest
import torch

from labkit import LabkitError, models, train
from labkit.techniques import quantization as quant

TINY = quant.QuantConfig(width=64, depth=1, epochs=2, calib_batches=2, qat_bits=2, qat_epochs=1, qat_seeds=(1, 2),
                         min_run_time=0.05, time_static=False, sweep_widths=(32, 64))


@pytest.fixture
def trained(tiny_splits):
    torch.manual_seed(0)
    model = models.MLP(width=64)
    train.fit(model, tiny_splits, epochs=2, lr=0.05, batch_size=64, device="cpu", progress=False)
    return model.eval()


def test_affine_mapping_by_hand():
    x = torch.tensor([-1.0, 0.0, 3.0])
    scale, zero_point = quant.scale_zero_point(x, 8)
    assert float(scale) == pytest.approx(4 / 255) and float(zero_point) == 64
    q = quant.quantize(x, scale, zero_point, 8)
    assert q.tolist() == [0, 64, 255]
    assert torch.allclose(quant.dequantize(q, scale, zero_point), x, atol=float(scale) / 2)


def test_error_shrinks_with_bits_and_per_channel_helps():
    torch.manual_seed(0)
    w = torch.randn(32, 64) * torch.logspace(-2, 0, 32)[:, None]   # rows of very different size
    sqnr = {b: quant.quant_error(w, b)["sqnr_db"] for b in (2, 4, 8)}
    assert sqnr[8] > sqnr[4] > sqnr[2]
    assert quant.quant_error(w, 4, per_channel=True)["sqnr_db"] > sqnr[4] + 3
    sym = quant.fake_quantize(w, 8, symmetric=True)
    assert (sym - w).abs().max() <= w.abs().max() / 127 / 2 + 1e-6


@pytest.mark.parametrize("bits", [0, -1, 2.5, 17])
def test_bad_bits_say_what_to_do(bits):
    with pytest.raises(LabkitError, match="bits"):
        quant.fake_quantize(torch.randn(4), bits)


def _is_zero_or_power_of_two_times(q, s):
    """True where q is 0 or ±s·2^k for a whole number k ≤ 0."""
    k = torch.log2(q.abs() / s)
    return (q == 0) | ((k == k.round()) & (k <= 0))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_log_quantize_gives_zero_or_signed_powers_of_two_of_the_scale(bits):
    torch.manual_seed(bits)
    x = torch.randn(16, 64) * 0.05
    q = quant.log_quantize(x, bits)
    assert _is_zero_or_power_of_two_times(q, x.abs().max()).all()
    assert len(q.unique()) <= 2 ** bits
    assert ((q == 0) | (torch.sign(q) == torch.sign(x))).all(), "the sign is kept"
    rows = quant.log_quantize(x, bits, per_channel=True)
    scales = x.abs().amax(dim=1, keepdim=True)
    assert _is_zero_or_power_of_two_times(rows, scales).all()
    assert all(len(r.unique()) <= 2 ** bits for r in rows)
    assert quant.levels_used(rows, per_channel=True) <= 2 ** bits
    assert torch.equal(rows.abs().amax(dim=1), x.abs().amax(dim=1)), "each row's largest |x| is its own scale"


def test_log_quantize_keeps_powers_of_two_in_range_and_rounds_to_the_nearest_level():
    x = torch.tensor([1.0, -0.5, 0.25, -0.125, 2 ** -6, 0.0])
    assert torch.equal(quant.log_quantize(x, 4), x)                    # 4 bits: exponents 0 … -6
    assert torch.equal(quant.log_quantize(-x, 4), -x)
    assert quant.log_quantize(x, 3).tolist() == [1.0, -0.5, 0.25, 0.0, 0.0, 0.0]  # 3 bits: exponents 0 … -2
    # between 2^-2 and 2^-1 the boundary is their midpoint, 0.375: nearest, not rounding of the exponent
    # and between 0 and the smallest level, 2^-2, it is 0.125
    near = quant.log_quantize(torch.tensor([1.0, 0.37, 0.38, 0.12, 0.13]), 3)
    assert near.tolist() == [1.0, 0.25, 0.5, 0.0, 0.25]
    assert len(quant.log_quantize(torch.linspace(-1, 1, 1001), 3).unique()) == 2 ** 3 - 1  # 0 and ±3 magnitudes


@pytest.mark.parametrize("bits", [1, 0, 9, 2.5])
def test_log_quantize_refuses_bits_without_room_for_an_exponent(bits):
    with pytest.raises(LabkitError, match="bits") as err:
        quant.log_quantize(torch.randn(4), bits)
    assert "\n" not in str(err.value)


def test_log_vs_linear_compares_the_same_model_at_the_same_bits(trained, tiny_splits):
    out = quant.log_vs_linear(trained, tiny_splits, bits=(2, 4, 8))
    table, verdicts = out["table"], out["verdicts"]
    assert len(table) == 3 * len(quant.WEIGHT_GRIDS) and len(verdicts) == 3 * 2
    assert (table["levels"] <= 2 ** table["bits"]).all() and (table["levels"] >= 2).all()
    assert table["sqnr_db"].map(math.isfinite).all() and table["accuracy"].between(0, 1).all()
    row = table.set_index(["bits", "grid"])
    assert row.loc[(8, "linear, per channel"), "sqnr_db"] > row.loc[(4, "linear, per channel"), "sqnr_db"] + 15
    # the log grid's relative step is fixed (a factor 2): more exponents only reach smaller weights
    assert abs(row.loc[(8, "log, per channel"), "sqnr_db"] - row.loc[(4, "log, per channel"), "sqnr_db"]) < 3
    assert row.loc[(8, "linear, per channel"), "accuracy"] == pytest.approx(out["fp32_accuracy"], abs=0.02)
    assert set(verdicts["lower_error"]) <= {"log", "linear"}
    assert set(verdicts["higher_accuracy"]) <= {"log", "linear", "within noise"}
    first = verdicts.iloc[0]
    diff = out["correct"][(2, "log, per tensor")].mean() - out["correct"][(2, "linear, per tensor")].mean()
    assert first["acc_log_minus_linear_pt"] == pytest.approx(100 * float(diff))
    assert first["acc_low_pt"] <= first["acc_log_minus_linear_pt"] <= first["acc_high_pt"]
    # the rounded copy really computes with rounded weights, and the original is untouched
    rounded = quant.round_linears(trained, "log, per tensor", 3)
    assert quant.levels_used(rounded.net[1].weight, per_channel=False) <= 7
    assert quant.levels_used(trained.net[1].weight, per_channel=False) > 1000


def test_torchao_int8_is_really_int8_and_close(trained, tiny_splits):
    q = quant.int8_dynamic(trained)
    quant.check_int8(q)
    x = tiny_splits.X_test[:16]
    with torch.no_grad():
        torch.testing.assert_close(q(x), trained(x), atol=0.1, rtol=0.05)
    assert quant.accuracy(q, tiny_splits) == pytest.approx(quant.accuracy(trained, tiny_splits), abs=0.05)
    with pytest.raises(LabkitError, match="did not take effect"):
        quant.check_int8(trained)


def test_static_int8_uses_the_calibrated_ranges(trained, tiny_splits):
    amax = quant.calibrate(trained, tiny_splits.X_train, batches=2)
    assert set(amax) == {"net.1", "net.3"} and all(v > 0 for v in amax.values())
    assert amax["net.1"] == pytest.approx(float(tiny_splits.X_train[:128].abs().max()))
    static = quant.int8_static(trained, amax)
    quant.check_int8(static)
    assert quant.accuracy(static, tiny_splits) > 0.5


def test_x86_pt2e_int8_is_int8_close_and_sized_honestly(trained, tiny_splits):
    q = quant.int8_static_x86(trained, tiny_splits.X_train, batches=2)
    used = {n.target for n in q.graph.nodes if n.op == "get_attr"}
    int8_weights = [t for name, t in q.state_dict().items() if name in used and t.dtype == torch.int8]
    assert len(int8_weights) == 2  # both Linear weights are stored as int8 in the graph
    x = tiny_splits.X_test[:32]
    with torch.no_grad():
        torch.testing.assert_close(q(x), trained(x), atol=0.15, rtol=0.05)
        assert q(x[:1]).shape == (1, 10)  # the batch dimension stayed dynamic
    from labkit import bench
    assert bench.model_size_mb(trained) / quant.graph_size_mb(q) > 2.5  # not counting the unused fp32 copies
    assert quant.accuracy(q, tiny_splits) == pytest.approx(quant.accuracy(trained, tiny_splits), abs=0.05)


def test_compiled_int8_dynamic_matches_eager_without_saturation(trained):
    # without reduce_range on a CPU lacking VNNI, oneDNN's 16-bit intermediate sums saturate (errors ≈ 0.1)
    q = quant.int8_dynamic(trained)
    x = torch.randn(64, 1, 28, 28)
    compiled = torch.compile(q)
    assert quant.compile_now(compiled, x) > 0
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), trained(x), atol=0.05, rtol=0.05)


def test_cpu_int8_units_names_the_instructions(monkeypatch):
    monkeypatch.setattr(quant.env, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert quant.cpu_int8_units() == "none (AVX2 only)"
    monkeypatch.setattr(quant.env, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert quant.cpu_int8_units() == "AVX-512 VNNI"


def test_speedup_by_width_has_a_row_per_width():
    card = quant.speedup_by_width(TINY)
    assert card.variants == ["width 32", "width 64"]
    assert all(r["x86_int8_ms"] > 0 and r["fbgemm_int8_ms"] > 0 and r["fp32_ms"] > 0 for r in card.rows)


def test_half_weights_halve_the_size(trained):
    from labkit import bench
    half = quant.half_weights(trained)
    assert next(half.parameters()).dtype == torch.bfloat16
    assert bench.model_size_mb(trained) / bench.model_size_mb(half) > 1.8


def test_qat_prepare_fake_quantizes_and_refuses_bad_bits(trained):
    fq = quant.qat_prepare(trained, 2)
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(fq(x), trained(x))
    with pytest.raises(LabkitError, match="bits"):
        quant.qat_prepare(trained, 0)
    with pytest.raises(LabkitError, match="1 to 8"):
        quant.qat_prepare(trained, 12)


def test_ptq_vs_qat_runs_every_seed_and_computes_verdicts(trained, tiny_splits):
    out = quant.ptq_vs_qat(trained, tiny_splits, TINY)
    assert out["table"].index.tolist() == [1, 2]
    assert out["table"][["fp32", "PTQ", "QAT"]].stack().between(0, 1).all()
    quant.check_qat(out["qat_model"], TINY.qat_bits)
    gain = out["qat_vs_ptq"]
    assert gain.diffs == pytest.approx(tuple(100 * (out["table"]["QAT"] - out["table"]["PTQ"])))
    assert gain.verdict in ("higher", "lower", "within noise")


def test_check_qat_catches_a_model_without_fake_quantization(trained):
    with pytest.raises(LabkitError, match="plain Linear"):
        quant.check_qat(trained, 2)
    fq = quant.qat_prepare(trained, 4)
    quant.check_qat(fq, 4)
    with pytest.raises(LabkitError, match="levels"):
        quant.check_qat(fq, 2)  # 4-bit weights have more than 2^2 levels per row


def test_legacy_path_returns_its_warnings(trained):
    legacy, messages = quant.int8_dynamic_legacy(trained)
    assert any("deprecated" in m for m in messages)


def test_headline_compares_int8_with_fp32_run_the_same_way(tiny_splits, monkeypatch):
    # headline("smoke") compiles int8 and fp32 graphs and trains on 2,000 images; same path, tiny data
    monkeypatch.setattr(quant, "config_for", lambda mode: TINY)
    monkeypatch.setattr(quant.data, "load_for_mode", lambda mode: tiny_splits)
    report = quant.headline("smoke")
    card, h = report.card, report.headline
    assert set(h) == {"int8_speedup", "int8_speedup_best", "int8_speedup_eager", "compile_speedup_fp32",
                      "int8_speedup_widest", "size_ratio", "accuracy_drop_pt", "log_vs_linear_err_ratio_4bit"}
    assert all(card.value(v, "latency_ms") > 0 for v in card.variants if v != "int8 static")
    fastest_fp32 = min(card.value("fp32", "latency_ms"), card.value(quant.FP32_COMPILED, "latency_ms"))
    assert h["int8_speedup"] == pytest.approx(fastest_fp32 / card.value(quant.INT8_HEADLINE, "latency_ms"))
    assert h["int8_speedup_eager"] == pytest.approx(card.value("fp32", "latency_ms")
                                                    / card.value(quant.INT8_LEGACY, "latency_ms"))
    assert card.value(quant.FP32_COMPILED, "compile_s") > 0  # the fp32 baseline really was compiled
    assert card.value(quant.FP32_COMPILED, "accuracy") == card.value("fp32", "accuracy")
    widest = report.config["sweep_widths"][-1]
    assert h["int8_speedup_widest"] > 0 and widest == TINY.sweep_widths[-1]
    assert h["size_ratio"] > 2.5  # a tiny model: biases and scales weigh more
    assert 0 < h["log_vs_linear_err_ratio_4bit"] < float("inf")


def test_bit_width_explorer_reports_and_refuses_bad_values():
    from labkit.ui.quantization import BitWidthExplorer
    explorer = BitWidthExplorer(torch.randn(16, 32), bits=4)
    assert "sqnr_db" in explorer.text.value and explorer.image.value
    assert "2-bit" in explorer.update(bits=2)
    assert explorer.update(bits=0).startswith("⚠")
    explorer.per_channel.value = True
    assert "per-channel" in explorer.text.value


def test_log_vs_linear_plot_draws_every_grid_with_its_own_style():
    import pandas as pd
    from labkit.ui import quantization as qui

    table = pd.DataFrame([{"grid": g, "bits": b, "sqnr_db": 6.0 * b, "accuracy": 0.8}
                          for g in ("linear, per tensor", "linear, per channel", "log, per tensor", "log, per channel")
                          for b in (2, 4, 8)])
    fig = qui.plot_log_vs_linear(torch.randn(16, 16), table, 0.82, (2, 4, 8))
    _, ax_err, ax_acc = fig.axes
    assert len(ax_err.lines) == 4 and len(ax_acc.lines) == 4 + 1  # + the fp32 line
    assert len({(ln.get_linestyle(), ln.get_marker()) for ln in ax_err.lines}) == 4
