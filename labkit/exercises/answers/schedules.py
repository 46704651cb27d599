"""Reference answers for notebooks/04_lr_schedules.ipynb and 04b_plateaus_and_early_stopping.ipynb
(notebook 04 imports `math`; notebook 04b does not, so early_stop uses float("inf"))."""

import math


def warmup_cosine(step, warmup_steps, total_steps):
    if step < warmup_steps:  # warm-up: a straight line from 0 at step 0 to 1 at warmup_steps
        return step / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 → 1 over the decay only
    return 0.5 * (1 + math.cos(math.pi * progress))  # half a cosine: 1 → 0


def smooth(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):  # i counts from 1: beta**0 = 1 would divide by zero
        avg = beta * avg + (1 - beta) * loss  # the running average itself stays uncorrected
        out.append(avg / (1 - beta ** i))  # the average starts at 0: undo that pull towards 0
    return out


def scaled_lr(step, base_lr, base_batch, batch, warmup_steps):
    target = base_lr * batch / base_batch  # linear scaling: k times the batch, k times the rate
    if step >= warmup_steps:  # also covers warmup_steps == 0: no ramp at all
        return target
    return base_lr + (target - base_lr) * step / warmup_steps  # a straight line from base_lr to the target


def early_stop(val_losses, patience, min_delta):
    best, best_epoch, bad = float("inf"), 0, 0
    epoch = 0
    for epoch, loss in enumerate(val_losses, start=1):  # epochs count from 1
        if loss < best - min_delta:  # better than the best so far, by more than min_delta
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
        if bad >= patience:  # decide now, from the epochs so far: stop
            break
    return epoch, best_epoch


KEY = {"warmup_cosine": warmup_cosine, "smoothing": smooth, "linear_scaling": scaled_lr,
       "early_stopping": early_stop}
