"""Learning-rate schedules, the LR range test, the linear scaling rule and early stopping.

Six schedules built from `torch.optim.lr_scheduler` and stepped once per batch: constant, step,
exponential, cosine, linear warm-up + cosine, one-cycle. All share one peak rate and one epoch
budget, so the only difference between them is the shape of the rate over time.

Headline (`labkit bench schedules`): the MLP 784-64-10 on the shared Fashion-MNIST task, SGD with
momentum 0.9, batch 128, every schedule trained with 3 seeds (full mode). For each schedule:
- epochs_to_target_<schedule>: mean over seeds of the first epoch whose test accuracy reaches
  `target_acc`; a seed that never reaches it counts as budget + 1 (a floor: it would need more).
- best_vs_constant: epochs of the fastest schedule / epochs of the constant rate (below 1: faster).
- final_acc_gain_pt: final test accuracy (mean over seeds) of the best annealed schedule minus the
  constant rate's (at the same peak, 0.05), in points, at the same epoch budget. The notebook's
  claim check also compares with the best of several constant rates.
The MLP (≈ 0.12 s/epoch on one thread of the 2-core lab machine) rather than the small CNN
(≈ 3 s/epoch) is what makes 3 seeds × 6 schedules fit in under a minute; seeds differ by several
epochs, so one seed says nothing. It runs on one thread (`threads`), restored afterwards.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.optim import lr_scheduler

from labkit import data, env, models, train
from labkit.errors import LabkitError, check_number
from labkit.results import BenchReport, ResultCard

SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup_cosine", "onecycle")


# ----------------------------------------------------------------------------- settings
@dataclass
class ScheduleConfig:
    width: int = 64              # hidden units of the MLP 784-width-10
    lr: float = 0.05             # peak learning rate of every schedule, and the constant rate (notebook 04 sweeps others)
    epochs: int = 12             # epoch budget; every schedule anneals over exactly this many epochs
    batch_size: int = 128
    warmup_epochs: int = 1       # length of the linear warm-up in warm-up + cosine (and the large-batch runs)
    target_acc: float = 0.84     # test accuracy the constant rate reaches in every seed within the budget
    seeds: tuple[int, ...] = (0, 1, 2)  # ≥ 3: epochs-to-target differs by several epochs between seeds
    schedules: tuple[str, ...] = SCHEDULES
    threads: int = 1             # the MLP's products are too small to split; 2 threads on a busy 2-core CPU ran 10× slower


def config_for(run_mode: str | None = None) -> ScheduleConfig:
    """The headline's settings: smoke mode trains 2,000 images for 6 epochs to a lower target."""
    return env.pick(smoke=ScheduleConfig(epochs=6, target_acc=0.75, seeds=(0, 1)),
                    full=ScheduleConfig(), run_mode=run_mode)


# ----------------------------------------------------------------------------- the schedules
def make_scheduler(name: str, opt: torch.optim.Optimizer, total_steps: int,
                   warmup_steps: int = 0) -> lr_scheduler.LRScheduler:
    """A torch scheduler for `name`, planned over `total_steps` calls of `scheduler.step()`.

    The peak rate is the optimizer's lr. Plan for batches and step every batch: a schedule
    planned over batches but stepped once per epoch barely moves (see the explorer).
    """
    # shown in notebook 04_lr_schedules
    if name not in SCHEDULES:
        raise LabkitError(f"Unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}.")
    if total_steps < 1:
        raise LabkitError(f"total_steps={total_steps} must be at least 1 (epochs × batches per epoch).")
    if not 0 <= warmup_steps < total_steps:
        raise LabkitError(f"warmup_steps={warmup_steps} must be between 0 and total_steps - 1 = {total_steps - 1}.")
    if name == "constant":
        return lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if name == "step":  # ×0.1 at 50 % and again at 75 % of the budget
        return lr_scheduler.MultiStepLR(opt, milestones=[total_steps // 2, 3 * total_steps // 4], gamma=0.1)
    if name == "exponential":  # ×gamma every step, ending at 1 % of the peak
        return lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / total_steps))
    if name == "cosine":  # half a cosine from the peak down to 0
        return lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if name == "warmup_cosine":  # linear ramp from 1 % of the peak, then cosine down to 0
        if total_steps < 2:
            raise LabkitError("warmup_cosine needs at least 2 steps, one to warm up and one to decay: "
                              "raise the epochs or the batches per epoch.")
        warmup_steps = max(warmup_steps, 1)
        ramp = lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup_steps)
        decay = lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps)
        return lr_scheduler.SequentialLR(opt, [ramp, decay], milestones=[warmup_steps])
    # one-cycle: up from peak/25 for 30 % of the budget, then down to peak/1e4 (momentum cycles 0.95 → 0.85 → 0.95,
    # when the optimizer has momentum: cycling it on plain SGD would switch momentum on)
    has_momentum = opt.defaults.get("momentum", 0) > 0 or "betas" in opt.defaults
    return lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], total_steps=total_steps,
                                   cycle_momentum=has_momentum)


def lr_trace(name: str, *, lr: float, epochs: int, steps_per_epoch: int, step_per: str = "batch",
             warmup_epochs: int = 1) -> list[float]:
    """The rate each batch actually trains with, read from the scheduler object step by step.

    The scheduler is planned over epochs × steps_per_epoch steps (as for per-batch stepping);
    `step_per='epoch'` then calls `scheduler.step()` only after the last batch of each epoch,
    which is the common mistake this trace makes visible.
    """
    check_number("lr", lr, low=0, above=True, hint="try 0.05 for SGD with momentum")
    if step_per not in ("batch", "epoch"):
        raise LabkitError(f"step_per={step_per!r}: use 'batch' or 'epoch'.")
    if epochs < 1 or steps_per_epoch < 1:
        raise LabkitError(f"epochs={epochs} and steps_per_epoch={steps_per_epoch} must both be at least 1.")
    total = epochs * steps_per_epoch
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)  # a stand-in: only its lr matters
    scheduler = make_scheduler(name, opt, total, min(warmup_epochs * steps_per_epoch, total - 1))
    rates = []
    for step in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if step_per == "batch" or (step + 1) % steps_per_epoch == 0:
            scheduler.step()
    return rates


def summarize_trace(rates: list[float]) -> dict[str, float]:
    """The first, largest, last and mean rate of a trace (from `lr_trace`)."""
    if not rates:
        raise LabkitError("an empty trace: lr_trace gives one rate per batch.")
    return {"first": rates[0], "max": max(rates), "last": rates[-1], "mean": statistics.mean(rates)}


def check_annealed(name: str, fit: train.FitResult, peak_lr: float) -> None:
    """Raise when a schedule did not take effect: an annealed run must end far below its peak."""
    last_lr = float(fit.history["lr"].iloc[-1])
    if name == "constant":
        if not math.isclose(last_lr, peak_lr, rel_tol=1e-6):
            raise LabkitError(f"the constant rate ended at {last_lr:g}, not {peak_lr:g}: something changed the lr.")
    elif last_lr > 0.1 * peak_lr:
        raise LabkitError(f"schedule {name!r} ended at lr {last_lr:g}, still ≥ 10 % of its peak {peak_lr:g}: "
                          "was the scheduler stepped once per batch over the whole budget?")


def train_schedule(name: str, splits: data.Splits, cfg: ScheduleConfig, seed: int = 0,
                   callbacks: tuple | list = (), device: str | torch.device = "auto") -> train.FitResult:
    """Train a fresh MLP with schedule `name` (stepped every batch) and check that it took effect."""
    env.seed_everything(seed)
    model = models.MLP(width=cfg.width, num_classes=len(splits.classes))

    def schedule(opt: torch.optim.Optimizer, total_steps: int) -> lr_scheduler.LRScheduler:
        warmup = cfg.warmup_epochs * total_steps // cfg.epochs  # warmup_epochs × the steps of one epoch
        return make_scheduler(name, opt, total_steps, min(warmup, total_steps - 1))

    fit = train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed,
                    scheduler=schedule, scheduler_step="batch", target_acc=cfg.target_acc, callbacks=callbacks,
                    device=device, progress=False)
    if not fit.interrupted:
        check_annealed(name, fit, cfg.lr)
    return fit


# ----------------------------------------------------------------------------- several seeds
@dataclass
class SeedSummary:
    """One variant trained with several seeds: what the result card and the headline need."""

    name: str
    fits: list[train.FitResult]
    budget: int

    @property
    def epochs(self) -> list[int]:
        """Epochs to target per seed; a seed that never reached it counts as budget + 1."""
        return [f.epochs_to_target if f.epochs_to_target is not None else self.budget + 1 for f in self.fits]

    @property
    def reached(self) -> int:
        return sum(f.epochs_to_target is not None for f in self.fits)

    @property
    def final_accs(self) -> list[float]:
        return [f.final_acc for f in self.fits]

    def row(self, throughput: bool = False) -> dict:
        """Means over seeds; `throughput` adds training time and images/s (equal for same-size schedules)."""
        times = [f.time_to_target_s for f in self.fits if f.time_to_target_s is not None]
        row = {"variant": self.name,
               "accuracy": statistics.mean(self.final_accs),
               "accuracy_std_pt": 100 * _std(self.final_accs),
               "time_to_target_s": statistics.mean(times) if times else None,
               "epochs_to_target": statistics.mean(self.epochs),
               "epochs_std": _std(self.epochs),
               "seeds_at_target": f"{self.reached}/{len(self.fits)}",
               "interrupted": any(f.interrupted for f in self.fits)}
        if throughput:
            row["train_time_s"] = statistics.mean(f.train_time_s for f in self.fits)
            row["images_per_s"] = statistics.mean(f.images_per_s for f in self.fits)
        return row


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def first_epoch_at(fit: train.FitResult, target: float) -> int | None:
    """The first epoch whose test accuracy is at least `target` (None: never)."""
    reached = fit.history[fit.history["test_acc"] >= target]
    return int(reached["epoch"].iloc[0]) if len(reached) else None


def epochs_vs_target(summaries: dict[str, SeedSummary], targets: list[float]) -> dict[str, list[dict]]:
    """Per variant, one point per target: the mean epochs over seeds to reach it (a seed that never does
    counts as budget + 1) and `censored`, True when some seed never did."""
    curves: dict[str, list[dict]] = {}
    for name, summary in summaries.items():
        curves[name] = []
        for target in targets:
            epochs = [first_epoch_at(f, target) for f in summary.fits]
            curves[name].append({"target": target, "censored": any(e is None for e in epochs),
                                 "epochs": statistics.mean(e if e is not None else summary.budget + 1 for e in epochs)})
    return curves


class StopOnly:
    """Passes on only the per-batch Stop check of other callbacks: no per-epoch work (drawing)."""

    def __init__(self, callbacks: tuple | list):
        self.callbacks = [cb for cb in callbacks if hasattr(cb, "on_batch_end")]

    def on_batch_end(self, state: train.FitState) -> bool:
        return any(cb.on_batch_end(state) for cb in self.callbacks)


def train_seeds(name: str, splits: data.Splits, cfg: ScheduleConfig, callbacks: tuple | list = (),
                device: str | torch.device = "auto") -> SeedSummary:
    """Schedule `name` trained once per seed in `cfg.seeds` (stops early if a run is interrupted).

    `callbacks` observe the first seed fully; later seeds only get their Stop check, because
    redrawing live curves every epoch would cost more than an MLP epoch itself.
    """
    fits = []
    for i, seed in enumerate(cfg.seeds):
        observers = callbacks if i == 0 else [StopOnly(callbacks)]
        fits.append(train_schedule(name, splits, cfg, seed, callbacks=observers, device=device))
        if fits[-1].interrupted:
            break
    return SeedSummary(name, fits, cfg.epochs)


def compare_schedules(splits: data.Splits, cfg: ScheduleConfig, device: str | torch.device = "auto") -> dict[str, SeedSummary]:
    """Every schedule in `cfg.schedules`, each with every seed."""
    return {name: train_seeds(name, splits, cfg, device=device) for name in cfg.schedules}


def headline_numbers(summaries: dict[str, SeedSummary]) -> dict[str, float]:
    """epochs_to_target_<schedule> for each, best_vs_constant and final_acc_gain_pt."""
    if "constant" not in summaries:
        raise LabkitError("The comparison needs the 'constant' schedule as its baseline.")
    epochs = {name: statistics.mean(s.epochs) for name, s in summaries.items()}
    annealed = [name for name in summaries if name != "constant"]
    if not annealed:
        raise LabkitError("Add at least one annealed schedule to compare with 'constant'.")
    fastest = min(annealed, key=lambda name: epochs[name])
    finals = {name: statistics.mean(s.final_accs) for name, s in summaries.items()}
    best_final = max(annealed, key=lambda name: finals[name])
    return {**{f"epochs_to_target_{name}": epochs[name] for name in summaries},
            "best_vs_constant": epochs[fastest] / epochs["constant"],
            "final_acc_gain_pt": 100 * (finals[best_final] - finals["constant"])}


def build_report(summaries: dict[str, SeedSummary], cfg: ScheduleConfig, run_mode: str) -> BenchReport:
    """The card (one row per schedule, ratios against the constant rate) and the headline numbers."""
    card = ResultCard([s.row() for s in summaries.values()], baseline="constant",
                      title=f"LR schedules: {len(cfg.seeds)} seeds, {cfg.epochs} epochs, target {100 * cfg.target_acc:g} %")
    return BenchReport(name="schedules", mode=run_mode, card=card, config=asdict(cfg),
                       headline=headline_numbers(summaries))


def headline(mode: str | None = None) -> BenchReport:
    """Every schedule × every seed on the shared task; the report `labkit bench schedules` prints."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    splits = data.load_for_mode(run_mode, device=env.device())
    threads_before = torch.get_num_threads()
    env.set_threads(cfg.threads)
    try:
        return build_report(compare_schedules(splits, cfg), cfg, run_mode)
    finally:
        env.set_threads(threads_before)


# ----------------------------------------------------------------------------- large batches
@dataclass
class LargeBatchConfig:
    base_batch: int = 64         # the small batch the base rate was tuned for
    base_lr: float = 0.025       # 0.05 at batch 128 (the headline's rate), halved for batch 64
    big_batch: int = 512         # 8× the base batch: 8× fewer steps per epoch
    warmup_epochs: int = 2       # linear warm-up before the cosine decay in the "+ warm-up" variant
    epochs: int = 12             # the same epoch budget (same images seen) for every variant
    width: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)


def large_batch_config_for(run_mode: str | None = None) -> LargeBatchConfig:
    """Smoke mode: 6 epochs and 2 seeds (2,000 images: batch 512 then takes only 4 steps an epoch)."""
    return env.pick(smoke=LargeBatchConfig(epochs=6, seeds=(0, 1)), full=LargeBatchConfig(), run_mode=run_mode)


def linear_scaling_lr(base_lr: float, base_batch: int, batch: int) -> float:
    """The linear scaling rule (Goyal et al., 2017): k times the batch, k times the rate."""
    # shown in notebook 04_lr_schedules
    if base_lr <= 0 or base_batch < 1 or batch < 1:
        raise LabkitError("linear_scaling_lr needs base_lr > 0 and batch sizes of at least 1.")
    return base_lr * batch / base_batch


def large_batch_variants(cfg: LargeBatchConfig) -> dict[str, dict]:
    """The four runs: name -> batch size, peak rate and schedule (cosine; warm-up + cosine)."""
    scaled = linear_scaling_lr(cfg.base_lr, cfg.base_batch, cfg.big_batch)
    return {
        f"batch {cfg.base_batch}, lr {cfg.base_lr:g}": dict(batch_size=cfg.base_batch, lr=cfg.base_lr, schedule="cosine"),
        f"batch {cfg.big_batch}, lr {cfg.base_lr:g} (not scaled)": dict(batch_size=cfg.big_batch, lr=cfg.base_lr, schedule="cosine"),
        f"batch {cfg.big_batch}, lr {scaled:g} (scaled)": dict(batch_size=cfg.big_batch, lr=scaled, schedule="cosine"),
        f"batch {cfg.big_batch}, lr {scaled:g} (scaled) + warm-up": dict(batch_size=cfg.big_batch, lr=scaled, schedule="warmup_cosine"),
    }


def compare_large_batch(splits: data.Splits, cfg: LargeBatchConfig, target_acc: float,
                        device: str | torch.device = "auto") -> dict[str, SeedSummary]:
    """Each large-batch variant with each seed, at the same epoch budget."""
    variants = large_batch_variants(cfg)
    fits: dict[str, list[train.FitResult]] = {name: [] for name in variants}
    for seed in cfg.seeds:
        for name, v in variants.items():
            run_cfg = ScheduleConfig(width=cfg.width, lr=v["lr"], epochs=cfg.epochs, batch_size=v["batch_size"],
                                     warmup_epochs=cfg.warmup_epochs, target_acc=target_acc)
            fits[name].append(train_schedule(v["schedule"], splits, run_cfg, seed, device=device))
    return {name: SeedSummary(name, runs, cfg.epochs) for name, runs in fits.items()}


# ----------------------------------------------------------------------------- the LR range test
@dataclass
class RangeTest:
    """What one LR range test saw: the rates tried, raw and smoothed losses, and its suggestion."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float          # one tenth of the rate with the lowest smoothed loss
    min_loss_lr: float           # the rate with the lowest smoothed loss
    stopped_early: bool          # True when the loss blew up before lr_max


def smooth(losses: list[float], beta: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (without it, the first values start near 0)."""
    if not 0 <= beta < 1:
        raise LabkitError(f"beta={beta} must be in [0, 1): 0.9 averages over about 10 steps.")
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def lr_range_test(model: nn.Module, splits: data.Splits, *, opt: torch.optim.Optimizer | None = None,
                  lr_min: float = 1e-4, lr_max: float = 10.0, steps: int = 100, beta: float = 0.9,
                  batch_size: int = 128, seed: int = 0, blow_up: float = 4.0) -> RangeTest:
    """Train for `steps` batches while the rate grows exponentially from lr_min to lr_max.

    Stops when the smoothed loss exceeds `blow_up` × its best. The model's weights and the
    optimizer's state are restored afterwards: the test must not change what it measures.
    """
    # shown in notebook 04_lr_schedules
    if not 0 < lr_min < lr_max:
        raise LabkitError(f"need 0 < lr_min < lr_max, got lr_min={lr_min}, lr_max={lr_max}.")
    if steps < 10:
        raise LabkitError(f"steps={steps} is too few to read a curve: use at least 10 (100 is typical).")
    opt = opt or torch.optim.SGD(model.parameters(), lr=lr_min, momentum=0.9)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    dev = next(model.parameters()).device
    train_loader = data.loader(splits.X_train, splits.y_train, batch_size, seed=seed)
    growth = (lr_max / lr_min) ** (1 / (steps - 1))  # the same factor every step: even spacing on a log axis
    lrs, losses, smoothed = [], [], []
    batches = iter(())
    model.train()
    opt.zero_grad(set_to_none=True)  # the step adds to .grad: start from none
    try:
        for step in range(steps):
            lr = lr_min * growth ** step
            for group in opt.param_groups:
                group["lr"] = lr
            try:
                xb, yb = next(batches)
            except StopIteration:  # start another pass over the data when an epoch runs out
                batches = iter(train_loader)
                xb, yb = next(batches)
            _, loss = train.train_step(model, opt, xb.to(dev), yb.to(dev))
            lrs.append(lr)
            losses.append(loss.item())
            smoothed = smooth(losses, beta)
            if not math.isfinite(smoothed[-1]) or smoothed[-1] > blow_up * min(smoothed):
                break
    finally:  # restore even on Ctrl-C or an error
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        opt.zero_grad(set_to_none=True)
    best = int(np.nanargmin(smoothed))
    return RangeTest(lrs=lrs, losses=losses, smoothed=smoothed, suggested_lr=lrs[best] / 10,
                     min_loss_lr=lrs[best], stopped_early=len(lrs) < steps)


def range_test_spread(splits: data.Splits, seeds: tuple[int, ...], width: int = 64, **kwargs) -> list[RangeTest]:
    """The range test on fresh MLPs with different seeds (initial weights and batch order)."""
    tests = []
    for seed in seeds:
        env.seed_everything(seed)
        model = models.MLP(width=width, num_classes=len(splits.classes)).to(splits.X_train.device)
        before = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        tests.append(lr_range_test(model, splits, seed=seed, **kwargs))
        after = nn.utils.parameters_to_vector(model.parameters()).detach()
        if not torch.equal(before, after):
            raise LabkitError("the range test did not restore the model's weights.")
    return tests


# ----------------------------------------------------------------------------- early stopping
class EarlyStopping:
    """Stop when the monitored accuracy has not improved by `min_delta` for `patience` epochs.

    An observer for `train.fit(callbacks=[...])`: it keeps a copy of the best weights, which
    `restore(model)` puts back. Monitor a validation split, never the test set.
    """
    # shown in notebook 04b_plateaus_and_early_stopping

    def __init__(self, patience: int = 3, min_delta: float = 0.0, monitor: str = "test_acc"):
        if not isinstance(patience, int) or patience < 1:
            raise LabkitError(f"patience={patience!r} must be a whole number of at least 1.")
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best, self.best_epoch, self.bad_epochs = -math.inf, 0, 0
        self.best_state: dict | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, state: train.FitState) -> bool:
        value = state.rows[-1][self.monitor]
        if value > self.best + self.min_delta:  # an improvement: remember it, reset the count
            self.best, self.best_epoch, self.bad_epochs = value, state.epoch, 0
            self.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.stopped_epoch = state.epoch
            return True
        return False

    def restore(self, model: nn.Module) -> None:
        """Load the best weights seen (call after fit)."""
        if self.best_state is None:
            raise LabkitError("EarlyStopping saw no epoch yet: pass it to fit(callbacks=[...]) first.")
        model.load_state_dict(self.best_state)


def holdout(splits: data.Splits, n_val: int, seed: int = 0) -> tuple[data.Splits, data.Splits]:
    """(train minus a validation part, with that part as its 'test'), and the untouched test split.

    fit() evaluates on `splits.X_test`; giving it the validation part lets early stopping
    choose without ever looking at the test set.
    """
    n = len(splits.y_train)
    if not 0 < n_val < n:
        raise LabkitError(f"n_val={n_val} must be between 1 and {n - 1} (the training set has {n}).")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(splits.y_train.device)
    val, keep = order[:n_val], order[n_val:]
    fit_splits = data.Splits(splits.X_train[keep], splits.y_train[keep], splits.X_train[val], splits.y_train[val],
                             classes=splits.classes)
    return fit_splits, splits


# ----------------------------------------------------------------------------- claim check: the highest stable rate
def diverged(fit: train.FitResult, num_classes: int) -> bool:
    """A run diverged when its loss is no longer a number or it ends no better than twice chance."""
    return (not math.isfinite(float(fit.history["train_loss"].iloc[-1]))
            or fit.final_acc < 2 / num_classes)


def constant_lr_sweep(splits: data.Splits, lrs: tuple[float, ...], cfg: ScheduleConfig,
                      known: dict[float, SeedSummary] | None = None,
                      device: str | torch.device = "auto") -> dict[float, SeedSummary]:
    """Constant rates × seeds at the headline's budget; `known` reuses runs already made (same config)."""
    out = dict(known or {})
    for lr in lrs:
        if lr not in out:
            run_cfg = replace(cfg, lr=lr)
            out[lr] = SeedSummary(f"constant {lr:g}", [train_schedule("constant", splits, run_cfg, seed, device=device)
                                                       for seed in cfg.seeds], cfg.epochs)
    return dict(sorted(out.items()))


def highest_stable_lr(sweep: dict[float, SeedSummary], num_classes: int) -> float:
    """The highest rate in the sweep at which no seed diverged."""
    stable = [lr for lr, s in sweep.items() if not any(diverged(f, num_classes) for f in s.fits)]
    if not stable:
        raise LabkitError("every rate in the sweep diverged: add smaller rates.")
    return max(stable)


class PlateauCallback:
    """Keras' `ReduceLROnPlateau` in PyTorch: after each epoch, give the monitored validation accuracy
    to `torch.optim.lr_scheduler.ReduceLROnPlateau`, which cuts the rate by `factor` once it has not
    improved for `patience` epochs. A callback because this scheduler needs a metric, not a step count."""
    # shown in notebook 04b_plateaus_and_early_stopping

    def __init__(self, factor: float = 0.3, patience: int = 1, monitor: str = "test_acc"):
        if not 0 < factor < 1:
            raise LabkitError(f"factor={factor!r} must be between 0 and 1 (the rate is multiplied by it).")
        self.factor, self.patience, self.monitor = factor, patience, monitor
        self.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.lrs: list[float] = []  # the rate used in each epoch

    def on_epoch_end(self, state: train.FitState) -> bool:
        if self.scheduler is None:  # the optimizer exists only once fit() has started
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                state.opt, mode="max", factor=self.factor, patience=self.patience)
        self.lrs.append(state.opt.param_groups[0]["lr"])
        self.scheduler.step(state.rows[-1][self.monitor])
        return False


def compare_plateau(splits: data.Splits, cfg: EarlyStopConfig, device: str | torch.device = "auto") -> pd.DataFrame:
    """Constant rate against the same rate with ReduceLROnPlateau, same budget, once per seed of cfg.seeds
    (seeds the outer loop): one row per run with the final validation and test accuracy, the final rate,
    and the (1-based) epochs that started with a cut rate."""
    fit_splits, test_splits = holdout(splits, cfg.n_val)
    rows = []
    for seed in cfg.seeds:
        for name in ("constant", "ReduceLROnPlateau"):
            env.seed_everything(seed)
            model = models.MLP(width=cfg.width, num_classes=len(splits.classes))
            plateau = PlateauCallback()
            fit = train.fit(model, fit_splits, epochs=cfg.max_epochs, lr=cfg.lr, seed=seed, device=device,
                            callbacks=[plateau] if name != "constant" else [], progress=False)
            _, test_acc = train.evaluate(model, test_splits.X_test, test_splits.y_test)
            lrs = plateau.lrs or [cfg.lr] * len(fit.history)
            rows.append({"variant": name, "seed": seed, "final_val_acc": fit.history["test_acc"].iloc[-1],
                         "test_acc": test_acc, "final_lr": lrs[-1],
                         "rate_cut_in_epochs": [e + 1 for e in range(1, len(lrs)) if lrs[e] < lrs[e - 1]]})
    return pd.DataFrame(rows)


@dataclass
class EarlyStopConfig:
    max_epochs: int = 24         # the budget early stopping may save from
    patience: int = 3            # epochs without a better validation accuracy before stopping
    n_val: int = 2000            # validation images held out of the training split (the test split stays unseen)
    lr: float = 0.05             # constant rate: the classic setting for early stopping
    width: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)


def early_stop_config_for(run_mode: str | None = None) -> EarlyStopConfig:
    return env.pick(smoke=EarlyStopConfig(max_epochs=10, patience=2, n_val=400, seeds=(0, 1)),
                    full=EarlyStopConfig(), run_mode=run_mode)


def compare_early_stopping(splits: data.Splits, cfg: EarlyStopConfig, device: str | torch.device = "auto") -> list[dict]:
    """Per seed: train with EarlyStopping, then the same run for the whole budget; test both at the end.

    Same seed, same data order: the two runs are identical until the early one stops, which
    is checked, so the only difference is the epochs saved.
    """
    fit_splits, test_splits = holdout(splits, cfg.n_val)
    out = []
    for seed in cfg.seeds:
        runs = {}
        for use_stopper in (True, False):
            env.seed_everything(seed)
            model = models.MLP(width=cfg.width, num_classes=len(splits.classes))
            stopper = EarlyStopping(patience=cfg.patience)
            fit = train.fit(model, fit_splits, epochs=cfg.max_epochs, lr=cfg.lr, seed=seed, device=device,
                            callbacks=[stopper] if use_stopper else [], progress=False)
            if use_stopper:
                stopper.restore(model)
            _, test_acc = train.evaluate(model, test_splits.X_test, test_splits.y_test)
            runs[use_stopper] = (fit, stopper, test_acc)
        (early, stopper, early_acc), (full, _, full_acc) = runs[True], runs[False]
        n = len(early.history)
        # fit() calls the validation part its "test" split: these are validation accuracies
        if not np.allclose(early.history["test_acc"], full.history["test_acc"].iloc[:n]):
            raise LabkitError("the early-stopped run and the full run differ before the stop: the comparison is void.")
        out.append({"seed": seed, "epochs_used": n, "best_epoch": stopper.best_epoch, "max_epochs": cfg.max_epochs,
                    "train_time_s": early.train_time_s, "full_train_time_s": full.train_time_s,
                    "test_acc_early": early_acc, "test_acc_full": full_acc,
                    "val_history": full.history["test_acc"].tolist()})
    return out
