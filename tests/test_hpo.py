"""Hyperparameter search: the space, the four methods at one budget, pruning, best-so-far, the explorer,
the exercise checks."""

import math
import random

import pytest

from labkit import LabkitError
from labkit.exercises import Hint
from labkit.exercises import hpo as check
from labkit.techniques import hpo
from labkit.techniques.hpo import Choice, Float
from labkit.ui import hpo as hpo_ui


def _space(lr_grid=(0.01, 0.3)):
    return {"lr": Float(1e-3, 1.0, log=True, grid=lr_grid), "momentum": Float(0.85, 0.95, grid=(0.9,)),
            "width": Choice((8, 16), grid=(16,))}


def _cfg(**kw):
    return hpo.SearchConfig(**({"epochs": 2, "seeds": (0,), "space": _space(), "batch_size": 64} | kw))


def _splits(tiny_splits):
    return hpo.validation_split(tiny_splits, 0.25)


# --- the space and bad inputs -----------------------------------------------------------------

@pytest.mark.parametrize("space, message", [
    ({}, "search space is empty"),
    ({"lr": Float(0.1, 0.1, grid=(0.1,))}, "empty range"),
    ({"lr": Float(0.0, 1.0, log=True, grid=(0.1,))}, "log scale"),
    ({"lr": Float(0.01, 1.0)}, "no grid values"),
    ({"lr": Float(0.01, 1.0, grid=(3.0,))}, "outside its range"),
    ({"width": Choice(())}, "no values"),
    ({"width": Choice((8, 16), grid=(32,))}, "not among"),
    ({"lr": (0.01, 1.0)}, "Float"),
])
def test_bad_spaces_raise_one_clear_line(space, message):
    with pytest.raises(LabkitError, match=message):
        hpo.check_space(space)


def test_bad_budget_method_and_seeds(tiny_splits):
    with pytest.raises(LabkitError, match="budget is 0 epochs"):
        hpo.search("random", _splits(tiny_splits), _cfg(budget_epochs=0))
    with pytest.raises(LabkitError, match="grid, random, tpe, tpe_pruned"):
        hpo.search("bayes", _splits(tiny_splits), _cfg())
    with pytest.raises(LabkitError, match="seeds is empty"):
        hpo.check_config(_cfg(seeds=()))
    with pytest.raises(LabkitError, match="val_fraction"):
        hpo.validation_split(tiny_splits, 0.0)


def test_default_spaces_are_valid_and_the_grid_size_is_the_product():
    for mode in ("smoke", "full"):
        cfg = hpo.config_for(mode)
        hpo.check_config(cfg)
        assert cfg.budget() == hpo.grid_size(cfg.space) * cfg.epochs
    assert hpo.grid_size(hpo.default_space("full")) == 4 * 2 * 2 * 2
    assert hpo.grid_size(_space()) == 2


def test_validation_split_holds_out_training_images(tiny_splits):
    s = _splits(tiny_splits)
    assert len(s.y_test) == 64 and len(s.y_train) == 192  # a quarter of the 256 training images
    assert s.X_test.shape[1:] == tiny_splits.X_train.shape[1:]


# --- the methods ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", hpo.METHODS)
def test_every_method_spends_exactly_the_budget(tiny_splits, method):
    cfg = _cfg(budget_epochs=9, space=_space(lr_grid=(0.01, 0.1, 0.3)))
    records = hpo.search(method, _splits(tiny_splits), cfg, seed=0)
    assert sum(r.epochs for r in records) == 9
    assert [r.number for r in records] == list(range(len(records)))
    assert all(r.wall_s > 0 for r in records) and [r.wall_s for r in records] == sorted(r.wall_s for r in records)
    for r in records:
        assert len(r.curve) == r.epochs and (r.value is None) == r.pruned
        assert 1e-3 <= r.params["lr"] <= 1.0 and r.params["width"] in (8, 16)
    if method != "tpe_pruned":  # 9 epochs of 2-epoch trials: the last one is cut by the budget
        assert [r.epochs for r in records] == [2, 2, 2, 2, 1] and records[-1].pruned


def test_grid_tries_each_combination_once(tiny_splits):
    cfg = _cfg(space=_space(lr_grid=(0.003, 0.03, 0.3)))
    records = hpo.search("grid", _splits(tiny_splits), cfg, seed=1)
    assert sorted(r.params["lr"] for r in records) == [0.003, 0.03, 0.3]
    assert not any(r.pruned for r in records) and sum(r.epochs for r in records) == cfg.budget() == 6
    assert hpo.distinct_values(records, "lr") == 3 and hpo.distinct_values(records, "width") == 1


def test_pruning_stops_bad_trials_early(tiny_splits):
    """With a learning rate up to 1 some trials diverge or lag: the median pruner stops them after an epoch."""
    cfg = _cfg(epochs=4, budget_epochs=60)
    records = hpo.search("tpe_pruned", _splits(tiny_splits), cfg, seed=0)
    stopped = [r for r in records if r.pruned and r is not records[-1]]
    assert stopped and all(r.epochs < cfg.epochs for r in stopped)
    assert len(records) > 60 // cfg.epochs  # the epochs saved buy more trials
    plain = hpo.search("tpe", _splits(tiny_splits), cfg, seed=0)
    assert len(plain) == 15 and not any(r.pruned for r in plain)


def test_make_pruner_is_off_for_the_methods_without_pruning():
    import optuna

    assert isinstance(hpo.make_pruner("tpe_pruned"), optuna.pruners.MedianPruner)
    for m in ("grid", "random", "tpe"):
        assert isinstance(hpo.make_pruner(m), optuna.pruners.NopPruner)


# --- reading a search -------------------------------------------------------------------------

def _rec(n, value, wall, pruned=False, lr=0.1):
    return hpo.TrialRecord(n, {"lr": lr, "momentum": 0.9, "width": 16}, value, 2, wall, pruned, [])


def test_best_so_far_and_time_to_best():
    assert hpo.best_so_far([80.0, None, 78.5, 83.0, None, 82.0]) == [80.0, 80.0, 80.0, 83.0, 83.0, 83.0]
    first = hpo.best_so_far([None, 70.0])
    assert math.isnan(first[0]) and first[1] == 70.0
    recs = [_rec(0, 80.0, 1.0), _rec(1, None, 1.5, True), _rec(2, 84.6, 3.0), _rec(3, 85.0, 4.0)]
    assert hpo.best_value(recs) == 85.0
    assert hpo.time_to_best(recs) == 3.0           # 84.6 is within 0.5 point of 85.0
    assert hpo.time_to_best(recs, within_pt=0.1) == 4.0
    assert hpo.time_to_reach(recs, 90.0) == math.inf
    assert hpo.best_params(recs)["lr"] == 0.1
    with pytest.raises(LabkitError, match="No trial finished"):
        hpo.best_params([_rec(0, None, 1.0, True)])


def test_pruned_time_ratio_is_inf_when_never_reached():
    cfg = _cfg(seeds=(0, 1))
    runs = {"grid": {0: [_rec(0, 85.0, 2.0), _rec(1, 80.0, 10.0)], 1: [_rec(0, 85.0, 2.0), _rec(1, 84.0, 10.0)]},
            "tpe_pruned": {0: [_rec(0, 84.6, 3.0), _rec(1, 70.0, 9.0)], 1: [_rec(0, 80.0, 3.0)]}}
    comp = hpo.Comparison(cfg, runs, {m: {0: 80.0, 1: 80.0} for m in runs}, "smoke")
    assert hpo.grid_time_ratios(comp, "tpe_pruned") == [0.3, math.inf]
    assert hpo.grid_time_ratios(comp, "grid") == [0.2, 0.2]


def test_wasted_grid_trials():
    grid = {"lr": [0.001, 0.01, 0.1, 1.0], "momentum": [0.85, 0.95], "weight_decay": [1e-5, 1e-3], "width": [32, 128]}
    assert hpo.wasted_grid_trials(grid, "lr") == 28


def test_importance_finds_the_parameter_that_matters():
    """Synthetic trials whose value depends on lr only: lr must come out on top, by both methods' measure."""
    rng = random.Random(0)
    recs = []
    for n in range(60):
        lr = 10 ** rng.uniform(-3, 0)
        params = {"lr": lr, "momentum": rng.uniform(0.85, 0.95), "width": rng.choice((8, 16))}
        recs.append(hpo.TrialRecord(n, params, 90 - 10 * abs(math.log10(lr) + 1) + rng.gauss(0, 0.2), 2, n, False, []))
    imp = hpo.importance(recs, _space())
    assert max(imp, key=imp.get) == "lr" and imp["lr"] > 0.5 and math.isclose(sum(imp.values()), 1, abs_tol=1e-6)
    with pytest.raises(LabkitError, match="at least 4 finished"):
        hpo.importance(recs[:3], _space())


def test_ablation_varies_one_parameter_at_a_time(tiny_splits):
    out = hpo.ablation({"lr": 0.1, "momentum": 0.9, "width": 16}, _splits(tiny_splits), _cfg(epochs=1))
    assert set(out) == {"lr", "momentum", "width"}
    assert set(out["lr"]["accs"]) == {0.01, 0.3} and out["width"]["spread_pt"] == 0.0  # one grid value: no spread
    assert out["lr"]["spread_pt"] >= 0


# --- the headline and the explorer ------------------------------------------------------------

@pytest.fixture
def comparison(tiny_splits):
    return hpo.compare(_cfg(seeds=(0, 1), space=_space(lr_grid=(0.01, 0.1, 0.3))), tiny_splits, "smoke")


def test_summary_has_the_headline_keys(comparison):
    report = hpo.summarize(comparison)
    keys = {f"{k}_{m}" for k in ("best_acc", "time_to_best") for m in hpo.METHODS} | {"pruned_time_ratio",
                                                                                        "tpe_time_ratio"}
    assert set(report.headline) == keys
    assert report.card.variants == list(hpo.METHODS) and report.card.baseline == "grid"
    assert report.config["budget_epochs"] == 6 and report.config["space"]["lr"]["kind"] == "Float"
    assert all(0 <= report.headline[f"best_acc_{m}"] <= 100 for m in hpo.METHODS)
    assert report.to_json()  # config and headline are JSON-able (inf becomes null)


def test_winners_are_trained_again_on_the_searched_split_with_a_fresh_seed(comparison, tiny_splits, monkeypatch):
    """The winner's-curse check compares like with like: same split, same validation images, new seed."""
    calls = []
    real = hpo.train_trial
    monkeypatch.setattr(hpo, "train_trial", lambda params, splits, epochs, seed, *a, **kw: (
        calls.append((len(splits.X_train), len(splits.X_test), seed)), real(params, splits, epochs, seed, *a, **kw))[1])
    cfg = _cfg(seeds=(3,), space=_space(lr_grid=(0.01, 0.1)))
    comp = hpo.compare(cfg, tiny_splits, "smoke", methods=("grid",))
    searched = hpo.validation_split(tiny_splits, cfg.val_fraction)
    rerun, test = calls[-2], calls[-1]
    assert rerun == (len(searched.X_train), len(searched.X_test), 3 + hpo.RERUN_SEED)
    assert test == (len(tiny_splits.X_train), len(tiny_splits.X_test), 3)
    assert 0 < comp.rerun_val["grid"][3] <= 100
    per_seed = hpo.summarize(comparison).config["per_seed"]
    assert all(len(per_seed[m]["rerun_val_pct"]) == 2 for m in hpo.METHODS)


def test_headline_smoke_with_a_tiny_config():
    cfg = hpo.SearchConfig(epochs=1, seeds=(0,), space={"lr": Float(1e-2, 0.5, log=True, grid=(0.05, 0.2))})
    report = hpo.headline("smoke", cfg)
    assert {"pruned_time_ratio", "best_acc_grid", "time_to_best_tpe_pruned"} <= set(report.headline)
    assert report.mode == "smoke"
    assert report.config["epochs"] == 1


def _synthetic_comparison() -> hpo.Comparison:
    """Two methods, one seed, 30 trials each whose value depends on lr only; every fifth stopped (no training)."""
    rng = random.Random(0)
    runs = {}
    for m in ("grid", "random"):
        recs = []
        for n in range(30):
            lr = 10 ** rng.uniform(-3, 0)
            params = {"lr": lr, "momentum": rng.uniform(0.85, 0.95), "width": rng.choice((8, 16))}
            value = None if n % 5 == 4 else 90 - 10 * abs(math.log10(lr) + 1)
            recs.append(hpo.TrialRecord(n, params, value, 2, 0.5 * (n + 1), value is None, []))
        runs[m] = {0: recs}
    return hpo.Comparison(_cfg(), runs, {m: {0: 80.0} for m in runs}, "smoke")


def test_summarize_trials_reads_the_first_trials_of_one_seed():
    comp = _synthetic_comparison()
    view = hpo.summarize_trials(comp, "random", 0, 10)
    for m in ("grid", "random"):
        recs = comp.runs[m][0][:10]
        assert view.methods[m] == {"best_pct": max(r.value for r in recs if r.value is not None), "wall_s": 5.0,
                                   "stopped_early": 2, "lr_values": 10}
    assert view.importance_error is None and max(view.importance, key=view.importance.get) == "lr"
    assert view.importance == pytest.approx(hpo.importance(comp.runs["random"][0][:10], comp.cfg.space))
    few = hpo.summarize_trials(comp, "random", 0, 3)
    assert few.importance is None and "at least 4 finished" in few.importance_error
    assert few.methods["grid"]["wall_s"] == 1.5 and few.methods["grid"]["stopped_early"] == 0
    with pytest.raises(LabkitError, match="Unknown search method"):
        hpo.summarize_trials(comp, "bayes", 0, 10)


def test_explorer_computes_importance_once_per_redraw(monkeypatch):
    calls = []
    real = hpo.importance
    monkeypatch.setattr(hpo, "importance", lambda *args: calls.append(args) or real(*args))
    explorer = hpo_ui.SearchExplorer(_synthetic_comparison(), method="random")
    assert len(calls) == 1 and bytes(explorer.bars.value).startswith(b"\x89PNG")
    assert explorer.summary.splitlines()[-1].startswith("  importance (random): ") and "lr=" in explorer.summary
    explorer.trials.value = 12
    assert len(calls) == 2 and explorer.summary.startswith("seed 0, first 12 trials:")


def test_explorer_redraws_and_summarises(comparison):
    explorer = hpo_ui.SearchExplorer(comparison, method="random")
    assert bytes(explorer.picture.value).startswith(b"\x89PNG")
    assert "grid: best_pct=" in explorer.summary and "tpe_pruned" in explorer.summary
    picture = explorer.picture.value
    explorer.trials.value = 2
    assert "first 2 trials" in explorer.summary and explorer.picture.value != picture
    assert "at least 4 finished" in explorer.summary  # too few trials for importance: said, not raised
    explorer.seed.value = 1
    assert explorer.summary.startswith("seed 1")
    with pytest.raises(LabkitError, match="Unknown search method"):
        hpo_ui.SearchExplorer(comparison, method="bayes")


def test_plots_draw(comparison):
    from labkit.ui import figure_png

    records = comparison.runs["tpe_pruned"][0]
    for fig in (hpo_ui.plot_best_so_far(comparison), hpo_ui.plot_trial_curves(records),
                hpo_ui.plot_importance({"lr": 0.8, "width": 0.2}, {"lr": 40.0, "width": 0.5})):
        assert figure_png(fig).startswith(b"\x89PNG")


# --- the exercise checks ----------------------------------------------------------------------

def test_log_uniform_check():
    assert "passed" in check.log_uniform(lambda lo, hi, u: lo * (hi / lo) ** u)
    assert "passed" in check.log_uniform(lambda lo, hi, u: math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
    with pytest.raises(Hint, match="linear scale"):
        check.log_uniform(lambda lo, hi, u: lo + u * (hi - lo))
    with pytest.raises(Hint, match="same base"):
        check.log_uniform(lambda lo, hi, u: 10 ** (math.log(lo) + u * (math.log(hi) - math.log(lo))))
    with pytest.raises(Hint, match="u = 0 must give low"):
        check.log_uniform(lambda lo, hi, u: math.sqrt(lo * hi))
    assert "not attempted" in check.log_uniform(lambda lo, hi, u: None)


def test_best_so_far_check():
    assert "passed" in check.best_so_far(hpo.best_so_far)
    with pytest.raises(Hint, match="running MAXIMUM"):
        check.best_so_far(lambda values: list(values))
    with pytest.raises(Hint, match="previous best"):
        check.best_so_far(lambda values: [v if v is None else max(x for x in values[:i + 1] if x is not None)
                                          for i, v in enumerate(values)])
    with pytest.raises(Hint, match="one number per trial"):
        check.best_so_far(lambda values: [v for v in values if v is not None])
    assert "not attempted" in check.best_so_far(lambda values: None)


def test_median_rule_check():
    import statistics

    assert "passed" in check.median_rule(lambda acc, earlier: bool(earlier) and acc < statistics.median(earlier))
    with pytest.raises(Hint, match="MEAN"):
        check.median_rule(lambda acc, earlier: bool(earlier) and acc < statistics.mean(earlier))
    with pytest.raises(Hint, match="use <, not <="):
        check.median_rule(lambda acc, earlier: bool(earlier) and acc <= statistics.median(earlier))
    with pytest.raises(Hint, match="raised StatisticsError"):
        check.median_rule(lambda acc, earlier: acc < statistics.median(earlier))
    with pytest.raises(Hint, match="even count"):
        check.median_rule(lambda acc, earlier: bool(earlier) and acc < sorted(earlier)[len(earlier) // 2])
    assert "not attempted" in check.median_rule(lambda acc, earlier: None)


def test_wasted_trials_check():
    import math as m

    def right(grid, important):
        return m.prod(len(v) for v in grid.values()) - len(grid[important])

    assert "passed" in check.wasted_trials(right)
    assert "passed" in check.wasted_trials(hpo.wasted_grid_trials)
    with pytest.raises(Hint, match="every trial"):
        check.wasted_trials(lambda grid, important: m.prod(len(v) for v in grid.values()))
    with pytest.raises(Hint, match="how many learning rates"):
        check.wasted_trials(lambda grid, important: len(grid[important]))
    with pytest.raises(Hint, match="important"):
        check.wasted_trials(lambda grid, important: m.prod(len(v) for v in grid.values()) - len(grid["lr"]))
    assert "not attempted" in check.wasted_trials(lambda grid, important: None)
