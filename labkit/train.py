"""One readable training loop, `fit(...)`, with a switch for each technique and a history table.

Every technique's own line sits in the loop behind its switch (`amp=`, `accum_steps=`,
`clip_grad=`, `scheduler=`), so a learner can see exactly what it changes. Callbacks only
observe (progress, live curves, early stopping); they never change the maths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from labkit import data as lkdata
from labkit import env
from labkit.errors import LabkitError

LRScheduler = torch.optim.lr_scheduler.LRScheduler


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
    measurement, so it is left out of `train_time_s` and `time_to_target_s`.
    """

    history: pd.DataFrame
    train_time_s: float
    images_seen: int
    interrupted: bool = False
    target_acc: float | None = None

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


def _check_args(epochs: int, accum_steps: int, lr: float, amp_dtype: torch.dtype | None) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise LabkitError(f"epochs={epochs!r} must be a whole number of at least 1.")
    if not isinstance(accum_steps, int) or accum_steps < 1:
        raise LabkitError(f"accum_steps={accum_steps!r} must be a whole number of at least 1.")
    if not lr > 0:
        raise LabkitError(f"lr={lr!r} must be greater than 0 (try 0.05 for SGD, 1e-3 for Adam).")
    if amp_dtype not in (None, torch.float16, torch.bfloat16):
        raise LabkitError(f"amp_dtype={amp_dtype} is not a mixed-precision type: use torch.float16 or torch.bfloat16.")


def fit(model: nn.Module, splits: lkdata.Splits, *, epochs: int, lr: float = 0.05, batch_size: int = 128,
        opt: torch.optim.Optimizer | None = None,
        scheduler: LRScheduler | Callable[[torch.optim.Optimizer], LRScheduler] | None = None,
        scheduler_step: str = "batch", amp: bool = False, amp_dtype: torch.dtype | None = None,
        accum_steps: int = 1, clip_grad: float | None = None, target_acc: float | None = None,
        stop_at_target: bool = False, callbacks: tuple[Callback, ...] | list[Callback] = (),
        train_loader: DataLoader | None = None, device: str | torch.device | None = "auto",
        seed: int = 0, progress: bool = True) -> FitResult:
    """Train `model` on `splits` for `epochs`, evaluating on the test split after each epoch.

    opt: defaults to SGD with momentum 0.9 at `lr`. scheduler: an LR scheduler, or a function
    of the optimizer that makes one; stepped every batch (or every epoch with
    scheduler_step='epoch'). amp: autocast to `amp_dtype` (fp16 on CUDA, bf16 elsewhere by
    default), with a gradient scaler for fp16. accum_steps: add up gradients over this many
    batches before each step. Ctrl-C, or a callback returning True, ends training cleanly:
    the history so far is kept and `interrupted` is set.
    """
    _check_args(epochs, accum_steps, lr, amp_dtype)
    if scheduler_step not in ("batch", "epoch"):
        raise LabkitError(f"scheduler_step={scheduler_step!r}: use 'batch' or 'epoch'.")
    dev = env.device(device)
    model.to(dev)
    opt = opt or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        scheduler = scheduler(opt)
    if amp_dtype is None:
        amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    # fp16 needs loss scaling (small gradients underflow); bf16 has fp32's range and does not.
    scaler = torch.amp.GradScaler(dev.type, enabled=amp and amp_dtype == torch.float16)
    train_loader = train_loader or lkdata.loader(splits.X_train, splits.y_train, batch_size, seed=seed)
    state = FitState(model=model, opt=opt)
    train_time = 0.0
    images_seen = 0
    interrupted = False
    reached_target = False
    bar = tqdm(total=epochs * len(train_loader), desc="training", disable=not progress, leave=False)

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
                with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=amp):
                    logits = model(xb)
                    loss = nn.functional.cross_entropy(logits, yb)
                scaler.scale(loss / accum_steps).backward()
                last_in_epoch = i + 1 == len(train_loader)
                if (i + 1) % accum_steps == 0 or last_in_epoch:
                    if clip_grad is not None:
                        scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
                        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    if scheduler is not None and scheduler_step == "batch":
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
            bar.set_postfix(loss=f"{state.last_loss:.3f}", acc=f"{test_acc:.3f}")
            reached_target = reached_target or (target_acc is not None and test_acc >= target_acc)
            if any(cb.on_epoch_end(state) for cb in callbacks if hasattr(cb, "on_epoch_end")):
                stop = True
            if stop or (stop_at_target and reached_target):
                break
    except KeyboardInterrupt:
        interrupted = True  # Ctrl-C / Stop: keep every finished epoch
    finally:
        bar.close()

    return FitResult(
        history=pd.DataFrame(state.rows), train_time_s=train_time, images_seen=images_seen,
        interrupted=interrupted, target_acc=target_acc,
    )
