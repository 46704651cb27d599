"""What an accelerator is good at, and what keeps it idle (notebook 01_gpu).

The measurements, each on the device `env.device()` picks (a CUDA GPU when there is one):
- matmul throughput over sizes against the device's peak: big products approach the peak,
  small ones are starved (too little arithmetic per byte moved, fixed cost per call);
- training throughput of the shared SmallCNN over batch sizes: small batches leave the device idle;
- copies: host-to-device (pageable vs pinned, `non_blocking`) on a GPU; on a CPU there is no
  link to cross, `.to("cpu")` returns the same tensor, and a copy in RAM is shown instead;
- hidden syncs: `.item()` every step against once at the end;
- CPU threads, `channels_last` and `torch.compile` on the SmallCNN forward pass.

Headline (`labkit bench gpu`): the best fp32 matmul GFLOP/s over the sizes (`matmul_gflops`), the
device's fp32 peak (`peak_gflops`: an estimate on a CPU, the datasheet on a GPU), their ratio
(`fraction_of_peak`), `device`, and `compile_speedup`: eager / compiled steady-state time of the
SmallCNN forward pass (compile time reported beside it; None in smoke mode, where compiling is skipped
because it costs tens of seconds on 2 cores).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Callable
from pathlib import Path

import torch
from torch import nn

from labkit import bench, env, models, train
from labkit.errors import LabkitError
from labkit.paths import REFERENCE_DIR
from labkit.results import BenchReport, ResultCard

MAX_BATCH = 4096  # the batch explorer's largest batch: bigger ones take minutes on a CPU


@dataclass
class GPUConfig:
    sizes: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)  # matmul sizes n (n×n @ n×n)
    batch_sizes: tuple[int, ...] = (1, 8, 32, 128, 512)       # SmallCNN training-step batch sizes
    copy_mb: int = 64            # MB moved in the copy measurements
    sync_steps: int = 100        # tiny MLP steps in the hidden-sync measurement
    forward_batch: int = 256     # batch of the SmallCNN forward pass (threads, channels_last, compile)
    compile_model: bool = True   # torch.compile the forward pass (≈ 20-60 s of compiling on 2 cores)
    min_run_time: float = 0.3    # seconds of timed calls per measurement


def config_for(run_mode: str | None = None) -> GPUConfig:
    """Smoke mode: fewer, smaller measurements and no torch.compile (it alone would blow the budget)."""
    smoke = GPUConfig(sizes=(64, 256, 512), batch_sizes=(1, 16, 128), copy_mb=16, sync_steps=40,
                      forward_batch=128, compile_model=False, min_run_time=0.05)
    return env.pick(smoke=smoke, full=GPUConfig(), run_mode=run_mode)


def _check_sizes(name: str, values) -> None:
    if not values or any(not isinstance(v, int) or v < 1 for v in values):
        raise LabkitError(f"{name}={values!r} must be a non-empty list of whole numbers of at least 1.")


# ---------------------------------------------------------------- compute: matmul against the peak

def device_peak_gflops(dev: torch.device | str) -> float:
    """The device's fp32 peak: an estimate for a CPU (threads × clock × FLOPs/cycle), the datasheet for a GPU."""
    return bench.gpu_peak_gflops() if torch.device(dev).type == "cuda" else bench.cpu_peak_gflops()


def matmul_sweep(sizes, dev: torch.device | str = "cpu", min_run_time: float = 0.3, rounds: int = 3) -> list[dict]:
    """`bench.matmul_sweep` (GFLOP/s and arithmetic intensity of n×n matmuls, the sizes timed in `rounds`
    alternating passes) plus each size's fraction of the device's peak. `min_run_time` is shared by the passes."""
    # shown in notebook 01_gpu
    _check_sizes("sizes", list(sizes))
    peak = device_peak_gflops(dev)
    points = bench.matmul_sweep(list(sizes), device=dev, min_run_time=min_run_time / max(rounds, 1), rounds=rounds)
    return [p | {"fraction_of_peak": p["gflops"] / peak} for p in points]


# ---------------------------------------------------------------- batch size: keeping the device busy

def _training_step(model_name: str, batch_size: int, dev: torch.device) -> Callable[[], object]:
    """One training step of a freshly seeded `model_name` on a random batch (only speed matters)."""
    env.seed_everything(0)
    model = models.build(model_name).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb = torch.randn(batch_size, 1, 28, 28, device=dev)
    yb = torch.randint(0, 10, (batch_size,), device=dev)
    return lambda: train.train_step(model, opt, xb, yb)


def batch_sweep(batch_sizes, dev: torch.device | str = "cpu", model_name: str = "small_cnn",
                min_run_time: float = 0.3, rounds: int = 2) -> list[dict]:
    """Training images per second of a shared model at each batch size (random data: only speed matters).
    Sizes alternate over `rounds` passes and each keeps its fastest, least disturbed pass."""
    _check_sizes("batch_sizes", list(batch_sizes))
    dev = torch.device(dev)
    best: dict[int, dict] = {}
    for r in range(max(rounds, 1)):
        for bs in (batch_sizes if r % 2 == 0 else list(batch_sizes)[::-1]):
            step = _training_step(model_name, bs, dev)
            timing = bench.time_fn(step, device=dev, min_run_time=min_run_time)
            row = {"batch_size": bs, "images_per_s": bs / timing.median_s, "ms_per_step": timing.median_ms,
                   "spread_pct": timing.spread_pct}
            if bs not in best or row["images_per_s"] > best[bs]["images_per_s"]:
                best[bs] = row
    return [best[bs] for bs in batch_sizes]


STEPS_PER_POINT = 10  # what one explorer point costs: 3 warm-up steps, at least 5 timed, the autorange's first


def measure_batch(model: str, batch_size: int, threads: int, device: torch.device | str = "cpu",
                  min_run_time: float = 0.3, budget_s: float = 20.0) -> dict:
    """One `batch_sweep` point for the batch explorer, with `threads` CPU threads (the count is restored).
    One step is timed first: a point that would take longer than `budget_s` is refused with its estimate."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise LabkitError(f"batch size {batch_size} must be between 1 and {MAX_BATCH}.")
    dev = torch.device(device)
    with env.cpu_threads(threads):
        step = _training_step(model, batch_size, dev)
        start = time.perf_counter()
        step()
        env.synchronize(dev)
        projected = STEPS_PER_POINT * (time.perf_counter() - start)
        if projected > budget_s:
            raise LabkitError(f"one step at batch {batch_size} took {projected / STEPS_PER_POINT:.1f} s here, so this "
                              f"point would take about {projected:.0f} s (up to {budget_s:.0f} s): choose a smaller batch.")
        return batch_sweep([batch_size], dev, model, min_run_time, rounds=1)[0]


# ---------------------------------------------------------------- moving data: copies and hidden syncs

def copy_rows(megabytes: int, dev: torch.device | str = "cpu", min_run_time: float = 0.3) -> list[dict]:
    """What moving `megabytes` of data to the device costs.

    GPU: pageable memory (the driver first copies it into a pinned staging buffer) against pinned
    memory, and how long a `non_blocking=True` copy keeps the CPU waiting (it returns at once).
    CPU: the data is already where the compute is; `.to("cpu")` copies nothing, a clone in RAM is shown.
    """
    # shown in notebook 01_gpu
    if megabytes < 1:
        raise LabkitError(f"megabytes={megabytes} must be at least 1.")
    dev = torch.device(dev)
    host = torch.randn(megabytes * 2**20 // 4)
    nbytes = host.numel() * host.element_size()

    def row(name: str, fn, sync: bool = True, moves: bool = True) -> dict:
        timing = bench.time_fn(fn, device=dev if sync else "cpu", min_run_time=min_run_time)
        return {"copy": name, "ms": timing.median_ms,
                "gb_per_s": nbytes / timing.median_s / 1e9 if moves else None}

    if dev.type == "cuda":
        pinned = host.pin_memory()
        return [
            row("pageable → GPU", lambda: host.to(dev)),
            row("pinned → GPU", lambda: pinned.to(dev)),
            # the call returns once the copy is queued; the CPU is free to prepare the next batch
            row("pinned → GPU, non_blocking (CPU wait only)", lambda: pinned.to(dev, non_blocking=True),
                sync=False, moves=False),
        ]
    if host.to(dev) is not host:
        raise LabkitError("expected .to() onto the tensor's own device to return the same tensor.")
    return [
        row(f".to('{dev.type}'): same device, no copy", lambda: host.to(dev), moves=False),
        row("clone in RAM (a real copy)", lambda: host.clone()),
    ]


def steps_with_sync(model: nn.Module, opt: torch.optim.Optimizer, batches: list, item_every_step: bool) -> float:
    """Train on `batches`; return the mean loss. `item_every_step` reads the loss with `.item()` each step,
    which makes the CPU wait for the device every time (a hidden sync); otherwise the sum stays on the device."""
    # shown in notebook 01_gpu
    total = 0.0 if item_every_step else torch.zeros((), device=batches[0][0].device)
    for xb, yb in batches:
        _, loss = train.train_step(model, opt, xb, yb)
        if item_every_step:
            total += loss.item()      # sync: waits until this step has finished on the device
        else:
            total += loss.detach()    # no sync: the device can run ahead of the CPU
    return float(total) / len(batches)  # one sync at the end


def sync_cost(dev: torch.device | str = "cpu", steps: int = 100, batch_size: int = 32, rounds: int = 7) -> dict:
    """Per-step time of tiny MLP steps with `.item()` every step against once at the end.

    The two variants alternate over `rounds` (after one warm-up each); each keeps its fastest round,
    the one least disturbed by other work on the machine (the work itself is the same every round).
    """
    if steps < 1 or rounds < 1:
        raise LabkitError(f"steps={steps} and rounds={rounds} must be at least 1.")
    dev = torch.device(dev)
    env.seed_everything(0)
    model = models.MLP().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = [(torch.randn(batch_size, 1, 28, 28, device=dev), torch.randint(0, 10, (batch_size,), device=dev))
               for _ in range(steps)]
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds + 1):
        for every in ((True, False) if r % 2 == 0 else (False, True)):
            env.synchronize(dev)
            start = time.perf_counter()
            steps_with_sync(model, opt, batches, every)
            env.synchronize(dev)
            if r > 0:  # round 0 is the warm-up
                times[every].append((time.perf_counter() - start) / steps)
    every_ms = 1e3 * min(times[True])
    end_ms = 1e3 * min(times[False])
    return {"item_every_step_ms": every_ms, "item_at_end_ms": end_ms,
            "sync_overhead_pct": 100 * (every_ms / end_ms - 1), "device": dev.type, "steps": steps}


# ---------------------------------------------------------------- threads, channels_last, torch.compile

def time_with_threads(fn, threads: int, dev: torch.device | str = "cpu", min_run_time: float = 0.3) -> bench.Timing:
    """Time `fn` with `threads` CPU threads; `bench` restores the previous count afterwards (even on error)."""
    # shown in notebook 01_gpu
    if threads < 1:
        raise LabkitError(f"threads={threads} must be at least 1.")
    return bench.time_fn(fn, device=dev, min_run_time=min_run_time, num_threads=threads)


def to_channels_last(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The same model and batch stored NHWC (channels innermost), the layout fast conv kernels prefer."""
    # shown in notebook 01_gpu
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    if not (conv.weight.is_contiguous(memory_format=torch.channels_last)
            and x.is_contiguous(memory_format=torch.channels_last)):
        raise LabkitError("channels_last did not take effect: the conv weights are not NHWC.")
    return model, x


def compile_model(model: nn.Module, x: torch.Tensor, dev: torch.device | str) -> tuple[nn.Module, float, float]:
    """torch.compile `model` and make the first call, which pays the compile; check it agrees with eager.
    Returns (compiled model, compile seconds, max |compiled − eager|)."""
    # shown in notebook 01_gpu
    torch._dynamo.reset()  # forget earlier compilations in this process: time a cold compile
    compiled = torch.compile(model)
    with torch.no_grad():
        env.synchronize(dev)
        start = time.perf_counter()
        out = compiled(x)            # first call: trace, optimise, generate and build kernels
        env.synchronize(dev)
        compile_s = time.perf_counter() - start
        reference = model(x)
    max_diff = (out - reference).abs().max().item()
    if not torch.allclose(out, reference, atol=1e-3, rtol=1e-3):
        raise LabkitError(f"the compiled model disagrees with eager (max diff {max_diff:.2e}).")
    return compiled, compile_s, max_diff


def thread_comparison(fn, dev: torch.device | str = "cpu", min_run_time: float = 0.3, rounds: int = 3) -> dict:
    """`fn` with 1 thread and with all threads torch uses, interleaved; the thread count is restored."""
    # shown in notebook 01_gpu
    all_threads = torch.get_num_threads()
    timings = bench.time_interleaved({"1": fn, "all": fn}, device=dev, min_run_time=min_run_time, rounds=rounds,
                                     num_threads={"1": 1, "all": all_threads})
    return {"one": timings["1"], "all": timings["all"], "threads": all_threads,
            "speedup": timings["1"].median_s / timings["all"].median_s}


def forward_variants(cfg: GPUConfig, dev: torch.device | str = "cpu", rounds: int = 3) -> tuple[ResultCard, dict]:
    """The SmallCNN forward pass: eager (all threads, the baseline), eager on 1 thread (CPU only),
    channels_last, and torch.compile (when `cfg.compile_model`), timed interleaved.
    Returns the card and extra numbers (compile time, compile speedup or why compiling failed)."""
    dev = torch.device(dev)
    env.seed_everything(0)
    model = models.SmallCNN().to(dev).eval()
    x = torch.randn(cfg.forward_batch, 1, 28, 28, device=dev)
    cl_model, cl_x = to_channels_last(models.SmallCNN().to(dev).eval(), x)
    cl_model.load_state_dict(model.state_dict())
    threads = torch.get_num_threads()
    extra: dict = {"compile_s": None, "compile_speedup": None, "compile_error": None}
    fns = {"eager": lambda: model(x)}
    thread_counts = {"eager": threads}
    if dev.type == "cpu" and threads > 1:
        fns["eager, 1 thread"] = lambda: model(x)
        thread_counts["eager, 1 thread"] = 1
    fns["channels_last"] = lambda: cl_model(cl_x)
    with torch.no_grad():
        if not torch.allclose(cl_model(cl_x), model(x), atol=1e-4, rtol=1e-4):
            raise LabkitError("channels_last changed the model's output: the comparison is void.")
        if cfg.compile_model:
            try:
                compiled, extra["compile_s"], extra["compile_max_abs_diff"] = compile_model(model, x, dev)
            except LabkitError:
                raise
            except Exception as error:  # e.g. no C++ compiler on this machine: say so, don't crash the notebook
                extra["compile_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            else:
                fns["torch.compile"] = lambda: compiled(x)
        timings = bench.time_interleaved(fns, device=dev, min_run_time=cfg.min_run_time, rounds=rounds,
                                         num_threads=thread_counts)
    card = ResultCard(title=f"SmallCNN forward pass, batch {cfg.forward_batch}, {dev.type}", baseline="eager")
    for name, timing in timings.items():
        row = {"variant": name, "latency_ms": timing.median_ms, "images_per_s": cfg.forward_batch / timing.median_s,
               "threads": timing.num_threads, "spread_pct": timing.spread_pct}
        if name == "torch.compile":
            row["compile_s"] = extra["compile_s"]
            extra["compile_speedup"] = timings["eager"].median_s / timing.median_s
        card.add(row)
    return card, extra


def break_even_calls(compile_s: float, eager_ms: float, compiled_ms: float) -> float:
    """Calls after which compiling has paid for itself (inf when the compiled version is not faster)."""
    saved_ms = eager_ms - compiled_ms
    return float("inf") if saved_ms <= 0 else 1e3 * compile_s / saved_ms


# ---------------------------------------------------------------- reference results from other hardware

def reference_reports(name: str = "gpu", directory: Path | None = None) -> list[dict]:
    """Reports recorded on other hardware with `labkit bench NAME --record` (data/reference/NAME_*.json)."""
    directory = Path(directory) if directory else REFERENCE_DIR
    reports = []
    for path in sorted(directory.glob(f"{name}_*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise LabkitError(f"{path} is not a readable reference ({error}): re-record it or delete it.") from None
        payload["file"] = path.name
        reports.append(payload)
    return reports


def reference_text(name: str = "gpu", directory: Path | None = None) -> str:
    """The recorded references as text with their provenance, or an honest 'none recorded yet'."""
    reports = reference_reports(name, directory)
    if not reports:
        return (f"No reference results for '{name}' are recorded yet (data/reference/ has no {name}_*.json). "
                f"To record one, run on a GPU machine: `labkit bench gpu amp --record` "
                f"(it writes data/reference/<name>_<device>.json with device, date, versions and command).")
    lines = []
    for rep in reports:
        prov = rep.get("provenance", {})
        mach = prov.get("machine", rep.get("machine", {}))
        lines.append(f"REFERENCE (not measured here) — {rep['file']}: device {mach.get('gpu') or mach.get('device')}, "
                     f"recorded {prov.get('date', '?')}, torch {mach.get('torch', '?')}, commit {mach.get('commit', '?')}, "
                     f"mode {rep.get('mode')}, command `{prov.get('command', '?')}`")
        for key, value in rep.get("headline", {}).items():
            lines.append(f"    {key} = {value:.4g}" if isinstance(value, float) else f"    {key} = {value}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the headline experiment

def headline(mode: str | None = None) -> BenchReport:
    """Matmul throughput against the peak, and the SmallCNN forward pass eager / channels_last / compiled."""
    run_mode = env.check_mode(mode)
    cfg = config_for(run_mode)
    dev = env.device()
    points = matmul_sweep(cfg.sizes, dev, cfg.min_run_time)
    best = max(points, key=lambda p: p["gflops"])
    peak = device_peak_gflops(dev)
    card, extra = forward_variants(cfg, dev)
    config = asdict(cfg) | {"best_matmul_n": best["n"], "compile_s": extra["compile_s"],
                            "compile_error": extra["compile_error"],
                            "matmul_gflops_by_n": {p["n"]: round(p["gflops"], 2) for p in points}}
    return BenchReport(
        name="gpu", mode=run_mode, card=card, config=config,
        headline={"matmul_gflops": best["gflops"], "peak_gflops": peak, "fraction_of_peak": best["gflops"] / peak,
                  "device": dev.type, "compile_speedup": extra["compile_speedup"]},
    )
