"""Checks for notebooks/09_distillation.ipynb. The notebook shows `soften` and `kd_loss`; its exercises ask
for what it does not show: the entropy of the softened probabilities, the loss from stored soft labels (with
unlabelled images), the share of errors removed, and the teacher's soft labels themselves."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import distillation as answers

__all__ = ["softened", "distillation_loss", "fewer_errors", "soft_labels", "hint", "solution"]


def _same(result: torch.Tensor, expected: torch.Tensor | None, atol: float = 1e-5) -> bool:
    return (expected is not None and result.shape == expected.shape
            and torch.allclose(result.detach().float(), expected.float(), atol=atol))


def _show(t: torch.Tensor) -> list:
    return torch.round(t.detach().double() * 1e4).div(1e4).tolist()


def _tensor(result, what: str) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise Hint(f"got a {type(result).__name__}: return a tensor of {what}.")
    return result


def _logits(rows: int, classes: int, seed: int, spread: float = 2.0) -> torch.Tensor:
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(seed)) * spread


# ---------------------------------------------------------------- exercise 1: entropy at a temperature

def _entropy(z: torch.Tensor, T: float, *, dim: int = -1, log: Callable = torch.log2, sign: float = -1.0
             ) -> torch.Tensor:
    p = F.softmax(z / T, dim=dim)
    return sign * (p * log(p)).sum(-1)


# (logits, T): T above and below 1, shapes that differ in rows and classes (no constant or fixed shape passes)
ENTROPY_CASES = [(torch.tensor([[4.0, 2.0, 1.0, -1.0], [0.5, 3.0, 0.0, 2.5]]), 2.0),
                 (_logits(3, 5, 0), 0.5), (_logits(4, 10, 1), 5.0)]


@exercise("Exercise 1 (entropy of the softened probabilities)", hints=[
    "the notebook showed how a temperature softens logits into probabilities. Start from those "
    "probabilities, one row per image, and measure how spread out each row is. Which unit does the "
    "exercise ask for, and how many numbers should come back?",
    "entropy adds, over the classes of one image, each probability times the logarithm of that "
    "probability, and flips the sign so that the result is not negative. A one-hot row has none; "
    "a uniform row over ten classes has the most.",
    "bits means the logarithm to base two, not the natural one. Soften by dividing the logits by the "
    "temperature before the softmax over the classes, and add up along the classes only, so that each "
    "image keeps its own entropy.",
])
def softened(fn: Callable) -> None:
    """`fn(logits, T)`: the entropy in bits of softmax(logits / T), one value per row (image)."""
    for z, T in ENTROPY_CASES:
        result = _tensor(ask(fn, z.clone(), T), "entropies")
        expected = _entropy(z, T)
        case = f"for {len(z)} images × {z.shape[1]} classes at T={T:g}"
        if result.numel() == 1 and len(z) > 1:
            raise Hint(f"{case} you returned one number: give one entropy per image (add along the classes "
                       "only).")
        if result.shape == z.shape:
            raise Hint(f"{case} you returned a {tuple(result.shape)} tensor, like the probabilities: reduce each "
                       "row to its entropy.")
        if result.shape != expected.shape:
            raise Hint(f"{case} expected shape {tuple(expected.shape)} (one entropy per image), "
                       f"got {tuple(result.shape)}.")
        if _same(result, expected, atol=1e-4):
            continue
        mistakes = [
            (_entropy(z, T, log=torch.log), "that is the entropy in nats (natural log): the exercise asks for "
             "bits, the log to base 2."),
            (_entropy(z, 1.0), "those entropies ignore the temperature: divide the logits by T before the "
             "softmax."),
            (_entropy(z, 1.0 / T), "multiplying the logits by T sharpens the distribution; divide by T to "
             "soften it."),
            (_entropy(z, T, dim=0), "the softmax ran down the columns: each ROW (one image) must sum to 1."),
            (_entropy(z, T, sign=1.0), "the entropies are negative: the sign is missing (log p ≤ 0, so "
             "entropy = −Σ p·log₂ p)."),
            (_entropy(z, T, log=torch.log, sign=1.0), "negative, and in nats: flip the sign and use log₂."),
        ]
        for value, message in mistakes:
            if _same(result, value, atol=1e-4):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case} you returned {_show(result)}, expected {_show(expected)}: check the first row by hand.")


# ---------------------------------------------------------------- exercise 2: the loss from stored soft labels

def _kd(s: torch.Tensor, p_t: torch.Tensor, y: torch.Tensor, T: float, alpha: float, *, t_squared: bool = True,
        reverse: bool = False, kl_sum: bool = False, student_T: float | None = None, ce_T: float = 1.0,
        ce_over_all: bool = False) -> torch.Tensor:
    """The reference loss, with knobs for the mistakes the checker recognises."""
    log_p_s = F.log_softmax(s / (T if student_T is None else student_T), -1)
    log_p_t = p_t.clamp_min(1e-30).log()
    rows = (log_p_s.exp() * (log_p_s - log_p_t) if reverse else p_t * (log_p_t - log_p_s)).sum(-1)
    kl = rows.sum() if kl_sum else rows.mean()
    labelled = y >= 0
    ce = F.cross_entropy(s[labelled] / ce_T, y[labelled], reduction="sum")
    ce = ce / (len(y) if ce_over_all else int(labelled.sum()))
    return alpha * kl * (T * T if t_squared else 1) + (1 - alpha) * ce


def _kd_case(seed: int, n: int, T: float, alpha: float, unlabelled: list[int]):
    s, t = _logits(n, 5, seed), _logits(n, 5, seed + 100, spread=3.0)
    y = torch.randint(0, 5, (n,), generator=torch.Generator().manual_seed(seed + 200))
    y[unlabelled] = -1
    return s, F.softmax(t / T, -1), y, T, alpha


# every label present first (the basic mistakes show there), then unlabelled images (y = -1)
KD_CASES = [_kd_case(0, 3, 3.0, 0.7, []), _kd_case(1, 6, 2.0, 0.4, [1, 4]), _kd_case(2, 5, 4.0, 0.9, [0, 2, 3])]


@exercise("Exercise 2 (the loss from stored soft labels)", hints=[
    "compare with the loss shown in the notebook: what arrives here from the teacher is no longer its "
    "logits but its probabilities, already softened. Which of the two models still needs softening, and "
    "what should an image without a label contribute?",
    "the soft term measures how far the student's softened distribution is from the teacher's, in the "
    "direction from teacher to student, averaged over the images of the batch and scaled by the square of "
    "the temperature. The teacher's probabilities go in as they are.",
    "the hard term is the ordinary cross entropy at temperature one, averaged over the labelled images "
    "only: pick them out by their label being zero or more. Alpha weighs the soft term and one minus "
    "alpha the hard term.",
])
def distillation_loss(fn: Callable) -> None:
    """`fn(student_logits, soft_targets, y, T, alpha)`: soft_targets are the teacher's probabilities at T;
    α·T²·KL(teacher ‖ student at T), averaged over all images, + (1 − α)·CE over the labelled images (y ≥ 0)."""
    for s, p_t, y, T, alpha in KD_CASES:
        n_unlabelled = int((y < 0).sum())
        case = (f"for {len(y)} images ({n_unlabelled} unlabelled), T={T:g}, alpha={alpha:g}")
        try:
            result = ask(fn, s.clone(), p_t.clone(), y.clone(), T, alpha)
        except Hint as hint:
            if n_unlabelled and "raised" in str(hint):
                raise Hint(f"{case} {hint}. Images with y = −1 have no label: leave them out of the "
                           "cross-entropy (they learn from the teacher only).") from None
            raise
        result = _tensor(result, "one loss")
        if result.numel() != 1:
            raise Hint(f"{case} you returned shape {tuple(result.shape)}: return one number, the batch's loss.")
        value, expected = float(result), float(_kd(s, p_t, y, T, alpha))
        if math.isclose(value, expected, rel_tol=1e-4):
            continue
        case = f"{case} you returned {value:.4f}, expected {expected:.4f}"
        mistakes = [
            (_kd(s, F.softmax(p_t / T, -1), y, T, alpha), "the teacher's probabilities were softened again: "
             "soft_targets are already probabilities at T; use them as they are."),
            (_kd(s, F.softmax(p_t, -1), y, T, alpha), "a softmax was applied to the teacher's probabilities: "
             "they are already probabilities; use them as they are."),
            (_kd(s, p_t, y, T, alpha, t_squared=False), "multiply the KL term by T²: softened gradients "
             "shrink as 1/T²."),
            (_kd(s, p_t, y, T, 1 - alpha), "alpha weighs the teacher's (soft) term, 1 − alpha the hard labels."),
            (_kd(s, p_t, y, T, alpha, reverse=True), "the KL runs from the teacher to the student: "
             "F.kl_div(student LOG-probabilities, teacher probabilities)."),
            (_kd(s, p_t, y, T, alpha, kl_sum=True), "the KL was summed over the batch: average it "
             "(reduction='batchmean')."),
            (_kd(s, p_t, y, T, alpha, student_T=1.0), "the student's log-probabilities must be taken at T "
             "too: divide its logits by T before the log-softmax."),
            (_kd(s, p_t, y, T, alpha, ce_T=T), "the hard-label cross-entropy is taken at T = 1: use the "
             "student's logits as they are there."),
            (_kd(s, p_t, y, T, alpha, ce_over_all=True), "the cross-entropy was averaged over all images: "
             "average it over the labelled images only."),
        ]
        for loss, message in mistakes:
            if math.isclose(value, float(loss), rel_tol=1e-4):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}: check each term alone with alpha = 1 and alpha = 0.")


# ---------------------------------------------------------------- exercise 3: the share of errors removed

# (scratch, distilled): different answers for every mistake, and one where distillation made it worse
ERROR_CASES = [(0.80, 0.85), (0.90, 0.93), (0.60, 0.68), (0.75, 0.70)]


@exercise("Exercise 3 (fewer errors)", hints=[
    "think in errors, not in accuracy: what share of the images does the scratch student get wrong, and "
    "how much of that share has distillation removed?",
    "the errors of a student are the images it gets wrong, one minus its accuracy. Compare the drop in "
    "errors with the scratch student's errors, not with either accuracy.",
    "give the answer in percent of the scratch student's errors. When distillation made things worse the "
    "answer is negative: do not clip it.",
])
def fewer_errors(fn: Callable) -> None:
    """`fn(scratch_acc, distilled_acc)`: the share of the scratch student's errors that distillation removes,
    in percent (accuracies are fractions); negative when the distilled student is worse."""
    for a, b in ERROR_CASES:
        result = ask(fn, a, b)
        try:
            value = float(result)
        except (TypeError, ValueError):
            raise Hint(f"got {result!r}: return one number, a percentage.") from None
        expected = 100 * (b - a) / (1 - a)
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        case = f"from {100 * a:g} % to {100 * b:g} % accuracy you returned {value:.4g}"
        mistakes = [
            (100 * (b - a), "that is the gain in points of accuracy; divide it by the scratch ERROR rate."),
            ((b - a) / (1 - a), "that is a fraction; give it in percent."),
            (100 * (b - a) / a, "that divides by the scratch accuracy: divide by its ERROR rate (1 − accuracy)."),
            (100 * (b - a) / b, "that divides by the distilled accuracy: divide by the scratch ERROR rate."),
            (100 * (b - a) / (1 - b), "that divides by the distilled student's errors: divide by the scratch "
             "student's errors (the ones distillation may remove)."),
            (100 * (1 - b) / (1 - a), "that is the share of errors that REMAINS: how much of them is gone?"),
            (max(0.0, expected), "distillation made this student worse: the answer should be negative, "
             "not clipped at 0."),
            (abs(expected), "distillation made this student worse: the answer should be negative."),
        ]
        for wrong, message in mistakes:
            if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-9):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}, expected {expected:.4g}: the scratch student gets {100 * (1 - a):g} % wrong, the "
                   f"distilled one {100 * (1 - b):g} %.")


# ---------------------------------------------------------------- exercise 4: the teacher's soft labels

class _TinyTeacher(nn.Module):
    """Batch norm and dropout: the two layers that behave differently in train and eval mode."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(8, 4))
        with torch.no_grad():  # stored statistics unlike any batch's: train-mode outputs differ visibly
            self.net[2].running_mean.fill_(0.5)
            self.net[2].running_var.fill_(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# (teacher seed, images, T)
SOFT_CASES = [(0, 32, 4.0), (3, 12, 2.0)]


@exercise("Exercise 4 (the teacher's soft labels)", hints=[
    "the teacher has finished learning: its soft labels should be what it predicts, computed once and "
    "stored. Two of its layers behave differently while it trains, and nothing here should record how to "
    "change it.",
    "switch the teacher to its prediction mode, so that batch norm uses its stored statistics and dropout "
    "keeps every unit, and run it without tracking gradients.",
    "then soften its logits at the temperature, dividing before the softmax over the classes: one row of "
    "probabilities per image.",
])
def soft_labels(fn: Callable) -> None:
    """`fn(teacher, X, T)`: the teacher's probabilities at T for every image of X, as it predicts (eval mode),
    as a plain tensor (no gradient history)."""
    for seed, n, T in SOFT_CASES:
        teacher = _TinyTeacher(seed)
        X = torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            logits = teacher.eval()(X)
        expected = F.softmax(logits / T, -1)
        teacher.train()  # left in training mode, as it is after training
        torch.manual_seed(seed + 2)
        result = _tensor(ask(fn, teacher, X.clone(), T), "probabilities")
        case = f"for {n} images at T={T:g}"
        if result.shape != expected.shape:
            raise Hint(f"{case} expected shape {tuple(expected.shape)} (images × classes), "
                       f"got {tuple(result.shape)}.")
        if result.requires_grad:
            raise Hint(f"{case} the result carries gradient history: compute it under torch.no_grad() "
                       "(the teacher does not learn).")
        if _same(result, expected):
            continue
        mistakes = [
            (logits, "these are logits: turn them into probabilities with a softmax at T."),
            (logits / T, "these are softened logits: turn them into probabilities with a softmax."),
            (F.softmax(logits, -1), "these are the T=1 probabilities: divide the logits by T first."),
            (F.softmax(logits * T, -1), "multiplying by T sharpens; divide the logits by T to soften them."),
            (F.softmax(logits / T, 0), "each ROW (one image) must sum to 1: take the softmax over the classes "
             "(dim=-1)."),
        ]
        for value, message in mistakes:
            if _same(result, value):
                raise Hint(f"{case}: {message}")
        if torch.allclose(result.sum(-1), torch.ones(n), atol=1e-4):
            raise Hint(f"{case}: the probabilities differ from the teacher's predictions: call teacher.eval() "
                       "first — in training mode batch norm uses the batch's statistics and dropout drops units.")
        raise Hint(f"{case}: expected softmax(teacher(X) / T) with the teacher in eval mode.")


hint, solution = helpers(__name__, answers)
