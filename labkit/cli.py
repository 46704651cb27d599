"""The `labkit` command: doctor, data build, lab, demo, bench, report, pretrain. Errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from labkit.errors import LabkitError
from labkit.paths import NOTEBOOK_DIR, REFERENCE_DIR, ROOT



def cmd_doctor(args: argparse.Namespace) -> int:
    from labkit import doctor

    info = doctor.report()
    print(json.dumps(info, indent=2) if args.json else doctor.report_text(info))
    return 0


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


def cmd_lab(args: argparse.Namespace) -> int:
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if jupyter is None:
        raise LabkitError("JupyterLab is not installed here: run `make lab` from the labkit folder.")
    command = [jupyter, "lab", "--ip=127.0.0.1", f"--port={args.port}", f"--ServerApp.root_dir={ROOT}",
               "notebooks/00_welcome.ipynb"]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    print("Starting JupyterLab on 127.0.0.1; open the URL with the token that it prints.", flush=True)
    return subprocess.call(command, cwd=ROOT)


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Reproduce shipped weights: runs `labkit.techniques.<name>.pretrain()`, which writes them and prints the path."""
    from labkit import techniques

    module = techniques.load(args.name)
    if not hasattr(module, "pretrain"):
        raise LabkitError(f"labkit.techniques.{args.name} ships no pretrained weights (no pretrain()).")
    module.pretrain()
    return 0


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
    os.chdir(ROOT)
    os.execv(voila, command)  # become the Voilà server: a stop signal reaches it (and its kernels) directly


def cmd_coursemap(args: argparse.Namespace) -> int:
    from labkit import coursemap

    if args.measure:
        coursemap.measure(args.names or None, tuple(args.modes))
    if args.readme:
        coursemap.update_readme()
    print(coursemap.markdown())
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
        if args.command == "pretrain":
            return cmd_pretrain(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "coursemap":
            return cmd_coursemap(args)
        return cmd_bench(args, argv)
    except LabkitError as error:
        print(f"labkit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
