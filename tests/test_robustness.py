"""Reliability outside the widgets (issue 15) and DDP launch robustness (issue 18).

Each test here reproduces one way labkit used to fail for a learner or an instructor: a malformed or
foreign results file, a JupyterLab server left running after `labkit lab` was stopped, a garbage DDP
job file, a platform without prctl, shipped data that no longer matches data/SHA256SUMS.
"""

import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from labkit import LabkitError, cli, data, doctor, report, results
from labkit.techniques import _ddp_worker, ddp

ROOT = Path(__file__).resolve().parent.parent
LAPTOP = {"host": "laptop", "cpu": "Intel i5", "gpu": None, "device": "cpu", "torch": "2.13.0", "commit": "abc"}


def quiet(line: str) -> None:
    pass


def _report(speedup: float, machine: dict = LAPTOP) -> results.BenchReport:
    card = results.ResultCard(title="demo", baseline="fp32")
    card.add({"variant": "fp32", "latency_ms": 2.0, "accuracy": 0.9})
    card.add({"variant": "int8", "latency_ms": 2.0 / speedup, "accuracy": 0.89})
    return results.BenchReport("quantization", "full", card, {"int8_speedup": speedup}, machine=machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ============================================================================ 1. tolerant results reader

def _results_with_damage(folder: Path) -> dict[str, bytes]:
    """A results file with good rows and every kind of damage seen in the wild, plus foreign files."""
    good = folder / "laptop.csv"
    results.append(_report(1.5), good)
    lines = good.read_text().splitlines(keepends=True)
    row = lines[1]
    with open(good, "a", newline="") as f:
        f.write("2026-01-01T00:00:00,quantization,full,fp32,laptop\r\n")         # too few columns
        f.write(row.rstrip("\r\n") + ",extra\r\n")                                # too many columns
        f.write('2026-01-01T00:00:00,quantization,full,"fp32,laptop,cpu\r\n')     # unterminated quote
        f.write(row.replace('{"', '{oops', 1))                                   # metrics not JSON
        f.write(row[: len(row) // 2])                                             # truncated last line
    # a later run must not be glued onto the truncated line
    results.append(_report(3.0, LAPTOP | {"host": "laptop2"}), good)
    (folder / "grades.csv").write_text("student,grade\nada,A\nbob,B\n")          # an unrelated CSV
    (folder / "empty.csv").write_text("")
    (folder / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    return {p.name: p.read_bytes() for p in folder.glob("*.csv")}


def test_report_skips_bad_rows_and_foreign_files_with_one_line_each(tmp_path, capsys):
    before = _results_with_damage(tmp_path)
    path = report.build(sorted(tmp_path.glob("*.csv")), tmp_path / "out", reference_dir=tmp_path / "none")
    text = path.read_text()
    assert "| 3 |" in text  # the good run after the damage is shown
    frame = report.collect(sorted(tmp_path.glob("*.csv")), reference_dir=tmp_path / "none")
    assert len(frame) == 2 * 3 and sorted(frame["int8_speedup"].dropna()) == [1.5, 3.0]  # no good row lost
    err = capsys.readouterr().err.strip().splitlines()
    about = {name: [line for line in err if name in line] for name in before}
    assert all(len(lines) == 2 for lines in about.values()), err  # one line per file (build + collect)
    assert "5 of 11 rows skipped" in about["laptop.csv"][0], err
    assert "not a labkit results file (no 'bench' column)" in about["grades.csv"][0]
    assert "empty" in about["empty.csv"][0] and "not a labkit results file" in about["binary.csv"][0]
    assert "Traceback" not in "\n".join(err)
    # the bad lines are kept (quarantined) in the report; the user's files are untouched
    assert "## Skipped lines" in text and '"fp32,laptop,cpu' in text and "{oops" in text
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} == before


def test_cli_report_survives_damaged_and_foreign_files(tmp_path):
    _results_with_damage(tmp_path)
    env = {**os.environ, "LABKIT_RESULTS_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "report"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and (tmp_path / "report.md").exists()
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 4 and any(line.startswith("grades.csv: not a labkit results file") for line in lines)


def test_read_keeps_good_rows_and_refuses_a_foreign_file(tmp_path, capsys):
    _results_with_damage(tmp_path)
    frame = results.read(tmp_path / "laptop.csv")
    assert len(frame) == 6 and frame["config"].notna().all()
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(LabkitError, match="grades.csv.*no 'bench' column"):
        results.read(tmp_path / "grades.csv")


def test_header_only_and_concatenated_files(tmp_path):
    results.append(_report(1.5), tmp_path / "a.csv")
    results.append(_report(2.0), tmp_path / "b.csv")
    both = tmp_path / "both.csv"
    both.write_bytes((tmp_path / "a.csv").read_bytes() + (tmp_path / "b.csv").read_bytes())  # `cat a b > both`
    read = results.load(both)
    assert len(read.frame) == 6 and not read.skipped and read.note() is None
    (tmp_path / "h.csv").write_text(",".join(results.RESULT_FIELDS) + "\r\n")
    assert results.read(tmp_path / "h.csv").empty


# ============================================================================ 3. `labkit lab` ends its server

def _jupyter_env(base: Path, token: str) -> dict[str, str]:
    dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython"}
    return {**os.environ, "JUPYTER_TOKEN": token, "LABKIT_RESULTS_DIR": str(base / "results"),
            **{key: str(base / name) for key, name in dirs.items()}}


def _tree(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid, *(child.pid for child in proc.children(recursive=True))}
    except psutil.Error:
        return set()


def _runs_a_kernel(pid: int) -> bool:
    for p in _tree(pid):
        try:
            if "ipykernel" in " ".join(psutil.Process(p).cmdline()):
                return True
        except psutil.Error:
            pass
    return False


def _installed(tool: str) -> bool:
    return bool(shutil.which(tool, path=str(Path(sys.executable).parent)) or shutil.which(tool))


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


STOPS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT,
         pytest.param(signal.SIGKILL, marks=pytest.mark.skipif(sys.platform != "linux", reason="needs prctl"))]


@pytest.mark.skipif(not _installed("jupyter"), reason="JupyterLab is not installed here")
@pytest.mark.parametrize("sig", STOPS, ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"])
def test_lab_server_and_kernels_end_with_labkit(tmp_path, sig):
    port, token = _free_port(), uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "labkit.cli", "lab", "--no-browser", f"--port={port}"],
                            env=_jupyter_env(tmp_path, token), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = {proc.pid}
    try:
        assert _wait_for(lambda: _listening(port), 180), "JupyterLab never listened"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernels", data=b'{"name": "python3"}',
                                         headers={"Authorization": f"token {token}"}, method="POST")
        urllib.request.urlopen(request, timeout=120).read()  # a running kernel: it must end too
        assert _wait_for(lambda: _runs_a_kernel(proc.pid), 120)
        seen |= _tree(proc.pid)
        assert len(seen) >= 3  # labkit, the server, the kernel
        proc.send_signal(sig)
        assert _wait_for(lambda: not _listening(port), 20), "the server still listens after labkit was stopped"
        assert _wait_for(lambda: not [p for p in seen if ddp.alive(p)], 20), \
            f"left running: {[psutil.Process(p).cmdline()[:3] for p in seen if ddp.alive(p)]}"
        assert proc.wait(5) is not None
    finally:
        for pid in seen:  # what this test started, if the test failed
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(10)


@pytest.mark.skipif(not _installed("voila"), reason="Voilà is not installed here")
def test_demo_server_ends_with_labkit(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "labkit.cli", "demo", "00_welcome", "--no-browser",
                             f"--port={port}"], env=_jupyter_env(tmp_path, "x"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen = {proc.pid}
    try:
        assert _wait_for(lambda: _listening(port), 180), "Voilà never listened"
        seen |= _tree(proc.pid)
        proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: not _listening(port), 20)
        assert _wait_for(lambda: not [p for p in seen if ddp.alive(p)], 20)
    finally:
        for pid in seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(10)


# ============================================================================ 4. a garbage DDP job file

@pytest.mark.parametrize("content, problem", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"tasks": []}', "no tasks"),
    ('{"tasks": [{"kind": "fly"}]}', "unknown task kind 'fly'"),
    ('{"tasks": [{"name": "x"}]}', "no 'kind'"),
    ('{"tasks": [{"kind": "allreduce"}], "backend": "mpi"}', "backend"),
    ('{"tasks": [{"kind": "allreduce"}], "threads": 0}', "threads"),
])
def test_worker_names_the_job_file_and_what_is_wrong(tmp_path, content, problem):
    job = tmp_path / "job.json"
    job.write_text(content)
    assert _ddp_worker.main(["--job", str(job), "--out", str(tmp_path)]) == 1
    error = json.loads((tmp_path / "error_rank0.json").read_text())
    assert error["type"] == "LabkitError" and str(job) in error["message"] and problem in error["message"]
    assert "\n" not in error["message"]


def test_worker_task_kinds_are_the_checked_ones():
    assert set(_ddp_worker.TASKS) == set(ddp.TASK_KINDS)


def test_launch_checks_the_job_before_starting_torchrun(tmp_path):
    with pytest.raises(LabkitError, match="unknown task kind 'fly'"):
        ddp.Launch({"tasks": [{"kind": "fly"}]})
    with pytest.raises(LabkitError, match="not JSON"):
        ddp.Launch({"tasks": [{"kind": "train", "checkpoint": Path("x.pt")}]})
    running = ddp.Launch({"tasks": [{"kind": "allreduce"}]}, workdir=tmp_path, on_line=quiet)
    (tmp_path / "job.json").write_text('{"tasks": [{"kind": "allreduce"}')  # damaged between writing and launch
    with pytest.raises(LabkitError, match=f"{tmp_path / 'job.json'}.*not JSON"):
        running.start()
    assert not running.procs


def test_a_garbage_job_file_read_by_the_ranks_gives_one_clear_line(tmp_path, monkeypatch):
    running = ddp.Launch({"tasks": [{"kind": "allreduce"}]}, workdir=tmp_path, on_line=quiet, timeout_s=120)
    (tmp_path / "job.json").write_text("garbage")
    # skip the check before launch: the ranks must say it
    monkeypatch.setattr(ddp, "read_job", lambda path: {}, raising=False)
    with pytest.raises(ddp.LaunchError) as caught:
        running.start().wait()
    message = str(caught.value)
    assert str(tmp_path / "job.json") in message and "not JSON" in message and "\n" not in message


# ============================================================================ 5. no prctl, no killpg, busy port

class _NoLibc:
    def __init__(self, *args, **kwargs):
        raise TypeError("no C library here (Windows-like)")


def test_launch_works_and_cleans_up_without_prctl_or_killpg(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", _NoLibc)  # the forked child inherits this: prctl is unavailable
    result = ddp.launch({"tasks": [{"kind": "allreduce"}]}, nproc=2, on_line=quiet, timeout_s=120)
    assert [r["allreduce"]["sum"] for r in result.results] == [[3.0] * 4, [3.0] * 4]
    monkeypatch.delattr(os, "killpg")
    running = ddp.Launch({"tasks": [{"kind": "sleep", "seconds": 120}]}, nproc=2, on_line=quiet, timeout_s=120)
    running.start()
    assert _wait_for(lambda: len(ddp._descendants(running.procs[0].pid)) >= 2, 60)
    running.stop()
    assert not [pid for pid in running.pids if ddp.alive(pid)]


ORPHAN_SCRIPT = """
import ctypes, json, sys, time
from labkit.techniques import ddp  # torch loads its libraries with ctypes: import it first
class NoLibc:
    def __init__(self, *a, **k):
        raise OSError("no prctl here")
ctypes.CDLL = NoLibc
# quiet: a rank that prints would die of a broken pipe once the parent is gone; a silent one would not
running = ddp.Launch({"tasks": [{"kind": "sleep", "seconds": 120, "quiet": True}]}, nproc=2, on_line=None,
                     timeout_s=300).start()
deadline = time.monotonic() + 60
while len(ddp._descendants(running.procs[0].pid)) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
running._remember_children()
print(json.dumps(sorted(running.pids)), flush=True)
sys.exit(0)  # the parent ends without stop(): e.g. a kernel shut down, on a platform without prctl
"""


def test_without_prctl_the_parent_still_ends_the_launch_when_it_exits():
    out = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], capture_output=True, text=True, timeout=200)
    pids = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(pids) >= 3, out.stderr[-2000:]
    try:
        assert _wait_for(lambda: not [p for p in pids if ddp.alive(p)], 20), "ranks outlived their parent"
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_launch_works_when_the_default_port_is_taken():
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 29500))  # torch's default MASTER_PORT
            s.listen()
        except OSError:
            pass  # already taken by something else: the point holds all the same
        result = ddp.launch({"tasks": [{"kind": "allreduce"}]}, nproc=2, on_line=quiet, timeout_s=120)
    assert result.results[0]["allreduce"]["average"] == [1.5] * 4
    assert not result.results[0]["allreduce"]["master"].endswith(":29500")


# ============================================================================ 6. doctor verifies the shipped data

def _data_copy(tmp_path: Path, monkeypatch) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(data.DATA_DIR, copy, ignore=shutil.ignore_patterns("reference"))
    monkeypatch.setattr(data, "DATA_DIR", copy)
    monkeypatch.setattr(data, "SUMS_FILE", copy / "SHA256SUMS")
    return copy


def test_doctor_names_missing_and_corrupted_files_with_the_fix(tmp_path, monkeypatch):
    copy = _data_copy(tmp_path, monkeypatch)
    assert doctor.data_lines() == ["3 of 3 shipped files match data/SHA256SUMS"]
    (copy / "pretrained" / "distillation_teacher.pt").unlink()
    with open(copy / "fashion_mnist" / "fashion_mnist_subset.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    lines = doctor.data_lines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("fashion_mnist/fashion_mnist_subset.npz: corrupted") and "labkit data build" in lines[0]
    assert "git checkout data/fashion_mnist/fashion_mnist_subset.npz" in lines[0]
    assert lines[1].startswith("pretrained/distillation_teacher.pt: missing")
    assert "labkit pretrain distillation" in lines[1]
    assert lines[2] == "1 of 3 shipped files match data/SHA256SUMS"
    text = doctor.report_text(doctor.report())
    assert all(line in text for line in lines)


def test_cli_doctor_says_when_data_is_wrong(tmp_path, monkeypatch, capsys):
    copy = _data_copy(tmp_path, monkeypatch)
    (copy / "pretrained" / "tiny_resnet_classes0-4.pt").write_bytes(b"not weights")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "pretrained/tiny_resnet_classes0-4.pt: corrupted" in out and "labkit pretrain transfer" in out
    (copy / "SHA256SUMS").unlink()
    assert cli.main(["doctor", "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert any("SHA256SUMS is missing" in line for line in info["data"])


# ============================================================================ 7. pretrain keeps SHA256SUMS consistent

def test_pretrain_updates_its_checksum_line(tmp_path, monkeypatch, capsys):
    copy = _data_copy(tmp_path, monkeypatch)
    from labkit.techniques import transfer

    target = copy / "pretrained" / "tiny_resnet_classes0-4.pt"
    payload = {"bytes": b"rebuilt weights"}
    monkeypatch.setattr(transfer, "pretrain", lambda: (target.write_bytes(payload["bytes"]), target)[1])
    old = data.expected_sums()["pretrained/tiny_resnet_classes0-4.pt"]
    others = {k: v for k, v in data.expected_sums().items() if k != "pretrained/tiny_resnet_classes0-4.pt"}
    assert cli.main(["pretrain", "transfer"]) == 0
    new = hashlib.sha256(payload["bytes"]).hexdigest()
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("data/SHA256SUMS: pretrained/tiny_resnet_classes0-4.pt checksum changed")
    assert old[:12] in out[-1] and new[:12] in out[-1]
    sums = data.expected_sums()
    assert sums["pretrained/tiny_resnet_classes0-4.pt"] == new
    assert {k: v for k, v in sums.items() if k in others} == others
    data.verify(target)  # the rebuilt file is no longer "corrupted"
    assert cli.main(["pretrain", "transfer"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == \
        "pretrained/tiny_resnet_classes0-4.pt matches data/SHA256SUMS"


def test_pretrain_outside_the_data_folder_leaves_the_sums_alone(tmp_path, monkeypatch, capsys):
    copy = _data_copy(tmp_path, monkeypatch)
    from labkit.techniques import distillation

    elsewhere = tmp_path / "teacher.pt"
    monkeypatch.setattr(distillation, "pretrain", lambda: (elsewhere.write_bytes(b"x"), elsewhere)[1])
    before = (copy / "SHA256SUMS").read_bytes()
    assert cli.main(["pretrain", "distillation"]) == 0
    assert "not under data/" in capsys.readouterr().out
    assert (copy / "SHA256SUMS").read_bytes() == before


def test_cmd_pretrain_args_namespace_still_works(monkeypatch, tmp_path, capsys):
    copy = _data_copy(tmp_path, monkeypatch)
    from labkit.techniques import transfer

    target = copy / "pretrained" / "tiny_resnet_classes0-4.pt"
    monkeypatch.setattr(transfer, "pretrain", lambda: target)  # writes nothing new: same bytes
    assert cli.cmd_pretrain(SimpleNamespace(name="transfer")) == 0
    assert "matches data/SHA256SUMS" in capsys.readouterr().out
