"""One readable training step, `train_step(...)`, and the loop `fit(...)` around it, with a history table.

Every technique's own line sits in the step or the loop behind its switch (`precision=`,
`accum_steps=`, `clip_grad=`, `scheduler=`, `loss_fn=`), so a learner can see exactly what it
changes. Every other place in labkit that trains calls the same step. Callbacks only observe
(progress, live curves, early stopping); they never change the maths.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit import data as lkdata
from labkit import env
from labkit.errors import LabkitError, check_number
from labkit.progress import ProgressLine

LRScheduler = torch.optim.lr_scheduler.LRScheduler
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, xb, yb) -> loss
SchedulerFactory = Callable[[torch.optim.Optimizer, int], LRScheduler]      # (opt, total_steps) -> scheduler
PRECISIONS = ("fp32", "fp16", "bf16", "auto")


@dataclass
class FitState:
    """What callbacks see: the model, optimizer, position in training and the history so far."""

    model: nn.Module
    opt: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    last_loss: float | None = None
    rows: list[dict] = field(default_factory=list)


class Callback(Protocol):
    """An observer of training. Each hook may return True to stop training cleanly."""

    def on_batch_end(self, state: FitState) -> bool | None: ...
    def on_epoch_end(self, state: FitState) -> bool | None: ...


@dataclass
class FitResult:
    """The history (one row per epoch) and the numbers a result card needs.

    Times count training only (forward, backward, step); evaluation after each epoch is
    measurement, so it is left out of `train_time_s` and `time_to_target_s`. `target_acc` is a
    test accuracy as a fraction in (0, 1], reached at the end of an epoch.
    """

    history: pd.DataFrame
    train_time_s: float
    images_seen: int
    interrupted: bool = False
    target_acc: float | None = None
    diverged: bool = False  # the training loss became inf/NaN: the rate is too high; training stopped there

    def _first_at_target(self) -> pd.Series | None:
        if self.target_acc is None or not len(self.history):
            return None
        reached = self.history[self.history["test_acc"] >= self.target_acc]
        return reached.iloc[0] if len(reached) else None

    @property
    def time_to_target_s(self) -> float | None:
        """Training seconds until the end of the first epoch at or above `target_acc` (None: never)."""
        row = self._first_at_target()
        return None if row is None else float(row["train_time_s"])

    @property
    def epochs_to_target(self) -> int | None:
        row = self._first_at_target()
        return None if row is None else int(row["epoch"])

    @property
    def final_acc(self) -> float:
        return float(self.history["test_acc"].iloc[-1]) if len(self.history) else float("nan")

    @property
    def best_acc(self) -> float:
        return float(self.history["test_acc"].max()) if len(self.history) else float("nan")

    @property
    def images_per_s(self) -> float:
        return self.images_seen / self.train_time_s if self.train_time_s > 0 else float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` on (X, y), in eval mode."""
    if len(X) != len(y):
        raise LabkitError(f"X has {len(X)} examples but y has {len(y)}: they must match.")
    if device is None:  # the model's own device; CPU for models without parameters (e.g. quantized ones)
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, len(X), batch_size):
        xb, yb = X[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb).float()
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    return loss_sum.item() / len(X), correct.item() / len(X)


# ----------------------------------------------------------------------------- the switches

def mixed_dtype(device: str | torch.device) -> torch.dtype:
    """The device's usual 16-bit type: fp16 on a CUDA GPU (tensor cores, with a scaler), bf16 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


def precision_dtype(precision: str, device: str | torch.device) -> torch.dtype:
    """The type autocast computes in for `precision` ('auto': `mixed_dtype(device)`); float32 means autocast off."""
    if precision not in PRECISIONS:
        raise LabkitError(f"precision={precision!r}: use one of {', '.join(map(repr, PRECISIONS))}.")
    if precision == "auto":
        return mixed_dtype(device)
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def make_scaler(dtype: torch.dtype, device: str | torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, on only for fp16: its small gradients underflow; bf16 has fp32's range and needs none."""
    # shown in notebook 03_mixed_precision
    return torch.amp.GradScaler(torch.device(device).type, enabled=dtype == torch.float16)


def cross_entropy(logits: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The default loss: cross-entropy of the logits against the labels yb (xb is not needed)."""
    return nn.functional.cross_entropy(logits, yb)


def accumulation_group(i: int, n_batches: int, accum_steps: int) -> tuple[int, bool]:
    """For batch i of n_batches: the size of its accumulation group, and whether it ends the group.

    Groups are `accum_steps` batches long, except the epoch's last one, which holds what is left.
    """
    start = i - i % accum_steps
    size = min(accum_steps, n_batches - start)
    return size, i + 1 == start + size


# ----------------------------------------------------------------------------- one training step

def train_step(model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor, *,
               loss_fn: LossFn = cross_entropy, dtype: torch.dtype = torch.float32,
               scaler: torch.amp.GradScaler | None = None, group_size: int = 1, end_of_group: bool = True,
               clip_grad: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One training step on the batch (xb, yb); returns the logits and the loss."""
    # shown in notebook 03_mixed_precision
    scaler = scaler or make_scaler(dtype, xb.device)  # an fp16 run passes its own: the scale is kept between steps
    # forward and loss; mixed precision: autocast computes in `dtype` (16-bit), the weights stay fp32
    with torch.autocast(device_type=xb.device.type, dtype=dtype, enabled=dtype != torch.float32):
        logits = model(xb)
        loss = loss_fn(logits, xb, yb)
    # backward; fp16: the loss × the scale, so small gradients stay representable;
    # accumulation: ÷ the group's size, so the summed gradients are the group's mean
    scaler.scale(loss / group_size).backward()
    if end_of_group:  # accumulation: the optimizer steps once per group of batches
        if clip_grad is not None:  # gradient clipping, of the true gradients: unscale them first
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        scaler.step(opt)    # unscales; skips the step if a gradient is inf/NaN
        scaler.update()     # halves the scale after an overflow, grows it after clean steps
        opt.zero_grad(set_to_none=True)
    return logits, loss


# ----------------------------------------------------------------------------- the loop

def _check_args(epochs: int, accum_steps: int, lr: float, target_acc: float | None) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise LabkitError(f"epochs={epochs!r} must be a whole number of at least 1.")
    if not isinstance(accum_steps, int) or accum_steps < 1:
        raise LabkitError(f"accum_steps={accum_steps!r} must be a whole number of at least 1.")
    check_number("lr", lr, low=0, above=True, hint="try 0.05 for SGD, 1e-3 for Adam")
    if target_acc is not None and not 0 < target_acc <= 1:
        raise LabkitError(f"target_acc={target_acc!r} must be a fraction between 0 and 1 (e.g. 0.85, not 85).")


def fit(model: nn.Module, splits: lkdata.Splits, *, epochs: int, lr: float = 0.05, batch_size: int = 128,
        opt: torch.optim.Optimizer | None = None, loss_fn: LossFn = cross_entropy,
        scheduler: SchedulerFactory | None = None, scheduler_step: str = "batch", precision: str = "fp32",
        accum_steps: int = 1, clip_grad: float | None = None, target_acc: float | None = None,
        stop_at_target: bool = False, callbacks: tuple[Callback, ...] | list[Callback] = (),
        train_loader: DataLoader | None = None, device: str | torch.device | None = "auto",
        seed: int = 0, progress: bool = True) -> FitResult:
    """Train `model` on `splits` for `epochs`, evaluating on the test split after each epoch.

    opt: defaults to SGD with momentum 0.9 at `lr`. loss_fn(logits, xb, yb): defaults to
    cross-entropy. scheduler(opt, total_steps): makes an LR scheduler, stepped after every optimizer
    step (total_steps of them), or once an epoch with scheduler_step='epoch' (total_steps = epochs).
    precision: 'fp32', 'fp16' (with a gradient scaler), 'bf16', or 'auto' (`mixed_dtype(device)`).
    accum_steps: add up gradients over this many batches before each step. target_acc: test accuracy
    as a fraction in (0, 1], checked at the end of each epoch. Ctrl-C, or a callback returning True,
    ends training cleanly: the history so far is kept and `interrupted` is set.
    """
    _check_args(epochs, accum_steps, lr, target_acc)
    if scheduler_step not in ("batch", "epoch"):
        raise LabkitError(f"scheduler_step={scheduler_step!r}: use 'batch' or 'epoch'.")
    dev = env.device(device)
    dtype = precision_dtype(precision, dev)
    model.to(dev)
    opt = opt or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scaler = make_scaler(dtype, dev)
    train_loader = train_loader or lkdata.loader(splits.X_train, splits.y_train, batch_size, seed=seed)
    n_batches = len(train_loader)
    if scheduler is not None:
        steps_per_epoch = math.ceil(n_batches / accum_steps) if scheduler_step == "batch" else 1
        scheduler = scheduler(opt, epochs * steps_per_epoch)
    state = FitState(model=model, opt=opt)
    train_time = 0.0
    images_seen = 0
    interrupted = False
    diverged = False
    reached_target = False
    bar = ProgressLine(epochs * n_batches, "training", "batches", enabled=progress)  # a line, not a widget

    try:
        for epoch in range(1, epochs + 1):
            # --- train one epoch (timed: device synchronised before each clock read) ---
            state.epoch = epoch
            model.train()
            loss_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.long)
            seen = 0
            env.synchronize(dev)
            start = time.perf_counter()
            stop = False
            for i, (xb, yb) in enumerate(train_loader):
                xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
                group_size, end_of_group = accumulation_group(i, n_batches, accum_steps)
                logits, loss = train_step(model, opt, xb, yb, loss_fn=loss_fn, dtype=dtype, scaler=scaler,
                                          group_size=group_size, end_of_group=end_of_group, clip_grad=clip_grad)
                if end_of_group and scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                # running sums stay on the device: no .item() (a hidden sync) per batch
                loss_sum += loss.detach().float() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
                state.step += 1
                bar.update(1)
                if any(cb.on_batch_end(state) for cb in callbacks if hasattr(cb, "on_batch_end")):
                    stop = interrupted = True
                    break
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            env.synchronize(dev)
            epoch_time = time.perf_counter() - start
            train_time += epoch_time
            images_seen += seen

            # --- evaluate (not timed as training) and record the epoch ---
            test_loss, test_acc = evaluate(model, splits.X_test, splits.y_test, device=dev)
            state.last_loss = loss_sum.item() / max(seen, 1)
            state.rows.append({
                "epoch": epoch, "lr": opt.param_groups[0]["lr"],
                "train_loss": state.last_loss, "train_acc": correct.item() / max(seen, 1),
                "test_loss": test_loss, "test_acc": test_acc,
                "epoch_time_s": epoch_time, "train_time_s": train_time,
            })
            bar.set_postfix(**{"loss": f"{state.last_loss:.3f}", "test accuracy": f"{100 * test_acc:.1f} %"})
            reached_target = reached_target or (target_acc is not None and test_acc >= target_acc)
            if any(cb.on_epoch_end(state) for cb in callbacks if hasattr(cb, "on_epoch_end")):
                stop = True
            diverged = not math.isfinite(state.last_loss)  # more epochs cannot bring it back
            if stop or diverged or (stop_at_target and reached_target):
                break
    except KeyboardInterrupt:
        interrupted = True  # Ctrl-C / Stop: keep every finished epoch
    finally:
        bar.close()

    return FitResult(
        history=pd.DataFrame(state.rows), train_time_s=train_time, images_seen=images_seen,
        interrupted=interrupted, target_acc=target_acc, diverged=diverged,
    )
