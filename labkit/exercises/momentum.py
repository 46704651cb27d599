"""Checks for notebooks/05_momentum.ipynb: the heavy-ball update, Polyak's best (lr, β),
the two momentum conventions, and how many steps momentum needs."""

from __future__ import annotations

import math
from typing import Callable

import torch

from labkit.exercises import Hint, call_answer, close, not_attempted, passed


def heavy_ball(step: Callable) -> str:
    """`step(x, v, grad, lr, beta) -> (x, v)` must match torch.optim.SGD(momentum=beta) step by step."""
    name = "Exercise 1 (the heavy-ball update)"
    lr, beta = 0.1, 0.9
    grads = [torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 3.0])]
    x, v = torch.tensor([1.0, 1.0]), torch.zeros(2)
    result = call_answer(name, step, x.clone(), v.clone(), grads[0], lr, beta)
    if result is None:
        return not_attempted(name, "two lines: update the velocity with the new gradient, then step x against it.")
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Hint(f"{name}: return a pair (new_x, new_v), got {type(result).__name__}.")
    # torch's own SGD with momentum, fed the same gradients
    p = torch.nn.Parameter(x.clone())
    opt = torch.optim.SGD([p], lr=lr, momentum=beta)
    for k, g in enumerate(grads):
        p.grad = g.clone()
        opt.step()
        x, v = call_answer(name, step, x, v, g, lr, beta)
        x, v = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(v, dtype=torch.float32)
        if not torch.allclose(x, p.detach(), atol=1e-6):
            _diagnose(name, k, x, p.detach(), grads, lr, beta)
    return passed(name)


def _diagnose(name: str, k: int, got: torch.Tensor, want: torch.Tensor, grads: list, lr: float, beta: float) -> None:
    """Name the usual mistake by replaying the wrong versions (averaged, old velocity, uphill)."""
    def replay(update):
        x, v = torch.tensor([1.0, 1.0]), torch.zeros(2)
        for g in grads[:k + 1]:
            x, v = update(x, v, g)
        return x

    averaged = replay(lambda x, v, g: (x - lr * (beta * v + (1 - beta) * g), beta * v + (1 - beta) * g))
    old_velocity = replay(lambda x, v, g: (x - lr * v, beta * v + g))
    uphill = replay(lambda x, v, g: (x + lr * (beta * v + g), beta * v + g))
    if torch.allclose(got, averaged, atol=1e-6):
        raise Hint(f"{name}: that is the averaged convention m = βm + (1−β)g. PyTorch adds the whole gradient: v = βv + g.")
    if torch.allclose(got, old_velocity, atol=1e-6):
        raise Hint(f"{name}: x moved with the old velocity. Update v first, then step with the new v.")
    if torch.allclose(got, uphill, atol=1e-6):
        raise Hint(f"{name}: x went uphill. Subtract lr·v: the gradient points up the slope.")
    raise Hint(f"{name}: after step {k + 1} x is {got.tolist()} but torch.optim.SGD gives {want.tolist()}.")


def best_momentum(pick: Callable) -> str:
    """`pick(mu, L) -> (lr, beta)`: Polyak's fastest heavy ball on a quadratic with eigenvalues in [mu, L]."""
    name = "Exercise 2 (the best lr and β)"
    mu, L = 0.04, 4.0  # κ = 100, √κ = 10
    result = call_answer(name, pick, mu, L)
    if result is None:
        return not_attempted(name, "both come from √μ and √L (or √κ); the lr has a 4 on top.")
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Hint(f"{name}: return a pair (lr, beta), got {type(result).__name__}.")
    lr, beta = (float(r) for r in result)
    want_lr = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    want_beta = ((math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)) ** 2
    if close(lr, want_lr) and close(beta, want_beta):
        return passed(name)
    if close(beta, math.sqrt(want_beta)):
        raise Hint(f"{name}: β = {beta:.4g} is the convergence rate (√κ−1)/(√κ+1); the best β is its square.")
    if close(beta, ((L / mu - 1) / (L / mu + 1)) ** 2) or close(beta, (L / mu - 1) / (L / mu + 1)):
        raise Hint(f"{name}: β = {beta:.4g} uses κ; momentum's formulas use √κ.")
    if close(lr, 2 / (L + mu)):
        raise Hint(f"{name}: lr = 2/(L+μ) is the best step for plain gradient descent; heavy ball's is 4/(√L+√μ)².")
    if not close(lr, want_lr):
        raise Hint(f"{name}: lr = {lr:.4g} for μ = {mu}, L = {L}; expected 4/(√L+√μ)².")
    raise Hint(f"{name}: β = {beta:.4g}; expected ((√κ−1)/(√κ+1))² with κ = L/μ.")


def averaged_lr(convert: Callable) -> str:
    """`convert(lr, beta)`: the lr that makes the averaged update m = βm + (1−β)g follow PyTorch's path."""
    name = "Exercise 3 (the two conventions)"
    result = call_answer(name, convert, 0.05, 0.9)
    if result is None:
        return not_attempted(name, "m = (1−β)·v at every step. How must the lr change so that lr'·m = lr·v?")
    if close(result, 0.5):
        return passed(name)
    if close(result, 0.005):
        raise Hint(f"{name}: got {result:g}. m is (1−β) times *smaller* than v, so the lr must be *larger*.")
    if close(result, 0.05):
        raise Hint(f"{name}: got {result:g}. The same lr gives the averaged update a 1/(1−β) = 10 times smaller step.")
    raise Hint(f"{name}: got {result:g} for lr = 0.05, β = 0.9; divide by the factor between m and v.")


def momentum_steps(count: Callable) -> str:
    """`count(kappa, tol)`: steps heavy ball needs at its best (lr, β) for the error to shrink by `tol`."""
    name = "Exercise 4 (how many steps?)"
    result = call_answer(name, count, 400, 1e-6)
    if result is None:
        return not_attempted(name, "the error shrinks by the rate (√κ−1)/(√κ+1) per step: solve rate^k = tol for k.")
    rate = (math.sqrt(400) - 1) / (math.sqrt(400) + 1)
    want = math.log(1e-6) / math.log(rate)
    if abs(float(result) - want) <= 1:
        return passed(name)
    if abs(float(result) - math.log(1e-6) / math.log(399 / 401)) <= 1:
        raise Hint(f"{name}: got {result:g}: that is gradient descent's count (rate (κ−1)/(κ+1)); momentum's rate uses √κ.")
    if abs(float(result) + want) <= 1:
        raise Hint(f"{name}: got {result:g}: both logarithms are negative, so k is positive.")
    raise Hint(f"{name}: got {result:g} for κ = 400, tol = 1e-6; k = log(tol) / log(rate).")
