"""The results report: every headline measured, on every machine, in one Markdown page with plots.

`labkit bench all` runs every headline experiment and then writes `results/report.md`;
`labkit report` rebuilds it from the results files alone. Every `results/*.csv` is read, so an
instructor who copies the results file of a laptop and of a GPU box into `results/` (under any
two names) gets one leaderboard with each row's machine shown. Results recorded on other hardware
with `labkit bench NAME --record` (in `data/reference/`) are added and labelled as reference.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from labkit import results
from labkit.errors import LabkitError
from labkit.paths import REFERENCE_DIR

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


def collect(paths: list[Path] | None = None, reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Every results row from the given CSV files (default: results/*.csv) and the reference folder,
    duplicates (the same file copied twice) dropped, each row labelled with its machine."""
    paths = list(paths) if paths else sorted(results.RESULTS_DIR.glob("*.csv"))
    frames = [results.read(p).assign(source="measured") for p in paths]
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
    ratio to that run's first variant: ratios are comparable across machines, absolute times are not."""
    runs = latest[(latest["bench"] == bench) & (latest["variant"] != results.HEADLINE_ROW)]
    if runs.empty:
        return None
    preferred = "full" if (runs["mode"] == "full").any() else "smoke"
    runs = runs[runs["mode"] == preferred]
    fig = Figure(figsize=(7, 0.45 * runs["variant"].nunique() + 1.6), layout="constrained")
    ax = fig.subplots()
    machines = list(dict.fromkeys(runs["machine"]))
    variants = list(dict.fromkeys(runs["variant"]))
    height = 0.8 / len(machines)
    label = None
    for i, machine in enumerate(machines):
        run = runs[runs["machine"] == machine].set_index("variant")
        metric = plot_metric(run)
        if metric is None:
            continue
        column, smaller_is_better = metric
        values = pd.to_numeric(run[column], errors="coerce")
        base = values.dropna().iloc[0]
        ratio = base / values if smaller_is_better else values / base
        if column == "accuracy":
            ratio, label = 100 * values, "test accuracy (%)"
        else:
            label = f"{column}: ratio to the first variant ({'first / variant' if smaller_is_better else 'variant / first'}; above 1 is better)"
        ys = [variants.index(v) + i * height for v in run.index]
        ax.barh(ys, ratio.reindex(run.index).fillna(0).tolist(), height=height, label=machine)
    if label is None:
        return None
    if label != "test accuracy (%)":
        ax.axvline(1.0, color="grey", linewidth=1, linestyle="--")
    ax.set_yticks([v + 0.4 - height / 2 for v in range(len(variants))], variants, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(label, fontsize=8)
    ax.set_title(f"{bench} ({preferred} mode)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.18 if len(variants) < 4 else -0.08), frameon=False)
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
    frame = collect(paths, reference_dir)
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
            fig.savefig(png, dpi=100)
            lines += [f"![{bench}]({png.name})", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
