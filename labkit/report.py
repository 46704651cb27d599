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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from labkit import results
from labkit.errors import LabkitError
from labkit.paths import REFERENCE_DIR
from labkit.ui.style import (GREY, LAB_RC, describe, figure_png, gap, legend_below, mark_smoke, new_figure, ratio_axis,
                             series_style)


@dataclass(frozen=True)
class Quantity:
    """One per-variant number a bench's figure can show, and how to read it.

    kind "ratio": variant against the reference variant on a log axis (times, throughputs, sizes);
    "change": variant minus the reference variant, times `scale`, in points (accuracies);
    "points": already a difference in points against the variant's own baseline (a gain), drawn as is."""

    column: str
    label: str                        # what a reader calls it: the panel's title
    smaller_is_better: bool = False
    kind: Literal["ratio", "change", "points"] = "ratio"
    scale: float = 100.0              # "change": fraction → points (1 where the column is in percent already)
    missing: str = ""                 # why a variant's row has no value, when it is not simply "not measured"
    derive: Callable[[pd.DataFrame], pd.Series] | None = None  # computed from a run (indexed by variant)

    def values(self, run: pd.DataFrame) -> pd.Series:
        """This quantity for each variant of one machine's run (NaN where it has none)."""
        if self.derive is not None:
            return self.derive(run).reindex(run.index)
        if self.column not in run:
            return pd.Series(float("nan"), index=run.index)
        return pd.to_numeric(run[self.column], errors="coerce")


def distillation_gain(run: pd.DataFrame) -> pd.Series:
    """Distilled student's accuracy minus the scratch student's in the same label setting, in points,
    on each 'student distilled · <setting>' row (the card pairs them by name)."""
    if "accuracy" not in run:
        return pd.Series(dtype=float)
    accuracy = pd.to_numeric(run["accuracy"], errors="coerce")
    gains = {v: 100 * (accuracy[v] - accuracy.get(v.replace("distilled", "scratch", 1), float("nan")))
             for v in run.index if str(v).startswith("student distilled")}
    return pd.Series(gains, dtype=float)


ACCURACY = Quantity("accuracy", "test accuracy", kind="change")
TRAIN_TIME = Quantity("train_time_s", "training time", smaller_is_better=True)
THROUGHPUT = Quantity("images_per_s", "throughput (images/s)")
LATENCY = Quantity("latency_ms", "latency", smaller_is_better=True)
TIME_TO_TARGET = Quantity("time_to_target_s", "time to target accuracy", smaller_is_better=True,
                          missing="target not reached")

# What each bench's figure is about: panels side by side, each a list of candidates; the first candidate
# whose values differ between variants is drawn (a column equal in every row says nothing).
BENCH_QUANTITIES: dict[str, list[list[Quantity]]] = {
    "amp": [[TRAIN_TIME, THROUGHPUT],
            [Quantity("saved_for_backward_mb", "memory kept for backward", smaller_is_better=True),
             Quantity("peak_mem_mb", "peak memory", smaller_is_better=True)]],
    "dataloading": [[THROUGHPUT]],
    "ddp": [[THROUGHPUT]],
    "distillation": [[Quantity("kd_gain_pt", "accuracy gain over the scratch student", kind="points",
                               derive=distillation_gain)]],
    "gpu": [[LATENCY, THROUGHPUT]],
    "hpo": [[Quantity("time_to_best_s", "time to best", smaller_is_better=True)],
            [Quantity("val_best_pct", "best validation accuracy found", kind="change", scale=1.0)]],
    "momentum": [[TIME_TO_TARGET,
                  Quantity("epochs_to_target", "epochs to target", smaller_is_better=True,
                           missing="target not reached")]],
    "overhead": [[TRAIN_TIME]],
    "pruning": [[Quantity("size_mb", "size on disk", smaller_is_better=True)], [LATENCY], [ACCURACY]],
    "quantization": [[LATENCY], [ACCURACY]],
    "schedules": [[Quantity("epochs_to_target", "epochs to target", smaller_is_better=True,
                            missing="target not reached"), TIME_TO_TARGET],
                  [Quantity("accuracy", "final test accuracy", kind="change")]],
    "speedrun": [[TIME_TO_TARGET], [ACCURACY]],
    "transfer": [[Quantity("gain_pt", "accuracy gain over training from scratch (same k)", kind="points")]],
    "welcome_panel": [[TRAIN_TIME, THROUGHPUT], [ACCURACY]],
}
# A bench not in the table: the first of these that varies.
DEFAULT_QUANTITIES = [[TIME_TO_TARGET, TRAIN_TIME, LATENCY, THROUGHPUT, ACCURACY]]


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
    # a metric named like a results field (the gpu bench's "device") arrives as a second column: keep the field
    frames = [f.frame.loc[:, ~f.frame.columns.duplicated()].assign(source="measured") for f in files if not f.rejected]
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


def mode_runs(latest: pd.DataFrame, bench: str, mode: str) -> dict[str, pd.DataFrame]:
    """Each machine's latest `mode` run of `bench`: its variant rows (headline row left out), indexed by variant."""
    rows = latest[(latest["bench"] == bench) & (latest["mode"] == mode) & (latest["variant"] != results.HEADLINE_ROW)]
    return {machine: run.drop_duplicates("variant", keep="last").set_index("variant")
            for machine, run in rows.groupby("machine", sort=False)}


def why_not(quantity: Quantity, runs: dict[str, pd.DataFrame]) -> str | None:
    """None when `quantity` tells the variants of some run apart; else why it is not drawn. A gain in points
    is a difference already, so one variant's gain is enough; any other column needs two different values."""
    found = [quantity.values(run).dropna() for run in runs.values()]
    if not any(len(values) for values in found):
        return f"no variant reports {quantity.column}"
    if any(values.nunique() >= 2 for values in found):
        return None
    if quantity.kind == "points" and any(len(values) == 1 for values in found):
        return None
    if all(len(values) <= 1 for values in found):
        return f"only one variant reports {quantity.column}"
    same = next(values.iloc[0] for values in found if len(values))
    return f"every variant reports the same {quantity.column} ({same:.4g})"


def choose(bench: str, runs: dict[str, pd.DataFrame]) -> tuple[list[Quantity], list[str]]:
    """The quantity each panel of `bench`'s figure draws (a panel with no informative candidate is left
    out), and why each candidate passed over was not drawn."""
    chosen, passed = [], []
    for panel in BENCH_QUANTITIES.get(bench, DEFAULT_QUANTITIES):
        for quantity in panel:
            reason = why_not(quantity, runs)
            if reason is None:
                chosen.append(quantity)
                break
            passed.append(reason)
    return chosen, passed


def skipped_note(run: pd.DataFrame, variant: str) -> str | None:
    """The reason a card gave for skipping `variant` (its 'skipped' column), if any."""
    if "skipped" not in run or variant not in run.index:
        return None
    note = run.at[variant, "skipped"]
    return note if isinstance(note, str) and note else None


def short_machine(machine: str) -> str:
    """The host part of a machine label, for a gap's note (the legend names the machine in full)."""
    host = machine.split(" · ")[0]
    return f"{host} (reference)" if machine.endswith("(reference)") and not host.endswith(")") else host


def axis_label(quantity: Quantity, reference: str | None) -> str:
    """The value axis of one panel: what was divided or subtracted, and which side is better."""
    ref = reference if reference is not None else "the first variant measured"
    better = "left" if quantity.smaller_is_better and quantity.kind != "ratio" else "right"
    if quantity.kind == "ratio":
        how = f"{ref} ÷ variant" if quantity.smaller_is_better else f"variant ÷ {ref}"
        return f"{how}, log scale\n(right of 1× is better)"
    if quantity.kind == "change":
        return f"variant − {ref}, in points\n(0 = no change; {better} is better)"
    return f"gain, in points\n(0 = no gain; {better} is better)"


def gap_reason(quantity: Quantity, run: pd.DataFrame, variant: str, machine: str | None) -> str:
    """Why a variant has no value here: not measured (on `machine`), skipped by its card, or no value."""
    if variant not in run.index:
        return "not measured" + (f" on {short_machine(machine)}" if machine else "")
    if skipped_note(run, variant):
        return "skipped"
    return quantity.missing or f"no {quantity.label}"


def draw_panel(ax, quantity: Quantity, runs: dict[str, pd.DataFrame], variants: list[str]) -> None:
    """One quantity, variant by variant (rows), one marker per machine: a stem from the reference (1× for a
    ratio, 0 for a difference) to the value. A value missing on one machine is a gap on that machine's line;
    a value no machine has, one gap on the variant's row."""
    values = {m: quantity.values(run).reindex(variants) for m, run in runs.items()}
    common = [v for v in variants if all(vals.notna()[v] for vals in values.values())]
    reference = common[0] if common else None  # the first variant every machine measured
    base, step, drawn = (1.0 if quantity.kind == "ratio" else 0.0), 0.7 / len(runs), []
    for i, (machine, vals) in enumerate(values.items()):
        ref = reference if reference is not None else vals.first_valid_index()  # None: nothing measured here
        if quantity.kind == "points" or ref is None:
            shown = vals
        elif quantity.kind == "ratio":
            shown = vals[ref] / vals if quantity.smaller_is_better else vals / vals[ref]
        else:
            shown = quantity.scale * (vals - vals[ref])
        ys = [row + (i - (len(runs) - 1) / 2) * step for row in range(len(variants))]
        points = [(y, x) for y, x in zip(ys, shown) if x == x]
        style = series_style(i)
        ax.hlines([y for y, _ in points], base, [x for _, x in points], color=style["color"], linewidth=1.2,
                  alpha=0.6)
        ax.plot([x for _, x in points], [y for y, _ in points], linestyle="none", marker=style["marker"],
                color=style["color"], markersize=6, label=machine)
        drawn += [x for _, x in points]
        for variant, y, x in zip(variants, ys, shown):
            if x != x and any(other.notna()[variant] for other in values.values()):
                gap(ax, y, gap_reason(quantity, runs[machine], variant, machine if len(runs) > 1 else None))
    for row, variant in enumerate(variants):
        if not any(vals.notna()[variant] for vals in values.values()):
            run = next(r for r in runs.values() if variant in r.index)
            gap(ax, row, gap_reason(quantity, run, variant, None))
    if quantity.kind == "ratio":
        ratio_axis(ax, drawn, "x")
        widen_to_ticks(ax, drawn)
    else:
        ax.axvline(0.0, color=GREY, linestyle="--", linewidth=1, zorder=1)
        reach = max([abs(x) for x in drawn] + [0.5])
        ax.set_xlim(min(drawn + [0.0]) - 0.25 * reach, max(drawn + [0.0]) + 0.25 * reach)
    ax.set_title(quantity.label)
    ax.set_xlabel(axis_label(quantity, reference), fontsize=8)


def widen_to_ticks(ax, ratios: list[float]) -> None:
    """Where data lie on a side of 1× that shows no labelled tick, stretch the ratio axis to the next 1-2-5
    tick beyond them (0.8× alone between 0.51× and 1.6× could be read against the 1× label only)."""
    finite = [r for r in ratios if r == r and r > 0]
    if not finite:
        return
    ticks = [m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5)]
    lo, hi = ax.get_xlim()
    if min(finite) < 1 and not any(lo <= t < 1 for t in ticks):
        lo = max((t for t in ticks if t <= min(finite)), default=min(finite)) / 1.15
    if max(finite) > 1 and not any(1 < t <= hi for t in ticks):
        hi = min((t for t in ticks if t >= max(finite)), default=max(finite)) * 1.15
    ax.set_xlim(lo, hi)


def plot_bench(latest: pd.DataFrame, bench: str, mode: str) -> Figure | None:
    """Each machine's latest `mode` run of `bench`, variant by variant, in the quantity the bench is about
    (BENCH_QUANTITIES; panels side by side). Times, throughputs and sizes are ratios to a reference variant on
    a log axis with 1× marked (ratios compare across machines, absolute times do not); accuracies and gains
    are differences in points with 0 marked. One marker per machine, the machine legend below the panels; a
    variant a machine did not measure is a labelled gap. A smoke-mode figure is marked as such.
    None when no quantity tells the variants apart (`choose` says why)."""
    runs = mode_runs(latest, bench, mode)
    quantities = choose(bench, runs)[0] if runs else []
    if not quantities:
        return None
    measured = {v for q in quantities for run in runs.values() for v, x in q.values(run).items() if x == x}
    every = dict.fromkeys(v for run in runs.values() for v in run.index)  # card order, first machine first
    variants = [v for v in every if v in measured or any(skipped_note(run, v) for run in runs.values())]
    with matplotlib.rc_context(LAB_RC):
        fig = new_figure(5.5 + 2 * len(quantities),
                         0.32 * len(variants) * (1 + 0.5 * (len(runs) - 1)) + 2.4 + 0.15 * len(runs))
        axes = fig.subplots(1, len(quantities), sharey=True, squeeze=False)[0]
        for ax, quantity in zip(axes, quantities):
            draw_panel(ax, quantity, runs, variants)
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(range(len(variants)), variants, fontsize=8)
        axes[0].set_ylim(len(variants) - 0.5, -0.5)
        axes[0].set_ylabel("variant")
        fig.suptitle(f"{bench}, {mode} mode: the latest run on each machine")
        legend_below(fig, axes, ncols=1)
        if mode == "smoke":
            mark_smoke(fig)
    return fig


def no_figure_note(latest: pd.DataFrame, bench: str, mode: str) -> str:
    """One line for the report where `bench` has no `mode` figure: why."""
    runs = mode_runs(latest, bench, mode)
    if not runs:
        return f"*{mode} mode: no figure — the run recorded its headline only, no variants.*"
    return f"*{mode} mode: no figure — {'; '.join(choose(bench, runs)[1])}.*"


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
    """Write report.md (and one PNG per bench and mode) from the results files; return the report's path."""
    out_dir = Path(out_dir) if out_dir else results.RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    files = read_measured(paths)
    frame = collect(reference_dir=reference_dir, files=files)
    latest = latest_runs(frame)
    machines = frame.groupby("machine").agg(runs=("time", "nunique"), first=("time", "min"), last=("time", "max"))
    lines = ["# labkit results", "",
             f"Built {time.strftime('%Y-%m-%d %H:%M')} from {len(frame)} result rows on {len(machines)} machine(s). "
             "Each bench shows the latest run per machine and mode; smoke-mode numbers come from shrunken "
             "runs and are not meant to be quoted. Each figure shows the quantity its bench is about, variant by "
             "variant: times, throughputs and sizes as ratios to a reference variant, accuracies and gains as "
             "differences in points. Rebuild with `labkit report`.", "",
             "## Machines", "", markdown_table(machines.reset_index()), ""]
    for bench in sorted(frame["bench"].unique()):
        lines += [f"## {bench}", ""]
        table = headline_table(latest, bench)
        lines += [markdown_table(table) if not table.empty else "(no headline recorded)", ""]
        for mode in sorted(latest.loc[latest["bench"] == bench, "mode"].unique(), key=lambda m: m != "full"):
            fig = plot_bench(latest, bench, mode)
            if fig is None:
                lines += [no_figure_note(latest, bench, mode), ""]
                continue
            png = out_dir / f"report_{bench}_{mode}.png"
            png.write_bytes(figure_png(fig, smoke=False))  # marked in plot_bench when its data is smoke-mode data
            lines += [f"![{describe(fig)}]({png.name})", ""]
    lines += skipped_section(files)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
