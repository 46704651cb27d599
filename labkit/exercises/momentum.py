"""Checks for notebooks/05_momentum.ipynb: the notebook shows PyTorch's heavy-ball step, the averaged step,
the effective lr, Polyak's best (lr, β) and the RMSprop and Adam steps; its exercises ask for what it does not
show: Nesterov's step, the step length k steps into a steady slope, heavy ball's rate at any (lr, β), and
RMSprop with Adam's bias correction. Each answer meets several inputs; the expected values come from torch's own
optimizers (exercise 3: from the exact roots, next to a rate measured on torch's heavy ball)."""

from __future__ import annotations

import cmath
import math
from typing import Callable

import torch

from labkit.exercises import Hint, ask, exercise, helpers
from labkit.exercises.answers import momentum as answers

__all__ = ["nesterov", "steady_step", "heavy_ball_rate", "debiased_rmsprop", "hint", "solution"]

F64 = torch.float64


def _grads(seed: int, n: int, scales: tuple[float, ...]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(n, len(scales), generator=g, dtype=F64) * torch.tensor(scales, dtype=F64))


def _as_pair(result, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise Hint(f"got {type(result).__name__}: return a pair ({what}).")
    try:
        return tuple(torch.as_tensor(r, dtype=F64) for r in result)
    except (TypeError, ValueError, RuntimeError):
        raise Hint(f"got {result!r}: return a pair of tensors ({what}).") from None


def _path(update: Callable, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every x of an update `update(x, state, grad, t) -> (x, state)` from the checker's start."""
    x, v = torch.ones(len(grads[0]), dtype=F64), torch.zeros(len(grads[0]), dtype=F64)
    path = []
    for t, g in enumerate(grads, start=1):
        x, v = update(x, v, g, t)
        path.append(x)
    return path


def _first_match(learner: Callable, mistakes: list[tuple[Callable, str]], grads: list[torch.Tensor]) -> str | None:
    """The message of the first mistake whose whole path the learner's update follows (a single step can
    agree with several mistakes: with zero velocity, say)."""
    try:
        got = _path(learner, grads)
    except Hint:
        return None
    for update, message in mistakes:
        if all(torch.allclose(a, b, rtol=1e-7, atol=1e-10) for a, b in zip(got, _path(update, grads))):
            return message
    return None


# ------------------------------------------------------------------ 1. Nesterov's step

# (lr, beta, gradient seed): two β, two lr, different gradient sequences; five steps each
NESTEROV_CASES = [(0.1, 0.9, 0), (0.03, 0.5, 1), (0.2, 0.8, 2)]


@exercise("Exercise 1 (Nesterov's step)", hints=[
    "start from the heavy-ball step shown above: the velocity is updated in the same way. What changes is "
    "the step itself: Nesterov looks ahead, so it steps with the gradient plus where the velocity is about "
    "to carry it.",
    "torch's Nesterov step uses the velocity it has just updated, not the one from before this step; "
    "return that new velocity too, as the state for the next step.",
    "the step is the learning rate times the sum of this step's gradient and beta times the new velocity, "
    "taken downhill.",
])
def nesterov(fn: Callable) -> None:
    """`fn(x, v, grad, lr, beta) -> (x, v)` must follow torch.optim.SGD(momentum=beta, nesterov=True)."""
    for lr, beta, seed in NESTEROV_CASES:
        grads = _grads(seed, 5, (1.0, -0.5, 3.0))
        p = torch.nn.Parameter(torch.ones(3, dtype=F64))
        opt = torch.optim.SGD([p], lr=lr, momentum=beta, nesterov=True)
        x, v = torch.ones(3, dtype=F64), torch.zeros(3, dtype=F64)
        for k, g in enumerate(grads, start=1):
            p.grad = g.clone()
            opt.step()
            x, v = _as_pair(ask(fn, x.clone(), v.clone(), g.clone(), lr, beta), "new_x, new_v")
            if torch.allclose(x, p.detach(), rtol=1e-9, atol=1e-12):
                continue
            mistakes = [
                (lambda x, v, g, t: (x - lr * (beta * v + g), beta * v + g), "that is the heavy-ball step "
                 "(a look-ahead with the old velocity comes to the same path): Nesterov looks ahead with the "
                 "velocity it has just updated."),
                (lambda x, v, g, t: (x - lr * (g + beta * (beta * v + g)), g + beta * (beta * v + g)),
                 "the step is right but the state you return is the look-ahead: carry the velocity itself "
                 "forward, as heavy ball does."),
                (lambda x, v, g, t: (x + lr * (g + beta * (beta * v + g)), beta * v + g), "x went uphill: "
                 "the gradient points up the slope, so step against it."),
                (lambda x, v, g, t: (x - lr * (g + beta * (beta * v + (1 - beta) * g)),
                                     beta * v + (1 - beta) * g), "that velocity is the averaged convention, "
                 "which scales the new gradient down: torch adds the whole gradient."),
            ]
            found = _first_match(lambda x, v, g, t: _as_pair(ask(fn, x.clone(), v.clone(), g.clone(), lr, beta),
                                                             "new_x, new_v"), mistakes, grads)
            case = f"with lr {lr}, β {beta}, after step {k}"
            raise Hint(f"{case}: {found}" if found else f"{case} x is {_show(x)} but torch's Nesterov SGD "
                       f"gives {_show(p.detach())}.")


def _show(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(v):.5g}" for v in t.flatten()) + "]"


# ------------------------------------------------------------------ 2. the k-th step on a steady slope

STEADY_CASES = [(0.1, 0.9, 1.0, 1), (0.1, 0.9, 1.0, 5), (0.05, 0.5, 3.0, 3), (0.2, 0.8, -0.5, 12), (0.01, 0.99, 3.0, 40)]


def _torch_step(lr: float, beta: float, grad: float, k: int) -> float:
    """The length of torch's k-th momentum step under a constant gradient, measured."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=F64))
    opt = torch.optim.SGD([p], lr=lr, momentum=beta)
    for _ in range(k):
        before = p.detach().clone()
        p.grad = torch.full((1,), grad, dtype=F64)
        opt.step()
    return float(before - p.detach())


@exercise("Exercise 2 (the k-th step on a steady slope)", hints=[
    "the plot above shows the step growing towards its limit; the exercise asks for a step on the way "
    "there. Write out the velocity after the first, second and third step of the same gradient, and look "
    "for the pattern.",
    "after k steps the velocity is the gradient times a sum of k powers of beta, starting from the zeroth "
    "power. A geometric sum has a closed form: look it up, or let a loop add the terms.",
    "the step is the learning rate times that velocity; its sign follows the gradient's. As k grows the sum "
    "tends to the effective learning rate's factor, which is a good check of your answer.",
])
def steady_step(fn: Callable) -> None:
    """`fn(lr, beta, grad, k)`: how far torch.optim.SGD(momentum=beta) moves in its k-th step (k = 1, 2, …)
    under a constant gradient `grad`, in the direction against the gradient."""
    for lr, beta, grad, k in STEADY_CASES:
        result = ask(fn, lr, beta, grad, k)
        try:
            got = float(result)
        except (TypeError, ValueError):
            raise Hint(f"got {type(result).__name__}: return one number, the step's length.") from None
        want = _torch_step(lr, beta, grad, k)
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        case = f"for lr {lr}, β {beta}, gradient {grad}, step {k} you returned {got:.6g}, torch moved {want:.6g}"
        mistakes = [
            (lr * grad / (1 - beta), "that is the limit, the effective learning rate times the gradient: the "
             "k-th step has not reached it yet."),
            (lr * grad * (1 - beta ** (k + 1)) / (1 - beta), "one power of beta too many: the first step "
             "already moves by the learning rate times the gradient, and no more (off by one)."),
            (lr * grad * (1 - beta ** (k - 1)) / (1 - beta), "one power of beta too few: "
             "count the first step too (off by one)."),
            (lr * grad * beta ** (k - 1), "that decays: it is the share of the first gradient left in the "
             "velocity, but every step adds a new gradient on top."),
            (lr * grad * beta ** k, "that decays: it is the share of one gradient left in the velocity, but "
             "every step adds a new gradient on top."),
            (lr * grad * (1 - beta ** k), "that is the averaged convention's velocity: torch adds the whole "
             "gradient each step, not a share of it."),
            (lr * (1 - beta ** k) / (1 - beta), "the gradient is missing: the step grows with the slope."),
            (-lr * grad * (1 - beta ** k) / (1 - beta), "the sign is flipped: count the distance moved "
             "downhill, against the gradient, so a positive gradient gives a positive step."),
        ]
        for value, message in mistakes:
            if value is not None and math.isclose(got, value, rel_tol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}. Write out the first two or three steps by hand.")


# ------------------------------------------------------------------ 3. heavy ball's rate at any (lr, β)

# (lr, beta, h): real roots, real negative roots (a diverging case), complex roots
RATE_CASES = [(0.1, 0.1, 1.0), (1.5, 0.2, 2.0), (0.5, 0.81, 1.0), (0.01, 0.5, 3.0), (1.2, 0.9, 2.0)]


def _roots(lr: float, beta: float, h: float) -> tuple[complex, complex]:
    a = 1 + beta - lr * h
    root = cmath.sqrt(a * a - 4 * beta)
    return (a + root) / 2, (a - root) / 2


def _measured_rate(lr: float, beta: float, h: float, steps: int = 400) -> float:
    """The per-step contraction of torch's heavy ball on f(x) = ½hx², measured from a long run."""
    p = torch.nn.Parameter(torch.ones(1, dtype=F64))
    opt = torch.optim.SGD([p], lr=lr, momentum=beta)
    norms = []
    for _ in range(steps):
        p.grad = h * p.detach().clone()
        opt.step()
        norms.append(abs(float(p.detach())))
    return (max(norms[-20:]) / max(norms[-220:-200])) ** (1 / 200)


@exercise("Exercise 3 (heavy ball's rate)", hints=[
    "the notebook gives the rate only at Polyak's best settings. Follow heavy ball on a single direction "
    "of curvature h: write the new position from the two positions before it, with no velocity left in "
    "the formula. Errors of that kind shrink like powers of some number; which one?",
    "that recurrence is linear in the last two positions: try a solution that is a power of a number z. "
    "Then z solves a quadratic equation whose coefficients are made of lr, beta and h.",
    "the quadratic has two roots, real or complex. The error is a mix of both powers, so the larger "
    "magnitude of the two roots sets the rate; a complex root's magnitude is its absolute value.",
])
def heavy_ball_rate(fn: Callable) -> None:
    """`fn(lr, beta, h)`: the factor by which heavy ball's error shrinks per step, in the long run, along a
    direction of curvature h (above 1: it grows)."""
    for lr, beta, h in RATE_CASES:
        result = ask(fn, lr, beta, h)
        try:
            got = float(result)
        except (TypeError, ValueError):
            raise Hint(f"got {result!r}: return one real number. A complex root's size is its absolute "
                       "value.") from None
        z1, z2 = _roots(lr, beta, h)
        want = max(abs(z1), abs(z2))
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        case = f"for lr {lr}, β {beta}, curvature {h} you returned {got:.6g}, expected about " \
               f"{_measured_rate(lr, beta, h):.4g} (measured on torch's heavy ball)"
        za1, za2 = _roots(lr * (1 - beta), beta, h)
        mistakes = [
            (abs(1 - lr * h), "that is gradient descent's rate: with momentum the new position depends on "
             "the two positions before it."),
            (math.sqrt(beta), "that is the size of complex roots only: here the roots are real."),
            (min(abs(z1), abs(z2)), "that is the smaller root: the error keeps the slower of the two, "
             "the larger magnitude."),
            (max(z1.real, z2.real), "the roots here are negative: the rate is the magnitude, not the larger "
             "signed value."),
            (-want, "that root is negative: the rate is its magnitude, its absolute value."),
            (max(abs(za1), abs(za2)), "that is the averaged convention's rate: torch's velocity adds the whole "
             "gradient."),
            (1 - lr * h, "that is gradient descent's factor: with momentum the new position depends on the "
             "two positions before it."),
        ]
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-6):
                raise Hint(f"{case}: {message}")
        raise Hint(f"{case}.")


# ------------------------------------------------------------------ 4. RMSprop with Adam's bias correction

# (lr, alpha, gradient seed); the gradients' sizes span 1e-4 to 1e2 per coordinate
RMS_CASES = [(1e-3, 0.99, 0), (1e-2, 0.9, 1), (3e-3, 0.999, 2)]
EPS = 1e-8


def _rms(x, sq, g, t, lr, alpha, *, correct=lambda a, t: 1 - a ** t, keep_hat=False, eps_inside=False, root=True):
    sq = alpha * sq + (1 - alpha) * g ** 2
    hat = sq / correct(alpha, t)
    size = (hat + EPS).sqrt() if eps_inside else (hat.sqrt() if root else hat) + EPS
    return x - lr * g / size, (hat if keep_hat else sq)


@exercise("Exercise 4 (RMSprop, bias-corrected)", hints=[
    "re-read the Adam step above: it corrects both running means because they start at 0. RMSprop has "
    "only the running mean of squared gradients; give it the same correction, and nothing else of Adam.",
    "the correction divides the running mean by one minus alpha to the power of the step number, counted "
    "from one. It is for this step's use only: the state you return is the uncorrected running mean.",
    "then divide the gradient by the square root of the corrected mean, with eps added after the root, "
    "as torch does, and step downhill by the learning rate.",
])
def debiased_rmsprop(fn: Callable) -> None:
    """`fn(x, sq, grad, t, lr, alpha, eps) -> (x, sq)` must follow torch.optim.Adam(betas=(0, alpha)): Adam
    without first-moment averaging is RMSprop with the bias correction."""
    for lr, alpha, seed in RMS_CASES:
        grads = _grads(seed, 6, (1e-4, 1.0, 1e2))
        p = torch.nn.Parameter(torch.ones(3, dtype=F64))
        opt = torch.optim.Adam([p], lr=lr, betas=(0.0, alpha), eps=EPS)
        x, sq = torch.ones(3, dtype=F64), torch.zeros(3, dtype=F64)
        for t, g in enumerate(grads, start=1):
            p.grad = g.clone()
            opt.step()
            x, sq = _as_pair(ask(fn, x.clone(), sq.clone(), g.clone(), t, lr, alpha, EPS), "new_x, new_sq")
            if torch.allclose(x, p.detach(), rtol=1e-9, atol=1e-12):
                continue
            mistakes = [
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, correct=lambda a, t: 1.0), "no bias "
                 "correction: that is torch's RMSprop, whose first steps are too long."),
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, keep_hat=True), "the corrected mean was kept "
                 "as the state: correct it for this step only and carry the plain running mean forward."),
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, correct=lambda a, t: 1 - a ** (t + 1)),
                 "the correction is one step ahead (off by one): the power is this step's number, counted "
                 "from one."),
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, correct=lambda a, t: a ** t), "that divides "
                 "by alpha to the power t: the correction is one minus that."),
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, eps_inside=True), "eps went under the square "
                 "root: torch adds it after the root (it matters for the tiny gradients)."),
                (lambda x, s, g, t: _rms(x, s, g, t, lr, alpha, root=False), "the square root is missing: "
                 "divide by the typical size of the gradient, not by its square."),
            ]
            found = _first_match(lambda x, s, g, t: _as_pair(ask(fn, x.clone(), s.clone(), g.clone(), t, lr, alpha,
                                                                 EPS), "new_x, new_sq"), mistakes, grads)
            case = f"with lr {lr}, α {alpha}, after step {t}"
            raise Hint(f"{case}: {found}" if found else f"{case} x is {_show(x)} but torch gives "
                       f"{_show(p.detach())}.")


hint, solution = helpers(__name__, answers)
