"""labkit loads where POSIX-only modules and /proc are missing (Windows, macOS): with `fcntl` and
`resource` unimportable and every /proc path unreadable, each labkit module imports and the machine
report still comes out."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: take the POSIX-only pieces away first, then import labkit.
NO_POSIX = r'''
import builtins, importlib, io, json, os, pkgutil, sys

import psutil  # picks its backend by OS: the Linux one imports resource, Windows' does not (not labkit's doing)

for name in ("fcntl", "resource"):
    sys.modules[name] = None  # `import fcntl` now raises ImportError, as on Windows

blocked = []
_open = builtins.open

def no_proc_open(file, *args, **kwargs):
    """open(), except that /proc paths fail the way a missing /proc does."""
    path = file if isinstance(file, int) else os.fsdecode(os.fspath(file))
    if isinstance(path, str) and (path == "/proc" or path.startswith("/proc/")):
        blocked.append(path)
        raise PermissionError(13, "unreadable in this test", path)
    return _open(file, *args, **kwargs)

builtins.open = io.open = no_proc_open

# the harness itself: it must really take them away
harness = []
for name in ("fcntl", "resource"):
    try:
        importlib.import_module(name)
        harness.append(f"import {name} worked")
    except ImportError:
        pass
try:
    from pathlib import Path
    Path("/proc/self/status").read_text()
    harness.append("/proc was readable")
except OSError:
    pass

import labkit

names = ["labkit"] + sorted(m.name for m in pkgutil.walk_packages(labkit.__path__, "labkit."))
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:  # report every module that breaks, not only the first
        failed.append(f"{name}: {type(error).__name__}: {error}")

from labkit import bench, doctor, env

stamp = env.machine()
report = doctor.report_text()
memory = bench.peak_memory_mb(lambda: bytearray(1 << 20))
print(json.dumps({"modules": names, "failed": failed, "harness": harness, "blocked": sorted(set(blocked)),
                  "cpu": stamp["cpu"], "report": report, "peak_memory_mb": memory, "flops_per_cycle": bench.cpu_fp32_flops_per_cycle()}))
'''


def run_without_posix() -> dict:
    out = subprocess.run([sys.executable, "-c", NO_POSIX], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={"LABKIT_MODE": "smoke", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_without_fcntl_resource_or_proc():
    result = run_without_posix()
    assert not result["harness"], result["harness"]          # the test really took them away
    assert len(result["modules"]) > 40 and "labkit.cli" in result["modules"] and "labkit.ui.pruning" in result["modules"]
    assert not result["failed"], "\n".join(result["failed"])
    # labkit did try /proc (cpuinfo, the memory counters) and fell back: the machine report still came out
    assert "/proc/cpuinfo" in result["blocked"]
    assert result["cpu"] and result["report"].strip()
    assert result["peak_memory_mb"] is None                 # unmeasurable here: None, not a made-up number
    assert result["flops_per_cycle"] > 0
