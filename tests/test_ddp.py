"""DDP: real torchrun launches (gloo on CPU) — equivalence, crashes, timeouts, Ctrl-C, two nodes, exercises.

Each launch starts real processes (≈ 3-5 s of start-up on 2 cores), so the launches here are few and tiny.
"""

import json
import os
import subprocess
import sys
import threading

import pytest
import torch
from torch import nn

from labkit import LabkitError
from labkit.techniques import ddp
from labkit.ui import ddp as ddp_ui


def quiet(line: str) -> None:
    pass


def assert_all_ended(pids) -> None:
    left = [pid for pid in pids if ddp.alive(pid)]
    assert not left, f"processes left behind: {left}"
    assert not [p for p in ddp._descendants(os.getpid()) if p in set(pids)]


# ---------------------------------------------------------------------------- the technique in one process

def test_single_process_replica_trains_and_checkpoint_loads(tiny_splits, tmp_path):
    model = ddp.make_replica(seed=0)
    assert not isinstance(model, nn.parallel.DistributedDataParallel)  # no process group: plain model
    start = {k: v.clone() for k, v in model.state_dict().items()}
    train_loader = ddp.shard_loader(tiny_splits.X_train, tiny_splits.y_train, 64, seed=0)
    assert len(train_loader.sampler) == 256  # one rank sees everything
    stats = ddp.train_replica(model, train_loader, epochs=1, lr=0.05, momentum=0.9, log=quiet)
    assert stats["steps"] == 4
    ddp.save_checkpoint(model, tmp_path / "w.pt")
    saved = ddp.load_weights(tmp_path / "w.pt")
    ddp.check_replicas_moved(start, saved)
    assert ddp.max_weight_diff(saved, model.state_dict()) == 0.0
    with pytest.raises(LabkitError, match="unchanged"):
        ddp.check_replicas_moved(start, start)


def test_two_device_model_is_the_two_stages_in_a_row():
    env_devs = ddp.model_parallel_devices()
    assert env_devs == (("cuda:0", "cuda:1") if torch.cuda.device_count() >= 2 else ("cpu", "cpu"))
    torch.manual_seed(0)
    model = ddp.TwoDeviceMLP(width=32)
    x = torch.randn(5, 1, 28, 28)
    assert torch.allclose(model(x), model.stage1(model.stage0(x)))
    assert ddp.bubble_fraction(2, 1) == 0.5 and ddp.bubble_fraction(1, 7) == 0.0
    assert abs(ddp.bubble_fraction(4, 8) - 3 / 11) < 1e-12


def test_dataparallel_on_cpu_is_a_pass_through():
    numbers = ddp.dataparallel_vs_plain(batch=32, min_run_time=0.15)
    if torch.cuda.device_count() == 0:
        assert numbers["device_ids"] == []  # nothing to scatter to: it just calls the model
    assert numbers["plain_ms"] > 0 and numbers["dataparallel_ms"] > 0


def test_bad_inputs_raise_labkit_errors():
    job = {"tasks": [{"kind": "allreduce"}]}
    with pytest.raises(LabkitError, match="at least 1 rank"):
        ddp.Launch(job, nproc=0)
    with pytest.raises(LabkitError, match="no tasks"):
        ddp.Launch({"tasks": []})
    with pytest.raises(LabkitError, match="positive time"):
        ddp.Launch(job, timeout_s=0)
    with pytest.raises(LabkitError, match="accumulation"):
        ddp.measure_comm(2, accum=0)
    with pytest.raises(LabkitError, match="bucket_cap_mb"):
        ddp.measure_comm(2, bucket_cap_mb=0)
    with pytest.raises(LabkitError, match="between 1 and 8"):
        ddp.measure_comm(0)
    with pytest.raises(LabkitError, match="divide the batch"):
        ddp.measure_pipeline([3], batch=64)
    with pytest.raises(LabkitError):
        ddp.bubble_fraction(0, 4)


def test_explorer_reports_a_bad_value_in_one_line(capsys):
    explorer = ddp_ui.CommExplorer()
    assert explorer.run(ranks=2, accum=0) is None
    assert "accumulation" in explorer.message.value and explorer.message.value.startswith("⚠")
    assert "⚠" in capsys.readouterr().out
    assert not explorer.run_button.disabled


def test_free_ports_differ():
    assert len({ddp.free_port() for _ in range(5)}) > 1


# ---------------------------------------------------------------------------- real launches

def test_equivalence_and_headline_keys_with_a_tiny_config():
    cfg = ddp.DDPConfig(train_images=256, window_steps=3, windows=1, warmup_steps=1)
    report = ddp.run_headline(cfg, "smoke", on_line=quiet)
    assert set(report.headline) == {"max_weight_diff", "throughput_1", "throughput_2",
                                    "scaling_efficiency", "comm_fraction"}
    assert report.headline["max_weight_diff"] <= 1e-5  # 2 ranks × B == 1 process × 2B
    assert report.headline["throughput_1"] > 0 and report.headline["throughput_2"] > 0
    assert report.config["backend"] in ("gloo", "nccl")


def test_two_launches_at_once_do_not_collide():
    results, errors = [], []

    def one() -> None:
        try:
            results.append(ddp.launch({"tasks": [{"kind": "allreduce"}]}, nproc=2, on_line=quiet, timeout_s=120))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for result in results:
        assert [r["allreduce"]["sum"] for r in result.results] == [[3.0] * 4, [3.0] * 4]
        assert_all_ended(result.pids)
    masters = {result.results[0]["allreduce"]["master"] for result in results}
    assert len(masters) == 2, "the two launches must rendezvous on different ports"


def test_a_crashing_rank_gives_a_clear_error_not_a_hang():
    running = ddp.Launch({"tasks": [{"kind": "crash", "rank": 1}]}, nproc=2, timeout_s=90, on_line=quiet).start()
    with pytest.raises(ddp.LaunchError, match="Rank 1 failed with RuntimeError: rank 1 crashed on purpose"):
        running.wait()
    assert_all_ended(running.pids)


def test_timeout_stops_every_rank():
    running = ddp.Launch({"tasks": [{"kind": "sleep", "seconds": 120}]}, nproc=2, timeout_s=12, on_line=quiet).start()
    with pytest.raises(ddp.LaunchError, match="longer than timeout_s=12"):
        running.wait()
    assert len(running.pids) >= 3  # the agent and two ranks were seen
    assert_all_ended(running.pids)


CTRL_C_SCRIPT = """
import json, os, signal
# A kernel handles Ctrl-C; a process started from a background shell job inherits SIGINT *ignored*
# (then no KeyboardInterrupt ever comes): install Python's default handler, as a kernel would.
signal.signal(signal.SIGINT, signal.default_int_handler)
from labkit.techniques import ddp

def interrupt_once_running(line):
    if "still running" in line and not fired:
        fired.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C / Jupyter's Stop button sends the kernel

fired = []
running = ddp.Launch({"tasks": [{"kind": "sleep", "seconds": 600}]}, nproc=2, timeout_s=300,
                     on_line=interrupt_once_running).start()
try:
    running.wait()
    print(json.dumps({"interrupted": False}))
except KeyboardInterrupt:
    print(json.dumps({"interrupted": True, "fired": bool(fired), "pids": sorted(running.pids)}))
"""


def test_ctrl_c_ends_every_rank():
    """Ctrl-C in the process that waits (a kernel, as a learner's Stop button sends it) ends every rank.
    It runs in a fresh Python with Python's own SIGINT handler, as a kernel has: the test must not depend
    on how the shell that started pytest left SIGINT (ignored, in a background job)."""
    out = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT], capture_output=True, text=True, timeout=400)
    lines = out.stdout.strip().splitlines()
    assert lines, f"the waiting process printed nothing; its stderr ends: {out.stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert report["interrupted"] and report["fired"], out.stderr[-2000:]
    assert len(report["pids"]) >= 3
    assert_all_ended(report["pids"])


def test_two_nodes_meet_through_c10d_rendezvous():
    result = ddp.launch({"tasks": [{"kind": "allreduce"}]}, nproc=1, nnodes=2, on_line=quiet, timeout_s=120)
    assert sorted(r["allreduce"]["node_rank"] for r in result.results) == [0, 1]
    assert all(r["world_size"] == 2 and r["allreduce"]["average"] == [1.5] * 4 for r in result.results)
    assert_all_ended(result.pids)


# ---------------------------------------------------------------------------- exercises


def test_pipeline_over_two_ranks_reports_idle_shares():
    rows = ddp.measure_pipeline([1, 4], batch=64, width=32, repeats=1, on_line=quiet, timeout_s=120)
    assert [r["microbatches"] for r in rows] == [1, 4]
    assert rows[0]["bubble_theory"] == 0.5 and abs(rows[1]["bubble_theory"] - 0.2) < 1e-12
    assert all(0 <= r["idle_rank0"] < 1 and 0 <= r["idle_rank1"] < 1 and r["step_ms"] > 0 for r in rows)


def test_headline_logs_to_stderr_so_bench_json_stays_clean():
    assert ddp.headline.__defaults__[-1] is ddp.log_to_stderr
