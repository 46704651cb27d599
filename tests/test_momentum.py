import math

import pytest
import torch

from labkit import LabkitError, techniques
from labkit.techniques import momentum
from labkit.ui import momentum as explorer


# ---------------------------------------------------------------- the quadratic

def test_gradient_descent_matches_its_rate_exactly():
    q = momentum.Quadratic(100)
    steps = momentum.iterations(q, "gd", momentum.best_gd(q)["lr"], 0.0, 1e-6, 5000)
    assert abs(steps - momentum.theory_iters(momentum.rate_gd(100), 1e-6)) <= 2


def test_heavy_ball_is_about_sqrt_kappa_times_faster():
    numbers = momentum.quadratic_headline(momentum.MomentumConfig())
    assert numbers["iters_ratio"] >= 5
    assert 9.5 < numbers["theory_ratio"] < 10.5
    assert numbers["quadratic_iters_momentum"] < numbers["quadratic_iters_gd"]


def test_rotation_does_not_change_gd_or_heavy_ball_but_does_change_adam():
    flat, turned = momentum.Quadratic(30), momentum.Quadratic(30, angle_deg=40)
    hb = momentum.best_heavy_ball(flat)
    assert (momentum.iterations(flat, "heavy_ball", hb["lr"], hb["beta"], 1e-6, 2000)
            == momentum.iterations(turned, "heavy_ball", hb["lr"], hb["beta"], 1e-6, 2000))
    flat, turned = momentum.Quadratic(100), momentum.Quadratic(100, angle_deg=45)
    adam_flat = momentum.run_quadratic(flat, "adam", 0.05, 0.8, steps=300)
    adam_turned = momentum.run_quadratic(turned, "adam", 0.05, 0.8, steps=300)
    assert adam_flat.iters_to_tol is not None and adam_turned.iters_to_tol is None
    assert adam_turned.losses[-1] > 1e6 * adam_flat.losses[-1]


def test_gd_diverges_at_heavy_balls_best_lr():
    q = momentum.Quadratic(100)
    run = momentum.run_quadratic(q, "gd", momentum.best_heavy_ball(q)["lr"], 0.0, steps=200)
    assert run.diverged and "diverged" in run.describe()


def test_conventions_agree_only_at_lr_over_one_minus_beta():
    gaps = momentum.compare_conventions(momentum.Quadratic(50), lr=0.3, beta=0.8, steps=40)
    assert gaps["heavy_ball_by_hand"] < 1e-12
    assert gaps["averaged_lr_over_1_minus_beta"] < 1e-9
    assert gaps["averaged_same_lr"] > 1e-2


def test_steady_gradient_step_approaches_effective_lr():
    lengths = momentum.steady_steps(0.1, 0.9, steps=80)
    assert math.isclose(lengths[0], 0.1) and math.isclose(lengths[-1], 1.0, rel_tol=1e-3)


def test_check_momentum_active():
    p = torch.nn.Parameter(torch.ones(2))
    for opt in (torch.optim.SGD([p], lr=0.1), torch.optim.SGD([p], lr=0.1, momentum=0.9)):
        with pytest.raises(LabkitError, match="momentum"):
            momentum.check_momentum_active(opt)  # no momentum, or no step taken yet
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(2)
    opt.step()
    momentum.check_momentum_active(opt)


@pytest.mark.parametrize("lr, beta, match", [(0.0, 0.9, "above 0"), (-1.0, 0.9, "above 0"),
                                             (0.1, 1.0, r"\[0, 1\)"), (0.1, 1.5, r"\[0, 1\)")])
def test_bad_settings_raise_one_line_errors(lr, beta, match):
    with pytest.raises(LabkitError, match=match):
        momentum.explore(100, lr, beta, 0.05, ["gd"])


def test_other_bad_input():
    with pytest.raises(LabkitError, match="at least 1"):
        momentum.Quadratic(0.5)
    with pytest.raises(LabkitError, match="choose"):
        momentum.explore(10, 0.5, 0.5, 0.05, ["adagrad"])
    with pytest.raises(LabkitError, match="choose one of"):
        momentum.make_train_optimizer("lion", [torch.nn.Parameter(torch.ones(1))], momentum.TrainConfig())
    with pytest.raises(LabkitError, match="'mlp' or 'cnn'"):
        momentum.build_model(momentum.TrainConfig(model="vit"))


# ---------------------------------------------------------------- the adaptive updates

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hand_written_rmsprop_and_adam_are_torchs(dtype):
    g = torch.Generator().manual_seed(1)
    # gradients of very different sizes per coordinate; eps large enough that its placement matters
    grads = torch.randn(20, 4, generator=g).to(dtype) * torch.tensor([1e-3, 0.1, 1.0, 1e2], dtype=dtype)
    settings = {"rmsprop": dict(lr=0.01, alpha=0.9, eps=1e-3), "adam": dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3)}
    for name, kw in settings.items():
        p = torch.nn.Parameter(torch.ones(4, dtype=dtype))
        opt = (torch.optim.RMSprop if name == "rmsprop" else torch.optim.Adam)([p], **kw)
        x, m, sq = torch.ones(4, dtype=dtype), torch.zeros(4, dtype=dtype), torch.zeros(4, dtype=dtype)
        for t, grad in enumerate(grads, start=1):
            p.grad = grad.clone()
            opt.step()
            if name == "rmsprop":
                x, sq = momentum.rmsprop_step(x, sq, grad, kw["lr"], alpha=kw["alpha"], eps=kw["eps"])
            else:
                x, m, sq = momentum.adam_step(x, m, sq, grad, t, kw["lr"], *kw["betas"], eps=kw["eps"])
            assert torch.allclose(x, p.detach(), rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0), (name, t)
    gaps = momentum.adaptive_by_hand_gaps(steps=30)
    assert gaps["rmsprop"] < 1e-12 and gaps["adam"] < 1e-12


def test_adaptive_steps_do_not_follow_the_gradients_size():
    lengths = momentum.adaptive_step_lengths((1e-3, 1.0, 1e3), lr=1e-3, steps=100)
    assert [first for first, _ in lengths["sgd"]] == pytest.approx([1e-6, 1e-3, 1.0])
    assert all(first == pytest.approx(1e-3, rel=1e-4) and last == pytest.approx(1e-3, rel=1e-4)
               for first, last in lengths["adam"])
    # RMSprop has no bias correction: its first step is lr/√(1−α) = 10·lr, then it settles towards lr
    assert all(first == pytest.approx(1e-2, rel=1e-4) and 1e-3 < last < 2e-3 for first, last in lengths["rmsprop"])


# ---------------------------------------------------------------- claim check

def test_rosenbrock_momentum_crosses_the_valley_faster():
    lr = 0.95 * 2 / momentum.ROSENBROCK_L
    plain, heavy = momentum.run_rosenbrock(lr, 0.0), momentum.run_rosenbrock(lr, 0.9)
    assert heavy["steps"] * 5 < plain["steps"]
    assert momentum.run_rosenbrock(10 * lr, 0.0, max_steps=500)["diverged"]


def test_double_well_momentum_moves_starts_both_ways():
    none, heavy = momentum.double_well_basins(0.0, n_starts=101), momentum.double_well_basins(0.9, n_starts=101)
    assert none["escaped_local"] == 0 and none["knocked_out_of_global"] == 0
    assert heavy["escaped_local"] > 0.1 and heavy["knocked_out_of_global"] > 0.03


# ---------------------------------------------------------------- training

def test_compare_optimizers_on_tiny_data(tiny_splits):
    cfg = momentum.TrainConfig(epochs=2, seeds=(0, 1), target_acc=0.5, batch_size=64)
    card, runs = momentum.compare_optimizers(tiny_splits, cfg, names=("sgd", "momentum", "adam"))
    assert card.variants == ["sgd", "momentum", "adam"] and len(runs) == 6
    row = card.rows[1]
    assert row["reached"].endswith("/2") and len(row["epochs_per_seed"]) == 2


def test_optimizer_variants_include_the_effective_lr_sgd(tiny_splits):
    cfg = momentum.TrainConfig(epochs=1, seeds=(0,), batch_size=64)
    variants = momentum.optimizer_variants(tiny_splits, cfg)
    assert set(variants) == set(momentum.TRAIN_OPTIMIZERS) | {"sgd_effective"}
    assert variants["sgd_effective"]([]).history["lr"].iloc[0] == pytest.approx(0.5)


def test_headline_smoke_has_exactly_the_keys(monkeypatch, tiny_splits):
    # the real smoke headline trains on 2,000 images; the same code on tiny data keeps this test fast
    monkeypatch.setattr(momentum.data, "load_for_mode", lambda *a, **k: tiny_splits)
    report = momentum.headline("smoke")
    keys = {"quadratic_iters_gd", "quadratic_iters_momentum", "iters_ratio", "theory_ratio"}
    keys |= {f"time_to_target_{n}" for n in momentum.TRAIN_OPTIMIZERS}
    assert set(report.headline) == keys
    assert report.headline["iters_ratio"] >= 5
    assert "momentum" in techniques.names()


def test_lr_grid_is_centred_and_log_spaced():
    grid = momentum.lr_grid(1e-3)
    assert len(grid) == 5 and grid[2] == pytest.approx(1e-3)
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(1e-2)
    with pytest.raises(LabkitError, match="factor > 1"):
        momentum.lr_grid(0.1, factor=1.0)


def test_lr_sensitivity_fills_the_grid_on_tiny_data(tiny_splits):
    cfg = momentum.TrainConfig(epochs=1, seeds=(0, 1), batch_size=64)
    grids = {"momentum": [0.01, 0.05], "adam": [1e-3]}
    accs = momentum.lr_sensitivity(tiny_splits, cfg, grids)
    assert set(accs) == {("momentum", 0.01), ("momentum", 0.05), ("adam", 1e-3)}
    assert all(len(a) == 2 and all(0 <= x <= 1 for x in a) for a in accs.values())
    again = momentum.lr_sensitivity(tiny_splits, cfg, {"adam": [1e-3]})
    assert again[("adam", 1e-3)] == accs[("adam", 1e-3)]  # seeded: the same run twice
    sens = momentum.summarize_sensitivity(accs, {"momentum": 0.05, "adam": 1e-3})
    assert sens["momentum"].lrs == [0.01, 0.05] and sens["adam"].near_best == [1e-3]
    with pytest.raises(LabkitError, match="not on its grid"):
        momentum.summarize_sensitivity(accs, {"momentum": 0.1, "adam": 1e-3})


def _sens(means_pt, default_index=2, jitter=(0.0, 0.2, -0.2)):
    lrs = momentum.lr_grid(1.0)
    acc = {lr: [(m + j) / 100 for j in jitter] for lr, m in zip(lrs, means_pt)}
    return lrs, acc, lrs[default_index]


def test_sensitivity_summary_and_the_claims_verdict():
    narrow = [70.0, 84.2, 85.0, 82.0, 10.0]   # two rates within 1 pt of the best
    wide = [84.5, 85.0, 85.0, 84.8, 84.1]     # all five
    lrs, acc, default = _sens(narrow)
    s = momentum.LrSensitivity("momentum", default, acc)
    assert s.best_lr == lrs[2] and s.near_best == lrs[1:3] and s.width_decades == pytest.approx(0.5)
    assert s.near_best_per_seed == [2, 2, 2] and s.default_vs_best().mean == 0

    def claim(adam, rmsprop, adam_default=2):
        sens = {}
        for name, means, d in (("momentum", narrow, 2), ("adam", adam, adam_default), ("rmsprop", rmsprop, 2)):
            _, acc, default = _sens(means, d)
            sens[name] = momentum.LrSensitivity(name, default, acc)
        return momentum.tuning_claim(sens)

    verdict, lines = claim(wide, wide)
    assert verdict == "true" and "adam is higher than momentum" in lines[0]
    assert claim(wide, narrow)[0] == "depends"
    assert claim(narrow, narrow)[0] == "false"
    # wide, but its default sits 15 pt below its best: not spared the tuning
    assert claim([70.0, 84.9, 85.0, 84.5, 84.2], wide, adam_default=0)[0] == "depends"


# ---------------------------------------------------------------- explorer

def test_explorer_redraws_and_reports_bad_values():
    e = explorer.MomentumExplorer(kappa=30, steps=60)
    assert bytes(e.image.value).startswith(b"\x89PNG") and "heavy_ball" in e.summary
    e.lr.value = 0.0
    assert "above 0" in e.message.value and "above 0" in e.summary
    e.lr.value = 1.0
    e.beta.value = 1.0
    assert "[0, 1)" in e.message.value
    e.beta.value = 0.5
    assert e.message.value == ""
    e.set_best()
    assert e.lr.value == pytest.approx(momentum.best_heavy_ball(momentum.Quadratic(e.kappa.value))["lr"], abs=0.01)
    for box in e.checkboxes.values():
        box.value = False
    assert "Tick at least one" in e.message.value


def test_plots_build(tiny_splits):
    from labkit.ui import figure_png
    rows = momentum.iterations_vs_kappa([3, 10])
    card, _ = momentum.compare_optimizers(tiny_splits, momentum.TrainConfig(epochs=1, seeds=(0,), batch_size=64),
                                          names=("sgd", "momentum"))
    for fig in (explorer.plot_iterations_vs_kappa(rows), explorer.plot_steady_steps([0.1, 0.19], 0.1, 0.9),
                explorer.plot_rosenbrock([momentum.run_rosenbrock(1e-3, 0.9, max_steps=50)]),
                explorer.plot_double_well([momentum.double_well_basins(0.9, n_starts=11, steps=50)]),
                explorer.plot_epochs_per_seed(card, budget=1)):
        assert figure_png(fig).startswith(b"\x89PNG")


# ---------------------------------------------------------------- exercises

def _right_step(x, v, grad, lr, beta):
    v = beta * v + grad
    return x - lr * v, v


def test_lr_sensitivity_plot_marks_collapsed_rates_on_the_floor():
    from labkit.ui import momentum as mui

    sens = {"momentum": momentum.LrSensitivity("momentum", 0.05, {0.05: [0.84, 0.85], 0.5: [0.10, 0.12]}),
            "adam": momentum.LrSensitivity("adam", 1e-3, {1e-3: [0.85, 0.86], 1e-2: [0.83, 0.82]})}
    fig = mui.plot_lr_sensitivity(sens, floor_pt=70)
    ys = [y for line in fig.axes[0].lines for y in line.get_ydata()]  # the left panel: data lines only
    assert min(ys) == 70 and max(ys) == pytest.approx(86)  # the collapse is drawn on the floor, not below it
    assert {ln.get_marker() for ax in fig.axes for ln in ax.lines} >= {"o", "s", "v"}
