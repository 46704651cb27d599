"""Speedrun: config and bad inputs, the loop, time to target, accumulation, the claim fit, code hash,
the panel, the exercise checks, and the headline's keys (tiny data: seconds)."""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from labkit import LabkitError, models, train
from labkit.data import Splits
from labkit.techniques import dataloading
from labkit.techniques import speedrun as sr
from labkit.ui import speedrun as sr_ui


@pytest.fixture
def tiny_inputs():
    """192 train / 64 test uint8 'images' whose class (of 4) is a bright band; PNG source + splits."""
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 4, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for c in range(4):
            images[y == c, 7 * c:7 * c + 7, :] += 150
        return images, y

    (xtr, ytr), (xte, yte) = make(192), make(64)
    source = dataloading.make_source(xtr, ytr, 0.3, 0.3)
    test = dataloading.make_source(xte, yte, 0.3, 0.3)
    splits = Splits(source.X, source.y, test.X, test.y, classes=("a", "b", "c", "d"))
    return splits, source


TINY = sr.SpeedrunConfig(epochs=2, batch_size=16, big_batch_size=32, target_acc=0.5, seeds=(0,), width=4,
                         student_width=2, threads=1)


# --- config and bad inputs -------------------------------------------------------------------

def test_switches_and_settings():
    cfg = sr.with_switches(TINY, ["momentum", "in_memory"], epochs=3)
    assert sr.switches_on(cfg) == ["in_memory", "momentum"] and cfg.epochs == 3
    assert sr.switches_on(sr.with_switches(cfg, [])) == []
    assert sr.batch_and_lr(TINY) == (16, 0.05)
    batch, lr = sr.batch_and_lr(sr.with_switches(TINY, ["big_batch", "momentum"]))
    assert batch == 32 and lr == pytest.approx(0.05 * 2 * 0.1)


def test_the_recipe_comes_from_the_technique_modules():
    """Nesterov from notebook 05's optimizers; one-cycle from notebook 04's, peaking at onecycle_peak × the rate,
    cycling momentum only when there is momentum; the constant rate with big_batch's warm-up otherwise."""
    model = models.SmallCNN(width=2)
    plain = sr.make_optimizer(TINY, model, 0.05)
    assert plain.defaults["momentum"] == 0 and not plain.defaults["nesterov"]
    cfg = sr.with_switches(TINY, ["momentum", "onecycle"])
    opt = sr.make_optimizer(cfg, model, 0.05)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == cfg.beta
    sched = sr.make_schedule(cfg, opt, total_steps=100, steps_per_epoch=10)
    assert isinstance(sched, torch.optim.lr_scheduler.OneCycleLR)
    assert [g["max_lr"] for g in opt.param_groups] == pytest.approx([0.05 * cfg.onecycle_peak])
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)  # cycled: starts at max_momentum
    no_momentum = sr.with_switches(TINY, ["onecycle"])
    opt = sr.make_optimizer(no_momentum, model, 0.05)
    sr.make_schedule(no_momentum, opt, total_steps=100, steps_per_epoch=10)
    assert opt.param_groups[0]["momentum"] == 0  # plain SGD stays plain under one-cycle


@pytest.mark.parametrize("bad, message", [({"epochs": 0}, "at least 1"), ({"epochs": -2}, "at least 1"),
                                          ({"lr": 0.0}, "greater than 0"), ({"target_acc": 87}, "fraction"),
                                          ({"seeds": ()}, "seed")])
def test_bad_settings_raise_one_clear_line(bad, message):
    with pytest.raises(LabkitError, match=message):
        sr.with_switches(TINY, [], **bad)


def test_unknown_technique_lists_the_valid_ones():
    with pytest.raises(LabkitError, match="choose from in_memory, big_batch"):
        sr.with_switches(TINY, ["in_memory", "turbo"])
    with pytest.raises(LabkitError, match="Unknown setting"):
        sr.with_switches(TINY, [], epoch=3)
    with pytest.raises(LabkitError, match="turbo"):
        sr.ablation_plan(["turbo"])


def test_skips_are_explained_and_not_carried(monkeypatch):
    monkeypatch.setattr(sr.env, "cpu_has_bf16_units", lambda: False)
    assert "no fast low-precision path" in sr.why_skipped("amp", "cpu")
    plan = sr.ablation_plan(dev="cpu")
    assert plan[0] == ("naive", [], None)
    amp_row = next(p for p in plan if p[0] == "+ amp")
    assert amp_row[2] and "amp" not in amp_row[1] and "amp" not in plan[-1][1]
    assert plan[-1][1][-1] == "distill"


def test_warmup_factor():
    assert [sr.warmup_factor(s, 10) for s in (0, 5, 10, 20)] == pytest.approx([0.1, 0.55, 1.0, 1.0])
    assert sr.warmup_factor(0, 0) == 1.0


# --- the loop and time to target ---------------------------------------------------------------

def test_time_to_target_is_the_first_evaluation_at_or_above():
    hist = pd.DataFrame({"test_acc": [0.5, 0.85, 0.8, 0.9], "train_time_s": [1.0, 2.0, 3.0, 4.0]})
    assert sr.time_to_target(hist, 0.85) == 2.0
    assert sr.time_to_target(hist, 0.95) is None
    assert sr.time_to_target(hist.iloc[:0], 0.5) is None


@pytest.mark.parametrize("switches", [[], ["in_memory", "big_batch", "momentum", "onecycle", "channels_last"],
                                      ["in_memory", "distill"]])
def test_train_run_learns_and_keeps_eval_off_the_clock(tiny_inputs, switches):
    splits, source = tiny_inputs
    cfg = sr.with_switches(TINY, switches)
    run = sr.train_run(cfg, splits, source, seed=0, device="cpu")
    hist = run.fit.history
    assert len(hist) == cfg.epochs * cfg.evals_per_epoch
    assert hist["train_time_s"].is_monotonic_increasing and run.setup_s >= 0
    if "distill" not in switches:  # the real teacher knows Fashion-MNIST, not these bands
        assert run.final_acc > 0.5, hist
    assert np.isfinite(hist["train_loss"]).all()
    assert run.time_to_target_s == sr.time_to_target(hist, cfg.target_acc)
    assert run.config["distill"] == ("distill" in switches)
    assert 0 <= run.train_acc <= 1 and run.gap_pt == pytest.approx(100 * (run.train_acc - run.final_acc))


def test_narrow_is_its_own_switch_so_distill_is_credited_only_with_the_teacher():
    """distill alone keeps the full width; narrow alone is the half-width model on labels alone."""
    dev = torch.device("cpu")
    full = sr.build_model(sr.with_switches(TINY, ["distill"]), dev)
    narrow = sr.build_model(sr.with_switches(TINY, ["narrow"]), dev)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in full.parameters())
    plan = [name for name, _, _ in sr.ablation_plan(dev="cpu")]
    assert plan.index("+ narrow") == plan.index("+ distill") - 1


def test_overfitting_check_pairs_gaps_by_seed():
    gaps = {"naive": [1.0, 1.5, 1.2], "+ distill": [3.0, 3.4, 3.1]}
    assert sr.overfitting_check(gaps, "+ distill").verdict == "higher"
    assert sr.overfitting_check({"naive": [1.0], "x": [2.0]}, "x") is None


def test_stop_at_target_and_stop_callback(tiny_inputs):
    splits, source = tiny_inputs
    cfg = sr.with_switches(TINY, ["in_memory"], epochs=4, target_acc=0.3)
    run = sr.train_run(cfg, splits, source, device="cpu", stop_at_target=True)
    assert len(run.fit.history) < 4 * cfg.evals_per_epoch and run.reached

    class StopNow:
        def on_batch_end(self, state):
            return state.step >= 2

    stopped = sr.train_run(cfg, splits, source, device="cpu", callbacks=[StopNow()])
    assert stopped.fit.interrupted and stopped.fit.images_seen == 2 * TINY.batch_size


def test_ablation_rows_gains_and_leaderboard(tiny_inputs):
    splits, source = tiny_inputs
    rows = sr.ablation(TINY, splits, source, device="cpu", order=["in_memory", "momentum"])
    assert [r.name for r in rows] == ["naive", "+ in_memory", "+ momentum"]
    gains = sr.marginal_gains(rows)
    assert "marginal_gain" in gains[1] and gains[2]["marginal_gain"] == pytest.approx(
        gains[1]["time_to_target_s"] / gains[2]["time_to_target_s"])
    board = sr.leaderboard(rows)
    assert list(board.index) == [1, 2, 3] and set(board["variant"]) == {r.name for r in rows}
    never = sr.train_run(TINY, splits, source, device="cpu")
    never.fit.target_acc = 1.01  # a run that never reached its target
    missed = sr.Row("missed", [], runs=[never])
    board = sr.leaderboard(rows + [missed])
    assert board.iloc[-1]["variant"] == "missed" and board.iloc[-1]["reached"] == "0/1"  # shown, not dropped


# --- gradient accumulation ---------------------------------------------------------------------

def test_accumulation_matches_the_big_batch():
    for k in (2, 4, 8):
        diff = sr.accumulation_equivalence(accum_steps=k, batch=32)
        assert diff["max_grad_diff"] < 1e-5 * max(1.0, diff["max_grad"]) and diff["max_weight_diff"] < 1e-6


def test_accumulation_rejects_a_k_that_does_not_divide_the_batch():
    model = models.SmallCNN(width=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LabkitError, match="divides the batch"):
        sr.accumulated_step(model, opt, torch.randn(6, 1, 28, 28), torch.zeros(6, dtype=torch.long), 4)


def test_accumulation_cost_rows():
    rows = sr.accumulation_cost(batch=32, ks=(1, 4), min_run_time=0.02, threads=1)
    assert [r["micro_batch"] for r in rows] == [32, 8]
    assert rows[1]["saved_activations_mb"] < rows[0]["saved_activations_mb"] / 3
    assert rows[0]["time_vs_k1"] == 1.0


# --- claim check -------------------------------------------------------------------------------

def test_fit_claim_recovers_an_exact_formula():
    grid = pd.DataFrame([{"width": w, "params": p, "lr": lr, "batch_size": b, "time_to_target_s": 3e-3 * p / (lr * b)}
                         for w, p in ((8, 1000), (64, 8000)) for lr in (0.1, 0.5) for b in (32, 128)])
    grid.loc[0, "time_to_target_s"] = None  # a run that never reached the target is left out of the fit
    fit = sr.fit_claim(grid)
    assert fit["c"] == pytest.approx(3e-3) and fit["r2_claim"] == pytest.approx(1.0)
    assert fit["exponents"]["lr"] == pytest.approx(-1.0, abs=1e-6) and fit["reached"] == 7
    assert fit["table"]["predicted_s"].notna().all()
    with pytest.raises(LabkitError, match="fewer than 2"):
        sr.fit_claim(grid.assign(time_to_target_s=None))


# --- code hash, panel, exercises, headline -----------------------------------------------------

def test_code_hash_is_stable_and_changes_with_the_code():
    assert sr.code_hash() == sr.code_hash() and len(sr.code_hash()) == 12
    assert sr.code_hash(["def f(): return 1"]) != sr.code_hash(["def f(): return 2"])
    sources = list(sr.loaded_sources())
    assert len(sources) == len(sr.CODE_MODULES) and "def train_run" in sources[0]
    assert sr.code_hash(sources) == sr.code_hash()
    assert sr.code_hash(sources[:-1] + [sources[-1] + "\n# edited"]) != sr.code_hash()


def test_a_run_as_a_row_names_its_switches_and_keeps_its_numbers():
    history = pd.DataFrame({"epoch": [1, 2, 3], "test_acc": [0.4, 0.6, 0.7], "train_time_s": [1.0, 2.5, 4.0]})
    fit = train.FitResult(history=history, train_time_s=4.0, images_seen=300, target_acc=0.55)
    cfg = sr.with_switches(TINY, ["momentum", "in_memory"])
    row = sr.Run(fit, setup_s=0.1, config=asdict(cfg), seed=3, skipped={"compile": "no", "amp": "cpu"}).as_row()
    assert row["label"] == "in_memory+momentum"  # in the order of sr.SWITCHES, not the order ticked
    assert row["time_to_target_s"] == 2.5 and row["final_acc"] == 0.7 and row["train_time_s"] == 4.0
    assert row["seed"] == 3 and row["skipped"] == ["amp", "compile"] and row["interrupted"] is False
    assert row["code_hash"] == sr.code_hash() and row["config"]["momentum"] is True
    naive = sr.Run(fit, setup_s=0.0, config=asdict(TINY)).as_row()
    assert naive["label"] == "naive" and naive["skipped"] == []


def test_panel_keeps_every_run_and_prints(tiny_inputs, capsys):
    splits, source = tiny_inputs
    panel = sr_ui.SpeedrunPanel(TINY, splits, source, device="cpu")
    panel.run([])
    panel.run(["in_memory"], seed=1)
    out = capsys.readouterr().out
    assert "run #1 [naive]" in out and "run #2 [in_memory]" in out and "code_hash" in out
    board = panel.leaderboard()
    assert len(board) == 2 and panel.curves.value and "code_hash" in panel.table.value
    assert panel.entries[1]["config"]["in_memory"] is True
    with pytest.raises(LabkitError, match="choose from"):
        panel.run(["warp_drive"])


def test_check_speedrun_refuses_a_run_where_the_techniques_did_nothing():
    from types import SimpleNamespace as Fake
    naive = Fake(name="naive", all_reached=True, reached=1, runs=[None], skipped=None, epoch_time_s=1.0)
    fast = Fake(name="+ in_memory", all_reached=True, reached=1, runs=[None], skipped=None, epoch_time_s=0.5)
    sr.check_speedrun([naive, fast])
    with pytest.raises(LabkitError, match="in memory did not make an epoch faster"):
        sr.check_speedrun([naive, Fake(**{**vars(fast), "epoch_time_s": 1.2})])
    sr.check_speedrun([naive, Fake(**{**vars(fast), "epoch_time_s": 1.2})], "smoke")  # seconds-long epochs: no verdict
    with pytest.raises(LabkitError, match="naive run reached the target in only 0"):
        sr.check_speedrun([Fake(**{**vars(naive), "all_reached": False, "reached": 0}), fast])


def test_headline_keys(tiny_inputs, monkeypatch):
    # on 192 tiny images the PNG pipeline's extra cost per epoch is a few ms, within the noise of a busy
    # machine, so the speed check is left to the test above and to the real runs
    monkeypatch.setattr(sr, "check_speedrun", lambda rows, run_mode: None)
    monkeypatch.setattr(sr, "load_inputs", lambda run_mode=None, device="auto": tiny_inputs)
    monkeypatch.setattr(sr.env, "device", lambda prefer="auto": torch.device("cpu"))
    report = sr.headline("smoke", cfg=sr.with_switches(TINY, [], target_acc=0.3))
    h = report.headline
    for key in ("naive_time_to_target_s", "best_time_to_target_s", "speedup_vs_naive", "naive_final_acc",
                "best_final_acc", "target_acc"):
        assert key in h and h[key] is not None, key
    assert h["speedup_vs_naive"] == pytest.approx(h["naive_time_to_target_s"] / h["best_time_to_target_s"])
    assert len(report.config["code_hash"]) == 12 and report.config["leaderboard"]
    assert "naive" in report.card.variants and "+ distill" in report.card.variants
    assert report.to_json()
