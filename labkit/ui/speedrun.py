"""The speedrun toggle panel: tick techniques, Run, and see time to target next to every earlier run.

Thin: each run calls `labkit.techniques.speedrun.train_run` (the function the ablation and
`labkit bench speedrun` use) and draws what comes back. Every run also prints a plain-text summary.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.techniques import speedrun as sr
from labkit.ui import text_summary
from labkit.ui.base import RunPanel
from labkit.ui.style import (BLUE, GREY, VERMILLION, dots, floor_marks, gap, lab_figure, legend_right, log_axis, new_figure,
                             series_style)


@lab_figure
def plot_runs(entries: list[dict], target_acc: float) -> Figure:
    """Test accuracy against training seconds (the clock of time to target), one styled line per run.
    The y axis starts 25 points under the target at most; lower values are drawn on its floor (▼)."""
    fig = new_figure(9.5, 3.8)
    ax = fig.subplots()
    accs = [100 * e["history"]["test_acc"] for e in entries if len(e["history"])]
    low, high = (min(a.min() for a in accs), max(a.max() for a in accs)) if accs else (50, 100)
    floor = max(low - 2, 100 * target_acc - 25)
    for i, e in enumerate(entries):
        hist = e["history"]
        if len(hist):
            style = series_style(i, len(hist))
            ax.plot(hist["train_time_s"], np.maximum(100 * hist["test_acc"], floor), label=f"#{e['run']} {e['label']}",
                    markersize=4, **style)
            floor_marks(ax, hist["train_time_s"], 100 * hist["test_acc"], floor, style["color"])
            if e["time_to_target_s"] is not None:  # circle the evaluation that first reached the target
                hit = hist[hist["train_time_s"] == e["time_to_target_s"]]
                ax.plot(hit["train_time_s"], 100 * hit["test_acc"], marker="o", markersize=11, mfc="none",
                        color=style["color"], linestyle="none")
    ax.axhline(100 * target_acc, color=GREY, linestyle="--", linewidth=1, label="target")
    if entries:
        ax.plot([], [], marker="o", markersize=11, mfc="none", color=GREY, linestyle="none",
                label="circle: first evaluation at target")
    ax.set(xlabel="training seconds (evaluation off the clock)", ylabel="test accuracy (%)",
           title="Test accuracy against training seconds, every run so far")
    ax.set_ylim(floor - 0.5, min(100, max(high, 100 * target_acc) + 2))
    if low < floor:
        ax.annotate(f"▼ lower values drawn at {floor:.0f} %", (0.99, 0.02), xycoords="axes fraction", ha="right",
                    va="bottom", fontsize=7, color=GREY)
    if entries:
        legend_right(ax)
    return fig


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@lab_figure
def plot_ablation(gains: list[dict], target_acc: float) -> Figure:
    """Left: time to target per ablation row, bars from 0 (mean ± std over seeds); a row some seeds missed
    is hatched and hollow, a row no seed finished or that was skipped is a labelled gap.
    Right: final test accuracy per row as a dot plot (mean ± std): the rows differ by a point or two."""
    fig = new_figure(11.5, 0.42 * len(gains) + 2.2)
    ax_t, ax_a = fig.subplots(1, 2, sharey=True)
    names = [g["variant"] for g in gains]
    ys = np.arange(len(gains))
    for y, g in zip(ys, gains):
        if g.get("skipped"):
            gap(ax_t, y, "skipped on this device")
            gap(ax_a, y, "skipped")
            continue
        t = g["time_to_target_s"]
        if _missing(t):
            gap(ax_t, y, "target not reached")
        else:
            got, runs = (int(v) for v in g["reached"].split("/"))
            partial = got != runs
            ax_t.barh(y, t, xerr=g["ttt_std_s"], capsize=3, color="white" if partial else BLUE,
                      hatch="///" if partial else "", edgecolor=BLUE, linewidth=1)
            gain = g.get("marginal_gain")
            label = f"{t:.1f} s" + (f"  ({gain:.2f}× vs row above)" if gain else "")
            if partial:
                label += f", only {got} of {runs} seeds reached it"
            ax_t.annotate(label, (t + g["ttt_std_s"], y), xytext=(4, 0), textcoords="offset points", va="center",
                          fontsize=8)
        dots(ax_a, [y], [100 * g["accuracy"]], [g["acc_std_pt"]], i=2)
    ax_t.set_yticks(ys, names)
    ax_t.invert_yaxis()
    longest = max([g["time_to_target_s"] + g["ttt_std_s"] for g in gains
                   if not g.get("skipped") and not _missing(g["time_to_target_s"])] or [1])
    ax_t.set_xlim(0, longest * 2.3)  # room for the labels
    ax_t.set(xlabel="seconds to target (mean ± std over seeds)", ylabel="switches added top to bottom",
             title=f"Time to {100 * target_acc:.0f} % test accuracy")
    accs = [100 * g["accuracy"] for g in gains if not g.get("skipped")]
    ax_a.axvline(100 * target_acc, color=GREY, linestyle="--", linewidth=1)
    ax_a.annotate("target", (100 * target_acc, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -2),
                  textcoords="offset points", va="top", fontsize=7, color=GREY)
    ax_a.set_xlim(min(accs + [100 * target_acc]) - 2, max(accs) + 2)
    ax_a.set(xlabel="test accuracy at the end of the budget (%, axis starts near the data)",
             title="Final test accuracy (mean ± std)")
    for ax in (ax_t, ax_a):
        ax.grid(axis="y", visible=False)
    return fig


@lab_figure
def plot_claim(table: pd.DataFrame) -> Figure:
    """Measured time to target against the formula's prediction (log-log); unreached runs on the top edge."""
    fig = new_figure(7.6, 4.4)
    ax = fig.subplots()
    ok = table.dropna(subset=["time_to_target_s"])
    missed = table[table["time_to_target_s"].isna()]
    for i, (width, part) in enumerate(ok.groupby("width")):
        style = series_style(i)
        ax.scatter(part["predicted_s"], part["time_to_target_s"], s=20 + part["batch_size"] / 8, alpha=0.8,
                   color=style["color"], marker=style["marker"],
                   label=f"MLP width {width} ({int(part['params'].iloc[0]):,} params)")
    lo = min(table["predicted_s"].min(), ok["time_to_target_s"].min() if len(ok) else 1) / 2
    hi = max(table["predicted_s"].max(), ok["time_to_target_s"].max() if len(ok) else 1) * 2
    if len(missed):
        ax.scatter(missed["predicted_s"], [hi / 1.3] * len(missed), marker="x", color=VERMILLION,
                   label="never reached the target (drawn at the top)")
    ax.plot([lo, hi], [lo, hi], color=GREY, linestyle="--", linewidth=1, label="measured = predicted")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted by c·params/(lr·batch) (s)",
           ylabel="measured time to target (s)", title="Measured against predicted time to target\n(marker size: batch size)")
    legend_right(ax)
    return fig


def entry_text(entry: dict, target_acc: float) -> str:
    """One run as one line of text."""
    t = entry["time_to_target_s"]
    reached = f"{t:.2f} s to {100 * target_acc:.0f} %" if t is not None else f"did not reach {100 * target_acc:.0f} %"
    return text_summary(f"run #{entry['run']} [{entry['label']}] seed {entry['seed']}",
                        {"time_to_target": reached, "final_acc_pct": 100 * entry["final_acc"],
                         "train_s": entry["train_time_s"], "code_hash": entry["code_hash"],
                         **({"skipped": "; ".join(entry["skipped"])} if entry["skipped"] else {})})


class SpeedrunPanel(RunPanel):
    """Checkboxes for the switches, Run / Stop, a leaderboard of every run so far and their curves.

    `panel.run(["in_memory", "momentum"])` from code does what the Run button does (in this thread)
    and returns the run's entry; the button runs in a background thread so Stop stays responsive.
    """

    def __init__(self, cfg: sr.SpeedrunConfig, splits, source, *, device: str = "auto",
                 ticked: list[str] | None = None):
        sr.check_config(cfg)
        super().__init__()
        self.cfg, self.splits, self.source, self.device = cfg, splits, source, device
        self.entries: list[dict] = []
        ticked = sr.check_switches(ticked or [])
        self.checkboxes = {s: widgets.Checkbox(value=s in ticked, description=s, indent=False,
                                               layout=widgets.Layout(width="auto")) for s in sr.SWITCHES}
        self.locked = list(self.checkboxes.values())
        self.seed = widgets.BoundedIntText(value=0, min=0, max=10_000, description="seed",
                                           layout=widgets.Layout(width="140px"))
        self.curves = widgets.Image(format="png", layout=widgets.Layout(max_width="850px"))
        self.table = widgets.HTML()
        self.show_status("tick techniques and press Run")
        self.widget.children = [
            widgets.HTML(f"<b>Speedrun</b> — target {100 * cfg.target_acc:.0f} % test accuracy, budget {cfg.epochs} "
                         f"epochs; all boxes empty = the naive first attempt"),
            widgets.HBox(list(self.checkboxes.values()), layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.seed, self.run_button, self.stop_button, self.message]),
            self.curves, self.table,
        ]
        self.table.add_class("labkit-card")

    def ticked(self) -> list[str]:
        return [s for s, box in self.checkboxes.items() if box.value]

    def run(self, switches: list[str] | None = None, seed: int | None = None, echo: bool = True) -> dict:
        """Train the ticked switches (or `switches`) once; add the run to the leaderboard; print its summary."""
        switches = sr.check_switches(self.ticked() if switches is None else switches)
        seed = self.seed.value if seed is None else seed
        cfg = sr.with_switches(self.cfg, switches)
        with self.running():
            self.show_status(f"running {'+'.join(switches) or 'naive'} …")
            result = sr.train_run(cfg, self.splits, self.source, seed, device=self.device, callbacks=[self])
        entry = self.add(result, echo=echo)
        self.show_status("stopped: the run so far is kept" if result.fit.interrupted else "done")
        return entry

    def background_work(self) -> None:
        self.run(echo=False)

    def add(self, result: sr.Run, echo: bool = True) -> dict:
        """Put a finished run (from here or from `sr.train_run`) on the leaderboard, redraw, show its summary."""
        entry = {"run": len(self.entries) + 1, **result.as_row()}
        self.entries.append(entry)
        self.redraw()
        self.show_summary(entry_text(entry, self.cfg.target_acc), echo=echo)
        return entry

    def leaderboard(self) -> pd.DataFrame:
        """Every run so far, fastest to target first; runs that missed the target last."""
        if not self.entries:
            return pd.DataFrame(columns=["run", "switches", "seed", "time_to_target_s", "final_acc", "code_hash"])
        frame = pd.DataFrame([{k: e[k] for k in ("run", "label", "seed", "time_to_target_s", "final_acc",
                                                 "train_time_s", "interrupted", "code_hash")} for e in self.entries])
        frame = frame.rename(columns={"label": "switches"})
        return frame.sort_values("time_to_target_s", na_position="last").set_index("run")

    # --- callbacks from train_run: Stop ends the run after the current batch ---
    def on_batch_end(self, state) -> bool:
        return self.stop_requested()

    def on_epoch_end(self, state) -> bool:
        last = state.rows[-1]
        self.show_status(f"epoch {last['epoch']:.1f}: test accuracy {100 * last['test_acc']:.1f} %")
        return self.stop_requested()

    def redraw(self) -> None:
        self.draw(self.curves, plot_runs(self.entries, self.cfg.target_acc))
        self.table.value = self.leaderboard().to_html(float_format=lambda v: f"{v:.4g}", na_rep="not reached")
