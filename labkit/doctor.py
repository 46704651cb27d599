"""`labkit doctor`: what this machine can do (CPU, SIMD, bf16 units, GPU, estimated peaks) and the run mode.

It sits above both `env` (the machine facts) and `bench` (the estimated peak FLOP/s), so neither
needs the other.
"""

from __future__ import annotations

import os
import platform

import torch

from labkit import bench, data, env
from labkit.errors import LabkitError


def report() -> dict:
    """Everything `labkit doctor` shows, as a dict."""
    gpu = env.gpu_info()
    flags = env.cpu_flags()
    return {
        "cpu": env.cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "simd": ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "unknown",
        "cpu_bf16_units": env.cpu_has_bf16_units(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": env.device().type,
        "gpu": gpu,
        "mode": env.mode(),
        "peak_gflops_cpu_fp32": round(bench.cpu_peak_gflops(), 1),
        "peak_gflops_gpu_fp32": round(bench.gpu_peak_gflops(), 1) if gpu else None,
        "data": data_lines(),
    }


def data_lines() -> list[str]:
    """The shipped data and weights checked against data/SHA256SUMS: one line per missing or corrupted
    file, saying how to get it back, then one line for the files that are fine."""
    try:
        checks = data.check_shipped()
    except LabkitError as error:
        return [str(error)]
    why = {"missing": "missing", "corrupted": "corrupted (its SHA-256 differs from data/SHA256SUMS)"}
    lines = [f"{name}: {why[status]} — {data.fix_hint(name)}" for name, status in checks if status != "ok"]
    ok = sum(status == "ok" for _, status in checks)
    return lines + [f"{ok} of {len(checks)} shipped files match data/SHA256SUMS"]


def data_ok() -> bool:
    """True when data/SHA256SUMS is readable and every file it lists is there and matches."""
    try:
        return all(status == "ok" for _, status in data.check_shipped())
    except LabkitError:
        return False


def report_text(info: dict | None = None) -> str:
    """The environment report as aligned lines of text."""
    info = report() if info is None else info
    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, list):  # one line each, the key on the first
            lines += [f"{key if i == 0 else '':<22} {item}" for i, item in enumerate(value)]
            continue
        lines.append(f"{key:<22} {value}")
    return "\n".join(lines)
