"""Distributed data-parallel training (DDP): replicas of one model, gradients averaged by all-reduce.

Every rank (one process per device) holds a full copy of the model, trains on its own shard of
each batch (`DistributedSampler`), and after `backward()` DDP all-reduces the gradients so every
replica takes the same optimizer step. Notebooks cannot host the processes themselves (functions
defined in a notebook cannot be pickled into new processes), so labkit starts `torchrun` as a
subprocess on a worker script inside the package, `labkit/techniques/_ddp_worker.py`, and reads
each rank's results back as JSON. gloo on CPUs, nccl on GPUs.

Headline (`labkit bench ddp`):
- max_weight_diff: largest |weight difference| between 2 ranks with batch B and 1 process with
  batch 2B after the same training (the same maths: must be ≤ 1e-5).
- throughput_1, throughput_2: training images/s with 1 rank and with 2 ranks, one thread each;
  medians of interleaved timed windows.
- scaling_efficiency: throughput_2 / (2 × throughput_1); 1.0 is perfect scaling.
- comm_fraction: share of a 2-rank step spent communicating: 1 − throughput with all-reduce /
  throughput with `no_sync` (no all-reduce), measured interleaved in the same launch.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import psutil
import torch
from torch import nn

from labkit import bench, env, models
from labkit.errors import LabkitError
from labkit.results import BenchReport, ResultCard
# what each rank runs lives in _ddp_rank (lean imports for the ranks' start-up); shown from here
from labkit.techniques._ddp_rank import (TASK_KINDS, TwoDeviceMLP, bubble_fraction, check_job,  # noqa: F401
                                        make_replica, model_parallel_devices, pipeline_stages, pipeline_step,
                                        rank_and_world, read_job, save_checkpoint, shard_loader, timed_steps,
                                        train_replica)


WORKER_MODULE = "labkit.techniques._ddp_worker"


# ============================================================================ settings

@dataclass
class DDPConfig:
    batch_per_rank: int = 64      # B: images per rank per step; the global batch is B × ranks
    lr: float = 0.05              # SGD learning rate
    momentum: float = 0.9         # SGD momentum
    seed: int = 0                 # same seed on every rank: identical initial replicas and shuffling
    train_images: int = 1024      # images for the equivalence run: 8 steps of batch 2B (longer runs
                                  # amplify float rounding differences step by step, past 1e-5)
    epochs: int = 1               # epochs of the equivalence run
    warmup_steps: int = 5         # untimed steps before the timed windows (allocations, thread pools)
    window_steps: int = 60        # steps per timed window (≈ 2 s: shorter windows are noisy)
    windows: int = 5              # timed windows per variant, interleaved; the median counts
    bucket_cap_mb: float = 25.0   # DDP's gradient bucket size (PyTorch's default is 25 MB)
    timeout_s: float = 600.0      # a launch running longer than this is stopped and reported


def config_for(run_mode: str) -> DDPConfig:
    return env.pick(smoke=DDPConfig(window_steps=12, windows=2, warmup_steps=2, train_images=1024),
                    full=DDPConfig(), run_mode=run_mode)


def measure_pipeline(microbatches: list[int], *, batch: int = 512, width: int = 512, repeats: int = 5,
                     on_line: Callable[[str], None] | None = print, timeout_s: float = 300.0) -> list[dict]:
    """A real 2-rank pipeline: for each micro-batch count, the step time and each rank's idle share."""
    if any(m < 1 or batch % m for m in microbatches):
        raise LabkitError(f"Each micro-batch count must divide the batch of {batch}: got {microbatches}.")
    # Always two CPU ranks over gloo: the point is two workers that can run at once (on GPUs,
    # TwoDeviceMLP shows the split itself).
    result = launch({"backend": "gloo", "device": "cpu",
                     "tasks": [{"kind": "pipeline", "name": "pipeline", "microbatches": microbatches,
                                "batch": batch, "width": width, "repeats": repeats, "seed": 0}]},
                    nproc=2, timeout_s=timeout_s, on_line=on_line)
    rows = []
    for m in microbatches:
        per_rank = [r["pipeline"][str(m)] for r in result.results]
        wall = statistics.median(max(r["wall"][i] for r in per_rank) for i in range(repeats))
        busy = [statistics.median(r["busy"]) for r in per_rank]
        rows.append({"microbatches": m, "step_ms": 1e3 * wall,
                     "idle_rank0": 1 - busy[0] / wall, "idle_rank1": 1 - busy[1] / wall,
                     "idle_mean": 1 - sum(busy) / (2 * wall), "bubble_theory": bubble_fraction(2, m)})
    shutil.rmtree(result.workdir, ignore_errors=True)
    return rows


# ============================================================================ DataParallel

def dataparallel_vs_plain(batch: int = 128, min_run_time: float = 1.0) -> dict:
    """Time a training step of the small CNN, plain and wrapped in nn.DataParallel, interleaved.
    With no GPUs DataParallel has no devices to scatter to and simply calls the model."""
    dev = env.device()
    X, y = torch.randn(batch, 1, 28, 28, device=dev), torch.randint(0, 10, (batch,), device=dev)
    env.seed_everything(0)
    plain = models.SmallCNN().to(dev)
    wrapped = nn.DataParallel(models.SmallCNN().to(dev))

    def step(model: nn.Module) -> None:
        nn.functional.cross_entropy(model(X), y).backward()
        model.zero_grad(set_to_none=True)

    plain_s, dp_s = [], []
    for _ in range(3):
        plain_s.append(bench.time_fn(lambda: step(plain), device=dev, min_run_time=min_run_time / 3).median_s)
        dp_s.append(bench.time_fn(lambda: step(wrapped), device=dev, min_run_time=min_run_time / 3).median_s)
    return {"device_ids": list(wrapped.device_ids), "gpus": torch.cuda.device_count(),
            "plain_ms": 1e3 * statistics.median(plain_s), "dataparallel_ms": 1e3 * statistics.median(dp_s),
            "dataparallel_speedup": statistics.median(plain_s) / statistics.median(dp_s)}


# ============================================================================ launching torchrun

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it: two launches get two ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_for(nproc: int) -> tuple[str, str]:
    """(backend, device kind): nccl on GPUs when there is one per rank, gloo on CPUs otherwise."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= nproc:
        return "nccl", "cuda"
    return "gloo", "cpu"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`: torchrun starts its ranks in their own sessions."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _die_with_parent() -> None:
    """Linux: the agent gets SIGTERM when the process that started it dies (a kernel restart), so that
    torchrun stops its ranks too. (Caveat: Linux ties this to the starting *thread*.) Where prctl is
    unavailable the launch goes ahead: stop(), Ctrl-C, the timeout and the exit hook still end it."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - an exception here would make Popen fail: launching matters more
        pass


_RUNNING: set["Launch"] = set()  # launches started and not yet waited for


@atexit.register
def _stop_running_launches() -> None:
    """The parent's clean-up at exit (a kernel shut down), for platforms without the death signal."""
    for running in list(_RUNNING):
        if running.running():
            running.stop(grace_s=2.0)


class LaunchError(LabkitError):
    """A launch failed (a rank crashed, or it ran past its timeout); `.log` holds every line it printed."""

    def __init__(self, message: str, log: list[str]):
        super().__init__(message)
        self.log = log


@dataclass
class LaunchResult:
    """What came back from a launch: each rank's JSON results (by rank), the log, the wall time."""

    results: list[dict]
    log: list[str]
    wall_s: float
    commands: list[list[str]]                       # the torchrun command of each node, as run
    workdir: Path                                   # job and results (removed afterwards if labkit made it)
    pids: list[int] = field(default_factory=list)   # every process the launch started (agents and ranks)


class Launch:
    """`torchrun` on the worker script, as a subprocess you can wait for or stop.

    nproc ranks per node; nnodes > 1 starts that many torchrun agents on this machine which meet
    through a c10d rendezvous on 127.0.0.1 (what several machines do over the network).
    Every line any rank prints goes to `on_line` as it arrives. `stop()` (also on Ctrl-C and on
    timeout) ends every agent and every rank: no process is left behind.
    """

    def __init__(self, job: dict, nproc: int = 2, *, nnodes: int = 1, threads_per_rank: int = 1,
                 timeout_s: float = 300.0, on_line: Callable[[str], None] | None = print,
                 workdir: str | Path | None = None):
        if not isinstance(nproc, int) or nproc < 1:
            raise LabkitError(f"nproc={nproc!r}: a launch needs at least 1 rank per node.")
        if not isinstance(nnodes, int) or nnodes < 1:
            raise LabkitError(f"nnodes={nnodes!r}: a launch needs at least 1 node.")
        if threads_per_rank < 1:
            raise LabkitError(f"threads_per_rank={threads_per_rank}: each rank needs at least 1 thread.")
        if timeout_s <= 0:
            raise LabkitError(f"timeout_s={timeout_s}: give the launch a positive time limit in seconds.")
        check_job(job, "The DDP job")
        self.nproc, self.nnodes, self.timeout_s = nproc, nnodes, timeout_s
        self.on_line = on_line or (lambda line: None)
        self._own_workdir = workdir is None  # a temporary folder we made is removed after wait()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="labkit-ddp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        backend, device = backend_for(nproc * nnodes)
        self.job = check_job({"backend": backend, "device": device, "threads": threads_per_rank, **job},
                             "The DDP job")
        try:
            text = json.dumps(self.job)
        except (TypeError, ValueError) as error:
            raise LabkitError(f"The DDP job is not JSON ({error}): give paths as str and numbers as plain "
                              "int/float.") from None
        (self.workdir / "job.json").write_text(text)
        self.procs: list[subprocess.Popen] = []
        self.log: list[str] = []
        self.pids: set[int] = set()
        self._lines: queue.Queue[str] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self._start = 0.0
        self.stopped = False
        self.command_lines: list[list[str]] = []

    def commands(self) -> list[list[str]]:
        """One torchrun command per node (the venv's torch: `python -m torch.distributed.run`)."""
        run = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={self.nproc}",
               "--max-restarts=0", "--monitor-interval=0.2"]
        worker = ["-m", WORKER_MODULE, "--job", str(self.workdir / "job.json"), "--out", str(self.workdir)]
        if self.nnodes == 1:
            return [run + ["--standalone"] + worker]  # torchrun picks a free port itself
        port, rdzv_id = free_port(), uuid.uuid4().hex[:8]
        return [run + [f"--nnodes={self.nnodes}", f"--node-rank={i}", "--rdzv-backend=c10d",
                       f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id={rdzv_id}"] + worker
                for i in range(self.nnodes)]

    def start(self) -> "Launch":
        read_job(self.workdir / "job.json")  # the file the ranks will read: a clear error now, not from torchrun
        env_vars = {**os.environ, "OMP_NUM_THREADS": str(self.job["threads"]), "PYTHONUNBUFFERED": "1"}
        self._start = time.perf_counter()
        self.command_lines = self.commands()  # one free port per launch, chosen once
        for node, command in enumerate(self.command_lines):
            # start_new_session: the agent and its ranks can be stopped together, apart from Jupyter
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env_vars, start_new_session=True, bufsize=1,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            self.procs.append(proc)
            self.pids.add(proc.pid)
            _RUNNING.add(self)
            prefix = f"[node {node}] " if self.nnodes > 1 else ""
            reader = threading.Thread(target=self._read, args=(proc, prefix), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def _read(self, proc: subprocess.Popen, prefix: str) -> None:
        for line in proc.stdout:
            self._lines.put(prefix + line.rstrip("\n"))

    def _drain(self, wait_s: float) -> None:
        try:
            line = self._lines.get(timeout=wait_s)
        except queue.Empty:
            return
        while True:
            self.log.append(line)
            self.on_line(line)
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return

    def _remember_children(self) -> None:
        for proc in self.procs:
            self.pids.update(_descendants(proc.pid))

    def running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def stop(self, grace_s: float = 5.0) -> None:
        """End every agent and every rank: SIGTERM (torchrun then stops its ranks), SIGKILL after `grace_s`."""
        self.stopped = True
        self._remember_children()
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if hasattr(os, "killpg"):
                    os.killpg(proc.pid, signal.SIGTERM)  # the agent's whole session
                else:
                    proc.terminate()  # no process groups (Windows): the agent, then each rank below
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(pid) for pid in self.pids):
            self._remember_children()
            time.sleep(0.05)
        for pid in self.pids:  # whatever is left (ranks live in their own sessions)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def wait(self) -> LaunchResult:
        """Stream the log until every agent exits; raise LaunchError on a crash or past the timeout."""
        try:
            return self._wait()
        finally:
            _RUNNING.discard(self)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _wait(self) -> LaunchResult:
        try:
            while self.running():
                self._drain(0.1)
                self._remember_children()
                if time.perf_counter() - self._start > self.timeout_s:
                    self.stop()
                    self._finish_reading()
                    raise LaunchError(f"The launch ran longer than timeout_s={self.timeout_s:g} s and was stopped "
                                      "(every rank ended). Give it more time or fewer steps.", self.log)
        except KeyboardInterrupt:  # Stop button / Ctrl-C: no rank may survive the notebook's interrupt
            self.stop()
            self._finish_reading()
            raise
        self._finish_reading()
        wall = time.perf_counter() - self._start
        if self.stopped:
            raise LaunchError("Stopped: every rank was ended before the launch finished.", self.log)
        failed = [p.returncode for p in self.procs if p.returncode != 0]
        if failed:
            raise LaunchError(self._failure_message(), self.log)
        results = [json.loads(p.read_text()) for p in sorted(self.workdir.glob("rank*.json"),
                                                              key=lambda p: int(p.stem[4:]))]
        if len(results) != self.nproc * self.nnodes:
            raise LaunchError(f"Only {len(results)} of {self.nproc * self.nnodes} ranks wrote results: "
                              "see the log above.", self.log)
        return LaunchResult(results, self.log, wall, self.command_lines, self.workdir, sorted(self.pids))

    def _finish_reading(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        self._drain(0.0)

    def _failure_message(self) -> str:
        errors = [json.loads(p.read_text()) for p in self.workdir.glob("error_rank*.json")]
        if errors:
            first = min(errors, key=lambda e: e["time"])  # the root cause; the others lost their peer
            return (f"Rank {first['rank']} failed with {first['type']}: {first['message']}. "
                    "torchrun stopped the other ranks; the full log is above (and in the error's .log).")
        tail = " | ".join(self.log[-3:]) if self.log else "no output"
        return f"torchrun failed (exit codes {[p.returncode for p in self.procs]}); last lines: {tail}"


def launch(job: dict, nproc: int = 2, *, on_start: Callable[[Launch], None] | None = None,
           **kwargs) -> LaunchResult:
    """Start torchrun on the worker with `job`, stream its log, and return the ranks' results.
    `on_start(the_launch)` is called once it runs (a Stop button keeps it to call `.stop()`)."""
    running = Launch(job, nproc, **kwargs).start()
    if on_start is not None:
        on_start(running)
    return running.wait()


# ============================================================================ the experiments

def train_task(cfg: DDPConfig, batch_per_rank: int, n_images: int, checkpoint: Path, *, solo: bool = False,
               name: str = "train") -> dict:
    """A training job for the worker; solo=True: rank 0 trains alone (the 1-process reference)."""
    return {"kind": "train", "name": name, "batch": batch_per_rank, "n_images": n_images, "solo": solo,
            "epochs": cfg.epochs, "lr": cfg.lr, "momentum": cfg.momentum, "seed": cfg.seed,
            "checkpoint": str(checkpoint)}


def throughput_task(cfg: DDPConfig, variants: list[dict]) -> dict:
    """Timed windows of every variant, interleaved (v1, v2, v1, v2, ...), so drift hits all alike."""
    return {"kind": "throughput", "name": "throughput", "variants": variants, "seed": cfg.seed,
            "lr": cfg.lr, "momentum": cfg.momentum, "warmup_steps": cfg.warmup_steps,
            "window_steps": cfg.window_steps, "windows": cfg.windows, "bucket_cap_mb": cfg.bucket_cap_mb}


def images_per_s(result: dict, name: str) -> float:
    """Median throughput of one variant from a throughput task's result."""
    return statistics.median(result["throughput"][name]["images_per_s"])


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise LabkitError("The two checkpoints hold different layers: they are not the same model.")
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def check_replicas_moved(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor]) -> None:
    """Raise when training did not change the weights (then equal weights would prove nothing)."""
    if max_weight_diff(start, end) < 1e-4:
        raise LabkitError("The DDP run left the weights unchanged: no training took effect, "
                          "so the equivalence check would be void.")


def measure_comm(nproc: int = 2, *, bucket_cap_mb: float = 25.0, accum: int = 1, cfg: DDPConfig | None = None,
                 on_line: Callable[[str], None] | None = print,
                 on_start: Callable[[Launch], None] | None = None) -> dict:
    """Throughput of `nproc` ranks with all-reduce (every `accum`-th step) and with no_sync
    (never), interleaved in one launch; their ratio is the share of time spent communicating."""
    cfg = cfg or config_for(env.mode())
    if not isinstance(nproc, int) or not 1 <= nproc <= 8:
        raise LabkitError(f"ranks={nproc!r}: choose between 1 and 8 ranks (one per core is the fair setting).")
    if not bucket_cap_mb > 0:
        raise LabkitError(f"bucket_cap_mb={bucket_cap_mb!r} must be greater than 0 (PyTorch's default is 25).")
    if not isinstance(accum, int) or accum < 1:
        raise LabkitError(f"accum={accum!r}: gradient accumulation needs a whole number of steps, at least 1.")
    steps = -(-cfg.window_steps // accum) * accum  # whole accumulation cycles only
    B = cfg.batch_per_rank
    task = throughput_task(replace(cfg, window_steps=steps, bucket_cap_mb=bucket_cap_mb), [
        {"name": "all-reduce", "batch": B, "accum": accum},
        {"name": "no_sync", "batch": B, "sync": False}])
    result = launch({"tasks": [task]}, nproc=nproc, timeout_s=cfg.timeout_s, on_line=on_line, on_start=on_start)
    shutil.rmtree(result.workdir, ignore_errors=True)
    with_comm, without = images_per_s(result.results[0], "all-reduce"), images_per_s(result.results[0], "no_sync")
    return {"ranks": nproc, "bucket_cap_mb": bucket_cap_mb, "accum": accum, "images_per_s": with_comm,
            "images_per_s_no_comm": without, "comm_fraction": 1 - with_comm / without}


def log_to_stderr(line: str) -> None:
    """The ranks' log for `labkit bench ddp`: on stderr, so that `--json` keeps stdout clean."""
    print(line, file=sys.stderr, flush=True)


def headline(mode: str | None = None, on_line: Callable[[str], None] | None = log_to_stderr) -> BenchReport:
    """One 2-rank launch: train 1 process × batch 2B and 2 ranks × batch B, compare the checkpoints;
    then time 1 rank, 2 ranks, 2 ranks without all-reduce and 1 process with 2 threads, interleaved."""
    run_mode = env.check_mode(mode)
    return run_headline(config_for(run_mode), run_mode, on_line)


def run_headline(cfg: DDPConfig, run_mode: str, on_line: Callable[[str], None] | None = print) -> BenchReport:
    """The headline experiment with explicit settings (tests use a tiny one)."""
    B = cfg.batch_per_rank
    n_images = cfg.train_images // (2 * B) * (2 * B)  # a whole number of global batches: no padding, no leftovers
    workdir = Path(tempfile.mkdtemp(prefix="labkit-ddp-headline-"))
    try:
        # One launch of 2 ranks; "solo" variants run on rank 0 alone while rank 1 waits, so every
        # variant is timed in the same processes, interleaved, under the same machine load.
        two = launch({"tasks": [
            train_task(cfg, 2 * B, n_images, workdir / "one_process.pt", solo=True, name="train_one"),
            train_task(cfg, B, n_images, workdir / "two_ranks.pt", name="train_two"),
            throughput_task(cfg, [{"name": "1 rank", "batch": B, "threads": 1, "solo": True},
                                  {"name": "2 ranks", "batch": B, "threads": 1},
                                  {"name": "2 ranks no_sync", "batch": B, "threads": 1, "sync": False},
                                  {"name": "1 process 2 threads", "batch": 2 * B, "threads": 2, "solo": True}])]},
            nproc=2, timeout_s=cfg.timeout_s, on_line=on_line, workdir=workdir / "launch")
        ref, ddp_w = load_weights(workdir / "one_process.pt"), load_weights(workdir / "two_ranks.pt")
        env.seed_everything(cfg.seed)
        check_replicas_moved(models.SmallCNN().state_dict(), ddp_w)
        diff = max_weight_diff(ref, ddp_w)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    r0 = two.results[0]
    thr_1, thr_1_2t = images_per_s(r0, "1 rank"), images_per_s(r0, "1 process 2 threads")
    thr_2, thr_2_nosync = images_per_s(r0, "2 ranks"), images_per_s(r0, "2 ranks no_sync")
    card = ResultCard(title="DDP on this machine (small CNN, images/s)", baseline="1 rank, 1 thread")
    card.add({"variant": "1 rank, 1 thread", "images_per_s": thr_1, "batch": B,
              "accuracy": r0["train_one"]["test_acc"]})
    card.add({"variant": "2 ranks (DDP), 1 thread each", "images_per_s": thr_2, "batch": 2 * B,
              "accuracy": r0["train_two"]["test_acc"]})
    card.add({"variant": "2 ranks, no_sync (no all-reduce)", "images_per_s": thr_2_nosync, "batch": 2 * B})
    card.add({"variant": "1 process, 2 threads", "images_per_s": thr_1_2t, "batch": 2 * B})
    return BenchReport(
        name="ddp", mode=run_mode, card=card,
        config=asdict(cfg) | {"equivalence_images": n_images, "backend": r0["backend"]},
        headline={"max_weight_diff": diff, "throughput_1": thr_1, "throughput_2": thr_2,
                  "scaling_efficiency": thr_2 / (2 * thr_1), "comm_fraction": 1 - thr_2 / thr_2_nosync},
    )
