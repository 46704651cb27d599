"""Speedrun (capstone part 1): the lab's techniques combined, measured as time to a target accuracy.

One config dataclass holds every setting; each technique is a named switch in it (airbench style).
All switches off is the naive first attempt: PNG files decoded and augmented one image at a time
through a DataLoader, batch 32, plain SGD at a constant rate. The ablation turns the switches on
one at a time, cumulatively, in the order of `SWITCHES`, and trains each configuration with
several seeds:

- in_memory:     decode the images once, keep them as one tensor, augment whole batches (notebook 02);
- big_batch:     batch 128 instead of 32, the rate scaled linearly, a linear warm-up (04);
- momentum:      Nesterov momentum 0.9 at the same effective step size (05);
- onecycle:      the one-cycle schedule over the budget instead of a constant rate (04);
- channels_last: NHWC memory layout for the convolutions (01);
- compile:       torch.compile, compile time counted (01) — skipped on a CPU, see `why_skipped`;
- amp:           autocast to the device's 16-bit type (03) — skipped where the hardware has no fast
                 low-precision path (a CPU without bf16 units), see `why_skipped`;
- narrow:        a SmallCNN at half the width (about a quarter of the multiply-adds), trained on the
                 labels alone: what a smaller model gives by itself, so that distillation is not credited with it;
- distill:       train on the shipped teacher's soft outputs as well as the labels (09); the teacher's
                 one pass over the training images is on the clock.

Time to target = training seconds (forward, backward, step, plus one-off set-up: decoding the
cache, the teacher's pass, compiling) until the first evaluation at or above `target_acc`.
The test accuracy is evaluated `evals_per_epoch` times an epoch; evaluation is measurement, so it
is left off the clock. A run that never reaches the target is reported as such, not dropped.
At the end of each run its accuracy on the (un-augmented) training images is measured too, off the
clock: the train − test gap tells whether a faster recipe overfits more.

Headline (`labkit bench speedrun --json`): naive_time_to_target_s (mean over seeds of the naive
configuration), best_time_to_target_s (the fastest ablation row whose every seed reached the target
at an accuracy no lower than the naive one's, mean over seeds), speedup_vs_naive (their ratio),
naive_final_acc / best_final_acc (test accuracy at the end of the budget, mean over seeds),
target_acc, and epoch_speedup_vs_naive (naive / best training seconds per epoch, set-up excluded: the
throughput part of the speedup, apart from epochs to target). Every result carries its config and `code_hash()`: the sha256 of this file and the
modules it uses.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from labkit import bench, data, env, models, stats, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard
from labkit.techniques import amp as amp_technique
from labkit.techniques import dataloading, distillation, gpu, momentum, schedules

# The techniques, in the order the ablation turns them on (each row keeps the ones before it).
SWITCHES = ("in_memory", "big_batch", "momentum", "onecycle", "channels_last", "compile", "amp", "narrow",
            "distill")


# ============================================================================ settings

@dataclass
class SpeedrunConfig:
    """One speedrun configuration: the technique switches, then the fixed settings. Saved with every result."""
    # shown in notebook 11_speedrun

    # --- the techniques (all False: the naive first attempt) ---
    in_memory: bool = False      # decoded tensor in memory + batched augmentation, instead of PNG decode per image
    big_batch: bool = False      # batch `big_batch_size` with the rate scaled linearly and `warmup_epochs` of warm-up
    momentum: bool = False       # SGD with Nesterov momentum `beta`, lr × (1 − beta): the same effective step
    onecycle: bool = False       # one-cycle schedule over the budget, peak `onecycle_peak` × the rate
    channels_last: bool = False  # NHWC layout for model and batches
    compile: bool = False        # torch.compile the model (the compile time is on the clock)
    amp: bool = False            # autocast: fp16 + GradScaler on CUDA, bf16 on a CPU with bf16 units
    narrow: bool = False         # the SmallCNN at `student_width` instead of `width`, trained on labels alone
    distill: bool = False        # also learn from the shipped teacher's soft outputs
    # --- the fixed settings ---
    width: int = 16              # SmallCNN width (conv w, conv 2w, fc 64): the lab's workhorse
    student_width: int = 8       # the narrow model's width (≈ 1/4 of the multiply-adds)
    epochs: int = 6              # budget in epochs (the one-cycle schedule is planned over it)
    batch_size: int = 32         # the naive batch
    big_batch_size: int = 128    # with big_batch
    lr: float = 0.05             # plain-SGD rate at `batch_size`
    beta: float = 0.9            # momentum
    warmup_epochs: float = 0.5   # linear warm-up with big_batch (from 10 % of the rate)
    onecycle_peak: float = 2.0   # one-cycle peak, relative to the rate it replaces
    temperature: float = 2.0     # distillation T (09: 2 was best on a validation split)
    alpha: float = 0.5           # weight of the teacher's soft term (09: 0.5 with every image labelled)
    augment: bool = False        # random 2-pixel shifts and mirrors: off (notebook 02 measures what they do)
    target_acc: float = 0.85     # test accuracy to reach: the naive run reaches it in every seed within the budget
    evals_per_epoch: int = 2     # test evaluations per epoch (off the clock): the time-to-target resolution
    seeds: tuple[int, ...] = (0, 1, 2)
    threads: int = 2             # CPU threads for training


def config_for(run_mode: str | None = None) -> SpeedrunConfig:
    """Full mode: 10,000 images, 3 seeds. Smoke mode: 2,000 images, 1 seed, a lower target, and 8 epochs
    (batch 128 then takes only 16 steps an epoch), on one thread: two threads that must wait for each
    other at every op ran the smoke ablation 7× slower beside one busy core (past nbval's 300 s a cell)."""
    return env.pick(smoke=SpeedrunConfig(epochs=8, target_acc=0.70, seeds=(0,), threads=1),
                    full=SpeedrunConfig(), run_mode=run_mode)


def check_config(cfg: SpeedrunConfig) -> None:
    """Raise a one-line LabkitError for settings that cannot work."""
    if not isinstance(cfg.epochs, int) or cfg.epochs < 1:
        raise LabkitError(f"epochs={cfg.epochs!r}: the budget must be a whole number of epochs, at least 1.")
    for name in ("batch_size", "big_batch_size", "width", "student_width", "evals_per_epoch", "threads"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise LabkitError(f"{name}={value!r} must be a whole number of at least 1.")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise LabkitError(f"lr={cfg.lr!r} must be greater than 0 (try 0.05).")
    if not 0 <= cfg.beta < 1:
        raise LabkitError(f"beta={cfg.beta!r}: momentum must be in [0, 1).")
    if not 0 < cfg.target_acc < 1:
        raise LabkitError(f"target_acc={cfg.target_acc!r} must be a fraction between 0 and 1 (e.g. 0.87).")
    if not cfg.seeds:
        raise LabkitError("seeds is empty: give at least one seed, e.g. (0, 1, 2).")
    distillation.check_settings(cfg.temperature, cfg.alpha)


def check_switches(names: Iterable[str]) -> list[str]:
    """The names as a list; a LabkitError listing the valid switches when one is unknown."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in SWITCHES]
    if unknown:
        raise LabkitError(f"Unknown technique(s) {', '.join(map(repr, unknown))}: choose from {', '.join(SWITCHES)}.")
    return names


def with_switches(cfg: SpeedrunConfig, names: Iterable[str], **settings) -> SpeedrunConfig:
    """A copy of `cfg` with exactly the switches `names` on (the others off), and `settings` changed."""
    names = check_switches(names)
    unknown = [k for k in settings if k not in {f.name for f in fields(SpeedrunConfig)}]
    if unknown:
        raise LabkitError(f"Unknown setting(s) {', '.join(unknown)}: see SpeedrunConfig.")
    out = replace(cfg, **{s: s in names for s in SWITCHES}, **settings)
    check_config(out)
    return out


def switches_on(cfg: SpeedrunConfig) -> list[str]:
    """The switches that are on, in ablation order."""
    return [s for s in SWITCHES if getattr(cfg, s)]


def why_skipped(switch: str, dev: torch.device | str) -> str | None:
    """Why `switch` is left out of the ablation on this device (None: it is measured).

    amp: a CPU without bf16 units emulates bf16 and runs slower (notebook 03), so it is off there.
    compile: on a CPU, compiling the training step takes tens of seconds (notebook 01 measures it), a
    large share of a run this short; it is left out to keep the ablation short, and the toggle panel
    measures it in the learner's run.
    """
    check_switches([switch])
    dev = torch.device(dev)
    if switch == "amp" and dev.type == "cpu" and not env.cpu_has_bf16_units():
        return "off: this hardware has no fast low-precision path (no bf16 units: bf16 is emulated, slower)"
    if switch == "amp" and dev.type == "mps":
        return "off: autocast on Apple's MPS is not measured by this lab"
    if switch == "compile" and dev.type == "cpu":
        return ("off in the ablation to keep it short: compiling a training step on a CPU takes tens of seconds "
                "(notebook 01 measures it on yours); tick it in the toggle panel to measure it in this run")
    return None


# ============================================================================ the recipe each switch changes

def batch_and_lr(cfg: SpeedrunConfig) -> tuple[int, float]:
    """The batch size and rate: big_batch scales the rate with the batch (notebook 04's linear scaling rule),
    momentum divides it by 1/(1 − β) so that the effective step lr / (1 − β) (notebook 05) stays the same."""
    # shown in notebook 11_speedrun
    batch, lr = cfg.batch_size, cfg.lr
    if cfg.big_batch:
        lr = schedules.linear_scaling_lr(lr, cfg.batch_size, cfg.big_batch_size)
        batch = cfg.big_batch_size
    if cfg.momentum:
        lr = lr * (1 - cfg.beta)
    return batch, lr


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The linear warm-up: the rate's multiplier at `step`, rising from 0.1 to 1 over `warmup_steps`."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return 0.1 + 0.9 * step / warmup_steps


def make_optimizer(cfg: SpeedrunConfig, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Plain SGD, or SGD with Nesterov momentum (notebook 05's optimizers). With onecycle its rate is the
    cycle's peak, `onecycle_peak` × lr: notebook 04's one-cycle schedule peaks at the optimizer's rate."""
    peak = lr * cfg.onecycle_peak if cfg.onecycle else lr
    return momentum.make_optimizer("nesterov" if cfg.momentum else "gd", model.parameters(), peak, cfg.beta)


def make_schedule(cfg: SpeedrunConfig, opt: torch.optim.Optimizer, total_steps: int,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped every batch: one-cycle over the whole budget, else a constant rate (with big_batch's warm-up)."""
    if cfg.onecycle:  # notebook 04's one-cycle: up from peak/25 for 30 % of the budget, then down to ~0
        return schedules.make_scheduler("onecycle", opt, total_steps)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch) if cfg.big_batch else 0
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_factor(step, warmup_steps))


def build_model(cfg: SpeedrunConfig, dev: torch.device) -> nn.Module:
    """The SmallCNN, at `student_width` with narrow; NHWC with channels_last."""
    model = models.SmallCNN(width=cfg.student_width if cfg.narrow else cfg.width).to(dev)
    if cfg.channels_last:
        model, _ = gpu.to_channels_last(model, torch.zeros(1, 1, 28, 28, device=dev))
    return model


# ============================================================================ data: PNG files or an in-memory tensor

def indexed(source: dataloading.Source) -> dataloading.Source:
    """The same images with each one's INDEX in place of its label: the loop looks the label (and the
    teacher's logits) up by index, so one loop serves both pipelines and distillation."""
    return dataloading.Source(source.pngs, source.X, torch.arange(len(source)), source.mean, source.std)


def decode_all(source: dataloading.Source) -> torch.Tensor:
    """Decode every PNG once and normalise: the in-memory cache (its cost is on the clock)."""
    pixels = torch.stack([dataloading.decode_png(png) for png in source.pngs]).float() / 255
    return (pixels - source.mean) / source.std


def make_batches(cfg: SpeedrunConfig, source: dataloading.Source, batch: int, seed: int,
                 dev: torch.device) -> Iterable:
    """naive: a DataLoader over PNG files, decoded and augmented per image (notebook 02's naive pipeline);
    in_memory: the decoded tensor on the device, whole batches cropped and flipped in one gather."""
    if cfg.in_memory:
        cache = decode_all(source).to(dev)
        return dataloading.BatchLoader(cache, source.y.to(dev), batch, augment=cfg.augment, seed=seed)
    setting = dataloading.LoaderSetting("naive", batch_size=batch)
    return dataloading.make_loader(setting, source, dev, augment=cfg.augment, seed=seed)


# ============================================================================ the loop

@dataclass
class Run:
    """One training run: its history (one row per evaluation), set-up seconds, and the config it ran."""

    fit: train.FitResult
    setup_s: float                      # one-off work on the clock: cache, teacher pass, compile
    config: dict = field(default_factory=dict)
    seed: int = 0
    skipped: dict = field(default_factory=dict)  # switch -> why it was not applied
    train_acc: float = float("nan")     # accuracy on the un-augmented training images at the end (off the clock)

    @property
    def time_to_target_s(self) -> float | None:
        return self.fit.time_to_target_s

    @property
    def final_acc(self) -> float:
        return self.fit.final_acc

    @property
    def reached(self) -> bool:
        return self.fit.time_to_target_s is not None

    @property
    def gap_pt(self) -> float:
        """Train − test accuracy at the end of the budget, in points: how much the model fits its own images better."""
        return 100 * (self.train_acc - self.final_acc)

    def as_row(self) -> dict:
        """The run as one leaderboard row: its switches ('naive' for none), numbers, history, config and code hash."""
        switches = switches_on(SpeedrunConfig(**self.config))
        return {"label": "+".join(switches) or "naive", "seed": self.seed,
                "time_to_target_s": self.time_to_target_s, "final_acc": self.final_acc,
                "train_time_s": self.fit.train_time_s, "interrupted": self.fit.interrupted,
                "skipped": sorted(self.skipped), "history": self.fit.history,
                "config": self.config, "code_hash": code_hash()}


def train_run(cfg: SpeedrunConfig, splits: data.Splits, source: dataloading.Source, seed: int = 0, *,
              teacher: nn.Module | None = None, callbacks: tuple | list = (), stop_at_target: bool = False,
              device: str | torch.device | None = "auto") -> Run:
    """Train one configuration and return its Run. Techniques the device cannot use are switched off
    (see `why_skipped`) and listed in `Run.skipped`."""
    # shown in notebook 11_speedrun
    check_config(cfg)
    dev = env.device(device)
    skipped = {s: why_skipped(s, dev) for s in switches_on(cfg) if why_skipped(s, dev) and s != "compile"}
    use_amp = cfg.amp and "amp" not in skipped
    labels = source.y.to(dev)
    env.seed_everything(seed)
    batch, lr = batch_and_lr(cfg)
    n_images = len(source)

    # --- one-off set-up, on the clock: the cache (inside the loader), the teacher's pass, compiling ---
    env.synchronize(dev)
    start = time.perf_counter()
    train_loader = make_batches(cfg, indexed(source), batch, seed, dev)
    loss_fn = distillation.labels_by_index(labels)  # the loader yields each image's index in place of its label
    if cfg.distill:
        teacher = teacher or distillation.load_teacher(device=dev)
        X_all = train_loader.padded[:, :, dataloading.PAD:-dataloading.PAD, dataloading.PAD:-dataloading.PAD] \
            if cfg.in_memory else decode_all(source).to(dev)
        soft_targets = distillation.teacher_logits(teacher, X_all)  # computed once, on the un-augmented images
        loss_fn = distillation.kd_loss_fn(soft_targets, labels, cfg.temperature, cfg.alpha)
    model = build_model(cfg, dev)
    net = torch.compile(model) if cfg.compile else model
    opt = make_optimizer(cfg, model, lr)
    steps_per_epoch = len(train_loader)
    scheduler = make_schedule(cfg, opt, cfg.epochs * steps_per_epoch, steps_per_epoch)
    dtype = train.precision_dtype("auto" if use_amp else "fp32", dev)  # auto: fp16 on CUDA, bf16 elsewhere
    scaler = train.make_scaler(dtype, dev)
    if cfg.compile:  # the first call compiles: do it now, on the clock, so that it is counted once
        with torch.no_grad():
            net(splits.X_test[:2].to(dev))
    env.synchronize(dev)
    setup_s = time.perf_counter() - start

    state = train.FitState(model=model, opt=opt)
    every = max(1, n_images // cfg.evals_per_epoch)  # images between evaluations
    clock, seen, next_eval = setup_s, 0, every
    loss_sum, loss_n = torch.zeros((), device=dev), 0
    stop = interrupted = False
    for epoch in range(cfg.epochs):
        model.train()
        env.synchronize(dev)
        start = time.perf_counter()
        for xb, idx in train_loader:
            xb, idx = xb.to(dev, non_blocking=True), idx.to(dev, non_blocking=True)
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            # --- one training step (autocast with amp; the teacher's soft targets with distill) ---
            _, loss = train.train_step(net, opt, xb, idx, loss_fn=loss_fn, dtype=dtype, scaler=scaler)
            scheduler.step()  # the rate changes every batch
            loss_sum += loss.detach().float() * len(idx)
            loss_n += len(idx)
            seen += len(idx)
            state.step += 1
            if any(cb.on_batch_end(state) for cb in callbacks if hasattr(cb, "on_batch_end")):
                stop = interrupted = True
            # --- evaluate (off the clock) every `every` images and at the end of the budget ---
            last = epoch == cfg.epochs - 1 and seen >= (epoch + 1) * n_images
            if seen >= next_eval or last or stop:
                env.synchronize(dev)
                clock += time.perf_counter() - start
                test_loss, test_acc = train.evaluate(net, splits.X_test, splits.y_test, device=dev)
                model.train()
                state.epoch = epoch + 1
                state.last_loss = loss_sum.item() / max(loss_n, 1)
                state.rows.append({"epoch": seen / n_images, "step": state.step, "lr": opt.param_groups[0]["lr"],
                                   "train_loss": state.last_loss, "test_loss": test_loss, "test_acc": test_acc,
                                   "train_time_s": clock})
                loss_sum, loss_n = torch.zeros((), device=dev), 0
                next_eval += every
                if any(cb.on_epoch_end(state) for cb in callbacks if hasattr(cb, "on_epoch_end")):
                    stop = True
                if stop_at_target and test_acc >= cfg.target_acc:
                    stop = True
                start = time.perf_counter()
            if stop:
                break
        env.synchronize(dev)
        if stop:
            break
        clock += time.perf_counter() - start
    fit = train.FitResult(history=pd.DataFrame(state.rows), train_time_s=clock, images_seen=seen,
                          interrupted=interrupted, target_acc=cfg.target_acc)
    _, train_acc = train.evaluate(net, splits.X_train, splits.y_train, device=dev)  # off the clock
    return Run(fit=fit, setup_s=setup_s, config=asdict(cfg), seed=seed, skipped=skipped, train_acc=train_acc)


def time_to_target(history: pd.DataFrame, target_acc: float) -> float | None:
    """Training seconds at the first evaluation whose test accuracy is at or above the target (None: never)."""
    if target_acc is None or not len(history):
        return None
    reached = history[history["test_acc"] >= target_acc]
    return float(reached["train_time_s"].iloc[0]) if len(reached) else None


def load_inputs(run_mode: str | None = None, device: str | torch.device | None = "auto"
                ) -> tuple[data.Splits, dataloading.Source]:
    """The shared task at the run mode's size: the splits (test tensors on the device), and the same
    training images as PNG 'files' for the naive pipeline (notebook 02's `Source`)."""
    run_mode = env.check_mode(run_mode)
    splits = data.load_for_mode(run_mode, device=env.device(device))
    data.verify(data.SUBSET_FILE)
    with np.load(data.SUBSET_FILE) as npz:
        mean, std = float(npz["mean"]), float(npz["std"])
    pixels = ((splits.X_train.cpu() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    source = dataloading.make_source(pixels, splits.y_train.cpu().numpy(), mean, std)
    if not torch.allclose(source.X, splits.X_train.cpu(), atol=1e-5):
        raise LabkitError("the PNG images and the training tensor disagree: rebuild the data (`labkit data build`).")
    return splits, source


# ============================================================================ ablation and leaderboard

@dataclass
class Row:
    """One configuration trained with each seed: the ablation's and the leaderboard's unit."""

    name: str
    switches: list[str]
    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None      # why this row's switch was not applied on this device

    @property
    def times(self) -> list[float | None]:
        return [r.time_to_target_s for r in self.runs]

    @property
    def reached(self) -> int:
        return sum(t is not None for t in self.times)

    @property
    def all_reached(self) -> bool:
        return bool(self.runs) and self.reached == len(self.runs)

    def time_stats(self) -> tuple[float | None, float]:
        """Mean and std of time to target over the seeds that reached it (None when none did)."""
        got = [t for t in self.times if t is not None]
        if not got:
            return None, float("nan")
        return statistics.mean(got), statistics.stdev(got) if len(got) > 1 else 0.0

    @property
    def final_acc(self) -> float:
        return statistics.mean(r.final_acc for r in self.runs)

    @property
    def epoch_time_s(self) -> float:
        """Training seconds per epoch, set-up excluded (mean over seeds)."""
        return statistics.mean((r.fit.train_time_s - r.setup_s) / max(r.fit.history["epoch"].iloc[-1], 1e-9)
                               for r in self.runs)

    def summary(self) -> dict:
        mean, std = self.time_stats()
        return {"variant": self.name, "switches": "+".join(self.switches) or "(none)",
                "time_to_target_s": mean, "ttt_std_s": std, "reached": f"{self.reached}/{len(self.runs)}",
                "accuracy": self.final_acc, "acc_std_pt": 100 * _std([r.final_acc for r in self.runs]),
                "gap_pt": statistics.mean(r.gap_pt for r in self.runs),
                "epoch_time_s": self.epoch_time_s, "setup_s": statistics.mean(r.setup_s for r in self.runs)}


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def ablation_plan(order: Iterable[str] = SWITCHES,
                  dev: torch.device | str = "cpu") -> list[tuple[str, list[str], str | None]]:
    """The ablation's rows: (name, switches on, why skipped). Each row adds one switch to the row before;
    a switch this device cannot use gets a row saying why, and is not carried forward."""
    order = check_switches(order)
    plan, on = [("naive", [], None)], []
    for switch in order:
        reason = why_skipped(switch, dev)
        if reason is None:
            on = on + [switch]
        plan.append((f"+ {switch}", list(on), reason))
    return plan


def run_rows(configs: dict[str, SpeedrunConfig], splits: data.Splits, source: dataloading.Source,
             seeds: Iterable[int], device: str | torch.device | None = "auto",
             on_run: Callable[[str, Run], None] | None = None) -> dict[str, Row]:
    """Train every configuration with every seed. Seeds are the outer loop, so a busy moment on a shared
    machine hits every configuration alike instead of spoiling one of them."""
    dev = env.device(device)
    teacher = distillation.load_teacher(device=dev) if any(c.distill for c in configs.values()) else None
    rows = {name: Row(name, switches_on(c)) for name, c in configs.items()}
    for seed in seeds:
        for name, c in configs.items():
            run = train_run(c, splits, source, seed, teacher=teacher, device=dev)
            rows[name].runs.append(run)
            if on_run is not None:
                on_run(name, run)
    return rows


def ablation(cfg: SpeedrunConfig, splits: data.Splits, source: dataloading.Source,
             device: str | torch.device | None = "auto", order: Iterable[str] = SWITCHES,
             on_run: Callable[[str, Run], None] | None = None) -> list[Row]:
    """Switches on one at a time, cumulatively, in `order`; each configuration trained with `cfg.seeds`."""
    dev = env.device(device)
    plan = ablation_plan(order, dev)
    configs = {name: with_switches(cfg, on) for name, on, reason in plan if reason is None}
    trained = run_rows(configs, splits, source, cfg.seeds, dev, on_run)
    return [trained[name] if reason is None else Row(name, on, skipped=reason) for name, on, reason in plan]


def marginal_gains(rows: list[Row]) -> list[dict]:
    """Each row's summary with its marginal gain: time to target of the row before / this row's
    (above 1: the switch helped), and the accuracy change in points. Skipped rows carry no numbers."""
    out, before = [], None
    for row in rows:
        if row.skipped:
            out.append({"variant": row.name, "skipped": row.skipped})
            continue
        s = row.summary()
        s.pop("switches")
        if before is not None:
            t_prev, t_now = before["time_to_target_s"], s["time_to_target_s"]
            s["marginal_gain"] = t_prev / t_now if t_prev and t_now else None
            s["marginal_acc_pt"] = 100 * (s["accuracy"] - before["accuracy"])
        out.append(s)
        before = s
    return out


def leaderboard(rows: Iterable[Row]) -> pd.DataFrame:
    """Configurations ranked by mean time to target; those where some seed missed the target come last
    (shown, with how many seeds reached it), never dropped."""
    table = [r.summary() for r in rows if not r.skipped and r.runs]
    frame = pd.DataFrame(table)
    if frame.empty:
        return frame
    frame["all_reached"] = [r.all_reached for r in rows if not r.skipped and r.runs]
    frame = frame.sort_values(["all_reached", "time_to_target_s"], ascending=[False, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.drop(columns="all_reached").set_index("rank")


def best_row(rows: list[Row], naive: Row) -> Row:
    """The fastest row whose every seed reached the target, at no lower final accuracy than naive's."""
    fair = [r for r in rows if not r.skipped and r.all_reached and r.final_acc >= naive.final_acc]
    return min(fair, key=lambda r: r.time_stats()[0]) if fair else naive


def check_speedrun(rows: list[Row], run_mode: str = "full") -> None:
    """Raise when time to target compares nothing (the naive run missed the target) and, in full mode,
    when the in-memory pipeline did not train faster per epoch than the per-image PNG pipeline. Smoke
    mode's epochs are a fraction of a second, where a busy moment on the machine can swap the two."""
    by_name = {r.name: r for r in rows}
    naive = by_name["naive"]
    if not naive.all_reached:
        raise LabkitError(f"the naive run reached the target in only {naive.reached} of {len(naive.runs)} seeds: "
                          "lower target_acc or raise epochs, or time to target compares nothing.")
    fast = by_name.get("+ in_memory")
    if run_mode == "full" and fast and not fast.skipped and fast.epoch_time_s >= naive.epoch_time_s:
        raise LabkitError("keeping the data in memory did not make an epoch faster: was the naive pipeline used?")


def overfitting_check(gaps_by_row: dict[str, list[float]], faster: str, baseline: str = "naive") -> stats.Paired | None:
    """Does the faster recipe overfit more? Its train − test gap against the baseline's, paired by seed
    (None with fewer than two seeds: no verdict from one run)."""
    a, b = gaps_by_row[faster], gaps_by_row[baseline]
    if len(a) < 2:
        return None
    return stats.paired(a, b, f"gap of {faster}", f"gap of {baseline}", unit="pt")


# ============================================================================ gradient accumulation

def accumulated_step(model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
                     accum_steps: int) -> torch.Tensor:
    """One optimizer step on the batch (xb, yb), fed as `accum_steps` micro-batches.

    Each micro-batch's mean loss is divided by accum_steps, so the summed gradients are the mean
    over the whole batch — the gradient one big batch would give. Only one micro-batch's
    activations are alive at a time: that is the memory saved.
    """
    # shown in notebook 11_speedrun
    # Written out by hand on purpose: this is the lesson. train.train_step does the same with
    # group_size= and end_of_group=, which is how train.fit(accum_steps=k) calls it.
    if not isinstance(accum_steps, int) or accum_steps < 1 or len(xb) % accum_steps:
        raise LabkitError(f"accum_steps={accum_steps!r} must be a whole number ≥ 1 that divides "
                          f"the batch of {len(xb)}.")
    opt.zero_grad(set_to_none=True)
    total = torch.zeros(())
    for x_micro, y_micro in zip(xb.chunk(accum_steps), yb.chunk(accum_steps)):
        loss = F.cross_entropy(model(x_micro), y_micro) / accum_steps
        loss.backward()                  # gradients ADD UP in .grad until the step
        total += loss.detach()
    opt.step()
    return total


def accumulation_equivalence(accum_steps: int = 4, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """Max |difference| in gradients and in weights after one SGD step: one batch vs accum_steps micro-batches.
    The SmallCNN has no batch norm, whose statistics would differ per micro-batch."""
    g = torch.Generator().manual_seed(seed)
    xb, yb = torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)
    out = {}
    for k in (1, accum_steps):
        env.seed_everything(seed)
        model = models.SmallCNN()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        # capture the gradients just before the step
        grads = {}
        opt.register_step_pre_hook(lambda o, a, kw: grads.update(
            {i: p.grad.clone() for i, p in enumerate(model.parameters())}))
        accumulated_step(model, opt, xb, yb, k)
        out[k] = (grads, [p.detach().clone() for p in model.parameters()])
    (g1, w1), (gk, wk) = out[1], out[accum_steps]
    return {"max_grad_diff": max((g1[i] - gk[i]).abs().max().item() for i in g1),
            "max_weight_diff": max((a - b).abs().max().item() for a, b in zip(w1, wk)),
            "max_grad": max(t.abs().max().item() for t in g1.values())}


def accumulation_cost(batch: int = 256, ks: Iterable[int] = (1, 2, 4, 8), min_run_time: float = 0.3,
                      threads: int | None = None) -> list[dict]:
    """Per accum_steps k: time per effective batch (median) and the activation memory autograd keeps
    for one micro-batch of batch/k (counted exactly with saved-tensor hooks; the same on every device)."""

    threads = threads or torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    xb, yb = torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)
    rows = []
    for k in ks:
        env.seed_everything(0)
        model = models.SmallCNN()
        opt = torch.optim.SGD(model.parameters(), lr=1e-5)  # tiny steps: the work stays the same
        timing = bench.time_fn(lambda: accumulated_step(model, opt, xb, yb, k), min_run_time=min_run_time,
                               num_threads=threads)
        rows.append({"accum_steps": k, "micro_batch": batch // k, "ms_per_effective_batch": timing.median_ms,
                     "spread_pct": timing.spread_pct,
                     "saved_activations_mb": amp_technique.saved_for_backward_mb("small_cnn", batch // k, "cpu", None)})
    base = rows[0]["ms_per_effective_batch"]
    for row in rows:
        row["time_vs_k1"] = row["ms_per_effective_batch"] / base
    return rows


# ============================================================================ claim check: T = params / (lr × batch)

@dataclass
class ClaimConfig:
    """The grid for the claim check: MLPs (fast enough to train 18 times in a minute or two)."""

    widths: tuple[int, ...] = (32, 256)          # MLP 784-w-10: ≈ 25k and ≈ 200k parameters
    lrs: tuple[float, ...] = (0.01, 0.05, 0.25)  # SGD with momentum 0.9 (train.fit's default optimizer)
    batch_sizes: tuple[int, ...] = (32, 128, 512)
    epochs: int = 8                              # budget per run
    target_acc: float = 0.82                     # the MLP ends near 85 % at its best rate
    seed: int = 0


def claim_config_for(run_mode: str | None = None) -> ClaimConfig:
    return env.pick(smoke=ClaimConfig(lrs=(0.01, 0.25), batch_sizes=(32, 256), epochs=4, target_acc=0.75),
                    full=ClaimConfig(), run_mode=run_mode)


def claim_grid(ccfg: ClaimConfig, splits: data.Splits, device: str | torch.device | None = "cpu") -> pd.DataFrame:
    """Time to target of every (width, lr, batch) in the grid, via train.fit (in-memory batches, one seed)."""
    dev = env.device(device)
    rows = []
    for width in ccfg.widths:
        for lr in ccfg.lrs:
            for batch in ccfg.batch_sizes:
                env.seed_everything(ccfg.seed)
                model = models.MLP(width=width)
                loader = dataloading.BatchLoader(splits.X_train.to(dev), splits.y_train.to(dev), batch,
                                                 augment=False, seed=ccfg.seed)
                fit = train.fit(model, splits, epochs=ccfg.epochs, lr=lr, batch_size=batch, train_loader=loader,
                                target_acc=ccfg.target_acc, stop_at_target=True, device=dev, seed=ccfg.seed,
                                progress=False)
                rows.append({"width": width, "params": models.count_params(model), "lr": lr, "batch_size": batch,
                             "time_to_target_s": fit.time_to_target_s, "epochs_to_target": fit.epochs_to_target,
                             "best_acc": fit.best_acc,
                             "s_per_epoch": fit.train_time_s / len(fit.history)})
    return pd.DataFrame(rows)


def fit_claim(grid: pd.DataFrame) -> dict:
    """Fit the claim T = c · params / (lr · batch) (one constant, least squares on log T) and, for
    comparison, free exponents T = c · params^a · lr^b · batch^d; predictions for every grid point."""
    ok = grid.dropna(subset=["time_to_target_s"])
    if len(ok) < 2:
        raise LabkitError("fewer than 2 runs reached the target: lower target_acc or raise epochs.")
    log_t = np.log(ok["time_to_target_s"].to_numpy())
    log_x = np.log((ok["params"] / (ok["lr"] * ok["batch_size"])).to_numpy())
    log_c = float(np.mean(log_t - log_x))        # the least-squares constant on log scale
    predicted = np.exp(log_c) * grid["params"] / (grid["lr"] * grid["batch_size"])
    resid = log_t - (log_c + log_x)
    r2_claim = 1 - float(np.sum(resid ** 2)) / float(np.sum((log_t - log_t.mean()) ** 2))
    design = np.column_stack([np.ones(len(ok)), np.log(ok["params"]), np.log(ok["lr"]), np.log(ok["batch_size"])])
    coef, *_ = np.linalg.lstsq(design, log_t, rcond=None)
    free_resid = log_t - design @ coef
    r2_free = 1 - float(np.sum(free_resid ** 2)) / float(np.sum((log_t - log_t.mean()) ** 2))
    table = grid.assign(predicted_s=predicted, measured_over_predicted=grid["time_to_target_s"] / predicted)
    return {"c": float(np.exp(log_c)), "r2_claim": r2_claim, "r2_free": r2_free,
            "exponents": {"params": float(coef[1]), "lr": float(coef[2]), "batch_size": float(coef[3])},
            "claimed_exponents": {"params": 1.0, "lr": -1.0, "batch_size": -1.0},
            "reached": int(len(ok)), "runs": int(len(grid)), "table": table}


# ============================================================================ results: config + code hash

CODE_MODULES = ("labkit.techniques.speedrun", "labkit.train", "labkit.data", "labkit.models", "labkit.env",
                "labkit.techniques.dataloading", "labkit.techniques.distillation", "labkit.techniques.gpu",
                "labkit.techniques.amp", "labkit.techniques.momentum", "labkit.techniques.schedules")


def code_hash(sources: Iterable[str] | None = None) -> str:
    """First 12 hex characters of the sha256 of the code that produces a result: this file and the
    modules it uses (`CODE_MODULES`), in a fixed order. Any edit to them changes the hash."""
    digest = hashlib.sha256()
    for text in (loaded_sources() if sources is None else sources):
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


@functools.cache
def loaded_sources() -> tuple[str, ...]:
    """The source of `CODE_MODULES`, read once: the code this Python process is running, even if a file
    is edited later without a restart (then the hash keeps naming the code that actually ran)."""
    return tuple(inspect.getsource(importlib.import_module(name)) for name in CODE_MODULES)


def run_record(name: str, cfg: SpeedrunConfig, row: Row) -> dict:
    """What is saved for one configuration: its numbers, its full config and the code hash."""
    return {**row.summary(), "name": name, "seeds": list(cfg.seeds), "config": asdict(cfg), "code_hash": code_hash(),
            "times_by_seed": row.times, "final_acc_by_seed": [r.final_acc for r in row.runs],
            "gap_pt_by_seed": [r.gap_pt for r in row.runs]}


# ============================================================================ headline

def headline(mode: str | None = None, cfg: SpeedrunConfig | None = None,
             on_run: Callable[[str, Run], None] | None = None) -> BenchReport:
    """The cumulative ablation over `cfg.seeds`; the card has one row per configuration."""
    run_mode = env.check_mode(mode)
    cfg = cfg or config_for(run_mode)
    check_config(cfg)
    dev = env.device()
    before = torch.get_num_threads()
    env.set_threads(cfg.threads)
    try:
        splits, source = load_inputs(run_mode, dev)
        rows = ablation(cfg, splits, source, dev, on_run=on_run)
    finally:
        torch.set_num_threads(before)
    check_speedrun(rows, run_mode)
    naive = rows[0]
    best = best_row(rows, naive)
    card = ResultCard(title=f"Speedrun to {100 * cfg.target_acc:.0f} % test accuracy ({dev.type}, "
                            f"{len(cfg.seeds)} seed{'s' if len(cfg.seeds) > 1 else ''}, budget {cfg.epochs} epochs)",
                      baseline="naive")
    for s in marginal_gains(rows):
        card.add(s)
    naive_t, best_t = naive.time_stats()[0], best.time_stats()[0]
    return BenchReport(
        name="speedrun", mode=run_mode, card=card,
        config={**asdict(cfg), "code_hash": code_hash(), "device": dev.type, "best": best.name,
                "best_switches": best.switches, "train_images": len(source), "test_images": len(splits.y_test),
                "skipped": {r.name: r.skipped for r in rows if r.skipped},
                "leaderboard": leaderboard(rows).reset_index().to_dict("records"),
                "gap_pt_by_seed": {r.name: [run.gap_pt for run in r.runs] for r in rows if r.runs}},
        headline={"naive_time_to_target_s": naive_t, "best_time_to_target_s": best_t,
                  "speedup_vs_naive": naive_t / best_t if naive_t and best_t else None,
                  "naive_final_acc": naive.final_acc, "best_final_acc": best.final_acc,
                  "target_acc": cfg.target_acc,
                  "epoch_speedup_vs_naive": naive.epoch_time_s / best.epoch_time_s},
    )
