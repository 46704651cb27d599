"""Momentum and adaptive optimizers: exact on a 2-D quadratic, then side by side on the shared task.

Everything here runs real `torch.optim` optimizers; the hand-written updates beside them exist
to be read (and are checked against torch).

Headline (`labkit bench momentum`):
- quadratic_iters_gd / quadratic_iters_momentum: steps of `torch.optim.SGD` without and with
  heavy-ball momentum, each at its theoretically best (lr, β), until ||x_k|| ≤ tol·||x_0|| on
  f(x) = ½ xᵀAx with eigenvalues μ = 1/κ and L = 1, at κ = 100, tol = 1e-6 (float64, exact gradients).
- iters_ratio: gd / momentum (target ≥ 5); theory_ratio: the same ratio predicted from the
  contraction rates (κ−1)/(κ+1) and (√κ−1)/(√κ+1) — about √κ = 10.
- time_to_target_<optimizer> for sgd, momentum, nesterov, adam, adamw, rmsprop: training seconds
  until test accuracy ≥ target on the shared task (MLP on the Fashion-MNIST subset), the mean over
  seeds, or None when a seed never got there. Epochs to target (mean, std, per seed) are on the card.

Not in the headline (45 training runs): the notebook's learning-rate sweep, `lr_sensitivity`, which
tests "adaptive optimizers spare you learning-rate tuning" (`tuning_claim`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from labkit import data, env, models, stats, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard

# ================================================================ the quadratic
# f(x) = ½ xᵀAx with A = R·diag(μ, L)·Rᵀ. L = 1, so learning rates read the same at every κ
# (gradient descent is stable for lr < 2/L = 2); the minimum is x* = 0.

QUADRATIC_OPTIMIZERS = ("gd", "heavy_ball", "nesterov", "rmsprop", "adam")


@dataclass
class Quadratic:
    """A 2-D ill-conditioned bowl: condition number κ = L/μ, eigenvectors rotated by `angle_deg`."""

    kappa: float = 100.0     # condition number L/μ: how much steeper the steep direction is
    angle_deg: float = 0.0   # rotation of the eigenvectors from the axes (Adam and RMSprop care; GD does not)

    def __post_init__(self) -> None:
        if not self.kappa >= 1:
            raise LabkitError(f"kappa={self.kappa!r}: a condition number is at least 1 (try 10 or 100).")

    @property
    def L(self) -> float:
        return 1.0

    @property
    def mu(self) -> float:
        return self.L / self.kappa

    def rotation(self) -> torch.Tensor:
        a = math.radians(self.angle_deg)
        return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)

    def matrix(self) -> torch.Tensor:
        R = self.rotation()
        return R @ torch.diag(torch.tensor([self.mu, self.L], dtype=torch.float64)) @ R.T

    def start(self) -> torch.Tensor:
        """x_0: far along the flat direction, a little up the steep one (so both matter)."""
        return self.rotation() @ torch.tensor([-1.0, 0.5], dtype=torch.float64)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x @ self.matrix() @ x

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix() @ x


def best_gd(q: Quadratic) -> dict:
    """The step that minimises gradient descent's worst contraction: lr = 2/(L+μ)."""
    return {"lr": 2 / (q.L + q.mu), "beta": 0.0}


def best_heavy_ball(q: Quadratic) -> dict:
    """Polyak's optimum: lr = 4/(√L+√μ)², β = ((√κ−1)/(√κ+1))²."""
    # shown in notebook 05_momentum
    sk = math.sqrt(q.kappa)
    return {"lr": 4 / (math.sqrt(q.L) + math.sqrt(q.mu)) ** 2, "beta": ((sk - 1) / (sk + 1)) ** 2}


def rate_gd(kappa: float) -> float:
    """Error shrinks by this factor per step at the best lr: (κ−1)/(κ+1), about 1 − 2/κ."""
    return (kappa - 1) / (kappa + 1)


def rate_heavy_ball(kappa: float) -> float:
    """At the best (lr, β): (√κ−1)/(√κ+1), about 1 − 2/√κ — hence √κ times fewer steps."""
    return (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)


def theory_iters(rate: float, tol: float) -> int:
    """Steps until rate^k ≤ tol: the prediction from the contraction rate alone."""
    if rate <= 0:
        return 1
    return math.ceil(math.log(tol) / math.log(rate))


def make_optimizer(name: str, params, lr: float, beta: float = 0.9) -> torch.optim.Optimizer:
    """One of the explorer's optimizers. `beta` is the momentum (Adam: β1); RMSprop has none."""
    check_step(lr, beta)
    if name == "gd":
        return torch.optim.SGD(params, lr=lr)
    if name == "heavy_ball":
        return torch.optim.SGD(params, lr=lr, momentum=beta)
    if name == "nesterov":  # at β = 0 Nesterov's look-ahead is no look-ahead: plain GD (torch refuses β = 0)
        return torch.optim.SGD(params, lr=lr, momentum=beta, nesterov=beta > 0)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta, 0.999))
    raise LabkitError(f"No optimizer {name!r}: choose one of {', '.join(QUADRATIC_OPTIMIZERS)}.")


def check_step(lr: float, beta: float, lr_name: str = "lr") -> None:
    """Reject settings that cannot work, with a one-line reason."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise LabkitError(f"{lr_name}={lr!r}: the learning rate must be above 0 (a step of 0 never moves).")
    if not (isinstance(beta, (int, float)) and 0 <= beta < 1):
        raise LabkitError(f"beta={beta!r}: momentum must be in [0, 1) — at β ≥ 1 the velocity never forgets "
                          "old gradients and grows without bound.")


@dataclass
class Trajectory:
    """One optimizer's run on a quadratic: every iterate, its loss, and when it got within tolerance."""

    name: str
    lr: float
    beta: float
    points: torch.Tensor          # (steps + 1, 2): x_0 … x_k
    losses: list[float]           # f(x_k) − f(x*) for each point
    iters_to_tol: int | None      # first k with ||x_k|| ≤ tol·||x_0|| (None: not within the steps run)
    diverged: bool

    def describe(self) -> str:
        if self.diverged:
            return f"{self.name}: diverged (lr too large for this κ and β)"
        if self.iters_to_tol is None:
            return f"{self.name}: not within tolerance after {len(self.points) - 1} steps"
        return f"{self.name}: {self.iters_to_tol} steps to tolerance"


def run_quadratic(q: Quadratic, name: str, lr: float, beta: float = 0.9, steps: int = 500,
                  tol: float = 1e-6, stop_at_tol: bool = False) -> Trajectory:
    """Run a real torch.optim optimizer on the quadratic, feeding it the exact gradient Ax.

    The gradient is written into `.grad` by hand instead of by autograd: the same step, several
    times faster for a 2-element tensor (the explorer redraws five of these on every slider move).
    """
    if not isinstance(steps, int) or steps < 1:
        raise LabkitError(f"steps={steps!r} must be a whole number of at least 1.")
    A = q.matrix()
    x = nn.Parameter(q.start())
    opt = make_optimizer(name, [x], lr, beta)
    start_norm = x.detach().norm().item()
    points = [x.detach().clone()]
    reached, diverged = None, False
    for k in range(1, steps + 1):
        x.grad = A @ x.detach()
        opt.step()
        now = x.detach().clone()
        points.append(now)
        norm = now.norm().item()
        if not math.isfinite(norm) or norm > 1e6 * start_norm:
            diverged = True
            break
        if reached is None and norm <= tol * start_norm:
            reached = k
            if stop_at_tol:
                break
    path = torch.stack(points)
    losses = (0.5 * ((path @ A) * path).sum(dim=1)).tolist()  # f(x_k) for every k at once
    return Trajectory(name, lr, beta, path, losses, reached, diverged)


def iterations(q: Quadratic, name: str, lr: float, beta: float, tol: float, max_steps: int) -> int | None:
    """Steps to tolerance (None: diverged or not within max_steps)."""
    run = run_quadratic(q, name, lr, beta, steps=max_steps, tol=tol, stop_at_tol=True)
    return None if run.diverged else run.iters_to_tol


def iterations_vs_kappa(kappas: list[float], tol: float = 1e-6, max_steps: int = 50_000) -> list[dict]:
    """Measured steps to tolerance for GD and heavy ball (each at its best lr, β) next to theory."""
    rows = []
    for kappa in kappas:
        q = Quadratic(kappa)
        gd, hb = best_gd(q), best_heavy_ball(q)
        rows.append({
            "kappa": kappa,
            "gd": iterations(q, "gd", gd["lr"], 0.0, tol, max_steps),
            "heavy_ball": iterations(q, "heavy_ball", hb["lr"], hb["beta"], tol, max_steps),
            "theory_gd": theory_iters(rate_gd(kappa), tol),
            "theory_heavy_ball": theory_iters(rate_heavy_ball(kappa), tol),
        })
    return rows


def explore(kappa: float, lr: float, beta: float, adaptive_lr: float, names: tuple[str, ...] | list[str],
            steps: int = 200, angle_deg: float = 0.0, tol: float = 1e-6) -> list[Trajectory]:
    """What the explorer draws: each chosen optimizer from the same start (Adam/RMSprop at `adaptive_lr`)."""
    q = Quadratic(kappa, angle_deg)
    check_step(lr, beta)
    check_step(adaptive_lr, beta, "adaptive lr")
    unknown = [n for n in names if n not in QUADRATIC_OPTIMIZERS]
    if unknown:
        raise LabkitError(f"No optimizer {', '.join(unknown)}: choose from {', '.join(QUADRATIC_OPTIMIZERS)}.")
    return [run_quadratic(q, n, adaptive_lr if n in ("rmsprop", "adam") else lr, beta, steps, tol) for n in names]


# ================================================================ the two conventions
# PyTorch (and Polyak's heavy ball):   v = βv + g,          x = x − lr·v
# "averaged" (Adam's m, many papers):  m = βm + (1−β)g,     x = x − lr'·m
# They are the same method when lr' = lr/(1−β): m = (1−β)v at every step.

def heavy_ball_step(x: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, lr: float,
                    beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's SGD momentum (dampening 0): the velocity adds up gradients, decaying by β."""
    # shown in notebook 05_momentum
    v = beta * v + grad
    return x - lr * v, v


def averaged_step(x: torch.Tensor, m: torch.Tensor, grad: torch.Tensor, lr: float,
                  beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The averaged convention: m is a running mean of gradients, so its size is a gradient's size."""
    # shown in notebook 05_momentum
    m = beta * m + (1 - beta) * grad
    return x - lr * m, m


def effective_lr(lr: float, beta: float) -> float:
    """The step PyTorch's momentum takes per unit of a steady gradient: v → g/(1−β), so lr/(1−β)."""
    # shown in notebook 05_momentum
    check_step(lr, beta)
    return lr / (1 - beta)


# ================================================================ the adaptive updates
# RMSprop and Adam divide each coordinate's step by a running RMS of that coordinate's gradients.
# Written with torch's defaults and eps placement (eps is added to the square root, not under it).

def rmsprop_step(x: torch.Tensor, sq: torch.Tensor, grad: torch.Tensor, lr: float, alpha: float = 0.99,
                 eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.optim.RMSprop (no momentum, not centred): sq is a running mean of squared gradients."""
    # shown in notebook 05_momentum
    sq = alpha * sq + (1 - alpha) * grad ** 2
    return x - lr * grad / (sq.sqrt() + eps), sq


def adam_step(x: torch.Tensor, m: torch.Tensor, sq: torch.Tensor, grad: torch.Tensor, t: int, lr: float,
              beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.optim.Adam at step t = 1, 2, …: averaged momentum m over the RMS of the gradients, both
    bias-corrected (m and sq start at 0, so early averages are too small by 1 − β^t)."""
    # shown in notebook 05_momentum
    m = beta1 * m + (1 - beta1) * grad
    sq = beta2 * sq + (1 - beta2) * grad ** 2
    m_hat, sq_hat = m / (1 - beta1 ** t), sq / (1 - beta2 ** t)
    return x - lr * m_hat / (sq_hat.sqrt() + eps), m, sq


def adaptive_by_hand_gaps(steps: int = 50, lr: float = 0.01) -> dict:
    """Max distance between torch's RMSprop / Adam and the hand-written steps, on gradients of very
    different sizes per coordinate (float64, the same gradient sequence for both)."""
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(steps, 3, generator=g, dtype=torch.float64) * torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64)
    gaps = {}
    for name in ("rmsprop", "adam"):
        p = nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = torch.optim.RMSprop([p], lr=lr) if name == "rmsprop" else torch.optim.Adam([p], lr=lr)
        x, m, sq = (torch.zeros(3, dtype=torch.float64) for _ in range(3))
        gap = 0.0
        for t, grad in enumerate(grads, start=1):
            p.grad = grad.clone()
            opt.step()
            if name == "rmsprop":
                x, sq = rmsprop_step(x, sq, grad, lr)
            else:
                x, m, sq = adam_step(x, m, sq, grad, t, lr)
            gap = max(gap, (x - p.detach()).abs().max().item())
        gaps[name] = gap
    return gaps


def adaptive_step_lengths(scales: tuple[float, ...] = (1e-3, 1.0, 1e3), lr: float = 1e-3,
                          steps: int = 100) -> dict[str, list[tuple[float, float]]]:
    """Under a steady gradient g_i = scales[i] per coordinate: (first step, step `steps`) per coordinate,
    for torch's SGD, RMSprop and Adam at the same lr. SGD steps lr·g; the adaptive ones step ≈ lr."""
    out = {}
    for name in ("sgd", "rmsprop", "adam"):
        p = nn.Parameter(torch.zeros(len(scales), dtype=torch.float64))
        opt = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}[name]([p], lr=lr)
        lengths = []
        for _ in range(steps):
            before = p.detach().clone()
            p.grad = torch.tensor(scales, dtype=torch.float64)
            opt.step()
            lengths.append((before - p.detach()).tolist())
        out[name] = [(first, last) for first, last in zip(lengths[0], lengths[-1])]
    return out


def run_by_hand(step: Callable, q: Quadratic, lr: float, beta: float, steps: int) -> torch.Tensor:
    """Iterates of a hand-written update on the quadratic (zero initial velocity)."""
    x, v = q.start(), torch.zeros(2, dtype=torch.float64)
    points = [x]
    for _ in range(steps):
        x, v = step(x, v, q.grad(x), lr, beta)
        points.append(x)
    return torch.stack(points)


def compare_conventions(q: Quadratic, lr: float = 0.5, beta: float = 0.9, steps: int = 100) -> dict:
    """Max distance between torch.optim.SGD(momentum) and the two hand-written updates.

    Heavy ball by hand at lr must match torch exactly; the averaged update matches only at
    lr/(1−β) — at the same lr it is a 1/(1−β)-times smaller step.
    """
    torch_points = run_quadratic(q, "heavy_ball", lr, beta, steps).points
    by_hand = run_by_hand(heavy_ball_step, q, lr, beta, steps)
    averaged_same_lr = run_by_hand(averaged_step, q, lr, beta, steps)
    averaged_scaled = run_by_hand(averaged_step, q, effective_lr(lr, beta), beta, steps)
    gap = lambda a: (a - torch_points).norm(dim=1).max().item()  # noqa: E731 - one-line helper
    return {"heavy_ball_by_hand": gap(by_hand), "averaged_same_lr": gap(averaged_same_lr),
            "averaged_lr_over_1_minus_beta": gap(averaged_scaled)}


def steady_steps(lr: float, beta: float, steps: int = 60) -> list[float]:
    """Step length of torch's SGD momentum under a constant gradient g = 1: it climbs to lr/(1−β)."""
    x = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([x], lr=lr, momentum=beta)
    lengths = []
    for _ in range(steps):
        before = x.detach().clone()
        x.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        lengths.append((before - x.detach()).item())
    return lengths


def check_momentum_active(opt: torch.optim.Optimizer) -> None:
    """Raise when an optimizer that should carry momentum did not (momentum 0, or no buffer after a step)."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            if isinstance(opt, torch.optim.SGD):
                if group["momentum"] <= 0 or state.get("momentum_buffer") is None:
                    raise LabkitError("This SGD has no momentum buffer: pass momentum=0.9 and take a step first.")
            elif isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
                if group["betas"][0] <= 0 or "exp_avg" not in state:
                    raise LabkitError("This Adam has no first-moment (momentum) state: use betas=(0.9, 0.999) "
                                      "and take a step first.")


# ================================================================ claim check: valleys and local minima

def rosenbrock_grad(p: torch.Tensor) -> torch.Tensor:
    """Gradient of f(x, y) = (1−x)² + 100(y−x²)²: a long, curved, nearly flat valley; minimum (1, 1)."""
    x, y = p[0], p[1]
    return torch.stack([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])


def rosenbrock_loss(p: torch.Tensor) -> torch.Tensor:
    return (1 - p[..., 0]) ** 2 + 100 * (p[..., 1] - p[..., 0] ** 2) ** 2


ROSENBROCK_START = (-1.5, 2.0)
# Largest Hessian eigenvalue at the minimum (1, 1): [[802, −400], [−400, 200]] → about 1001.6.
# Gradient descent is stable there only for lr < 2/1001.6 ≈ 0.002.
ROSENBROCK_L = 501 + math.sqrt(301 ** 2 + 400 ** 2)


def run_rosenbrock(lr: float, beta: float, max_steps: int = 20_000, tol: float = 1e-3) -> dict:
    """torch.optim.SGD (β = 0: plain) from (−1.5, 2) until within `tol` of (1, 1); the path is kept."""
    p = nn.Parameter(torch.tensor(ROSENBROCK_START, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr, momentum=beta)
    path, steps, diverged = [p.detach().clone()], None, False
    for k in range(1, max_steps + 1):
        p.grad = rosenbrock_grad(p.detach())
        opt.step()
        path.append(p.detach().clone())
        distance = (p.detach() - 1).norm().item()
        if not math.isfinite(distance) or distance > 1e3:
            diverged = True
            break
        if distance < tol:
            steps = k
            break
    return {"lr": lr, "beta": beta, "steps": steps, "diverged": diverged, "path": torch.stack(path)}


def double_well(x: torch.Tensor) -> torch.Tensor:
    """f(x) = x⁴ − 2x² + x/2: a global minimum near x = −1.06, a worse local one near x = +0.93."""
    return x ** 4 - 2 * x ** 2 + 0.5 * x


def double_well_grad(x: torch.Tensor) -> torch.Tensor:
    return 4 * x ** 3 - 4 * x + 0.5


DOUBLE_WELL_BARRIER = 0.127  # the hill top between the two minima (root of the gradient near 0)


def double_well_basins(beta: float, lr: float = 0.02, n_starts: int = 201, steps: int = 2000) -> dict:
    """From `n_starts` points evenly in [−2, 2], which minimum does SGD(momentum=β) end in?

    All starts run at once: one parameter of n_starts independent 1-D problems (SGD acts elementwise).
    """
    starts = torch.linspace(-2, 2, n_starts, dtype=torch.float64)
    x = nn.Parameter(starts.clone())
    opt = torch.optim.SGD([x], lr=lr, momentum=beta)
    for _ in range(steps):
        x.grad = double_well_grad(x.detach())
        opt.step()
    ends_global = x.detach() < DOUBLE_WELL_BARRIER
    in_local_basin = starts > DOUBLE_WELL_BARRIER
    return {
        "beta": beta,
        "ends_global": ends_global.double().mean().item(),
        "escaped_local": ends_global[in_local_basin].double().mean().item(),        # started in the worse basin
        "knocked_out_of_global": (~ends_global[~in_local_basin]).double().mean().item(),  # started in the better one
    }


# ================================================================ the shared task

TRAIN_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")


@dataclass
class TrainConfig:
    model: str = "mlp"              # 'mlp' (784-64-10, ≈ 0.3 s/epoch on 2 cores) or 'cnn' (SmallCNN, ≈ 3 s/epoch)
    epochs: int = 14                # budget per run; time to target is read from the per-epoch history
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds differ by 2–5 epochs to target: fewer than 3 is anecdote
    target_acc: float = 0.83        # the MLP reaches 84–85 %; 83 % is reachable by every optimizer in budget
    batch_size: int = 128
    beta: float = 0.9               # momentum for momentum / nesterov, β1 for Adam / AdamW
    lrs: dict = field(default_factory=lambda: {  # common defaults, not tuned here
        "sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3})


def make_train_optimizer(name: str, params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The six optimizers of the side-by-side comparison, at cfg.lrs[name]."""
    if name not in TRAIN_OPTIMIZERS:
        raise LabkitError(f"No optimizer {name!r}: choose one of {', '.join(TRAIN_OPTIMIZERS)}.")
    lr = cfg.lrs[name]
    return {
        "sgd": lambda: torch.optim.SGD(params, lr=lr),
        "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=cfg.beta),
        "nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=cfg.beta, nesterov=True),
        "adam": lambda: torch.optim.Adam(params, lr=lr, betas=(cfg.beta, 0.999)),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, betas=(cfg.beta, 0.999), weight_decay=0.01),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
    }[name]()


def build_model(cfg: TrainConfig) -> nn.Module:
    if cfg.model == "mlp":
        return models.MLP()
    if cfg.model == "cnn":
        return models.SmallCNN()
    raise LabkitError(f"model={cfg.model!r}: use 'mlp' or 'cnn'.")


def train_one(name: str, splits: data.Splits, cfg: TrainConfig, seed: int, callbacks=(),
              device: str | torch.device | None = "auto") -> train.FitResult:
    """One run of `train.fit` with optimizer `name`; checks that momentum really was in the update."""
    env.seed_everything(seed)
    model = build_model(cfg)
    opt = make_train_optimizer(name, model.parameters(), cfg)
    result = train.fit(model, splits, epochs=cfg.epochs, batch_size=cfg.batch_size, opt=opt,
                       target_acc=cfg.target_acc, callbacks=callbacks, seed=seed, device=device, progress=False)
    if name in ("momentum", "nesterov", "adam", "adamw"):
        check_momentum_active(opt)
    return result


def optimizer_variants(splits: data.Splits, cfg: TrainConfig, seed: int = 0) -> dict[str, Callable]:
    """The six optimizers as comparison-panel variants (each takes the panel's callbacks), plus
    'sgd_effective': plain SGD at momentum's effective step lr/(1−β) — is momentum only a bigger step?"""
    variants = {name: (lambda callbacks, name=name: train_one(name, splits, cfg, seed, callbacks))
                for name in TRAIN_OPTIMIZERS}
    boosted = replace(cfg, lrs={**cfg.lrs, "sgd": effective_lr(cfg.lrs["momentum"], cfg.beta)})
    variants["sgd_effective"] = lambda callbacks: train_one("sgd", splits, boosted, seed, callbacks)
    return variants


def compare_optimizers(splits: data.Splits, cfg: TrainConfig,
                       names: tuple[str, ...] = TRAIN_OPTIMIZERS) -> tuple[ResultCard, dict]:
    """Every optimizer over every seed (seed-major, so slow drifts of the machine hit all alike).

    Returns the card (means over seeds; time/epochs to target are None when a seed never reached
    it) and the raw FitResults, keyed (name, seed).
    """
    runs = {}
    for seed in cfg.seeds:
        for name in names:
            runs[(name, seed)] = train_one(name, splits, cfg, seed)
    card = ResultCard(baseline=names[0], title=f"optimizers on the shared task ({cfg.model}, "
                                                f"{len(cfg.seeds)} seed(s), target {100 * cfg.target_acc:.0f} %)")
    for name in names:
        fits = [runs[(name, s)] for s in cfg.seeds]
        epochs = [f.epochs_to_target for f in fits]
        times = [f.time_to_target_s for f in fits]
        all_reached = all(e is not None for e in epochs)
        card.add({
            "variant": name,
            "accuracy": statistics.mean(f.final_acc for f in fits),
            "train_time_s": statistics.mean(f.train_time_s for f in fits),
            "time_to_target_s": statistics.mean(times) if all_reached else None,
            "epochs_to_target": statistics.mean(epochs) if all_reached else None,
            "epochs_std": statistics.stdev(epochs) if all_reached and len(epochs) > 1 else None,
            "reached": f"{sum(e is not None for e in epochs)}/{len(epochs)}",
            "epochs_per_seed": [e for e in epochs],
            "lr": cfg.lrs[name],
        })
    return card, runs


def state_per_parameter(name: str, cfg: TrainConfig) -> float:
    """Floats of optimizer state per model parameter after one step: SGD 0, momentum 1, Adam 2.

    This is the optimizer's memory cost, exactly (step counters, one number per tensor, aside).
    """
    env.seed_everything(0)
    model = build_model(cfg)
    opt = make_train_optimizer(name, model.parameters(), cfg)
    train.train_step(model, opt, torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))
    params = list(model.parameters())
    state = sum(t.numel() for p in params for t in opt.state[p].values()
                if torch.is_tensor(t) and t.shape == p.shape)
    return state / sum(p.numel() for p in params)


# ================================================================ claim check: "adaptive optimizers spare you lr tuning"

SWEEP_OPTIMIZERS = ("momentum", "adam", "rmsprop")


def lr_grid(centre: float, n: int = 5, factor: float = 10 ** 0.5) -> list[float]:
    """`n` rates, each `factor` times the one before, centred on `centre` (5 rates √10 apart span 100×)."""
    if not (centre > 0 and factor > 1 and n >= 1):
        raise LabkitError(f"lr_grid(centre={centre!r}, n={n!r}, factor={factor!r}): need centre > 0, factor > 1, n ≥ 1.")
    return [centre * factor ** (k - (n - 1) / 2) for k in range(n)]


def sweep_config(run_mode: str) -> tuple[TrainConfig, dict[str, list[float]]]:
    """The sensitivity sweep: the MLP at a fixed epoch budget, and each optimizer's grid around its default."""
    cfg = env.pick(smoke=TrainConfig(epochs=2, seeds=(0, 1)), full=TrainConfig(epochs=10, seeds=(0, 1, 2)),
                   run_mode=run_mode)
    return cfg, {name: lr_grid(cfg.lrs[name]) for name in SWEEP_OPTIMIZERS}


def lr_sensitivity(splits: data.Splits, cfg: TrainConfig, grids: dict[str, list[float]],
                   threads: int | None = 1) -> dict[tuple[str, float], list[float]]:
    """Final test accuracy of every (optimizer, lr), one per seed of cfg.seeds, all at cfg.epochs.

    Seed-major, like compare_optimizers. `threads`: intra-op CPU threads for the runs (None: leave
    as set). The MLP is small: on a busy 2-core machine a second thread mostly waits for the first.
    """
    accs: dict[tuple[str, float], list[float]] = {(name, lr): [] for name, lrs in grids.items() for lr in lrs}
    with env.cpu_threads(threads or torch.get_num_threads()):
        for seed in cfg.seeds:
            for (name, lr), per_seed in accs.items():
                per_seed.append(train_one(name, splits, replace(cfg, lrs={**cfg.lrs, name: lr}), seed).final_acc)
    return accs


@dataclass
class LrSensitivity:
    """One optimizer's final accuracies over a grid of rates, read against its own best rate."""

    name: str
    default_lr: float
    acc: dict[float, list[float]]   # lr → final test accuracy (fraction) per seed, seeds in the same order
    tolerance_pt: float = 1.0       # "near the best": at most this many points below it

    @property
    def lrs(self) -> list[float]:
        return sorted(self.acc)

    def mean_pt(self, lr: float) -> float:
        return 100 * statistics.fmean(self.acc[lr])

    @property
    def best_lr(self) -> float:
        return max(self.lrs, key=self.mean_pt)

    @property
    def near_best(self) -> list[float]:
        """Rates whose mean accuracy over seeds is within tolerance of the best rate's."""
        best = self.mean_pt(self.best_lr)
        return [lr for lr in self.lrs if self.mean_pt(lr) >= best - self.tolerance_pt]

    @property
    def width_decades(self) -> float:
        """From the smallest to the largest near-best rate, in factors of 10 (0: only one rate)."""
        return math.log10(max(self.near_best) / min(self.near_best))

    @property
    def near_best_per_seed(self) -> list[int]:
        """For each seed alone: how many rates are within tolerance of that seed's best."""
        counts = []
        for s in range(len(self.acc[self.lrs[0]])):
            best = max(100 * self.acc[lr][s] for lr in self.lrs)
            counts.append(sum(100 * self.acc[lr][s] >= best - self.tolerance_pt for lr in self.lrs))
        return counts

    def default_vs_best(self) -> stats.Paired:
        """What not tuning costs: accuracy at the default rate minus at the best rate, paired over seeds."""
        return stats.paired([100 * a for a in self.acc[self.default_lr]], [100 * a for a in self.acc[self.best_lr]],
                            f"{self.name} at its default {self.default_lr:.3g}", f"at its best {self.best_lr:.3g}", "pt")


def summarize_sensitivity(accs: dict[tuple[str, float], list[float]], defaults: dict[str, float],
                          tolerance_pt: float = 1.0) -> dict[str, LrSensitivity]:
    """lr_sensitivity's accuracies grouped per optimizer. Each default rate must be on its grid."""
    out = {}
    for name in dict.fromkeys(n for n, _ in accs):
        by_lr = {lr: a for (n, lr), a in accs.items() if n == name}
        default = next((lr for lr in by_lr if math.isclose(lr, defaults[name])), None)
        if default is None:
            raise LabkitError(f"{name}'s default lr {defaults[name]:g} is not on its grid {sorted(by_lr)}.")
        out[name] = LrSensitivity(name, default, by_lr, tolerance_pt)
    return out


def tuning_claim(sens: dict[str, LrSensitivity], baseline: str = "momentum") -> tuple[str, list[str]]:
    """'true', 'false' or 'depends' for "adaptive optimizers spare you learning-rate tuning", and the lines it rests on.

    An adaptive optimizer spares tuning here when (a) over seeds, paired, it keeps more of its grid
    within tolerance of its best than the baseline keeps of its own ('higher'), and (b) its default
    rate's mean is within tolerance of its best. 'true': every adaptive optimizer does; 'false': none.
    """
    base, lines, spares = sens[baseline], [], []
    for name, s in sens.items():
        if name == baseline:
            continue
        wider = stats.paired(s.near_best_per_seed, base.near_best_per_seed, name, baseline, "near-best rates")
        gap = s.default_vs_best().mean
        default_ok = gap >= -s.tolerance_pt
        spares.append(wider.verdict == "higher" and default_ok)
        lines.append(wider.text(1))
        lines.append(f"{name}: default rate {gap:+.2f} pt from its best (mean over seeds) → "
                     + ("within" if default_ok else "outside") + f" the {s.tolerance_pt:g}-pt tolerance")
    verdict = "true" if all(spares) else "false" if not any(spares) else "depends"
    return verdict, lines


# ================================================================ headline

@dataclass
class MomentumConfig:
    kappa: float = 100.0      # condition number of the headline quadratic
    tol: float = 1e-6         # stop when ||x_k − x*|| ≤ tol·||x_0 − x*||
    max_steps: int = 20_000   # GD needs ≈ (κ/2)·ln(1/tol) ≈ 690 steps at κ = 100
    train: TrainConfig = field(default_factory=TrainConfig)


def config_for(run_mode: str) -> MomentumConfig:
    smoke = MomentumConfig(train=TrainConfig(epochs=4, seeds=(0,), target_acc=0.75))
    return env.pick(smoke=smoke, full=MomentumConfig(), run_mode=run_mode)


def quadratic_headline(cfg: MomentumConfig) -> dict:
    """GD and heavy ball at their best settings on the κ quadratic, measured and predicted."""
    q = Quadratic(cfg.kappa)
    gd, hb = best_gd(q), best_heavy_ball(q)
    # the update the notebook teaches must be the one torch runs
    gap = compare_conventions(q, hb["lr"], hb["beta"], steps=50)["heavy_ball_by_hand"]
    if gap > 1e-9:
        raise LabkitError(f"The hand-written heavy ball differs from torch.optim.SGD by {gap:.2e}: fix heavy_ball_step.")
    iters_gd = iterations(q, "gd", gd["lr"], 0.0, cfg.tol, cfg.max_steps)
    iters_hb = iterations(q, "heavy_ball", hb["lr"], hb["beta"], cfg.tol, cfg.max_steps)
    if iters_gd is None or iters_hb is None:
        raise LabkitError(f"An optimizer did not reach tol={cfg.tol} in {cfg.max_steps} steps: raise max_steps.")
    return {"quadratic_iters_gd": iters_gd, "quadratic_iters_momentum": iters_hb,
            "iters_ratio": iters_gd / iters_hb,
            "theory_ratio": theory_iters(rate_gd(cfg.kappa), cfg.tol) / theory_iters(rate_heavy_ball(cfg.kappa), cfg.tol),
            "best_lr_gd": gd["lr"], "best_lr_momentum": hb["lr"], "best_beta": hb["beta"]}


def headline(mode: str | None = None) -> BenchReport:
    """The quadratic (exact, milliseconds) and the six optimizers on the shared task (seeds × epochs)."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    quad = quadratic_headline(cfg)
    splits = data.load_for_mode(run_mode, device=env.device())
    card, _ = compare_optimizers(splits, cfg.train)
    numbers = {k: quad[k] for k in ("quadratic_iters_gd", "quadratic_iters_momentum", "iters_ratio", "theory_ratio")}
    for name in TRAIN_OPTIMIZERS:
        row = next(r for r in card.rows if r["variant"] == name)
        numbers[f"time_to_target_{name}"] = row["time_to_target_s"]
    return BenchReport(name="momentum", mode=run_mode, card=card, headline=numbers,
                       config={**asdict(cfg), "quadratic": quad})
