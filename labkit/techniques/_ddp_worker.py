"""The torchrun worker: one copy runs in every rank. Started by `labkit.techniques.ddp.Launch`.

    python -m torch.distributed.run --nproc-per-node=2 --standalone \\
        -m labkit.techniques._ddp_worker --job JOB.json --out DIR

torchrun gives each process RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in its environment.
The worker joins the process group, runs the job's tasks in order and writes DIR/rank<R>.json;
on an error it writes DIR/error_rank<R>.json and exits non-zero (torchrun then stops the others).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from labkit import data
from labkit.errors import LabkitError
from labkit.techniques import _ddp_rank as ddp

RANK = int(os.environ.get("RANK", 0))


def log(message: str) -> None:
    sys.stdout.write(f"[rank {RANK}] {message}\n")  # one write per line: ranks share the pipe
    sys.stdout.flush()


# ---------------------------------------------------------------------------- tasks

@torch.no_grad()
def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy (as `labkit.train.evaluate`, without importing pandas into every rank)."""
    model.eval()
    correct = sum((model(X[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(X), 1000))
    model.train()
    return correct / len(X)


def allreduce_task(task: dict, job: dict) -> dict:
    """Every rank holds a different 'gradient'; after all_reduce(SUM) every rank holds the sum."""
    # shown in notebook 06_ddp
    rank, world = ddp.rank_and_world()
    grad = torch.full((4,), float(rank + 1), device=job["device_name"])
    before = grad.tolist()
    dist.all_reduce(grad, op=dist.ReduceOp.SUM)
    average = (grad / world).tolist()
    log(f"my gradient {before} -> after all-reduce (sum) {grad.tolist()} -> averaged {average}")
    return {"before": before, "sum": grad.tolist(), "average": average, "host": socket.gethostname(),
            "pid": os.getpid(), "local_rank": int(os.environ.get("LOCAL_RANK", 0)),
            "node_rank": int(os.environ.get("GROUP_RANK", 0)),
            "master": f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"}


def train_task(task: dict, job: dict) -> dict:
    """Train the small CNN with DistributedSampler; rank 0 saves the checkpoint and evaluates it."""
    rank, world = ddp.rank_and_world()
    solo = task.get("solo", False)  # rank 0 trains alone: the single-process reference
    if solo and rank != 0:
        dist.barrier()  # wait for rank 0's checkpoint
        return {}
    splits = data.load()
    X, y = splits.X_train[:task["n_images"]], splits.y_train[:task["n_images"]]
    train_loader = ddp.shard_loader(X, y, task["batch"], task["seed"], solo=solo)
    model = ddp.make_replica(task["seed"], device=job["device_name"], solo=solo)
    log(f"{'alone: ' if solo else ''}training on {len(train_loader.sampler)} of {len(X)} images, "
        f"batch {task['batch']} per rank (global batch {task['batch'] * (1 if solo else world)})")
    stats = ddp.train_replica(model, train_loader, epochs=task["epochs"], lr=task["lr"],
                              momentum=task["momentum"], log=log)
    if solo:
        torch.save(model.state_dict(), task["checkpoint"])
        dist.barrier()
    else:
        ddp.save_checkpoint(model, task["checkpoint"])
    if rank == 0:
        stats["test_acc"] = accuracy(model, splits.X_test.to(job["device_name"]), splits.y_test.to(job["device_name"]))
        log(f"saved {task['checkpoint']}; test accuracy {100 * stats['test_acc']:.1f} %")
    return stats


def throughput_task(task: dict, job: dict) -> dict:
    """Timed windows of each variant, interleaved; images/s counts every rank's images."""
    rank, world = ddp.rank_and_world()
    splits = data.load()
    dev = job["device_name"]
    setups = {}
    for v in task["variants"]:
        torch.set_num_threads(v.get("threads", job["threads"]))
        g = torch.Generator().manual_seed(task["seed"] + rank)  # each rank its own images
        idx = torch.randint(0, len(splits.y_train), (8, v["batch"]), generator=g)
        batches = [(splits.X_train[i].to(dev), splits.y_train[i].to(dev)) for i in idx]
        solo = v.get("solo", False)  # rank 0 alone; the other ranks wait (steps=0)
        model = ddp.make_replica(task["seed"], v.get("bucket_cap_mb", task["bucket_cap_mb"]), dev, solo=solo)
        opt = torch.optim.SGD(model.parameters(), lr=task["lr"], momentum=task["momentum"])
        steps = {"warmup": task["warmup_steps"], "window": task["window_steps"]}
        if solo and rank != 0:
            steps = {"warmup": 0, "window": 0}
        ddp.timed_steps(model, batches, opt, steps["warmup"], accum=v.get("accum", 1), sync=v.get("sync", True))
        setups[v["name"]] = (model, batches, opt, steps["window"], 1 if solo else world)
    out = {v["name"]: {"seconds": [], "images_per_s": []} for v in task["variants"]}
    for w in range(task["windows"]):
        for v in task["variants"]:
            torch.set_num_threads(v.get("threads", job["threads"]))
            model, batches, opt, steps, working_ranks = setups[v["name"]]
            seconds = ddp.timed_steps(model, batches, opt, steps, accum=v.get("accum", 1), sync=v.get("sync", True))
            out[v["name"]]["seconds"].append(seconds)
            out[v["name"]]["images_per_s"].append(working_ranks * v["batch"] * task["window_steps"] / seconds)
        if rank == 0:
            log(f"window {w + 1}/{task['windows']}: " + ", ".join(
                f"{name} {o['images_per_s'][-1]:.0f} img/s" for name, o in out.items()))
    return out


def pipeline_task(task: dict, job: dict) -> dict:
    """Model parallelism over 2 ranks: rank 0 runs the first half of an MLP, rank 1 the second.
    A batch is cut into micro-batches (GPipe): rank 0 runs every forward, rank 1 forward and
    backward for each, rank 0 the backwards. Each rank records how long it computed."""
    rank, world = ddp.rank_and_world()
    if world != 2:
        raise ValueError(f"the pipeline task needs exactly 2 ranks, got {world}")
    torch.manual_seed(task["seed"])
    stage = ddp.pipeline_stages(task["width"])[rank]
    opt = torch.optim.SGD(stage.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(task["seed"])
    X = torch.randn(task["batch"], 784, generator=g)
    y = torch.randint(0, 10, (task["batch"],), generator=g)
    out = {}
    for m in task["microbatches"]:
        for repeat in range(task["repeats"] + 1):  # the first repeat warms up
            busy, wall = ddp.pipeline_step(stage, opt, X, y, m, task["width"])
            if repeat == 1:
                out[str(m)] = {"busy": [], "wall": []}
            if repeat >= 1:
                out[str(m)]["busy"].append(busy)
                out[str(m)]["wall"].append(wall)
        if rank == 0:
            log(f"{m} micro-batch(es): step {1e3 * min(out[str(m)]['wall']):.1f} ms")
    return out


def crash_task(task: dict, job: dict) -> dict:
    """One rank raises after a moment; the others are stuck in an all-reduce waiting for it."""
    rank, _ = ddp.rank_and_world()
    if rank == task.get("rank", 1):
        time.sleep(task.get("after_s", 0.5))
        raise RuntimeError(f"rank {rank} crashed on purpose (a bug in one process)")
    t = torch.ones(1)
    while True:
        dist.all_reduce(t)  # never completes: the crashed rank does not take part


def sleep_task(task: dict, job: dict) -> dict:
    """Run for a long time (to test Stop / Ctrl-C); quiet=True prints nothing."""
    for i in range(int(task.get("seconds", 60) * 10)):
        time.sleep(0.1)
        if i % 10 == 0 and not task.get("quiet", False):
            log(f"still running ({i // 10} s)")
    return {}


TASKS = {"allreduce": allreduce_task, "train": train_task, "throughput": throughput_task,
         "pipeline": pipeline_task, "crash": crash_task, "sleep": sleep_task}


# ---------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", required=True, help="the job: a JSON file with 'tasks' (and backend, device, threads)")
    parser.add_argument("--out", required=True, help="the folder for rank<R>.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        job = ddp.read_job(args.job)  # a garbage job file: one line naming it, not torchrun's generic failure
        torch.set_num_threads(job.get("threads", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        job["device_name"] = f"cuda:{local_rank}" if job.get("device") == "cuda" else "cpu"
        if job.get("device") == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(job.get("backend", "gloo"), timeout=timedelta(seconds=job.get("pg_timeout_s", 600)))
        results = {"rank": dist.get_rank(), "world_size": dist.get_world_size(), "backend": dist.get_backend(),
                   "threads": torch.get_num_threads()}
        for task in job["tasks"]:
            results[task.get("name", task["kind"])] = TASKS[task["kind"]](task, job)
        (out / f"rank{RANK}.json").write_text(json.dumps(results))
        dist.barrier()
        return 0
    except Exception as error:
        (out / f"error_rank{RANK}.json").write_text(json.dumps(
            {"rank": RANK, "type": type(error).__name__, "message": str(error), "time": time.time()}))
        log(f"FAILED: {type(error).__name__}: {error}")
        if not isinstance(error, LabkitError):  # a LabkitError is one line that says it all
            traceback.print_exc(file=sys.stdout)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
