"""The machine and the run: device choice, threads, seeds, run mode, CPU facts and the machine stamp."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from labkit import paths
from labkit.errors import LabkitError

MODES = ("smoke", "full")
T = TypeVar("T")


def autograding() -> bool:
    """Whether nbgrader is executing this notebook (it sets NBGRADER_EXECUTION to 'autograde' or 'validate')."""
    return bool(os.environ.get("NBGRADER_EXECUTION", "").strip())


def mode() -> str:
    """The run mode from LABKIT_MODE: 'full' (default, what learners run) or 'smoke' (tiny, for CI).

    While nbgrader grades (NBGRADER_EXECUTION set) an unset LABKIT_MODE means 'smoke': grading runs every
    submission top to bottom, and the graded cells are the exercises, not the measurements."""
    default = "smoke" if autograding() else "full"
    value = os.environ.get("LABKIT_MODE", default).strip().lower() or default
    if value not in MODES:
        raise LabkitError(f"LABKIT_MODE={value!r} is not a mode: set it to 'smoke' or 'full'.")
    return value


def check_mode(value: str | None) -> str:
    """Return `value` if it is a valid mode, the current mode if it is None."""
    if value is None:
        return mode()
    if value not in MODES:
        raise LabkitError(f"mode {value!r} is not a mode: use 'smoke' or 'full'.")
    return value


def pick(smoke: T, full: T, run_mode: str | None = None) -> T:
    """The value for the current run mode: `pick(smoke=2, full=10)` epochs."""
    return smoke if check_mode(run_mode) == "smoke" else full


def device(prefer: str | torch.device | None = "auto") -> torch.device:
    """The device to compute on: 'auto' takes a CUDA GPU, then Apple's MPS, then the CPU."""
    name = "auto" if prefer is None else str(prefer)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise LabkitError("No CUDA GPU is visible to PyTorch: use device='cpu' (or 'auto').")
    if kind == "mps" and not _mps_available():
        raise LabkitError("Apple's MPS is not available here: use device='cpu' (or 'auto').")
    if kind not in ("cpu", "cuda", "mps"):
        raise LabkitError(f"Unknown device {name!r}: use 'auto', 'cpu', 'cuda' or 'mps'.")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def synchronize(dev: torch.device | str) -> None:
    """Wait until the device has finished queued work (GPUs run asynchronously): do it before reading a clock."""
    kind = torch.device(dev).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int | None) -> int:
    """Use `n` intra-op CPU threads (None: one per physical core torch sees); returns the count in use."""
    if n is not None:
        if n < 1:
            raise LabkitError(f"threads={n} must be at least 1.")
        torch.set_num_threads(n)
    return torch.get_num_threads()


@contextmanager
def cpu_threads(n: int) -> Iterator[int]:
    """Run the block with `n` intra-op CPU threads, then restore the previous count."""
    before = torch.get_num_threads()
    set_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@cache
def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'Intel(R) Xeon(R) ...'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux), used to tell AVX2 / AVX-512 / AMX and bf16 support.

    Empty where /proc/cpuinfo is not readable (macOS, Windows): bf16 units then read as absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16_units() -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX); otherwise bf16 is emulated and slow."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def gpu_info() -> dict | None:
    """Name, compute capability, memory and fp16/bf16 support of the first CUDA GPU, or None."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    major, minor = props.major, props.minor
    return {
        "name": props.name,
        "capability": f"{major}.{minor}",
        "memory_gb": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "fp16_tensor_cores": major >= 7,
        "bf16": torch.cuda.is_bf16_supported(),
    }


@cache
def git_commit() -> str:
    """The labkit checkout's commit (short hash), or 'unknown' outside a git checkout (e.g. installed by pip)."""
    if not paths.IN_CLONE:
        return "unknown"  # not the commit of whatever repository the installed package happens to sit in
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=paths.ROOT,
            capture_output=True, text=True, timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    """A short machine stamp saved with every result: where and with what it was measured."""
    gpu = gpu_info()
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device().type,
        "gpu": gpu["name"] if gpu else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
    }
