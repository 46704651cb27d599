"""The code each DDP rank runs (and the notebook shows): joining the data shard, the replica, the loop.

Kept apart from `labkit.techniques.ddp` (launching, measuring, the headline) so that every rank
that torchrun starts imports only torch and this: each rank's start-up is part of the launch time.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from labkit import env, models
from labkit.errors import LabkitError


# ============================================================================ the job file

TASK_KINDS = ("allreduce", "train", "throughput", "pipeline", "crash", "sleep")  # what _ddp_worker can run
BACKENDS, DEVICES = ("gloo", "nccl"), ("cpu", "cuda")


def check_job(job: object, where: str) -> dict:
    """`job` if the worker can run it; else a one-line LabkitError that says `where` and what is wrong."""
    if not isinstance(job, dict):
        raise LabkitError(f"{where}: the DDP job is not a JSON object (got a {type(job).__name__}).")
    tasks = job.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise LabkitError(f"{where}: the DDP job has no tasks: give it e.g. {{'tasks': [{{'kind': 'allreduce'}}]}}.")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or "kind" not in task:
            raise LabkitError(f"{where}: task {i} has no 'kind': give each task one of {', '.join(TASK_KINDS)}.")
        if task["kind"] not in TASK_KINDS:
            raise LabkitError(f"{where}: unknown task kind {task['kind']!r} in task {i}: "
                              f"choose one of {', '.join(TASK_KINDS)}.")
    if job.get("backend", "gloo") not in BACKENDS:
        raise LabkitError(f"{where}: backend={job['backend']!r}: choose {' or '.join(BACKENDS)}.")
    if job.get("device", "cpu") not in DEVICES:
        raise LabkitError(f"{where}: device={job['device']!r}: choose {' or '.join(DEVICES)}.")
    threads = job.get("threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise LabkitError(f"{where}: threads={threads!r}: each rank needs a whole number of threads, at least 1.")
    timeout = job.get("pg_timeout_s", 600)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise LabkitError(f"{where}: pg_timeout_s={timeout!r} must be a positive number of seconds.")
    return job


def read_job(path: str | Path) -> dict:
    """The job file the ranks run, checked: a one-line LabkitError naming the file when it is unreadable,
    not JSON, or not a job (instead of torchrun's generic 'child failed')."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabkitError(f"{path}: cannot read the DDP job file ({error}).") from None
    try:
        job = json.loads(text)
    except ValueError as error:
        raise LabkitError(f"{path} is not JSON ({error}): a DDP job file is one JSON object, "
                          "as labkit.techniques.ddp.Launch writes it.") from None
    return check_job(job, str(path))


# ============================================================================ inside each rank

def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of ranks (0 and 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_loader(X: torch.Tensor, y: torch.Tensor, batch_per_rank: int, seed: int, *, solo: bool = False) -> DataLoader:
    """Each rank sees its own 1/world of every epoch: DistributedSampler deals out one shared
    shuffled order (same `seed` on every rank) round-robin, rank r taking positions r, r+world, ...
    solo=True: this process alone sees every example (the single-process reference)."""
    # shown in notebook 06_ddp
    rank, world = (0, 1) if solo else rank_and_world()
    sampler = DistributedSampler(TensorDataset(X, y), num_replicas=world, rank=rank, shuffle=True,
                                 seed=seed, drop_last=True)
    return DataLoader(TensorDataset(X, y), batch_size=batch_per_rank, sampler=sampler, drop_last=True)


def make_replica(seed: int, bucket_cap_mb: float = 25.0, device: str = "cpu", *, solo: bool = False) -> nn.Module:
    """The same model on every rank (same seed), wrapped in DDP when there is more than one rank
    (solo=True: a plain model for this process alone)."""
    # shown in notebook 06_ddp
    env.seed_everything(seed)
    model = models.SmallCNN().to(device)
    _, world = rank_and_world()
    if world == 1 or solo:
        return model  # one process: plain training, no wrapper, no communication
    # DDP broadcasts rank 0's weights at construction and all-reduces gradients during backward,
    # in buckets of `bucket_cap_mb`, so communication of early buckets overlaps the rest of backward.
    return DDP(model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None,
               bucket_cap_mb=bucket_cap_mb)


def train_replica(model: nn.Module, train_loader: DataLoader, *, epochs: int, lr: float, momentum: float,
                  log: Callable[[str], None] = print) -> dict:
    """A plain training loop: identical to single-process code; DDP does its work inside backward()."""
    # shown in notebook 06_ddp
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    device = next(model.parameters()).device
    steps, start = 0, time.perf_counter()
    for epoch in range(epochs):
        train_loader.sampler.set_epoch(epoch)  # a new shuffled order each epoch, the same on every rank
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()                    # DDP: gradients all-reduced (averaged) here
            opt.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
        log(f"epoch {epoch + 1}/{epochs}: {steps} steps, last loss {loss.item():.3f}")
    env.synchronize(device)
    return {"steps": steps, "seconds": time.perf_counter() - start, "last_loss": loss.item()}


def save_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Rank 0 writes the weights (all replicas are equal); the others wait at the barrier."""
    # shown in notebook 06_ddp
    rank, world = rank_and_world()
    if rank == 0:
        plain = model.module if isinstance(model, DDP) else model  # save the model, not the wrapper
        torch.save(plain.state_dict(), path)
    if world > 1:
        dist.barrier()  # nobody reads the checkpoint before it is complete


def timed_steps(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], opt: torch.optim.Optimizer,
                steps: int, *, accum: int = 1, sync: bool = True) -> float:
    """Seconds for `steps` training micro-steps. With DDP, `no_sync()` skips the all-reduce:
    `sync=False` never communicates (the cost of computing alone); `accum=k` communicates on
    every k-th micro-step only (gradient accumulation). A rank given steps=0 just waits (so one
    rank can be timed alone while the others sit idle)."""
    # shown in notebook 06_ddp
    _, world = rank_and_world()
    if world > 1:
        dist.barrier()  # start the clock together
    start = time.perf_counter()
    for i in range(steps):
        xb, yb = batches[i % len(batches)]
        communicate = sync and (i + 1) % accum == 0
        skip = model.no_sync() if (isinstance(model, DDP) and not communicate) else contextlib.nullcontext()
        with skip:
            loss = nn.functional.cross_entropy(model(xb), yb) / accum
            loss.backward()
        if (i + 1) % accum == 0:
            opt.step()
            opt.zero_grad(set_to_none=True)
    env.synchronize(next(model.parameters()).device)
    seconds = time.perf_counter() - start
    if world > 1:  # the step is as slow as the slowest rank
        t = torch.tensor([seconds], device=next(model.parameters()).device)  # nccl needs it on the GPU
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        seconds = float(t.item())
    return seconds


# ============================================================================ model parallelism

def pipeline_stages(width: int = 512) -> tuple[nn.Sequential, nn.Sequential]:
    """An MLP cut into two halves of similar cost: the stages of a 2-device pipeline."""
    stage0 = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
    stage1 = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                           nn.Linear(width, 10))
    return stage0, stage1


def model_parallel_devices() -> tuple[str, str]:
    """Two GPUs when there are two; otherwise both halves sit on the CPU (and nothing runs in parallel)."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
        return "cuda:0", "cuda:1"
    return "cpu", "cpu"


class TwoDeviceMLP(nn.Module):
    """Model parallelism: the first half on `dev0`, the second on `dev1`; activations cross between them."""

    def __init__(self, width: int = 512, dev0: str = "cpu", dev1: str = "cpu"):
        super().__init__()
        self.dev0, self.dev1 = dev0, dev1
        stage0, stage1 = pipeline_stages(width)
        self.stage0, self.stage1 = stage0.to(dev0), stage1.to(dev1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shown in notebook 06b_ddp_beyond_data_parallel
        h = self.stage0(x.to(self.dev0))
        return self.stage1(h.to(self.dev1))  # while stage1 works, stage0 waits: the pipeline bubble


def bubble_fraction(stages: int, microbatches: int) -> float:
    """GPipe's idle share with equal stages: (S − 1) / (M + S − 1) of every device's time."""
    if stages < 1 or microbatches < 1:
        raise LabkitError("stages and microbatches must both be at least 1.")
    return (stages - 1) / (microbatches + stages - 1)


def pipeline_step(stage: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
                  microbatches: int, width: int) -> tuple[float, float]:
    """One GPipe training step over 2 ranks; returns (seconds this rank computed, wall seconds).
    Rank 0: forward every micro-batch and send its activation, then backward each returned gradient.
    Rank 1: receive, forward, loss, backward, send the activation's gradient back."""
    # shown in notebook 06b_ddp_beyond_data_parallel
    rank, _ = rank_and_world()
    busy, sends, keep = 0.0, [], []
    dist.barrier()
    start = time.perf_counter()
    if rank == 0:
        outs = []
        for xb in X.chunk(microbatches):
            t = time.perf_counter()
            a = stage(xb)
            busy += time.perf_counter() - t
            outs.append(a)
            sends.append(dist.isend(a.detach(), dst=1))  # non-blocking: go on with the next micro-batch
        for a in outs:
            g = torch.empty_like(a)
            dist.recv(g, src=1)                            # idle until stage 1 is done with it
            t = time.perf_counter()
            a.backward(g)
            busy += time.perf_counter() - t
    else:
        for yb in y.chunk(microbatches):
            a = torch.empty(len(yb), width)
            dist.recv(a, src=0)                            # idle until stage 0 sends
            a.requires_grad_()
            t = time.perf_counter()
            loss = nn.functional.cross_entropy(stage(a), yb) / microbatches
            loss.backward()
            busy += time.perf_counter() - t
            keep.append(a.grad)
            sends.append(dist.isend(a.grad, dst=0))
    for handle in sends:
        handle.wait()
    t = time.perf_counter()
    opt.step()
    opt.zero_grad(set_to_none=True)
    busy += time.perf_counter() - t
    return busy, time.perf_counter() - start
