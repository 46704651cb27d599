"""Hyperparameter search: grid, random, Bayesian (TPE) and TPE that stops bad trials early, at one budget.

The task: train the lab's MLP on Fashion-MNIST for `epochs` epochs (SGD with momentum, cosine decay),
choosing its learning rate, momentum, weight decay and width. The search scores each trial on a
VALIDATION split carved from the training images: picking the best of many trials by test accuracy
would tune to the test set and report an optimistic number. Test accuracy is measured once per
method, for its winning setting, retrained on all training images.

The four methods (Optuna 5 does the sampling and the pruning):
- grid: every combination of a few values per hyperparameter (`GridSampler`);
- random: independent draws from the ranges, log-uniform where the scale is logarithmic (`RandomSampler`);
- tpe: Bayesian search with a Tree-structured Parzen Estimator (`TPESampler`, Optuna's defaults);
- tpe_pruned: the same TPE, plus `MedianPruner`: a trial whose validation accuracy after an epoch is
  below the median of earlier trials at that epoch stops there.
Every method gets the same budget of training EPOCHS: as many as the grid needs (grid trials × epochs).
Pruned trials spend fewer epochs, so tpe_pruned runs more trials within the same budget.

Headline (`labkit bench hpo`), over `seeds` (sampler and training seed; search is noisy):
- best_acc_<method>: the best validation accuracy the search found, in percent, mean over seeds.
- time_to_best_<method>: wall seconds from the start of the search until it first came within
  WITHIN_PT (0.5) points of its own final best, median over seeds.
- pruned_time_ratio: wall time for tpe_pruned to come within 0.5 points of GRID's best (same seed),
  divided by grid's total wall time; median over seeds (a seed where it never gets there counts as inf).
- tpe_time_ratio: the same for TPE without pruning, so that what pruning itself adds is visible
  (the card has this ratio for every method: reach_grid_best_ratio).
Wall time counts everything a search does (training, evaluation, sampling), one CPU thread per run.
"""

from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable

import optuna
import torch

from labkit import data, env, models, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard

METHODS = ("grid", "random", "tpe", "tpe_pruned")
WITHIN_PT = 0.5  # "came within half a point of the best": about the seed-to-seed noise of one trial
RERUN_SEED = 1000  # the winner trained again with seed + this: fresh initialisation and batch order


# ----------------------------------------------------------------------------- the search space

@dataclass(frozen=True)
class Float:
    """A real-valued hyperparameter in [low, high] (sampled log-uniformly when `log`), and the
    values grid search tries."""

    low: float
    high: float
    log: bool = False
    grid: tuple[float, ...] = ()


@dataclass(frozen=True)
class Choice:
    """A hyperparameter with a few allowed values, and those grid search tries (default: all)."""

    values: tuple
    grid: tuple = ()

    def __post_init__(self):
        if not self.grid:
            object.__setattr__(self, "grid", tuple(self.values))


Space = dict[str, "Float | Choice"]


def default_space(run_mode: str | None = None) -> Space:
    """Four knobs of the MLP's training: the learning rate matters a lot, the rest much less."""
    return {
        "lr": Float(1e-3, 1.0, log=True, grid=env.pick(smoke=(0.01, 0.1, 1.0), full=(0.001, 0.01, 0.1, 1.0),
                                                        run_mode=run_mode)),
        "momentum": Float(0.85, 0.95, grid=(0.85, 0.95)),       # a narrow range: it barely matters
        "weight_decay": Float(1e-6, 1e-3, log=True, grid=env.pick(smoke=(1e-5,), full=(1e-5, 1e-3),
                                                                  run_mode=run_mode)),
        "width": Choice((32, 64, 128), grid=(32, 128)),          # hidden units of the MLP
    }


def check_space(space: Space) -> None:
    """Raise a one-line LabkitError for an empty space, an empty range or a grid value outside its range."""
    if not space:
        raise LabkitError("The search space is empty: give at least one hyperparameter, e.g. "
                          "{'lr': Float(1e-3, 1.0, log=True, grid=(0.01, 0.1))}.")
    for name, p in space.items():
        if isinstance(p, Choice):
            if not p.values:
                raise LabkitError(f"Hyperparameter {name!r} has no values to choose from: give at least one.")
            if set(p.grid) - set(p.values):
                raise LabkitError(f"Grid values {sorted(set(p.grid) - set(p.values))} of {name!r} are not among "
                                  f"its values {p.values}.")
        elif isinstance(p, Float):
            if not p.low < p.high:
                raise LabkitError(f"Hyperparameter {name!r} has an empty range [{p.low}, {p.high}]: low must be "
                                  "below high.")
            if p.log and p.low <= 0:
                raise LabkitError(f"Hyperparameter {name!r} is on a log scale, so its range must be above 0 "
                                  f"(low={p.low}).")
            if not p.grid:
                raise LabkitError(f"Hyperparameter {name!r} has no grid values: give a few, e.g. grid=(low, high).")
            outside = [v for v in p.grid if not p.low <= v <= p.high]
            if outside:
                raise LabkitError(f"Grid values {outside} of {name!r} are outside its range [{p.low}, {p.high}].")
        else:
            raise LabkitError(f"Hyperparameter {name!r} must be a Float(low, high, ...) or a Choice((...)), "
                              f"got {type(p).__name__}.")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise LabkitError(f"Unknown search method {method!r}: choose one of {', '.join(METHODS)}.")


def grid_size(space: Space) -> int:
    """How many trials grid search needs: the product of the number of grid values per hyperparameter."""
    return math.prod(len(p.grid) for p in space.values())


def suggest(trial: optuna.Trial, space: Space) -> dict:
    """Ask the trial's sampler for one value of each hyperparameter."""
    # shown in notebook 12_hyperparameter_search
    params = {}
    for name, p in space.items():
        if isinstance(p, Float):
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        else:
            params[name] = trial.suggest_categorical(name, p.values)
    return params


# ----------------------------------------------------------------------------- settings

@dataclass
class SearchConfig:
    """One comparison of search methods; saved with its results."""

    epochs: int = 6                    # epochs of a full trial (cosine decay over them)
    budget_epochs: int | None = None   # training epochs per search; None: the grid's (grid trials × epochs)
    seeds: tuple[int, ...] = (0, 1, 2)  # sampler and training seeds
    val_fraction: float = 0.2          # training images held out to score trials
    batch_size: int = 128
    threads: int = 1                   # CPU threads per training run: the small MLP is fastest on one
    space: Space = field(default_factory=default_space)

    def budget(self) -> int:
        return self.budget_epochs if self.budget_epochs is not None else grid_size(self.space) * self.epochs


def config_for(run_mode: str) -> SearchConfig:
    """Full mode: 32-trial grid × 6 epochs, 3 seeds (≈ 4 minutes on 2 cores); smoke: a 6-trial grid × 3 epochs."""
    return env.pick(smoke=SearchConfig(epochs=3, seeds=(0, 1), space=default_space("smoke")),
                    full=SearchConfig(space=default_space("full")), run_mode=run_mode)


def check_config(cfg: SearchConfig) -> None:
    check_space(cfg.space)
    if not isinstance(cfg.epochs, int) or cfg.epochs < 1:
        raise LabkitError(f"epochs={cfg.epochs!r} must be a whole number of at least 1.")
    if cfg.budget() <= 0:
        raise LabkitError(f"The budget is {cfg.budget()} epochs: give every search at least one epoch "
                          "(budget_epochs=None uses the grid's: grid trials × epochs).")
    if not cfg.seeds:
        raise LabkitError("seeds is empty: give at least one seed, e.g. seeds=(0,).")


# ----------------------------------------------------------------------------- one trial

def validation_split(splits: data.Splits, fraction: float = 0.2, seed: int = 0) -> data.Splits:
    """Train on (1 − fraction) of the training images and score on the rest: the test set stays unseen."""
    if not 0 < fraction < 1:
        raise LabkitError(f"val_fraction={fraction} must be between 0 and 1 (try 0.2).")
    order = torch.randperm(len(splits.y_train), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * fraction)
    val, keep = order[:n_val].to(splits.y_train.device), order[n_val:].to(splits.y_train.device)
    return data.Splits(splits.X_train[keep], splits.y_train[keep], splits.X_train[val], splits.y_train[val],
                       classes=splits.classes)


class _EachEpoch:
    """fit() callback: hands each epoch's held-out accuracy to `on_epoch`; stops training when it says so."""

    def __init__(self, on_epoch: Callable[[int, float], bool]):
        self.on_epoch = on_epoch

    def on_epoch_end(self, state: train.FitState) -> bool:
        return bool(self.on_epoch(state.epoch, state.rows[-1]["test_acc"]))


def train_trial(params: dict, splits: data.Splits, epochs: int, seed: int,
                on_epoch: Callable[[int, float], bool] | None = None,
                cfg: SearchConfig | None = None, total_epochs: int | None = None) -> list[float]:
    """Train the MLP with `params` for up to `epochs` epochs; return its accuracy on `splits`' held-out
    part after each epoch. `on_epoch(epoch, acc)` returning True stops it early. The cosine schedule
    spans `total_epochs` (default `epochs`), so a trial cut short follows the same schedule."""
    # shown in notebook 12_hyperparameter_search
    cfg = cfg or SearchConfig()
    env.seed_everything(seed)
    model = models.MLP(width=int(params.get("width", 64)))
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params.get("momentum", 0.9),
                          weight_decay=params.get("weight_decay", 0.0))
    span = total_epochs or epochs  # fit plans the schedule over `epochs`: stretch it to `span` epochs
    fit = train.fit(model, splits, epochs=epochs, batch_size=cfg.batch_size, opt=opt, seed=seed, progress=False,
                    scheduler=lambda o, total: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total * span // epochs),
                    callbacks=[_EachEpoch(on_epoch)] if on_epoch else (), device=splits.X_train.device)
    return fit.history["test_acc"].tolist()


# ----------------------------------------------------------------------------- the search

@dataclass
class TrialRecord:
    """One trial: what it tried, what it scored (percent; None if stopped early), what it cost."""

    number: int
    params: dict
    value: float | None      # validation accuracy (%) after the last epoch; None for a stopped trial
    epochs: int              # epochs it trained (≤ cfg.epochs)
    wall_s: float            # seconds since the search started, when this trial ended
    pruned: bool             # stopped early (by the pruner, or because the budget ran out)
    curve: list[float]       # validation accuracy (%) after each epoch it trained


def make_sampler(method: str, space: Space, seed: int) -> optuna.samplers.BaseSampler:
    # shown in notebook 12_hyperparameter_search
    check_method(method)
    if method == "grid":
        return optuna.samplers.GridSampler({name: list(p.grid) for name, p in space.items()}, seed=seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)  # Optuna's defaults: the first 10 trials are random


def make_pruner(method: str) -> optuna.pruners.BasePruner:
    """MedianPruner for tpe_pruned; no pruning otherwise (create_study's default pruner is a MedianPruner!)."""
    # shown in notebook 12_hyperparameter_search
    return optuna.pruners.MedianPruner() if method == "tpe_pruned" else optuna.pruners.NopPruner()


@contextmanager
def quiet_optuna():
    """Optuna logs one INFO line per trial; keep only warnings while searching."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def search(method: str, splits: data.Splits, cfg: SearchConfig, seed: int = 0) -> list[TrialRecord]:
    """Run one search until it has spent `cfg.budget()` training epochs; return its trials in order.

    `splits` holds the training images and the VALIDATION images (in its test fields).
    """
    # shown in notebook 12_hyperparameter_search
    check_method(method)
    check_config(cfg)
    budget = cfg.budget()
    records: list[TrialRecord] = []
    spent = 0
    start = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        params = suggest(trial, cfg.space)
        curve: list[float] = []

        def on_epoch(epoch: int, acc: float) -> bool:
            curve.append(100 * acc)
            trial.report(100 * acc, epoch)      # the pruner sees every epoch...
            return trial.should_prune()          # ...and may stop the trial here

        epochs = min(cfg.epochs, budget - spent)  # never beyond the budget
        train_trial(params, splits, epochs, seed, on_epoch, cfg, total_epochs=cfg.epochs)
        spent += len(curve)
        stopped = len(curve) < cfg.epochs
        records.append(TrialRecord(trial.number, params, None if stopped else curve[-1], len(curve),
                                   time.perf_counter() - start, stopped, curve))
        if stopped:
            raise optuna.TrialPruned()
        return curve[-1]

    with quiet_optuna(), env.cpu_threads(cfg.threads):
        study = optuna.create_study(direction="maximize", sampler=make_sampler(method, cfg.space, seed),
                                    pruner=make_pruner(method))
        while spent < budget:
            study.optimize(objective, n_trials=1)
    return records


# ----------------------------------------------------------------------------- reading a search

def best_so_far(values: list[float | None]) -> list[float]:
    """The running maximum of trial values; a stopped trial (None) keeps the best so far (NaN before any)."""
    best, out = float("nan"), []
    for v in values:
        if v is not None and not (v <= best):   # also true while best is NaN
            best = v
        out.append(best)
    return out


def time_to_reach(records: list[TrialRecord], target: float) -> float:
    """Wall seconds until the first finished trial scoring at least `target`; inf if none did."""
    for r in records:
        if r.value is not None and r.value >= target:
            return r.wall_s
    return math.inf


def best_value(records: list[TrialRecord]) -> float:
    values = [r.value for r in records if r.value is not None]
    return max(values) if values else float("nan")


def time_to_best(records: list[TrialRecord], within_pt: float = WITHIN_PT) -> float:
    """Wall seconds until the search first came within `within_pt` points of its OWN final best."""
    return time_to_reach(records, best_value(records) - within_pt)


def best_params(records: list[TrialRecord]) -> dict:
    finished = [r for r in records if r.value is not None]
    if not finished:
        raise LabkitError("No trial finished: give the search a larger budget.")
    return max(finished, key=lambda r: r.value).params


def distinct_values(records: list[TrialRecord], name: str) -> int:
    """How many different values of hyperparameter `name` the trials tried."""
    return len({round(r.params[name], 12) if isinstance(r.params[name], float) else r.params[name]
                for r in records})


def wasted_grid_trials(grid: dict[str, list], important: str) -> int:
    """Grid trials that only repeat an already-tried value of the one hyperparameter that matters."""
    return math.prod(len(v) for v in grid.values()) - len(grid[important])


# ----------------------------------------------------------------------------- importance

def to_study(records: list[TrialRecord], space: Space) -> optuna.Study:
    """An Optuna study holding the finished trials, so Optuna's tools can analyse them."""
    dists = {name: optuna.distributions.FloatDistribution(p.low, p.high, log=p.log) if isinstance(p, Float)
             else optuna.distributions.CategoricalDistribution(p.values) for name, p in space.items()}
    with quiet_optuna():
        study = optuna.create_study(direction="maximize")
        study.add_trials([optuna.trial.create_trial(params=r.params, distributions=dists, value=r.value)
                          for r in records if r.value is not None])
    return study


def importance(records: list[TrialRecord], space: Space) -> dict[str, float]:
    """Optuna's PED-ANOVA importance of each hyperparameter (sums to 1; numpy only, no extra packages).

    Best computed on RANDOM-search trials: they cover the space evenly; TPE's crowd around its favourites.
    """
    study = to_study(records, space)
    if len(study.trials) < 4:
        raise LabkitError(f"Importance needs at least 4 finished trials, got {len(study.trials)}.")
    with quiet_optuna():
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())


def ablation(params: dict, splits: data.Splits, cfg: SearchConfig, seed: int = 0) -> dict[str, dict]:
    """The plain way: from `params`, change ONE hyperparameter at a time over its grid values.

    Returns, per hyperparameter, the accuracy (%) at each value and the spread (max − min, points).
    """
    check_space(cfg.space)
    out = {}
    with env.cpu_threads(cfg.threads):
        for name, p in cfg.space.items():
            accs = {v: 100 * train_trial(params | {name: v}, splits, cfg.epochs, seed, cfg=cfg)[-1] for v in p.grid}
            out[name] = {"accs": accs, "spread_pt": max(accs.values()) - min(accs.values())}
    return out


# ----------------------------------------------------------------------------- measurement

@dataclass
class Comparison:
    """Every search of every method over the seeds, each winner's test accuracy, and each winner trained
    again on the searched split with a fresh seed (the like-with-like check of the winner's curse)."""

    cfg: SearchConfig
    runs: dict[str, dict[int, list[TrialRecord]]]   # method -> seed -> trials
    test_acc: dict[str, dict[int, float]]            # method -> seed -> test accuracy (%) of its best setting
    run_mode: str
    rerun_val: dict[str, dict[int, float]] = field(default_factory=dict)  # method -> seed -> validation acc (%)

    def records(self, method: str) -> list[TrialRecord]:
        """All trials of `method`, over every seed."""
        return [r for seed in self.cfg.seeds for r in self.runs[method][seed]]


def compare(cfg: SearchConfig, splits: data.Splits, run_mode: str = "full",
            methods: tuple[str, ...] = METHODS) -> Comparison:
    """Each method over each seed, seeds outside and methods inside (a busy moment hits all methods alike);
    then each search's best setting trained again with a fresh seed on the split it was searched on
    (scored on the same validation images), and retrained on all training images and scored on the test set."""
    check_config(cfg)
    for m in methods:
        check_method(m)
    search_splits = validation_split(splits, cfg.val_fraction)
    runs: dict[str, dict[int, list[TrialRecord]]] = {m: {} for m in methods}
    test_acc: dict[str, dict[int, float]] = {m: {} for m in methods}
    rerun_val: dict[str, dict[int, float]] = {m: {} for m in methods}
    for seed in cfg.seeds:
        for m in methods:
            runs[m][seed] = search(m, search_splits, cfg, seed)
    with env.cpu_threads(cfg.threads):
        for seed in cfg.seeds:
            for m in methods:
                best = best_params(runs[m][seed])
                rerun_val[m][seed] = 100 * train_trial(best, search_splits, cfg.epochs, seed + RERUN_SEED, cfg=cfg)[-1]
                test_acc[m][seed] = 100 * train_trial(best, splits, cfg.epochs, seed, cfg=cfg)[-1]
    return Comparison(cfg, runs, test_acc, run_mode, rerun_val)


def grid_time_ratios(comp: Comparison, method: str = "tpe_pruned") -> list[float]:
    """Per seed: wall time for `method` to come within 0.5 points of GRID's best / grid's total wall time.
    With method='tpe_pruned' this is the headline's pruned_time_ratio (before the median over seeds)."""
    out = []
    for seed in comp.cfg.seeds:
        grid = comp.runs["grid"][seed]
        reach = time_to_reach(comp.runs[method][seed], best_value(grid) - WITHIN_PT)
        out.append(reach / grid[-1].wall_s)
    return out


@dataclass
class SearchView:
    """One method's first `n_trials` trials of one seed, as the search explorer shows them."""

    seed: int
    n_trials: int
    method: str
    methods: dict[str, dict]                # every method -> best_pct, wall_s, stopped_early, lr_values
    importance: dict[str, float] | None     # `method`'s importance; None with too few trials
    importance_error: str | None = None     # why there is no importance


def summarize_trials(comp: Comparison, method: str, seed: int, n_trials: int) -> SearchView:
    """Per method at `n_trials` trials of `seed`: best so far, wall time, trials stopped early and learning
    rates tried; and the importance ranking of `method`'s trials (computed once, for the text and the bars)."""
    check_method(method)
    methods = {}
    for m, by_seed in comp.runs.items():
        recs = by_seed[seed][:n_trials]
        methods[m] = {"best_pct": best_so_far([r.value for r in recs])[-1] if recs else math.nan,
                      "wall_s": recs[-1].wall_s if recs else math.nan,
                      "stopped_early": sum(r.pruned for r in recs),
                      "lr_values": distinct_values(recs, "lr") if recs else 0}
    try:
        ranking, why = importance(comp.runs[method][seed][:n_trials], comp.cfg.space), None
    except LabkitError as error:  # too few finished trials: the explorer says so instead of drawing
        ranking, why = None, str(error)
    return SearchView(seed, n_trials, method, methods, ranking, why)


def summarize(comp: Comparison) -> BenchReport:
    """The result card (one row per method, numbers over seeds) and the headline."""
    cfg, seeds = comp.cfg, comp.cfg.seeds
    card = ResultCard(title=f"Hyperparameter search at one budget ({cfg.budget()} epochs per search)",
                      baseline="grid" if "grid" in comp.runs else None)
    headline: dict[str, float] = {}
    per_seed: dict[str, dict] = {}
    for m, by_seed in comp.runs.items():
        bests = [best_value(by_seed[s]) for s in seeds]
        times = [time_to_best(by_seed[s]) for s in seeds]
        tests = [comp.test_acc[m][s] for s in seeds]
        reruns = [comp.rerun_val[m][s] for s in seeds] if m in comp.rerun_val else []
        card.add({"variant": m, "accuracy": statistics.mean(tests) / 100,
                  "val_best_pct": statistics.mean(bests),
                  "val_best_std_pt": statistics.stdev(bests) if len(bests) > 1 else 0.0,
                  "val_rerun_pct": statistics.mean(reruns) if reruns else None,
                  "time_to_best_s": statistics.median(times),
                  "search_time_s": statistics.median(by_seed[s][-1].wall_s for s in seeds),
                  "trials": statistics.mean(len(by_seed[s]) for s in seeds),
                  "stopped_early": statistics.mean(sum(r.pruned for r in by_seed[s]) for s in seeds),
                  "lr_values_tried": statistics.mean(distinct_values(by_seed[s], "lr") for s in seeds)
                  if "lr" in cfg.space else None,
                  "reach_grid_best_ratio": statistics.median(grid_time_ratios(comp, m)) if "grid" in comp.runs
                  else None})
        headline[f"best_acc_{m}"] = statistics.mean(bests)
        headline[f"time_to_best_{m}"] = statistics.median(times)
        per_seed[m] = {"best_pct": bests, "time_to_best_s": times, "test_pct": tests, "rerun_val_pct": reruns,
                       "epochs_used": [sum(r.epochs for r in by_seed[s]) for s in seeds],
                       "best_params": [best_params(by_seed[s]) for s in seeds]}
    if "grid" in comp.runs and "tpe_pruned" in comp.runs:
        ratios = grid_time_ratios(comp, "tpe_pruned")
        headline["pruned_time_ratio"] = statistics.median(ratios)
        per_seed["pruned_time_ratio"] = ratios
    if "grid" in comp.runs and "tpe" in comp.runs:  # the same ratio without pruning: what pruning itself adds
        headline["tpe_time_ratio"] = statistics.median(grid_time_ratios(comp, "tpe"))
    space = {name: asdict(p) | {"kind": type(p).__name__} for name, p in cfg.space.items()}
    return BenchReport(name="hpo", mode=comp.run_mode, card=card, headline=headline,
                       config=asdict(cfg) | {"space": space, "budget_epochs": cfg.budget(),
                                             "within_pt": WITHIN_PT, "per_seed": per_seed,
                                             "optuna": optuna.__version__})


def headline(mode: str | None = None, cfg: SearchConfig | None = None) -> BenchReport:
    """Grid, random, TPE and TPE with median pruning over `cfg.seeds`, at the same budget of epochs."""
    run_mode = env.check_mode(mode)
    cfg = cfg or config_for(run_mode)
    check_config(cfg)
    splits = data.load_for_mode(run_mode, device=env.device())
    return summarize(compare(cfg, splits, run_mode))
