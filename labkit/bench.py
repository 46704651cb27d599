"""Correct timing and the other measurements every notebook quotes.

Rules (DESIGN.md): warm up, synchronise the device before reading a clock, repeat, report the
median and the spread. Built on `torch.utils.benchmark.Timer`, which by default uses ONE thread:
here it is given the thread count torch is using, unless the caller says otherwise.
Nothing in this module prints; every function returns numbers.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils import benchmark as tbench

from labkit import env
from labkit.errors import LabkitError


@dataclass
class Timing:
    """Seconds per call: median and spread over repeated measurements."""

    median_s: float
    iqr_s: float          # interquartile range: the middle half of the measurements
    min_s: float
    max_s: float
    repeats: int          # how many measurements the median is taken over
    calls_per_repeat: int
    num_threads: int
    device: str
    times_s: list[float] = field(default_factory=list, repr=False)

    @property
    def median_ms(self) -> float:
        return self.median_s * 1e3

    @property
    def spread_pct(self) -> float:
        """The interquartile range as a percentage of the median."""
        return 100 * self.iqr_s / self.median_s if self.median_s > 0 else float("nan")

    def __str__(self) -> str:
        return (f"{_fmt_seconds(self.median_s)} ± {_fmt_seconds(self.iqr_s / 2)} "
                f"(median of {self.repeats}, {self.num_threads} thread(s), {self.device})")

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("times_s")
        return out


def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def time_fn(fn: Callable[[], object], *, device: str | torch.device = "cpu", warmup: int = 3,
            min_run_time: float = 0.5, min_repeats: int = 5, num_threads: int | None = None) -> Timing:
    """Time `fn()` correctly: `warmup` untimed calls, device sync, then repeated timed blocks.

    Each measurement is one block of calls (many for a microsecond op, one for a slow one);
    the median over at least `min_repeats` measurements and their interquartile range are returned.
    """
    # shown in notebook 00_welcome
    if warmup < 0 or min_repeats < 1 or min_run_time <= 0:
        raise LabkitError("time_fn needs warmup >= 0, min_repeats >= 1 and min_run_time > 0.")
    dev = torch.device(device)
    threads = torch.get_num_threads() if num_threads is None else num_threads

    def call() -> None:
        fn()
        env.synchronize(dev)  # GPUs queue work: the clock must wait for it to finish

    for _ in range(warmup):
        call()
    timer = tbench.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    times = list(measurement.times)
    while len(times) < min_repeats:
        times += timer.timeit(measurement.number_per_run).times
    q1, q3 = _quartiles(times)
    return Timing(median_s=statistics.median(times), iqr_s=q3 - q1, min_s=min(times), max_s=max(times),
                  repeats=len(times), calls_per_repeat=measurement.number_per_run,
                  num_threads=threads, device=dev.type, times_s=times)


def time_interleaved(fns: dict[str, Callable[[], object]], *, device: str | torch.device = "cpu",
                     min_run_time: float = 0.3, rounds: int = 3,
                     num_threads: int | dict[str, int] | None = None) -> dict[str, Timing]:
    """Time several variants in alternating passes (v1, v2, v2, v1, v1, v2, ...), each pass a full `time_fn`;
    each variant's Timing is its pass with the median time. A burst of other work on the machine then hits
    every variant alike instead of spoiling one of them. `num_threads` may differ per variant (a dict)."""
    if rounds < 1 or not fns:
        raise LabkitError("time_interleaved needs at least one variant and rounds >= 1.")
    threads = num_threads if isinstance(num_threads, dict) else {name: num_threads for name in fns}
    passes: dict[str, list[Timing]] = {name: [] for name in fns}
    for r in range(rounds):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            passes[name].append(time_fn(fns[name], device=device, min_run_time=min_run_time,
                                        num_threads=threads.get(name)))
    return {name: sorted(ts, key=lambda t: t.median_s)[len(ts) // 2] for name, ts in passes.items()}


def train_step_fn(model: torch.nn.Module, *, batch: int = 128, lr: float = 1e-5,
                  seed: int = 0) -> Callable[[], None]:
    """One SGD training step (forward, loss, backward, update) of `model` on a random Fashion-MNIST-shaped
    batch, as a function to time. The tiny `lr` keeps the weights (and so the work) nearly unchanged."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()

    def step() -> None:
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def time_train_steps(models: dict[str, torch.nn.Module], *, batch: int = 128, lr: float = 1e-5, seed: int = 0,
                     num_threads: int | None = None, min_run_time: float = 0.5, rounds: int = 3) -> dict[str, float]:
    """Median ms of one SGD training step for each model, timed in turns (`time_interleaved`)."""
    steps = {name: train_step_fn(model, batch=batch, lr=lr, seed=seed) for name, model in models.items()}
    timings = time_interleaved(steps, min_run_time=min_run_time, rounds=rounds, num_threads=num_threads)
    return {name: t.median_ms for name, t in timings.items()}


def time_train_step(model: torch.nn.Module, *, batch: int = 128, lr: float = 1e-5, seed: int = 0,
                    num_threads: int | None = None, min_run_time: float = 0.5) -> Timing:
    """Time one SGD training step of `model` (see `train_step_fn`)."""
    return time_fn(train_step_fn(model, batch=batch, lr=lr, seed=seed), num_threads=num_threads,
                   min_run_time=min_run_time)


def time_naive(fn: Callable[[], object]) -> float:
    """The way a first attempt times code: one call, no warm-up, no device sync. Shown for contrast only."""
    start = time.time()
    fn()
    return time.time() - start


def throughput(fn: Callable[[], object], items_per_call: int, **timing_kwargs) -> tuple[float, Timing]:
    """Items per second (median) for `fn`, which processes `items_per_call` items, and its Timing."""
    timing = time_fn(fn, **timing_kwargs)
    return items_per_call / timing.median_s, timing


def _read_status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory_mb(fn: Callable[[], object], device: str | torch.device = "cpu") -> float | None:
    """Peak memory that `fn()` adds, in MB: CUDA's allocator peak on a GPU, the process's
    resident-set peak above its level before the call on a Linux CPU; None where unmeasurable.

    On a CPU this undercounts after earlier work in the same process: memory freed before the
    call is reused without raising the resident set. Measure each variant in a fresh process, or
    count what a model keeps (e.g. tensors saved for backward), when the numbers must compare.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if dev.type != "cpu" or not os.path.exists("/proc/self/clear_refs"):
        return None
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    except OSError:
        return None
    before = _read_status_kb("VmRSS")
    fn()
    peak = _read_status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 1024


def model_size_mb(model: torch.nn.Module) -> float:
    """Size of the model's saved state_dict in MB (10^6 bytes): what it costs on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def matmul_gflops(n: int, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                  min_run_time: float = 0.3) -> dict:
    """Measured GFLOP/s of an n×n by n×n matrix product (2·n³ floating-point operations)."""
    return matmul_sweep([n], device=device, dtype=dtype, min_run_time=min_run_time, rounds=1)[0]


def matmul_sweep(sizes: list[int], *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 min_run_time: float = 0.3, rounds: int = 3) -> list[dict]:
    """`matmul_gflops` for several sizes, timed in turns (`time_interleaved`) so load hits every size alike."""
    if not sizes or min(sizes) < 1:
        raise LabkitError(f"matrix sizes {sizes} must all be at least 1.")
    dev = torch.device(device)
    pairs = {n: (torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)) for n in sizes}
    timings = time_interleaved({str(n): (lambda a=a, b=b: a @ b) for n, (a, b) in pairs.items()}, device=dev,
                               min_run_time=min_run_time, rounds=rounds)
    out = []
    for n in sizes:
        timing, flops = timings[str(n)], 2 * n ** 3
        out.append({"n": n, "gflops": flops / timing.median_s / 1e9, "median_s": timing.median_s,
                    "spread_pct": timing.spread_pct, "intensity": flops / (3 * n * n * pairs[n][0].element_size()),
                    "device": dev.type, "dtype": str(dtype).removeprefix("torch.")})
    return out


def copy_bandwidth_gbs(megabytes: int = 64, *, device: str | torch.device = "cpu") -> float:
    """Measured memory bandwidth in GB/s: copying a buffer reads it once and writes it once."""
    if megabytes < 1:
        raise LabkitError(f"megabytes={megabytes} must be at least 1.")
    src = torch.empty(megabytes * 2**20 // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), device=device, min_run_time=0.3)
    return 2 * src.numel() * src.element_size() / timing.median_s / 1e9


def _cpu_ghz() -> float:
    """The clock the OS reports (often the base clock: turbo can run faster). LABKIT_CPU_GHZ overrides it."""
    if os.environ.get("LABKIT_CPU_GHZ"):
        return float(os.environ["LABKIT_CPU_GHZ"])
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1e3
    except OSError:
        pass
    return 2.5  # a typical laptop clock, when the OS does not say


def cpu_fp32_flops_per_cycle() -> int:
    """fp32 FLOPs one core can finish per cycle: two FMA units × vector width × 2."""
    flags = env.cpu_flags()
    if "avx512f" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    if "avx" in flags:
        return 16
    return 8


def cpu_peak_gflops(threads: int | None = None) -> float:
    """An estimate of the CPU's fp32 peak: threads × reported clock × FLOPs per cycle.

    The reported clock is often the base clock, so a measured matmul can beat this estimate
    when the CPU runs at turbo; set LABKIT_CPU_GHZ to your CPU's boost clock for a tighter bound.
    """
    threads = threads or torch.get_num_threads()
    return threads * _cpu_ghz() * cpu_fp32_flops_per_cycle()


# Datasheet fp32 (non-tensor-core) and dense fp16/bf16 tensor-core peaks, GFLOP/s.
_GPU_PEAKS = {
    "H200": (66_900, 989_000), "H100 SXM": (66_900, 989_000), "H100 PCIe": (51_200, 756_000),
    "H100": (66_900, 989_000), "A100": (19_500, 312_000), "L4": (30_300, 121_000),
    "A10": (31_200, 125_000), "T4": (8_100, 65_000), "V100": (15_700, 125_000),
    "RTX 4090": (82_600, 165_000), "RTX 3090": (35_600, 71_000),
}


def gpu_peak_gflops(tensor_cores: bool = False) -> float:
    """The first CUDA GPU's datasheet peak (fp32, or dense fp16/bf16 on tensor cores); an estimate when unknown."""
    if not torch.cuda.is_available():
        raise LabkitError("No CUDA GPU here: a GPU peak needs one (use cpu_peak_gflops()).")
    name = torch.cuda.get_device_name(0)
    for key, (fp32, tensor) in _GPU_PEAKS.items():
        if key in name:
            return float(tensor if tensor_cores else fp32)
    props = torch.cuda.get_device_properties(0)
    fp32 = props.multi_processor_count * 128 * 2 * 1.5  # 128 fp32 lanes per SM at ~1.5 GHz
    return fp32 * (8 if tensor_cores else 1)
