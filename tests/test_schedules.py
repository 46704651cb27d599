"""labkit.techniques.schedules, its explorer and its exercise checks, on tiny synthetic data."""

import math

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from labkit import LabkitError, env, models, train
from labkit.exercises import Hint
from labkit.exercises import schedules as check
from labkit.techniques import schedules
from labkit.ui import schedules as sched_ui


def tiny_cfg(**changes) -> schedules.ScheduleConfig:
    base = dict(width=16, lr=0.05, epochs=3, batch_size=64, warmup_epochs=1, target_acc=0.5, seeds=(0, 1))
    return schedules.ScheduleConfig(**(base | changes))


def fake_fit(accs: list[float], lr: float = 0.05) -> train.FitResult:
    history = pd.DataFrame({"epoch": range(1, len(accs) + 1), "lr": lr, "train_loss": 1.0, "test_acc": accs,
                            "train_time_s": [0.1 * (i + 1) for i in range(len(accs))]})
    return train.FitResult(history=history, train_time_s=0.1 * len(accs), images_seen=100 * len(accs), target_acc=0.8)


# ----------------------------------------------------------------------------- schedules
def test_every_schedule_peaks_at_the_rate_and_all_but_constant_anneal():
    for name in schedules.SCHEDULES:
        rates = schedules.lr_trace(name, lr=0.1, epochs=4, steps_per_epoch=25)
        assert len(rates) == 100
        assert math.isclose(max(rates), 0.1, rel_tol=1e-3), name
        if name == "constant":
            assert set(rates) == {0.1}
        else:
            assert rates[-1] < 0.01, name


def test_schedules_have_the_shapes_they_claim():
    step = schedules.lr_trace("step", lr=1.0, epochs=4, steps_per_epoch=25)
    assert step[49] == 1.0 and math.isclose(step[50], 0.1) and math.isclose(step[75], 0.01)
    cosine = schedules.lr_trace("cosine", lr=1.0, epochs=4, steps_per_epoch=25)
    assert math.isclose(cosine[50], 0.5, abs_tol=1e-9)
    exponential = schedules.lr_trace("exponential", lr=1.0, epochs=4, steps_per_epoch=25)
    assert math.isclose(exponential[-1], 0.01 ** (99 / 100), rel_tol=1e-6)
    warm = schedules.lr_trace("warmup_cosine", lr=1.0, epochs=4, steps_per_epoch=25, warmup_epochs=1)
    assert math.isclose(warm[0], 0.01) and math.isclose(warm[25], 1.0) and warm[12] < warm[24] < warm[25]
    onecycle = schedules.lr_trace("onecycle", lr=1.0, epochs=4, steps_per_epoch=25)
    assert math.isclose(onecycle[0], 1 / 25) and onecycle.index(max(onecycle)) == 29  # 30 % of 100 steps


def test_one_cycle_cycles_momentum_only_where_there_is_momentum():
    for momentum, start in ((0.9, 0.95), (0.0, 0.0)):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=momentum)
        schedules.make_scheduler("onecycle", opt, 100)
        assert opt.param_groups[0]["momentum"] == start  # plain SGD must not get momentum switched on


def test_stepping_per_epoch_barely_moves_a_per_batch_plan():
    planned = schedules.lr_trace("cosine", lr=1.0, epochs=10, steps_per_epoch=100)
    per_epoch = schedules.lr_trace("cosine", lr=1.0, epochs=10, steps_per_epoch=100, step_per="epoch")
    assert planned[-1] < 1e-3 and per_epoch[-1] > 0.99
    assert per_epoch[:100] == [1.0] * 100  # no change inside an epoch


def test_bad_schedule_inputs_raise_one_line_errors():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(LabkitError, match="choose one of"):
        schedules.make_scheduler("cosin", opt, 10)
    with pytest.raises(LabkitError, match="at least 1"):
        schedules.make_scheduler("cosine", opt, 0)
    with pytest.raises(LabkitError, match="warmup_steps"):
        schedules.make_scheduler("warmup_cosine", opt, 10, warmup_steps=10)
    with pytest.raises(LabkitError, match="greater than 0"):
        schedules.lr_trace("cosine", lr=0.0, epochs=2, steps_per_epoch=5)
    with pytest.raises(LabkitError, match="'batch' or 'epoch'"):
        schedules.lr_trace("cosine", lr=0.1, epochs=2, steps_per_epoch=5, step_per="week")


def test_train_schedule_anneals_and_learns(tiny_splits):
    fit = schedules.train_schedule("cosine", tiny_splits, tiny_cfg(), seed=0, device="cpu")
    assert fit.history["lr"].iloc[-1] < 1e-6 and fit.final_acc > 0.5


def test_check_annealed_catches_a_schedule_that_did_not_take_effect():
    with pytest.raises(LabkitError, match="stepped once per batch"):
        schedules.check_annealed("cosine", fake_fit([0.5, 0.6], lr=0.05), 0.05)
    with pytest.raises(LabkitError, match="constant rate ended"):
        schedules.check_annealed("constant", fake_fit([0.5, 0.6], lr=0.01), 0.05)
    schedules.check_annealed("cosine", fake_fit([0.5, 0.6], lr=1e-5), 0.05)


# ----------------------------------------------------------------------------- seeds and the headline
def test_seed_summary_counts_missed_targets_as_budget_plus_one():
    summary = schedules.SeedSummary("x", [fake_fit([0.7, 0.85, 0.9]), fake_fit([0.7, 0.75, 0.79])], budget=3)
    assert summary.epochs == [2, 4] and summary.reached == 1
    row = summary.row()
    assert row["epochs_to_target"] == 3 and row["seeds_at_target"] == "1/2"
    assert math.isclose(row["accuracy"], (0.9 + 0.79) / 2)


def test_headline_numbers_use_the_best_annealed_schedule():
    s = {"constant": schedules.SeedSummary("constant", [fake_fit([0.7, 0.8, 0.8, 0.82])], 4),
         "cosine": schedules.SeedSummary("cosine", [fake_fit([0.7, 0.8, 0.84, 0.86])], 4),
         "step": schedules.SeedSummary("step", [fake_fit([0.8, 0.8, 0.83, 0.85])], 4)}
    h = schedules.headline_numbers(s)
    assert set(h) == {"epochs_to_target_constant", "epochs_to_target_cosine", "epochs_to_target_step",
                      "best_vs_constant", "final_acc_gain_pt"}
    assert h["epochs_to_target_constant"] == 2 and h["epochs_to_target_step"] == 1
    assert h["best_vs_constant"] == 0.5 and math.isclose(h["final_acc_gain_pt"], 4.0)
    with pytest.raises(LabkitError, match="constant"):
        schedules.headline_numbers({"cosine": s["cosine"]})


def test_headline_returns_exactly_the_issue_keys(tiny_splits, monkeypatch):
    monkeypatch.setattr(schedules, "config_for", lambda run_mode=None: tiny_cfg(epochs=2, seeds=(0,)))
    monkeypatch.setattr(schedules.data, "load_for_mode", lambda run_mode=None, **kw: tiny_splits)
    report = schedules.headline("smoke")
    expected = {f"epochs_to_target_{n}" for n in schedules.SCHEDULES} | {"best_vs_constant", "final_acc_gain_pt"}
    assert set(report.headline) == expected
    assert report.card.variants == list(schedules.SCHEDULES) and report.card.baseline == "constant"
    assert report.config["lr"] == 0.05 and report.name == "schedules"
    assert "epochs_to_target ×" in report.card.to_text()


def test_smoke_and_full_configs_differ_in_size_only():
    smoke, full = schedules.config_for("smoke"), schedules.config_for("full")
    assert smoke.epochs < full.epochs and len(full.seeds) >= 3 and smoke.lr == full.lr


# ----------------------------------------------------------------------------- range test
def test_smooth_is_a_bias_corrected_average():
    assert schedules.smooth([4.0, 2.0, 2.0], 0.5) == pytest.approx([4.0, 2 / 0.75, 2 / 0.875])
    assert schedules.smooth([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])
    with pytest.raises(LabkitError, match="beta"):
        schedules.smooth([1.0], 1.0)


def test_range_test_restores_model_and_optimizer(tiny_splits):
    env.seed_everything(0)
    model = models.MLP(width=16, num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train.fit(model, tiny_splits, epochs=1, opt=opt, batch_size=64, device="cpu", progress=False)  # momentum buffers exist
    weights = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    buffers = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    test = schedules.lr_range_test(model, tiny_splits, opt=opt, steps=40, batch_size=32)
    assert torch.equal(nn.utils.parameters_to_vector(model.parameters()), weights)
    assert all(torch.equal(opt.state[p]["momentum_buffer"], b) for p, b in zip(model.parameters(), buffers))
    assert opt.param_groups[0]["lr"] == 0.01
    assert test.lrs[0] == pytest.approx(1e-4) and all(a < b for a, b in zip(test.lrs, test.lrs[1:]))
    assert test.suggested_lr == pytest.approx(test.min_loss_lr / 10)
    assert test.stopped_early == (len(test.lrs) < 40)


def test_range_test_stops_when_the_loss_blows_up(tiny_splits):
    env.seed_everything(0)
    test = schedules.lr_range_test(models.MLP(width=16, num_classes=4), tiny_splits, lr_max=1e6, steps=60)
    assert test.stopped_early and len(test.lrs) < 60
    assert 1e-4 < test.min_loss_lr < 1e6


def test_range_test_refuses_bad_ranges(tiny_splits):
    model = models.MLP(width=8, num_classes=4)
    with pytest.raises(LabkitError, match="lr_min < lr_max"):
        schedules.lr_range_test(model, tiny_splits, lr_min=1.0, lr_max=0.1)
    with pytest.raises(LabkitError, match="at least 10"):
        schedules.lr_range_test(model, tiny_splits, steps=3)


def test_range_test_spread_gives_one_test_per_seed(tiny_splits):
    tests = schedules.range_test_spread(tiny_splits, (0, 1), width=16, steps=30, batch_size=32)
    assert len(tests) == 2 and tests[0].losses != tests[1].losses


# ----------------------------------------------------------------------------- early stopping, holdout
def _state(model, accs):
    return train.FitState(model=model, opt=None, epoch=len(accs), rows=[{"test_acc": a} for a in accs])


def test_early_stopping_stops_after_patience_and_restores_the_best():
    model = nn.Linear(2, 2)
    stopper = schedules.EarlyStopping(patience=2)
    accs = [0.80, 0.79, 0.84, 0.85, 0.84, 0.86, 0.85, 0.85, 0.88]
    stops = []
    for i in range(len(accs)):
        with torch.no_grad():
            model.weight.fill_(float(i))  # the weights at epoch i + 1
        stops.append(stopper.on_epoch_end(_state(model, accs[:i + 1])))
        if stops[-1]:
            break
    assert len(stops) == 8 and stopper.stopped_epoch == 8 and stopper.best_epoch == 6
    stopper.restore(model)
    assert model.weight.flatten()[0].item() == 5.0  # epoch 6's weights


def test_early_stopping_inside_fit_uses_the_callback(tiny_splits):
    stopper = schedules.EarlyStopping(patience=1, min_delta=1.0)  # nothing can improve by 100 points
    fit = train.fit(models.MLP(width=8, num_classes=4), tiny_splits, epochs=5, batch_size=64, callbacks=[stopper],
                    device="cpu", progress=False)
    assert len(fit.history) == 2 and stopper.stopped_epoch == 2


def test_bad_early_stopping_inputs():
    with pytest.raises(LabkitError, match="patience"):
        schedules.EarlyStopping(patience=0)
    with pytest.raises(LabkitError, match="fit"):
        schedules.EarlyStopping().restore(nn.Linear(1, 1))


def test_holdout_keeps_the_test_split_unseen(tiny_splits):
    fit_splits, test_splits = schedules.holdout(tiny_splits, 56)
    assert len(fit_splits.y_train) == 200 and len(fit_splits.y_test) == 56
    assert test_splits is tiny_splits
    rows = {tuple(x.flatten()[:20].tolist()) for x in fit_splits.X_train}
    assert not any(tuple(x.flatten()[:20].tolist()) in rows for x in fit_splits.X_test)
    with pytest.raises(LabkitError, match="n_val"):
        schedules.holdout(tiny_splits, 256)


def test_compare_early_stopping_runs_match_until_the_stop(tiny_splits):
    cfg = schedules.EarlyStopConfig(max_epochs=6, patience=1, n_val=64, width=8, seeds=(0,))
    (row,) = schedules.compare_early_stopping(tiny_splits, cfg, device="cpu")
    assert 1 <= row["epochs_used"] <= 6 and 0 <= row["test_acc_early"] <= 1
    assert len(row["val_history"]) == 6


def test_compare_plateau_runs_both_variants_on_every_seed(tiny_splits):
    cfg = schedules.EarlyStopConfig(max_epochs=4, patience=1, n_val=64, width=8, seeds=(0, 1))
    table = schedules.compare_plateau(tiny_splits, cfg, device="cpu")
    assert list(zip(table["seed"], table["variant"])) == [(0, "constant"), (0, "ReduceLROnPlateau"),
                                                           (1, "constant"), (1, "ReduceLROnPlateau")]
    constant = table[table["variant"] == "constant"]
    assert (constant["final_lr"] == cfg.lr).all() and all(c == [] for c in constant["rate_cut_in_epochs"])
    assert (table["final_lr"] <= cfg.lr).all() and table["test_acc"].between(0, 1).all()


# ----------------------------------------------------------------------------- large batch, claim check
def test_linear_scaling_and_the_large_batch_variants():
    assert schedules.linear_scaling_lr(0.05, 128, 512) == pytest.approx(0.2)
    variants = schedules.large_batch_variants(schedules.LargeBatchConfig())
    assert [v["lr"] for v in variants.values()] == pytest.approx([0.025, 0.025, 0.2, 0.2])
    assert [v["schedule"] for v in variants.values()][-1] == "warmup_cosine"
    with pytest.raises(LabkitError):
        schedules.linear_scaling_lr(0.0, 64, 512)


def test_compare_large_batch_on_tiny_data(tiny_splits):
    cfg = schedules.LargeBatchConfig(base_batch=16, big_batch=128, epochs=2, width=8, warmup_epochs=1, seeds=(0,))
    out = schedules.compare_large_batch(tiny_splits, cfg, target_acc=0.5, device="cpu")
    assert len(out) == 4 and all(len(s.fits) == 1 for s in out.values())


def test_sweep_reuses_known_runs_and_finds_the_highest_stable_rate(tiny_splits):
    cfg = tiny_cfg(epochs=2, seeds=(0,))
    known = {0.05: schedules.SeedSummary("constant", [fake_fit([0.5, 0.6])], 2)}
    sweep = schedules.constant_lr_sweep(tiny_splits, (0.05, 50.0), cfg, known=known, device="cpu")
    assert list(sweep) == [0.05, 50.0] and sweep[0.05] is known[0.05]
    assert schedules.diverged(sweep[50.0].fits[0], 4)  # a rate of 50 blows up
    assert schedules.highest_stable_lr(sweep, 4) == 0.05
    with pytest.raises(LabkitError, match="every rate"):
        schedules.highest_stable_lr({50.0: sweep[50.0]}, 4)


# ----------------------------------------------------------------------------- the explorer and plots
def test_explorer_draws_prints_and_explains_bad_values():
    explorer = sched_ui.ScheduleExplorer(schedule="cosine", epochs=4, steps_per_epoch=10)
    assert bytes(explorer.image.value).startswith(b"\x89PNG") and "step() every=batch" in explorer.summary
    explorer.step_per.value = "epoch"
    assert "step() every=epoch" in explorer.summary
    for control, bad in ((explorer.lr, 0.0), (explorer.lr, -0.1)):
        control.value = bad
        assert explorer.summary.startswith("⚠") and "greater than 0" in explorer.summary
        assert "⚠" in explorer.message.value
    explorer.lr.value = 0.05
    explorer.steps_per_epoch.value = 0
    assert explorer.summary.startswith("⚠") and "batches / epoch=0" in explorer.summary
    explorer.steps_per_epoch.value = 10**9  # bounded: the trace would take minutes and gigabytes
    assert explorer.summary.startswith("⚠") and "from 1 to 1000" in explorer.summary
    explorer.epochs.value, explorer.steps_per_epoch.value, explorer.schedule.value = 1, 1, "warmup_cosine"
    assert "needs at least 2 steps" in explorer.summary  # was a ZeroDivisionError


def test_first_epoch_at_and_epochs_vs_target_count_a_miss_as_budget_plus_one():
    assert schedules.first_epoch_at(fake_fit([0.7, 0.8, 0.9]), 0.8) == 2
    assert schedules.first_epoch_at(fake_fit([0.7, 0.8, 0.9]), 0.7) == 1
    assert schedules.first_epoch_at(fake_fit([0.7, 0.8]), 0.85) is None
    s = {"constant": schedules.SeedSummary("constant", [fake_fit([0.7, 0.8]), fake_fit([0.6, 0.82])], 2),
         "cosine": schedules.SeedSummary("cosine", [fake_fit([0.7, 0.85]), fake_fit([0.72, 0.84])], 2)}
    curves = schedules.epochs_vs_target(s, [0.7, 0.81, 0.85])
    assert [p["target"] for p in curves["constant"]] == [0.7, 0.81, 0.85]
    assert [p["epochs"] for p in curves["constant"]] == [1.5, 2.5, 3]  # seed 0 misses 0.81: budget + 1 = 3
    assert [p["censored"] for p in curves["constant"]] == [False, True, True]
    assert [p["epochs"] for p in curves["cosine"]] == [1, 2, 2.5]
    assert [p["censored"] for p in curves["cosine"]] == [False, False, True]


def test_summarize_trace_reads_a_trace_by_hand():
    assert schedules.summarize_trace([0.1, 0.3, 0.2]) == pytest.approx({"first": 0.1, "max": 0.3, "last": 0.2,
                                                                         "mean": 0.2})
    onecycle = schedules.summarize_trace(schedules.lr_trace("onecycle", lr=0.1, epochs=2, steps_per_epoch=10))
    assert onecycle["max"] == pytest.approx(0.1, rel=1e-3) and onecycle["first"] < 0.01 and onecycle["last"] < 0.001
    with pytest.raises(LabkitError):
        schedules.summarize_trace([])


def test_plots_return_figures():
    s = {"constant": schedules.SeedSummary("constant", [fake_fit([0.7, 0.8]), fake_fit([0.6, 0.82])], 2),
         "cosine": schedules.SeedSummary("cosine", [fake_fit([0.7, 0.85]), fake_fit([0.72, 0.84])], 2)}
    test = schedules.RangeTest(lrs=[1e-3, 1e-2, 1e-1], losses=[2.0, 1.0, 3.0], smoothed=[2.0, 1.5, 2.0],
                               suggested_lr=1e-3, min_loss_lr=1e-2, stopped_early=True)
    figures = [sched_ui.plot_lr_traces({"a": [0.1, 0.05]}, 1), sched_ui.plot_range_tests([test], ["seed 0"]),
               sched_ui.plot_seed_curves(s, 0.8),
               sched_ui.plot_epochs_vs_target(schedules.epochs_vs_target(s, [0.75, 0.8, 0.85]), 2),
               sched_ui.plot_lr_sweep({0.05: s["constant"], 0.1: s["cosine"]}, 10)]
    assert all(isinstance(f, Figure) for f in figures)


# ----------------------------------------------------------------------------- exercise checks
def _right_warmup_cosine(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def test_warmup_cosine_check():
    assert "passed" in check.warmup_cosine(_right_warmup_cosine)
    assert "not attempted" in check.warmup_cosine(lambda s, w, t: None)
    wrong = {
        "sign": lambda s, w, t: s / w if s < w else 0.5 * (1 - math.cos(math.pi * (s - w) / (t - w))) + 1e-3 * 0,
        "progress from 0": lambda s, w, t: s / w if s < w else 0.5 * (1 + math.cos(math.pi * s / t)),
        "no warm-up": lambda s, w, t: 0.5 * (1 + math.cos(math.pi * s / t)),
        "the rate": lambda s, w, t: 0.1 * _right_warmup_cosine(s, w, t) * 100,
    }
    for why, fn in wrong.items():
        with pytest.raises(Hint):
            check.warmup_cosine(fn)
    with pytest.raises(Hint, match="ZeroDivisionError"):
        check.warmup_cosine(lambda s, w, t: 1 / 0)


def test_smoothing_check():
    def right(losses, beta):
        avg, out = 0.0, []
        for i, loss in enumerate(losses, 1):
            avg = beta * avg + (1 - beta) * loss
            out.append(avg / (1 - beta ** i))
        return out

    def uncorrected(losses, beta):
        avg, out = 0.0, []
        for loss in losses:
            avg = beta * avg + (1 - beta) * loss
            out.append(avg)
        return out

    assert "passed" in check.smoothing(right)
    assert "not attempted" in check.smoothing(lambda losses, beta: None)
    with pytest.raises(Hint, match="bias"):
        check.smoothing(uncorrected)


def test_later_seeds_get_only_the_stop_check(tiny_splits):
    class Recorder:
        def __init__(self):
            self.epochs = 0

        def on_batch_end(self, state):
            return False

        def on_epoch_end(self, state):
            self.epochs += 1

    recorder = Recorder()
    summary = schedules.train_seeds("cosine", tiny_splits, tiny_cfg(epochs=2, seeds=(0, 1)), callbacks=[recorder],
                                    device="cpu")
    assert len(summary.fits) == 2 and recorder.epochs == 2  # the first seed's epochs only


def test_plateau_callback_cuts_the_rate_when_the_metric_stalls():
    from labkit import train
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = schedules.PlateauCallback(factor=0.5, patience=1)
    state = train.FitState(model=model, opt=opt)
    for epoch, acc in enumerate([0.5, 0.6, 0.6, 0.6, 0.6], start=1):
        state.epoch, state.rows = epoch, state.rows + [{"test_acc": acc}]
        assert plateau.on_epoch_end(state) is False
    assert plateau.lrs[:3] == [0.1, 0.1, 0.1] and opt.param_groups[0]["lr"] < 0.1
    with pytest.raises(LabkitError, match="factor"):
        schedules.PlateauCallback(factor=1.5)
