import math

import pytest
import torch

from labkit import LabkitError, techniques
from labkit.exercises import Hint
from labkit.exercises import momentum as check
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


def test_exercise_heavy_ball():
    assert "passed" in check.heavy_ball(_right_step)
    assert "not attempted" in check.heavy_ball(lambda *a: None)
    with pytest.raises(Hint, match="averaged"):
        check.heavy_ball(lambda x, v, g, lr, b: (x - lr * (b * v + (1 - b) * g), b * v + (1 - b) * g))
    with pytest.raises(Hint, match="old velocity"):
        check.heavy_ball(lambda x, v, g, lr, b: (x - lr * v, b * v + g))
    with pytest.raises(Hint, match="uphill"):
        check.heavy_ball(lambda x, v, g, lr, b: (x + lr * (b * v + g), b * v + g))
    with pytest.raises(Hint, match="raised"):
        check.heavy_ball(lambda x, v, g, lr, b: 1 / 0)


def test_exercise_best_momentum():
    def right(mu, L):
        k = math.sqrt(L / mu)
        return 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, ((k - 1) / (k + 1)) ** 2

    assert "passed" in check.best_momentum(right)
    assert "not attempted" in check.best_momentum(lambda mu, L: None)
    with pytest.raises(Hint, match="square"):
        check.best_momentum(lambda mu, L: (right(mu, L)[0], math.sqrt(right(mu, L)[1])))
    with pytest.raises(Hint, match="gradient descent"):
        check.best_momentum(lambda mu, L: (2 / (L + mu), right(mu, L)[1]))


def test_exercise_averaged_lr():
    assert "passed" in check.averaged_lr(lambda lr, b: lr / (1 - b))
    assert "not attempted" in check.averaged_lr(lambda lr, b: None)
    with pytest.raises(Hint, match="larger"):
        check.averaged_lr(lambda lr, b: lr * (1 - b))
    with pytest.raises(Hint, match="smaller step"):
        check.averaged_lr(lambda lr, b: lr)


def test_exercise_momentum_steps():
    rate = lambda k: (math.sqrt(k) - 1) / (math.sqrt(k) + 1)  # noqa: E731
    assert "passed" in check.momentum_steps(lambda k, tol: math.ceil(math.log(tol) / math.log(rate(k))))
    assert "not attempted" in check.momentum_steps(lambda k, tol: None)
    with pytest.raises(Hint, match="gradient descent"):
        check.momentum_steps(lambda k, tol: math.log(tol) / math.log((k - 1) / (k + 1)))
    with pytest.raises(Hint, match="negative"):
        check.momentum_steps(lambda k, tol: -math.log(tol) / math.log(rate(k)))
