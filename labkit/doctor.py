"""`labkit doctor`: what this machine can do (CPU, SIMD, bf16 units, GPU, estimated peaks) and the run mode.

It sits above both `env` (the machine facts) and `bench` (the estimated peak FLOP/s), so neither
needs the other.
"""

from __future__ import annotations

import os
import platform

import torch

from labkit import bench, env


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
    }


def report_text(info: dict | None = None) -> str:
    """The environment report as aligned lines of text."""
    info = report() if info is None else info
    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"{key:<22} {value}")
    return "\n".join(lines)
