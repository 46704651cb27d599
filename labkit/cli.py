"""The `labkit` command: doctor, data build, lab, notebooks, demo, bench, report, pretrain. Errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from labkit.errors import LabkitError
from labkit.paths import IN_CLONE, NOTEBOOK_DIR, REFERENCE_DIR, ROOT



def cmd_doctor(args: argparse.Namespace) -> int:
    from labkit import doctor

    info = doctor.report()
    print(json.dumps(info, indent=2) if args.json else doctor.report_text(info))
    return 0 if doctor.data_ok() else 1  # the lines under "data" say which file is wrong and how to fix it


def cmd_data_build(args: argparse.Namespace) -> int:
    from labkit import data

    out = data.build_subset(Path(args.source), data.SUBSET_FILE, seed=args.seed)
    digest = data.sha256(out)
    expected = data.expected_sums().get("fashion_mnist/fashion_mnist_subset.npz")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
    if digest == expected:
        print("matches data/SHA256SUMS")
        return 0
    print("does NOT match data/SHA256SUMS (a different source version or seed?)", file=sys.stderr)
    return 1


def lab_folder(folder: str | None) -> tuple[Path, str]:
    """The folder JupyterLab serves and the notebook it opens first: the clone's, or one `labkit notebooks` filled."""
    if folder is None and IN_CLONE:
        return ROOT, "notebooks/00_welcome.ipynb"
    root = Path(folder or ".").resolve()
    if not (root / "00_welcome.ipynb").is_file():
        raise LabkitError(f"No notebooks in {root}: copy them out with `labkit notebooks DIR`, then `labkit lab --dir DIR`.")
    return root, "00_welcome.ipynb"


def cmd_notebooks(args: argparse.Namespace) -> int:
    """Copy the lab's notebooks into a folder of the learner's (labkit installed without the repository)."""
    sources = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted(NOTEBOOK_DIR.glob("*.md"))
    if not sources:
        raise LabkitError(f"No notebooks ship with this labkit (looked in {NOTEBOOK_DIR}): reinstall it from a wheel.")
    target = Path(args.dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    kept = [s.name for s in sources if (target / s.name).exists() and not args.force]
    for source in sources:
        if source.name not in kept:
            shutil.copyfile(source, target / source.name)
    print(f"copied {len(sources) - len(kept)} files to {target}"
          + (f"; kept {len(kept)} already there (--force overwrites them)" if kept else ""))
    print(f"open them with: labkit lab --dir {target}")
    return 0


# ---------------------------------------------------------------------------- servers (lab, demo)

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))
SERVER_GRACE_S = 10.0  # a stopped server gets this long to shut its kernels down before what is left is killed


class _Stopped(Exception):
    """labkit received a stop signal while a server ran."""


def _server_dies_with_labkit() -> None:
    """Linux: the server gets SIGTERM if labkit is killed outright (SIGKILL), which no handler can catch.
    Elsewhere, or where prctl is unavailable, labkit's own signal handling is what ends the server."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - any failure here must not stop the server from starting
        pass


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _remember_tree(server: psutil.Process | None, seen: dict[int, psutil.Process]) -> None:
    """Add the server and everything below it to `seen` (kernels run in their own sessions, but are
    still the server's children); psutil.Process objects, so that a pid reused later is never killed."""
    with contextlib.suppress(psutil.Error, AttributeError):
        seen.update((p.pid, p) for p in [server, *server.children(recursive=True)])


def serve(command: list[str], cwd: Path, name: str) -> int:
    """Run a server (JupyterLab, Voilà) until it exits, and end it with its kernels when labkit ends.

    The server runs in its own session, so a stop signal (SIGTERM, SIGHUP, Ctrl-C's SIGINT) reaches
    labkit alone, which then stops the server the way it expects (SIGTERM: it shuts its kernels down)
    and, after SERVER_GRACE_S, kills whatever of the server's process tree is still there.
    """
    def stop(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    proc, server, seen, received = None, None, {}, None
    try:
        proc = subprocess.Popen(command, cwd=cwd, start_new_session=True,
                                preexec_fn=_server_dies_with_labkit if sys.platform == "linux" else None)
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(proc.pid)
        while proc.poll() is None:
            _remember_tree(server, seen)
            time.sleep(0.5)
    except _Stopped as stopped:
        received = stopped.args[0]
        print(f"labkit: {signal.Signals(received).name}: stopping {name} and its kernels …", file=sys.stderr,
              flush=True)
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
            deadline = time.monotonic() + SERVER_GRACE_S
            while time.monotonic() < deadline and any(_alive(p) for p in seen.values()):
                _remember_tree(server, seen)
                proc.poll()
                time.sleep(0.1)
            for p in seen.values():
                with contextlib.suppress(psutil.Error):
                    p.kill()  # psutil first checks that it is still the same process
            proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received if received is not None else proc.returncode


def cmd_lab(args: argparse.Namespace) -> int:
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if jupyter is None:
        raise LabkitError("JupyterLab is not installed here: run `make lab` from the labkit folder.")
    root, first = lab_folder(args.dir)
    command = [jupyter, "lab", "--ip=127.0.0.1", f"--port={args.port}", f"--ServerApp.root_dir={root}", first]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    print("Starting JupyterLab on 127.0.0.1; open the URL with the token that it prints "
          "(Ctrl-C stops it, with its kernels).", flush=True)
    return serve(command, root, "JupyterLab")


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Reproduce shipped weights: runs `labkit.techniques.<name>.pretrain()`, which writes them and prints the path."""
    from labkit import techniques

    module = techniques.load(args.name)
    if not hasattr(module, "pretrain"):
        raise LabkitError(f"labkit.techniques.{args.name} ships no pretrained weights (no pretrain()).")
    print(checksum_note(Path(module.pretrain())))
    return 0


def checksum_note(path: Path) -> str:
    """Keep data/SHA256SUMS in step with rebuilt weights (else they would read as corrupted from now on):
    update the file's line, and say in one line whether its checksum changed."""
    from labkit import data

    name = data.data_name(path)
    if name is None:
        return f"{path} is not under data/: data/SHA256SUMS unchanged"
    old, new = data.update_sum(path)
    if old == new:
        return f"{name} matches data/SHA256SUMS"
    was = f"from {old[:12]}… " if old else "(a new line) "
    return (f"data/SHA256SUMS: {name} checksum changed {was}to {new[:12]}… (these weights differ from the "
            "shipped ones; `git diff data/` shows it)")


def _record(report, argv: list[str]) -> Path:
    """Save a report with its provenance into data/reference/ (results from hardware others may lack)."""
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    device = report.machine.get("gpu") or report.machine.get("device") or "cpu"
    slug = "".join(ch if ch.isalnum() else "-" for ch in device.lower()).strip("-")
    path = REFERENCE_DIR / f"{report.name}_{slug}.json"
    payload = report.to_dict() | {"provenance": {
        "date": time.strftime("%Y-%m-%d"), "command": "labkit " + " ".join(argv), "machine": report.machine}}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def cmd_bench(args: argparse.Namespace, argv: list[str]) -> int:
    """Run headline experiments; each report is appended to results/results.csv as soon as it is done.
    With `all`, a bench that fails says so in one line and the others still run; then results/report.md
    is rebuilt from everything measured (also after Ctrl-C: finished benches are kept)."""
    from labkit import env, results, techniques

    mode = env.check_mode(args.mode)
    run_all = args.names == ["all"]
    names = techniques.names() if run_all else args.names
    modules = [techniques.load(name) for name in names]  # fail fast on a typo, before any work
    reports, failed = [], []
    try:
        for name, module in zip(names, modules):
            if run_all:
                done = len(reports) + len(failed)
                print(f"[{done + 1}/{len(names)}] {name} ({mode} mode) …", file=sys.stderr, flush=True)
            try:
                report = module.headline(mode)
            except LabkitError as error:
                if not run_all:
                    raise
                failed.append(name)
                print(f"labkit: {name}: {error}", file=sys.stderr)
                continue
            reports.append(report)
            results.append(report)
            if args.record:
                print(f"recorded {_record(report, argv)}", file=sys.stderr)
            if not args.json:
                print(report.to_text(), flush=True)
    finally:
        if run_all and reports:
            from labkit import report as results_report

            print(f"wrote {results_report.build()}", file=sys.stderr)
    if args.json:
        payload = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
        print(json.dumps(payload, indent=2))
    if failed:
        print(f"labkit: {len(failed)} bench(es) failed: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from labkit import report

    paths = [Path(p) for p in args.results] if args.results else None
    for path in paths or []:
        if not path.is_file():
            raise LabkitError(f"No results file at {path}: give the path of a results.csv written by labkit.")
    print(f"wrote {report.build(paths, Path(args.out) if args.out else None)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve one notebook as a dashboard with Voilà (code hidden, widgets live) on 127.0.0.1."""
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    if voila is None:
        raise LabkitError("Voilà is not installed here: run `make demo` from the labkit folder.")
    notebook = Path(args.notebook)
    if not notebook.is_absolute():
        candidates = [ROOT / notebook, NOTEBOOK_DIR / notebook, NOTEBOOK_DIR / f"{notebook}.ipynb"]
        candidates += sorted(NOTEBOOK_DIR.glob(f"{notebook}*.ipynb"))
        notebook = next((c for c in candidates if c.is_file()), notebook)
    if not notebook.is_file():
        choices = ", ".join(p.stem for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")))
        raise LabkitError(f"No notebook {args.notebook!r}: choose one of {choices}.")
    command = [voila, str(notebook), "--Voila.ip=127.0.0.1", f"--port={args.port}", "--token"]
    if args.no_browser:
        command.append("--no-browser")
    print(f"Serving {notebook.name} with Voilà on 127.0.0.1:{args.port}; open the URL with the token that it prints "
          "(the notebook runs top to bottom first; Ctrl-C stops the server).", flush=True)
    return serve(command, ROOT, "Voilà")


def cmd_coursemap(args: argparse.Namespace) -> int:
    from labkit import coursemap

    if args.measure:
        coursemap.measure(args.names or None, tuple(args.modes))
    if args.readme:
        coursemap.update_readme()
    print(coursemap.markdown())
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    from labkit import course

    written = course.build(Path(args.dir), args.notebooks or None, release=not args.no_release)
    root = Path(args.dir).resolve()
    for path in written:
        print(f"wrote {path.relative_to(root)}" + ("" if args.no_release else
              f" and release/{path.parent.name}/{path.name}"))
    print(f"course folder: {root} (nbgrader_config.py there). Next, in that folder: nbgrader collect / "
          "autograde / generate_feedback ASSIGNMENT (README: Courses with nbgrader).")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit", description="Measure what makes deep-learning training faster.")
    sub = p.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="report this machine: CPU, threads, GPU, precisions, peak FLOP/s")
    doctor.add_argument("--json", action="store_true")
    data_p = sub.add_parser("data", help="data tasks")
    data_sub = data_p.add_subparsers(dest="data_command", required=True)
    build = data_sub.add_parser("build", help="make the shipped Fashion-MNIST subset from Debian's package")
    build.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    build.add_argument("--seed", type=int, default=0)
    lab = sub.add_parser("lab", help="open JupyterLab at the welcome notebook")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--no-browser", action="store_true")
    lab.add_argument("--dir", help="a folder filled by `labkit notebooks DIR` (default: the clone's notebooks/)")
    notebooks_p = sub.add_parser("notebooks", help="copy the notebooks into a folder of yours (labkit installed by pip)")
    notebooks_p.add_argument("dir", help="the folder to copy them into (made if missing)")
    notebooks_p.add_argument("--force", action="store_true", help="overwrite notebooks already there")
    pretrain = sub.add_parser("pretrain", help="reproduce the pretrained weights shipped in data/pretrained/")
    pretrain.add_argument("name", nargs="?", default="transfer", help="the technique whose weights to rebuild")
    demo = sub.add_parser("demo", help="serve a notebook as a Voilà dashboard (workshop mode)")
    demo.add_argument("notebook", nargs="?", default="00_welcome", help="a notebook name or path, e.g. 07_pruning")
    demo.add_argument("--port", type=int, default=8866)
    demo.add_argument("--no-browser", action="store_true")
    course = sub.add_parser("coursemap", help="the course map with measured notebook times (--measure re-times them)")
    course.add_argument("names", nargs="*", help="notebooks to re-time (default: all)")
    course.add_argument("--measure", action="store_true", help="run the notebooks and record their wall times")
    course.add_argument("--modes", nargs="+", choices=("smoke", "full"), default=["smoke", "full"])
    course.add_argument("--readme", action="store_true", help="also rewrite the course map in README.md")
    course_p = sub.add_parser("course", help="course tasks: `course build DIR` writes an nbgrader course")
    course_sub = course_p.add_subparsers(dest="course_command", required=True)
    course_build = course_sub.add_parser("build", help="nbgrader source notebooks with the answer key, then the release")
    course_build.add_argument("dir", help="the nbgrader course folder (made if missing)")
    course_build.add_argument("--notebooks", nargs="+", help="notebook names (default: every gradable notebook)")
    course_build.add_argument("--no-release", action="store_true", help="skip `nbgrader generate_assignment`")
    report_p = sub.add_parser("report", help="rebuild results/report.md from the results files")
    report_p.add_argument("--results", nargs="+", help="results CSV files (default: every results/*.csv)")
    report_p.add_argument("--out", help="folder for report.md and its plots (default: results/)")
    bench_p = sub.add_parser("bench", help="run a technique's headline experiment")
    bench_p.add_argument("names", nargs="+", help="benchmark name(s), or 'all'")
    bench_p.add_argument("--mode", choices=("smoke", "full"), default=None)
    bench_p.add_argument("--json", action="store_true", help="print one JSON object (a list for several)")
    bench_p.add_argument("--record", action="store_true", help="also save into data/reference/ with provenance")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "data":
            return cmd_data_build(args)
        if args.command == "lab":
            return cmd_lab(args)
        if args.command == "notebooks":
            return cmd_notebooks(args)
        if args.command == "pretrain":
            return cmd_pretrain(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "coursemap":
            return cmd_coursemap(args)
        if args.command == "course":
            return cmd_course(args)
        return cmd_bench(args, argv)
    except LabkitError as error:
        print(f"labkit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
