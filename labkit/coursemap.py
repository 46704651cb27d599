"""The course map: the notebooks in order, what each needs, and how long each takes — measured.

`labkit coursemap --measure` runs every notebook (or only those named: `--measure 04b_… 06_ddp`) top
to bottom (nbconvert, in a fresh kernel) in smoke and in full mode and records the wall times, with the
machine and the commit, in data/course_times.json. 00_welcome and the README show the table made from
that file, so the times a learner reads were measured, and say where.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit import env
from labkit.errors import LabkitError
from labkit.paths import COURSE_TIMES_FILE, NOTEBOOK_DIR, README


# notebook → (what it teaches, what it needs beyond `make lab`)
COURSE: dict[str, tuple[str, str]] = {
    "00_welcome": (
        "how the lab works; measuring time correctly; this machine's roofline; the comparison panel",
        "—"),
    "01_gpu": (
        "what an accelerator is good at: matmul throughput and peak, batch size, copies and hidden syncs,"
        " threads, compile and channels_last",
        "a GPU shows more (runs on a CPU)"),
    "02_data_loading": (
        "the input pipeline as a bottleneck: data wait vs compute per step, cache / batch / on-device, "
        "workers and their pitfalls",
        "—"),
    "03_mixed_precision": (
        "fp16 and bf16 autocast, loss scaling, what your hardware supports, speed / memory / accuracy "
        "against fp32",
        "01; a GPU or a bf16 CPU for speed"),
    "04_lr_schedules": (
        "schedules through torch.optim.lr_scheduler, the per-epoch stepping bug, an LR range test, large batches "
        "with warm-up",
        "—"),
    "04b_plateaus_and_early_stopping": (
        "optional: early stopping with a validation split and the best weights restored; ReduceLROnPlateau",
        "04 first"),
    "05_momentum": (
        "heavy ball vs gradient descent on an exact quadratic, the two momentum conventions, six "
        "optimizers over seeds",
        "—"),
    "06_ddp": (
        "DistributedDataParallel with torchrun: all-reduce, equivalence, scaling efficiency, "
        "communication share",
        "2+ cores"),
    "06b_ddp_beyond_data_parallel": (
        "optional: DataParallel vs DDP, model parallelism and the pipeline bubble, two torchrun nodes at a "
        "rendezvous",
        "06 first; 2+ cores"),
    "07_pruning": (
        "magnitude and structured pruning, storage formats, weight sharing; why masks alone speed nothing"
        " up",
        "—"),
    "08_quantization": (
        "scale and zero point, int8 with torchao (dynamic, static, x86), QAT vs PTQ, bf16 storage, int8 "
        "speed against layer width",
        "—"),
    "09_distillation": (
        "knowledge distillation from a shipped teacher: when it helps (scarce labels) and when not; the "
        "distil → prune → quantize chain",
        "shipped teacher weights"),
    "10_transfer_learning": (
        "scratch vs linear probe vs fine-tuning vs discriminative rates; the label-efficiency curve",
        "shipped backbone weights"),
    "11_speedrun": (
        "the techniques combined: time to a target accuracy, ablation and leaderboard over seeds, "
        "gradient accumulation",
        "02, 04, 05, 09 first"),
    "12_hyperparameter_search": (
        "grid, random, TPE and pruned TPE at the same budget; which knobs matter",
        "04 first"),
}


# A course notebook: two digits, an optional letter for an optional follow-up (04b_ comes after 04_), a name.
NOTEBOOK_NAME = re.compile(r"(\d\d)([a-z]?)_\w+")


def notebooks() -> list[str]:
    """The notebooks in notebooks/ (by name, in course order: 04_…, 04b_…, 05_…)."""
    names = [p.stem for p in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.fullmatch(p.stem)]
    return sorted(names, key=lambda name: NOTEBOOK_NAME.fullmatch(name).groups())


def run_notebook(name: str, mode: str, timeout_s: int = 1200) -> float:
    """Run one notebook top to bottom in a fresh kernel in `mode`; its wall time in seconds.
    Results go to a throw-away folder; the notebook file itself is not touched."""
    env.check_mode(mode)
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.is_file():
        raise LabkitError(f"No notebook {name!r}: choose one of {', '.join(notebooks())}.")
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   f"--ExecutePreprocessor.timeout={timeout_s}", "--output-dir", scratch, str(path)]
        run_env = {**os.environ, "LABKIT_MODE": mode, "LABKIT_RESULTS_DIR": scratch}
        start = time.perf_counter()
        done = subprocess.run(command, env=run_env, cwd=NOTEBOOK_DIR, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabkitError(f"{name} failed in {mode} mode ({last[:200]}): run it in JupyterLab to see where.")
    return seconds


WHERE_KEYS = ("cpu", "cores", "device", "gpu", "torch", "commit")  # what a time notes of its machine


def measure(names: list[str] | None = None, modes: tuple[str, ...] = ("smoke", "full"),
            path: Path = COURSE_TIMES_FILE) -> dict:
    """Time the notebooks in each mode and merge the times into `path` (written after each notebook,
    so an interrupted run keeps what it measured).

    Each time measured notes its machine and date (`measured_on`); the times not re-measured keep theirs.
    Timing every notebook (`names=None`), or a new file, also makes this machine and date the file's
    default, which `markdown` quotes once; a time measured elsewhere is marked with its own machine."""
    record = load(path) if path.exists() else {"notebooks": {}}
    machine, day = env.machine(), time.strftime("%Y-%m-%d")
    if names is None or "machine" not in record:
        record.update({"machine": machine, "measured": day, "command": "labkit coursemap --measure"})
    for name in names or notebooks():
        for mode in modes:
            seconds = run_notebook(name, mode)
            row = record["notebooks"].setdefault(name, {})
            row[f"{mode}_s"] = round(seconds, 1)
            row.setdefault("measured_on", {})[mode] = {**{k: machine.get(k) for k in WHERE_KEYS}, "date": day}
            path.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{name} {mode}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return record


def load(path: Path = COURSE_TIMES_FILE) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LabkitError(f"Cannot read {path} ({error}): re-measure with `labkit coursemap --measure`.") from None


def duration(seconds: float | None) -> str:
    """A wall time as a reader wants it: '40 s', '2.5 min', or '–' when not measured."""
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _where(machine: dict, day: str) -> str:
    return (f"{machine.get('cpu', 'an unknown CPU')} ({machine.get('cores', '?')} cores, "
            f"{machine.get('device', 'cpu')}) on {day}")


def markdown(path: Path = COURSE_TIMES_FILE) -> str:
    """The course map as a Markdown table, times from `path`, with where they were measured
    (a time measured on another machine or day than the file's default carries a mark and a note)."""
    record = load(path)
    times = record["notebooks"]
    default = _where(record.get("machine", {}), record.get("measured", "?"))
    notes: list[str] = []  # where the marked times were measured, in order of first use

    def cell(row: dict, mode: str) -> str:
        on = row.get("measured_on", {}).get(mode)
        where = _where(on, on.get("date", "?")) if on else default
        if where == default:
            return duration(row.get(f"{mode}_s"))
        if where not in notes:
            notes.append(where)
        return f"{duration(row.get(f'{mode}_s'))} ({notes.index(where) + 1})"

    lines = ["| notebook | what it teaches | needs | smoke | full |", "|---|---|---|---|---|"]
    for name in notebooks():
        teaches, needs = COURSE.get(name, ("", ""))
        row = times.get(name, {})
        lines.append(f"| `{name}` | {teaches} | {needs} | {cell(row, 'smoke')} | {cell(row, 'full')} |")
    lines += ["", f"Wall times of a whole notebook, top to bottom in a fresh kernel, measured on "
              f"{default} with `{record.get('command', '?')}`; yours will differ."]
    for i, where in enumerate(notes, 1):
        lines += ["", f"({i}) measured on {where} with `labkit coursemap --measure NAME…` (those notebooks only)."]
    return "\n".join(lines)


START, END = "<!-- course-map:start -->", "<!-- course-map:end -->"


def update_readme(path: Path = README, times: Path = COURSE_TIMES_FILE) -> None:
    """Put the current course map between the README's course-map markers."""
    text = path.read_text()
    if START not in text or END not in text:
        raise LabkitError(f"{path} has no {START} … {END} block to fill.")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    path.write_text(f"{before}{START}\n{markdown(times)}\n{END}{after}")
