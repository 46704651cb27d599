"""The results report: every headline measured, on every machine, in one Markdown page with plots.

`labkit bench all` runs every headline experiment and then writes `results/report.md`;
`labkit report` rebuilds it from the results files alone. Every `results/*.csv` is read, so an
instructor who copies the results file of a laptop and of a GPU box into `results/` (under any
two names) gets one leaderboard with each row's machine shown. Results recorded on other hardware
with `labkit bench NAME --record` (in `data/reference/`) are added and labelled as reference.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from labkit import results
from labkit.errors import LabkitError
from labkit.paths import REFERENCE_DIR
from labkit.ui.style import LAB_RC, describe, dots, figure_png, gap, mark_smoke, new_figure, ratio_axis, series_style

# The column a bench's plot shows, first one present wins; True where smaller is better.
PLOT_METRICS = (("time_to_target_s", True), ("train_time_s", True), ("latency_ms", True),
                ("images_per_s", False), ("accuracy", False))


def machine_label(host: object, cpu: object, gpu: object, source: str = "measured") -> str:
    """How a machine is named in the report: host · CPU (· GPU), and whether it is a reference result."""
    parts = [str(p) for p in (host, cpu, gpu) if isinstance(p, str) and p]
    label = " · ".join(parts) or "unknown machine"
    return f"{label} (reference)" if source == "reference" else label


def read_reference(folder: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Reports recorded with `labkit bench NAME --record`, as results rows (card rows + headline row)."""
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            saved = json.loads(path.read_text())
            machine, stamp = saved["machine"], saved.get("provenance", {}).get("date", "")
            card_rows = saved["rows"] + [{"variant": results.HEADLINE_ROW, **saved["headline"]}]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LabkitError(f"{path} is not a recorded report ({error}): re-record it with "
                              "`labkit bench NAME --record` or delete it.") from None
        for row in card_rows:
            rows.append({"time": stamp, "bench": saved["name"], "mode": saved["mode"], "variant": row["variant"],
                         "host": machine.get("host"), "cpu": machine.get("cpu"), "gpu": machine.get("gpu"),
                         "commit": machine.get("commit"), "source": "reference",
                         **{k: v for k, v in row.items() if k != "variant"}})
    return pd.DataFrame(rows)


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def read_measured(paths: list[Path] | None = None,
                  warn: Callable[[str], None] = to_stderr) -> list[results.ResultsFile]:
    """Every results file (default: results/*.csv), read tolerantly: a file with lines that cannot be read,
    or that is no labkit results file (an instructor's other CSVs), gets one line through `warn`."""
    paths = list(paths) if paths else sorted(results.RESULTS_DIR.glob("*.csv"))
    files = [results.load(p) for p in paths]
    for read in files:
        if read.note():
            warn(read.note())
    return files


def collect(paths: list[Path] | None = None, reference_dir: Path = REFERENCE_DIR,
            files: list[results.ResultsFile] | None = None) -> pd.DataFrame:
    """Every results row from the given CSV files (default: results/*.csv; or the `files` already read)
    and the reference folder, duplicates (the same file copied twice) dropped, each row labelled with
    its machine."""
    files = read_measured(paths) if files is None else files
    frames = [f.frame.assign(source="measured") for f in files if not f.rejected]
    if reference_dir.exists():
        frames.append(read_reference(reference_dir))
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise LabkitError("No results yet: run `labkit bench all` (or a notebook's comparison) first.")
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop(columns=[c for c in ("config",) if c in frame])
    frame = frame.loc[frame.astype(str).drop_duplicates().index]
    frame["machine"] = [machine_label(h, c, g, s) for h, c, g, s in
                        zip(frame["host"], frame["cpu"], frame.get("gpu", [None] * len(frame)), frame["source"])]
    return frame


def skipped_section(files: list[results.ResultsFile]) -> list[str]:
    """The report's record of what was left out: each skipped file, and each skipped line as it was
    written (the results files themselves are never changed)."""
    troubled = [f for f in files if f.note()]
    if not troubled:
        return []
    lines = ["## Skipped lines", "", "These could not be read and are left out above; the files are unchanged.", ""]
    for read in troubled:
        lines += [f"- {read.note()}"]
        if read.skipped:
            lines += ["", "```"] + [f"{results.shown(read.path)}:{n}: ({why}) {text}" for n, why, text in read.skipped]
            lines += ["```", ""]
    return lines + [""]


def latest_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """For each bench, mode and machine, only the rows of its latest run (rows of one run share a stamp)."""
    stamps = frame.groupby(["bench", "mode", "machine"])["time"].transform("max")
    return frame[frame["time"] == stamps]


def headline_table(latest: pd.DataFrame, bench: str) -> pd.DataFrame:
    """One row per machine and mode: when, which commit, and the bench's headline numbers."""
    rows = latest[(latest["bench"] == bench) & (latest["variant"] == results.HEADLINE_ROW)]
    skip = {"time", "bench", "mode", "variant", "host", "cpu", "device", "gpu", "torch", "commit", "source", "machine"}
    keys = [c for c in rows.columns if c not in skip and rows[c].notna().any()]
    table = rows[["machine", "mode", "time", "commit", *keys]].copy()
    table["time"] = table["time"].astype(str).str.slice(0, 16)
    return table.sort_values(["mode", "machine"]).reset_index(drop=True)


def plot_metric(run: pd.DataFrame) -> tuple[str, bool] | None:
    """The first of PLOT_METRICS that this run's variants report."""
    for column, smaller_is_better in PLOT_METRICS:
        if column in run and run[column].notna().sum() >= 2:
            return column, smaller_is_better
    return None


def plot_bench(latest: pd.DataFrame, bench: str) -> Figure | None:
    """Each machine's latest run of `bench` (full mode where there is one), variant by variant, as a
    ratio to that run's first variant: ratios are comparable across machines, absolute times are not.
    Ratios sit on a log axis with 1× marked (0.5× and 2× equally far from it), one marker per machine;
    accuracies are a dot plot (they differ by fractions of a point); a variant a machine did not measure
    is a labelled gap. Smoke-mode data is marked as such on the figure."""
    runs = latest[(latest["bench"] == bench) & (latest["variant"] != results.HEADLINE_ROW)]
    if runs.empty:
        return None
    preferred = "full" if (runs["mode"] == "full").any() else "smoke"
    runs = runs[runs["mode"] == preferred]
    machines = list(dict.fromkeys(runs["machine"]))
    variants = list(dict.fromkeys(runs["variant"]))
    with matplotlib.rc_context(LAB_RC):
        fig = new_figure(8, 0.32 * len(variants) * (1 + 0.5 * (len(machines) - 1)) + 2.4)
        ax = fig.subplots()
        step = 0.7 / len(machines)
        label, drawn = None, []
        for i, machine in enumerate(machines):
            run = runs[runs["machine"] == machine].set_index("variant")
            metric = plot_metric(run)
            if metric is None:
                continue
            column, smaller_is_better = metric
            values = pd.to_numeric(run[column], errors="coerce").reindex(variants)
            base = values.dropna().iloc[0]
            ratio = base / values if smaller_is_better else values / base
            ys = [v + (i - (len(machines) - 1) / 2) * step for v in range(len(variants))]
            shown = [(y, r) for y, r in zip(ys, (100 * values if column == "accuracy" else ratio)) if r == r]
            for y, r in zip(ys, ratio):
                if r != r:  # this machine has no number for this variant
                    gap(ax, y, "not measured" + (f" on {machine}" if len(machines) > 1 else ""))
            if column == "accuracy":
                label = "test accuracy (%, axis starts near the data)"
                dots(ax, [y for y, _ in shown], [r for _, r in shown], i=i, label=machine)
            else:
                label = (f"{column}: ratio to the first variant, log scale "
                         f"({'first ÷ variant' if smaller_is_better else 'variant ÷ first'}; above 1× is better)")
                style = series_style(i)
                ax.hlines([y for y, _ in shown], 1, [r for _, r in shown], color=style["color"], linewidth=1.2,
                          alpha=0.6)
                ax.plot([r for _, r in shown], [y for y, _ in shown], linestyle="none", marker=style["marker"],
                        color=style["color"], markersize=6, label=machine)
            drawn += [r for _, r in shown]
        if label is None:
            return None
        if not label.startswith("test accuracy"):
            ratio_axis(ax, drawn, "x")
        else:
            ax.margins(x=0.2)
        ax.set_yticks(range(len(variants)), variants, fontsize=8)
        ax.set_ylim(len(variants) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("variant")
        ax.set_title(f"{bench}: each variant against the first ({preferred} mode)")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=1)
        if preferred == "smoke":
            mark_smoke(fig)
    return fig


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (numbers to 4 significant digits, missing values as –)."""
    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "/")
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def build(paths: list[Path] | None = None, out_dir: Path | None = None,
          reference_dir: Path = REFERENCE_DIR) -> Path:
    """Write report.md (and one PNG per bench) from the results files; return the report's path."""
    out_dir = Path(out_dir) if out_dir else results.RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    files = read_measured(paths)
    frame = collect(reference_dir=reference_dir, files=files)
    latest = latest_runs(frame)
    machines = frame.groupby("machine").agg(runs=("time", "nunique"), first=("time", "min"), last=("time", "max"))
    lines = ["# labkit results", "",
             f"Built {time.strftime('%Y-%m-%d %H:%M')} from {len(frame)} result rows on {len(machines)} machine(s). "
             "Each bench shows the latest run per machine and mode; smoke-mode numbers come from shrunken "
             "runs and are not meant to be quoted. Rebuild with `labkit report`.", "",
             "## Machines", "", markdown_table(machines.reset_index()), ""]
    for bench in sorted(frame["bench"].unique()):
        lines += [f"## {bench}", ""]
        table = headline_table(latest, bench)
        lines += [markdown_table(table) if not table.empty else "(no headline recorded)", ""]
        fig = plot_bench(latest, bench)
        if fig is not None:
            png = out_dir / f"report_{bench}.png"
            png.write_bytes(figure_png(fig, smoke=False))  # marked above if its data is smoke-mode data
            lines += [f"![{describe(fig)}]({png.name})", ""]
    lines += skipped_section(files)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
