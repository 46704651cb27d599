"""How much do labkit's own tools cost? The trainer against a bare loop, the timer against PyTorch's.

Headline (`labkit bench overhead`):
- fit_overhead_pct: wall time of `train.fit` over a bare PyTorch loop doing the same work (same
  model, data order, seed, per-epoch evaluation), minus 1, in percent; medians of interleaved
  repeats. Both must end with the same weights (`max_weight_diff`), or the comparison is void.
- timer_error_pct: `bench.time_fn` against `torch.utils.benchmark.Timer` on a ≈ 1.5 ms matmul,
  same thread count; the naive one-shot `time.time()` error is reported beside it for contrast.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils import benchmark as tbench

from labkit import bench, data, env, models, train
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard


@dataclass
class OverheadConfig:
    epochs: int = 2          # epochs per training run
    repeats: int = 3         # interleaved (bare, fit) pairs; the median of each is compared
    batch_size: int = 128
    lr: float = 0.05
    seed: int = 0
    matmul_n: int = 512      # a ≈ 1.5 ms operation on 2 cores: the timer target is for ops ≥ 1 ms


def config_for(run_mode: str) -> OverheadConfig:
    return env.pick(smoke=OverheadConfig(epochs=1, repeats=2), full=OverheadConfig(), run_mode=run_mode)


def bare_loop(model: nn.Module, splits: data.Splits, epochs: int, lr: float, batch_size: int, seed: int) -> None:
    """The plainest PyTorch loop that does what `fit` does: train, then evaluate, every epoch."""
    # Hand-written on purpose: it is the baseline. fit runs the same maths through train.train_step, whose
    # switches cost a little even when off (autocast and the scaler disabled, the loss ÷ a group size of 1):
    # that cost is part of the overhead measured, and the weights must still come out identical.
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    train_loader = data.loader(splits.X_train, splits.y_train, batch_size, seed=seed)
    for _ in range(epochs):
        model.train()
        for xb, yb in train_loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            for i in range(0, len(splits.X_test), 1000):
                model(splits.X_test[i:i + 1000]).argmax(1)


def _train_once(use_fit: bool, splits: data.Splits, cfg: OverheadConfig) -> tuple[float, nn.Module]:
    env.seed_everything(cfg.seed)
    model = models.SmallCNN()
    start = time.perf_counter()
    if use_fit:
        train.fit(model, splits, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                  device="cpu", progress=False)
    else:
        bare_loop(model, splits, cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed)
    return time.perf_counter() - start, model


def measure_fit_overhead(splits: data.Splits, cfg: OverheadConfig) -> dict:
    """Interleave bare and fit runs (alternating which goes first) and compare their medians."""
    warm_up = OverheadConfig(epochs=1, batch_size=cfg.batch_size, seed=cfg.seed)
    for use_fit in (False, True):  # the first run in a process pays one-off costs: leave it out
        _train_once(use_fit, splits, warm_up)
    bare_times, fit_times = [], []
    for r in range(cfg.repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        for use_fit in order:
            seconds, model = _train_once(use_fit, splits, cfg)
            (fit_times if use_fit else bare_times).append(seconds)
            weights = nn.utils.parameters_to_vector(model.parameters()).detach()
            if use_fit:
                fit_weights = weights
            else:
                bare_weights = weights
    bare, fitted = statistics.median(bare_times), statistics.median(fit_times)
    return {"bare_s": bare, "fit_s": fitted, "fit_overhead_pct": 100 * (fitted / bare - 1),
            "max_weight_diff": (fit_weights - bare_weights).abs().max().item()}


def measure_timer_error(n: int) -> dict:
    """Our timer and torch.utils.benchmark on the same matmul, interleaved, same thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    threads = torch.get_num_threads()
    ours, reference = [], []
    for _ in range(3):
        ours.append(bench.time_fn(lambda: a @ b, min_run_time=0.3).median_s)
        timer = tbench.Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
        reference.append(timer.blocked_autorange(min_run_time=0.3).median)
    c = torch.randn(n, n)
    naive = bench.time_naive(lambda: c @ a)  # first call on fresh data, as a first attempt would time it
    ours_s, ref_s = statistics.median(ours), statistics.median(reference)
    # the error is the median of each round's disagreement: both timers of a round share its load
    round_errors = [abs(o - r) / r for o, r in zip(ours, reference)]
    return {"ours_ms": 1e3 * ours_s, "reference_ms": 1e3 * ref_s, "naive_ms": 1e3 * naive,
            "timer_error_pct": 100 * statistics.median(round_errors),
            "naive_error_pct": 100 * abs(naive - ref_s) / ref_s}


def headline(mode: str | None = None) -> BenchReport:
    """Run both measurements and return the report `labkit bench overhead` prints."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    splits = data.load_for_mode(run_mode)
    fit_numbers = measure_fit_overhead(splits, cfg)
    if fit_numbers["max_weight_diff"] > 1e-6:
        raise LabkitError(f"fit and the bare loop ended with different weights "
                          f"(max diff {fit_numbers['max_weight_diff']:.2e}): the timing comparison is void.")
    timer_numbers = measure_timer_error(cfg.matmul_n)
    card = ResultCard(title="labkit's overhead", baseline="bare PyTorch loop")
    card.add({"variant": "bare PyTorch loop", "train_time_s": fit_numbers["bare_s"]})
    card.add({"variant": "labkit train.fit", "train_time_s": fit_numbers["fit_s"]})
    card.add({"variant": "timer: torch.utils.benchmark", "latency_ms": timer_numbers["reference_ms"]})
    card.add({"variant": "timer: labkit.bench.time_fn", "latency_ms": timer_numbers["ours_ms"]})
    card.add({"variant": "timer: naive time.time()", "latency_ms": timer_numbers["naive_ms"]})
    return BenchReport(
        name="overhead", mode=run_mode, card=card, config=asdict(cfg),
        headline={"fit_overhead_pct": fit_numbers["fit_overhead_pct"],
                  "max_weight_diff": fit_numbers["max_weight_diff"],
                  "timer_error_pct": timer_numbers["timer_error_pct"],
                  "naive_error_pct": timer_numbers["naive_error_pct"]},
    )
