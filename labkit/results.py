"""The result card (one row per variant, ratios against a baseline) and the append-only results file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from filelock import FileLock

from labkit import env
from labkit.errors import LabkitError
from labkit.paths import RESULTS_DIR

# The card's columns, in order. Not every experiment fills every column.
COLUMNS = ("variant", "accuracy", "train_time_s", "time_to_target_s", "epochs_to_target", "images_per_s",
           "latency_ms", "latency_b1_ms", "size_mb", "peak_mem_mb", "params", "interrupted")
# For these, smaller is better: their ratio column is baseline / variant (a speedup, a reduction).
SMALLER_IS_BETTER = ("train_time_s", "time_to_target_s", "epochs_to_target", "latency_ms", "latency_b1_ms", "size_mb",
                     "peak_mem_mb", "params")
RATIO_NOTE = "× columns: baseline / variant for times and sizes (above 1 is better); Δpt: accuracy difference in points."


def row_from_fit(variant: str, fit, **extra) -> dict:
    """A card row from a `train.FitResult`, plus any extra columns (latency, size, ...)."""
    return {"variant": variant, "accuracy": fit.final_acc, "train_time_s": fit.train_time_s,
            "time_to_target_s": fit.time_to_target_s, "epochs_to_target": fit.epochs_to_target,
            "images_per_s": fit.images_per_s, "interrupted": fit.interrupted,
            **({"diverged": True} if fit.diverged else {}), **extra}


class ResultCard:
    """Variants side by side, measured in one run, with ratios against the baseline row."""

    def __init__(self, rows: list[dict] | None = None, baseline: str | None = None, title: str = ""):
        self.rows: list[dict] = []
        self.baseline = baseline
        self.title = title
        for row in rows or []:
            self.add(row)

    def add(self, row: dict) -> "ResultCard":
        """Append one variant's row (a dict with at least 'variant')."""
        if "variant" not in row:
            raise LabkitError("A result row needs a 'variant' name.")
        if any(r["variant"] == row["variant"] for r in self.rows):
            raise LabkitError(f"The card already has a row {row['variant']!r}: give each variant its own name.")
        self.rows.append(dict(row))
        if self.baseline is None:
            self.baseline = row["variant"]
        return self

    def add_fit(self, variant: str, fit, **extra) -> "ResultCard":
        return self.add(row_from_fit(variant, fit, **extra))

    @property
    def variants(self) -> list[str]:
        return [r["variant"] for r in self.rows]

    @property
    def df(self) -> pd.DataFrame:
        """The rows as a DataFrame, known columns first, empty columns dropped."""
        frame = pd.DataFrame(self.rows)
        if frame.empty:
            return pd.DataFrame(columns=["variant"])
        known = [c for c in COLUMNS if c in frame.columns]
        frame = frame[known + [c for c in frame.columns if c not in known]]
        if "interrupted" in frame and not frame["interrupted"].fillna(False).astype(bool).any():
            frame = frame.drop(columns="interrupted")  # only worth a column when a run was cut short
        return frame.dropna(axis=1, how="all").set_index("variant")

    def value(self, variant: str, column: str) -> float:
        """One cell; a clear error when the variant or the column is not on the card."""
        row = next((r for r in self.rows if r["variant"] == variant), None)
        if row is None:
            raise LabkitError(f"No variant {variant!r} on this card: it has {', '.join(self.variants) or 'none'}.")
        if column not in row or row[column] is None:
            raise LabkitError(f"Variant {variant!r} has no {column!r} value.")
        return float(row[column])

    def ratio(self, variant: str, column: str) -> float:
        """variant / baseline for `column`."""
        return self.value(variant, column) / self.value(self.baseline, column)

    def speedup(self, variant: str, column: str = "train_time_s") -> float:
        """baseline / variant for a time column: above 1 means the variant is faster."""
        return self.value(self.baseline, column) / self.value(variant, column)

    def delta_pt(self, variant: str, column: str = "accuracy") -> float:
        """(variant − baseline) in percentage points, for accuracy-like columns in [0, 1]."""
        return 100 * (self.value(variant, column) - self.value(self.baseline, column))

    def with_ratios(self) -> pd.DataFrame:
        """The card plus a '×' column per measured column: for times and sizes baseline/variant
        (above 1 is better), for accuracy the difference in points."""
        frame = self.df
        if self.baseline not in frame.index:
            return frame
        base = frame.loc[self.baseline]
        for column in list(frame.columns):
            if column in SMALLER_IS_BETTER:
                frame[f"{column} ×"] = base[column] / frame[column]
            elif column == "accuracy":
                frame["accuracy Δpt"] = 100 * (frame[column] - base[column])
            elif column == "images_per_s":
                frame["images_per_s ×"] = frame[column] / base[column]
        return frame

    def to_text(self) -> str:
        """A plain-text table (for terminals, logs, tests and static notebook viewers)."""
        if not self.rows:
            return f"{self.title or 'result card'}: no rows yet"
        frame = self.with_ratios().astype(object).where(lambda f: f.notna(), "–")
        body = frame.to_string(float_format=lambda v: f"{v:.4g}")
        head = f"{self.title}  (baseline: {self.baseline})" if self.title else f"baseline: {self.baseline}"
        return f"{head}\n{body}\n{RATIO_NOTE}"

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        caption = f"<b>{self.title}</b> " if self.title else ""
        table = self.with_ratios().reset_index().to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–")
        return f"{caption}(baseline: {self.baseline})" + table


@dataclass
class BenchReport:
    """What `labkit bench NAME --json` prints: the card, the headline numbers, the config and the machine."""

    name: str
    mode: str
    card: ResultCard
    headline: dict[str, float | str | None]
    config: dict = field(default_factory=dict)
    machine: dict = field(default_factory=env.machine)

    def to_dict(self) -> dict:
        return {"name": self.name, "mode": self.mode, "machine": self.machine,
                "rows": [_jsonable(r) for r in self.card.rows], "headline": _jsonable(self.headline),
                "config": _jsonable(self.config)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f"{self.name} ({self.mode} mode)", self.card.to_text(), "headline:"]
        lines += [f"  {k} = {v:.4g}" if isinstance(v, float) else f"  {k} = {v}" for k, v in self.headline.items()]
        return "\n".join(lines)


def _jsonable(obj):
    """Plain JSON values: NaN and infinities become None, numpy/torch scalars become floats."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    try:
        value = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    return None if math.isnan(value) or math.isinf(value) else value


RESULT_FIELDS = ("time", "bench", "mode", "variant", "host", "cpu", "device", "gpu", "torch", "commit",
                 "metrics", "config")
HEADLINE_ROW = "(headline)"  # the variant name of the row that carries a report's headline numbers


def append(report: BenchReport, path: Path | None = None) -> Path:
    """Append the report's rows, then one row with its headline (variant HEADLINE_ROW), to the results
    file, each stamped with the machine.

    The file is only ever appended to, under an exclusive lock and in one write, so two
    processes writing at once leave it whole.
    """
    path = Path(path) if path else RESULTS_DIR / "results.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    m = report.machine
    rows = [*report.card.rows, {"variant": HEADLINE_ROW, **report.headline}]
    for row in rows:
        metrics = {k: v for k, v in row.items() if k != "variant"}
        writer.writerow([stamp, report.name, report.mode, row["variant"], m.get("host"), m.get("cpu"),
                         m.get("device"), m.get("gpu"), m.get("torch"), m.get("commit"),
                         json.dumps(_jsonable(metrics)), json.dumps(_jsonable(report.config))])
    # filelock works on every OS (fcntl is Unix-only); emptiness is decided under the lock, so two
    # writers that create the file at the same moment write one header between them
    with FileLock(str(path) + ".lock"), open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            f.write((",".join(RESULT_FIELDS) + "\r\n").encode())
        else:
            f.seek(size - 1)
            if f.read(1) not in (b"\n", b"\r"):  # a line cut short (a writer killed mid-write): end it, so
                f.write(b"\r\n")                   # these rows are not glued onto it (it stays one bad line)
        f.write(buffer.getvalue().encode())
    return path


REQUIRED_FIELDS = ("bench", "time", "mode", "variant", "metrics")  # without these a file is not a results file


@dataclass
class ResultsFile:
    """One results file, read tolerantly: its good rows, and each line that was skipped (and why).

    `rejected` says why the whole file was skipped (empty, not a labkit results file); the file
    itself is never changed.
    """

    path: Path
    frame: pd.DataFrame
    rows: int = 0                                                         # data lines seen
    skipped: list[tuple[int, str, str]] = field(default_factory=list)   # (line number, why, the line)
    rejected: str | None = None

    def note(self) -> str | None:
        """One line for the user: which file, how many rows were skipped and why (None when all was read)."""
        name = shown(self.path)
        if self.rejected:
            return f"{name}: {self.rejected} — skipped"
        if not self.skipped:
            return None
        kinds = Counter(why.split(":")[0] for _, why, _ in self.skipped)
        lines = ", ".join(str(n) for n, _, _ in self.skipped[:5]) + (", …" if len(self.skipped) > 5 else "")
        return (f"{name}: {len(self.skipped)} of {self.rows} rows skipped "
                f"({'; '.join(f'{count} × {kind}' for kind, count in kinds.items())}; "
                f"line{'s' if len(self.skipped) > 1 else ''} {lines}) — "
                f"the other {self.rows - len(self.skipped)} read")


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when it is inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_row(fields: list[str], header: list[str]) -> str | None:
    """Why one parsed results line is unusable (None when it is a good row)."""
    if len(fields) != len(header):
        return f"wrong number of fields: {len(fields)}, expected {len(header)}"
    row = dict(zip(header, fields))
    empty = [name for name in REQUIRED_FIELDS if not row[name].strip()]
    if empty:
        return f"empty field: {empty[0]}"
    for name in ("metrics", "config"):
        if name in row and row[name]:
            try:
                value = json.loads(row[name])
            except ValueError:
                return f"{name} is not JSON: cut short?"
            if name == "metrics" and not isinstance(value, dict):
                return "metrics is not a JSON object"
    return None


def load(path: Path) -> ResultsFile:
    """Read a results file, skipping what cannot be read: lines cut short, the wrong number of fields,
    broken quoting or JSON, text that is not UTF-8; a file without labkit's columns is skipped whole.
    Every reader of results files (`read`, the report) goes through here."""
    path = Path(path)
    with open(path, "rb") as f:
        numbered = ((n, line.rstrip(b"\r\n")) for n, line in enumerate(f, start=1) if line.strip())
        first = next(numbered, None)
        if first is None:
            return ResultsFile(path, pd.DataFrame(), rejected="empty file (no header line)")
        try:
            header = next(csv.reader([first[1].decode("utf-8-sig")], strict=True))
        except (UnicodeDecodeError, csv.Error):
            return ResultsFile(path, pd.DataFrame(),
                               rejected="not a labkit results file (its first line is not CSV text)")
        missing = [name for name in REQUIRED_FIELDS if name not in header]
        if missing:  # decided from the first line: a large foreign file is not read any further
            return ResultsFile(path, pd.DataFrame(), rejected=f"not a labkit results file (no {missing[0]!r} column)")
        good, skipped, rows = [], [], 0
        for n, raw in numbered:
            try:
                text = raw.decode("utf-8")
                fields = next(csv.reader([text], strict=True))
            except UnicodeDecodeError:
                text, fields = raw.decode("utf-8", errors="replace"), None
                why = "not UTF-8 text"
            except csv.Error as error:
                fields, why = None, f"broken quoting: {error}"
            if fields == header:
                continue  # a second header: two results files concatenated
            rows += 1
            why = _check_row(fields, header) if fields is not None else why
            if why:
                skipped.append((n, why, text))
            else:
                good.append(fields)
    frame = pd.DataFrame(good, columns=header, dtype=object)
    frame = frame.mask(frame.eq(""))  # an empty field is a missing value, as pandas.read_csv reads it
    metrics = pd.json_normalize([json.loads(m) for m in frame["metrics"]])
    frame = pd.concat([frame.drop(columns=["metrics"]), metrics], axis=1)
    return ResultsFile(path, frame, rows=rows, skipped=skipped)


def read(path: Path | None = None) -> pd.DataFrame:
    """The results file as a DataFrame, each row's metrics spread into columns.

    Lines that cannot be read are skipped, with one line on stderr saying how many and why."""
    path = Path(path) if path else RESULTS_DIR / "results.csv"
    if not path.exists():
        raise LabkitError(f"No results file at {path}: run a comparison or `labkit bench NAME` first.")
    loaded = load(path)
    if loaded.rejected:
        raise LabkitError(f"{shown(path)}: {loaded.rejected}: give the path of a results file written by labkit.")
    if loaded.note():
        print(loaded.note(), file=sys.stderr)
    return loaded.frame
