"""Checks for notebooks/09_distillation.ipynb: softened probabilities, the KD loss, fewer errors, soft labels."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def _logits() -> torch.Tensor:
    """Two images' logits over 4 classes, small enough to check by hand."""
    return torch.tensor([[4.0, 2.0, 1.0, -1.0], [0.5, 3.0, 0.0, 2.5]])


def _same(result, expected: torch.Tensor) -> bool:
    return (isinstance(result, torch.Tensor) and result.shape == expected.shape
            and torch.allclose(result.detach().float(), expected, atol=1e-5))


def softened(soften: Callable) -> str:
    """`soften(logits, T)`: the probabilities softmax(logits / T), one row per image."""
    name = "Exercise 1 (softened probabilities)"
    z = _logits()
    result = call_answer(name, soften, z.clone(), 2.0)
    if result is None:
        return not_attempted(name, "divide the logits by T, then take a softmax over the last dimension.")
    if not isinstance(result, torch.Tensor):
        raise Hint(f"{name}: return a tensor of probabilities, got {type(result).__name__}.")
    if _same(result, F.softmax(z / 2, dim=-1)):
        return passed(name)
    if _same(result, F.softmax(z, dim=-1)):
        raise Hint(f"{name}: these are the T=1 probabilities: divide the logits by T before the softmax.")
    if _same(result, F.softmax(z * 2, dim=-1)):
        raise Hint(f"{name}: multiplying by T sharpens the distribution; divide by T to soften it.")
    if _same(result, F.softmax(z / 2, dim=0)):
        raise Hint(f"{name}: each ROW (one image) must sum to 1: take the softmax over dim=-1.")
    if result.shape == z.shape and not torch.allclose(result.sum(-1), torch.ones(2), atol=1e-4):
        raise Hint(f"{name}: each row should sum to 1 (it sums to {result.sum(-1).tolist()}): use a softmax.")
    raise Hint(f"{name}: for logits {z[0].tolist()} at T=2 the first row should be "
               f"{[round(v, 3) for v in F.softmax(z[0] / 2, -1).tolist()]}.")


def _reference_kd(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float,
                  t_squared: bool = True, reverse: bool = False) -> torch.Tensor:
    p_t, log_p_t, log_p_s = F.softmax(t / T, -1), F.log_softmax(t / T, -1), F.log_softmax(s / T, -1)
    kl = (F.softmax(s / T, -1) * (log_p_s - log_p_t)).sum(-1).mean() if reverse else (p_t * (log_p_t - log_p_s)).sum(-1).mean()
    return alpha * kl * (T * T if t_squared else 1) + (1 - alpha) * F.cross_entropy(s, y)


def distillation_loss(kd: Callable) -> str:
    """`kd(student_logits, teacher_logits, y, T, alpha)`: α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(student, y),
    averaged over the batch."""
    name = "Exercise 2 (the distillation loss)"
    s = torch.tensor([[1.0, 0.5, -0.5, 0.0], [0.2, 1.5, 0.3, -1.0], [2.0, -1.0, 0.0, 0.5]])
    t = torch.tensor([[3.0, 1.0, -1.0, 0.5], [0.0, 2.5, 1.5, -2.0], [1.0, -0.5, 0.5, 2.5]])
    y = torch.tensor([0, 1, 3])
    T, alpha = 3.0, 0.7
    result = call_answer(name, kd, s.clone(), t.clone(), y.clone(), T, alpha)
    if result is None:
        return not_attempted(name, "F.kl_div takes the student's LOG-probabilities at T and the teacher's "
                                   "probabilities at T (reduction='batchmean'); then follow the formula.")
    if not isinstance(result, torch.Tensor) or result.numel() != 1:
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise Hint(f"{name}: return one number (a 0-d tensor, the batch mean), got {shape}.")
    value = float(result)
    expected = float(_reference_kd(s, t, y, T, alpha))
    if close(value, expected, rel=1e-4):
        return passed(name)
    if close(value, float(_reference_kd(s, t, y, T, alpha, t_squared=False)), rel=1e-4):
        raise Hint(f"{name}: got {value:.4f}: multiply the KL term by T² — softened gradients shrink as 1/T².")
    if close(value, float(_reference_kd(s, t, y, T, 1 - alpha)), rel=1e-4):
        raise Hint(f"{name}: got {value:.4f}: alpha weighs the teacher's (soft) term, 1 − alpha the hard labels.")
    if close(value, float(_reference_kd(s, t, y, T, alpha, reverse=True)), rel=1e-4):
        raise Hint(f"{name}: got {value:.4f}: the KL runs from the teacher to the student: "
                   "F.kl_div(student LOG-probabilities, teacher probabilities).")
    kl_sum = float(_reference_kd(s, t, y, T, 1.0)) * len(y)
    if close(value, alpha * kl_sum + (1 - alpha) * float(F.cross_entropy(s, y)), rel=1e-4):
        raise Hint(f"{name}: got {value:.4f}: average the KL over the batch (reduction='batchmean'), not sum it.")
    raise Hint(f"{name}: got {value:.4f}, expected {expected:.4f} for these logits at T=3, alpha=0.7: "
               "check each term alone with alpha=1 and alpha=0.")


def fewer_errors(fewer_errors_pct: Callable) -> str:
    """`fewer_errors_pct(scratch_acc, distilled_acc)`: the share of the scratch student's errors that
    distillation removes, in percent (accuracies are fractions)."""
    name = "Exercise 3 (fewer errors)"
    result = call_answer(name, fewer_errors_pct, 0.80, 0.85)
    if result is None:
        return not_attempted(name, "the scratch student gets 1 − scratch_acc wrong; how much of that is gone?")
    if close(result, 25.0):
        return passed(name)
    if close(result, 5.0):
        raise Hint(f"{name}: got {result:g}: that is the gain in points; divide it by the scratch error rate.")
    if close(result, 0.25):
        raise Hint(f"{name}: got {result:g}: that is a fraction; give it in percent.")
    if close(result, 6.25) or close(result, 100 * 0.05 / 0.85):
        raise Hint(f"{name}: got {result:g}: divide by the ERROR rate (1 − accuracy), not by the accuracy.")
    raise Hint(f"{name}: got {result:g}; from 80 % to 85 % accuracy the errors fall from 20 % to 15 % of images.")


class _TinyTeacher(nn.Module):
    """Batch norm and dropout: the two layers that behave differently in train and eval mode."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(8, 4))
        with torch.no_grad():  # stored statistics unlike any batch's: train-mode outputs differ visibly
            self.net[2].running_mean.fill_(0.5)
            self.net[2].running_var.fill_(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def soft_labels(make_soft_labels: Callable) -> str:
    """`make_soft_labels(teacher, X, T)`: the teacher's probabilities at temperature T for every image
    of X, as a plain tensor (no gradient history), computed as the teacher predicts (eval mode)."""
    name = "Exercise 4 (the teacher's soft labels)"
    teacher = _TinyTeacher().train()  # left in training mode, as it is after training
    X = torch.randn(32, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = F.softmax(teacher.eval()(X) / 4.0, -1)
    teacher.train()
    torch.manual_seed(2)
    result = call_answer(name, make_soft_labels, teacher, X.clone(), 4.0)
    if result is None:
        return not_attempted(name, "put the teacher in eval mode, run it under torch.no_grad(), and soften "
                                   "its logits at T.")
    if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise Hint(f"{name}: expected a tensor of shape {tuple(expected.shape)} (images × classes), got {shape}.")
    if result.requires_grad:
        raise Hint(f"{name}: the result carries gradient history: compute it under torch.no_grad() "
                   "(the teacher does not learn).")
    if _same(result, expected):
        return passed(name)
    with torch.no_grad():
        logits = teacher.eval()(X)
    if _same(result, logits) or _same(result, logits / 4.0):
        raise Hint(f"{name}: these are logits: turn them into probabilities with a softmax at T.")
    if _same(result, F.softmax(logits, -1)):
        raise Hint(f"{name}: these are the T=1 probabilities: divide the logits by T first.")
    if torch.allclose(result.sum(-1), torch.ones(len(X)), atol=1e-4):
        raise Hint(f"{name}: the probabilities differ from the teacher's predictions: call teacher.eval() first — "
                   "in training mode batch norm uses the batch's statistics and dropout drops units.")
    raise Hint(f"{name}: expected softmax(teacher(X) / T) with the teacher in eval mode.")
