"""labkit.techniques.amp on the CPU (bf16 autocast; fp16 numerics), and its exercise checks."""

import json
import math

import pytest
import torch

from labkit import LabkitError, models, train
from labkit.techniques import amp
from labkit.ui import amp as amp_ui


def test_precision_table_matches_the_formats():
    table = amp.precision_table()
    assert table.loc["fp16", "mantissa_bits"] == 10 and table.loc["bf16", "mantissa_bits"] == 7
    assert table.loc["fp16", "exponent_bits"] == 5 and table.loc["bf16", "exponent_bits"] == 8
    assert table.loc["fp16", "max"] == 65504
    assert table.loc["fp16", "smallest_subnormal"] == 2.0**-24
    assert table.loc["bf16", "max"] > 1e38  # fp32's range


def test_fp16_fate_and_scaling():
    g = torch.tensor([1e-9, 1e-6, 1e-3, 1.0])
    plain = amp.fp16_fate(g, 1.0)
    assert plain["underflow"] == 0.25 and plain["subnormal"] == 0.25 and plain["normal"] == 0.5
    scaled = amp.fp16_fate(g, 2.0**16)
    assert scaled["underflow"] == 0 and scaled["overflow"] == 0.25  # 1.0 × 65536 > 65504
    assert sum(scaled[k] for k in ("underflow", "subnormal", "normal", "overflow")) == pytest.approx(1)
    with pytest.raises(LabkitError, match="greater than 0"):
        amp.fp16_fate(g, 0)
    with pytest.raises(LabkitError, match="no gradient"):
        amp.fp16_fate(torch.tensor([]), 1.0)


def test_loss_scale_is_a_power_of_two_within_the_explorers_range():
    assert amp.loss_scale(16) == 65536.0 and amp.loss_scale(-2) == 0.25 and amp.loss_scale(0) == 1.0
    assert amp.loss_scale(60) == 2.0**60 and amp.loss_scale(-60) == 2.0**-60
    for bad in (61, -61, 1.5, "8"):
        with pytest.raises(LabkitError, match="whole number between -60 and 60"):
            amp.loss_scale(bad)


def test_scale_explorer_shows_the_fate_at_the_chosen_scale_and_refuses_a_bad_one(capsys):
    g = torch.tensor([1e-9, 1e-6, 1e-3, 1.0])
    explorer = amp_ui.ScaleExplorer(g)
    assert explorer.show(16) == amp.fp16_fate(g, 2.0**16) and "loss scale 2^16" in explorer.summary
    assert explorer.show(61) is None and "between -60 and 60" in explorer.message.value
    assert "Traceback" not in capsys.readouterr().out


def test_activation_gradients_are_positive_and_leave_no_hooks(tiny_splits):
    model = models.SmallCNN(num_classes=4)
    g = amp.activation_gradients(model, tiny_splits.X_train[:16], tiny_splits.y_train[:16])
    assert g.numel() > 1000 and (g > 0).all() and g.dtype == torch.float32
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_loss_scaling_saves_fp16_gradients(tiny_splits):
    torch.manual_seed(0)
    model = models.MLP(num_classes=4)
    X, y = tiny_splits.X_train[:32], tiny_splits.y_train[:32]
    unscaled = amp.fp16_backward_zeros(model, X * 1e-3, y, "cpu", 1.0)
    scaled = amp.fp16_backward_zeros(model, X * 1e-3, y, "cpu", 2.0**16)
    assert scaled["zeroed"] <= unscaled["zeroed"]
    assert scaled["non_finite"] == 0


def test_autocast_takes_effect_and_the_check_catches_it_when_not():
    model = models.MLP()
    assert amp.check_autocast(model, "cpu", torch.bfloat16) == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(LabkitError, match="weights must stay fp32"):
        amp.check_autocast(models.MLP().bfloat16(), "cpu", torch.bfloat16)


def test_the_train_step_in_bf16_matches_fp32_closely():
    torch.manual_seed(0)
    X, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    losses = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        torch.manual_seed(1)
        model = models.MLP()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        _, losses[name] = train.train_step(model, opt, X, y, dtype=dtype)
    assert losses["bf16"].dtype == torch.float32  # cross-entropy runs in fp32 under autocast
    assert losses["bf16"].item() == pytest.approx(losses["fp32"].item(), rel=2e-2)


def test_the_fp16_train_step_keeps_its_scale_between_steps():
    torch.manual_seed(0)
    X, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    model = models.MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", growth_interval=2)  # grows after 2 clean steps instead of 2000
    for _ in range(2):
        _, loss = train.train_step(model, opt, X, y, dtype=torch.float16, scaler=scaler)
    assert math.isfinite(loss.item()) and scaler.get_scale() == 2.0 ** 17  # 2**16, grown once


def test_saved_for_backward_shrinks_with_16_bit_types():
    fp32 = amp.saved_for_backward_mb("mlp", 64, "cpu", None)
    bf16 = amp.saved_for_backward_mb("mlp", 64, "cpu", torch.bfloat16)
    assert 0 < bf16 < fp32
    assert amp.step_peak_memory_mb("mlp", 8, "cpu", None) is None  # only measured on a GPU


def test_compare_precisions_card(tiny_splits):
    cfg = amp.AmpConfig(model="mlp", epochs=1, batch_size=64, seeds=(0, 1), mem_batch=16)
    card, accs = amp.compare_precisions(cfg, tiny_splits, "cpu")
    assert card.variants == ["fp32", "bf16 autocast"]
    assert len(accs["bf16 autocast"]) == 2
    assert card.value("bf16 autocast", "saved_for_backward_mb") < card.value("fp32", "saved_for_backward_mb")


def test_headline_smoke_keys():
    report = amp.headline("smoke")
    assert set(report.headline) == {"speedup", "memory_ratio", "accuracy_delta_pt", "dtype", "device"}
    assert report.headline["dtype"] == ("fp16" if torch.cuda.is_available() else "bf16")
    assert 0 < report.headline["memory_ratio"] < 1
    json.loads(report.to_json())


# ---------------------------------------------------------------- exercise checks


def good_scale(g):
    k = 0
    while g * 2**k < 2.0**-14:
        k += 1
    return 2.0**k


def good_step(model, opt, X, y):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(X), y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.detach()


def test_matmul_speed_on_cpu_tries_fp32_and_bf16():
    speeds = amp.matmul_speed("cpu", 64, min_run_time=0.01)
    assert set(speeds) == {"fp32", "bf16"} and all(v > 0 for v in speeds.values())
