"""Widgets: the live comparison panel, and small helpers the explorers share.

Explorers (schedule, momentum, bit-width, temperature, sparsity, ...) live beside this file,
one module per technique: `labkit.ui.<technique>`. They share one base, `labkit.ui.base.Explorer`
(one-line errors, the plain-text summary); panels with Run / Stop share `labkit.ui.base.RunPanel`.

Widgets are thin: they call the same functions the CLI and the tests call and draw what comes
back. Every widget also prints a plain-text summary, so tests and static viewers see numbers.
"""

from __future__ import annotations

import html
import time
from typing import Callable

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labkit.errors import LabkitError
from labkit.results import RATIO_NOTE, ResultCard, row_from_fit
from labkit.train import FitResult, FitState
from labkit.ui.base import RunPanel
from labkit.ui.style import (GREY, VERMILLION, FigureImage, figure_png, lab_figure, legend_below, log_axis,
                             new_figure, series_style, show)

__all__ = ["ComparisonPanel", "FigureImage", "figure_png", "plot_curves", "plot_roofline", "show", "text_summary"]

# A variant trains (or measures) one configuration. It receives the panel's callbacks, to pass on
# to `train.fit(..., callbacks=callbacks)`, and returns a FitResult or a card row (a dict).
Variant = Callable[[list], "FitResult | dict"]


@lab_figure
def plot_curves(histories: dict[str, pd.DataFrame], target_acc: float | None = None) -> Figure:
    """Training loss and test accuracy per epoch, one line per variant (own colour, marker and dash)."""
    fig = new_figure(9, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, hist) in enumerate(histories.items()):
        if len(hist):
            style = series_style(i, len(hist))
            ax_loss.plot(hist["epoch"], hist["train_loss"], label=name, **style)
            ax_acc.plot(hist["epoch"], 100 * hist["test_acc"], label=name, **style)
    if target_acc is not None:
        ax_acc.axhline(100 * target_acc, color=GREY, linestyle="--", linewidth=1, label="target")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_below(fig)
    return fig


class _PanelObserver:
    """The panel's callback inside fit(): records each epoch for the live curves and checks Stop."""

    REDRAW_EVERY_S = 1.0  # drawing a PNG costs ~0.3 s: more often would slow fast epochs down

    def __init__(self, panel: "ComparisonPanel", variant: str):
        self.panel, self.variant = panel, variant
        self.last_draw = 0.0

    def on_batch_end(self, state: FitState) -> bool:
        return self.panel.stop_requested()

    def on_epoch_end(self, state: FitState) -> bool:
        self.panel._histories[self.variant] = pd.DataFrame(state.rows)
        self.panel.show_status(f"{self.variant}: epoch {state.epoch}, test accuracy {100 * state.rows[-1]['test_acc']:.1f} %")
        if time.monotonic() - self.last_draw >= self.REDRAW_EVERY_S:
            self.panel._redraw()
            self.last_draw = time.monotonic()
        return self.panel.stop_requested()


class ComparisonPanel(RunPanel):
    """Choose variants, Run / Stop, watch live curves, read the result card with ratios.

    `panel.run()` from code runs the chosen variants one after another in this thread and
    returns the ResultCard; the Run button does the same in a background thread so Stop stays
    responsive. Stop (or Ctrl-C) ends the running variant cleanly: finished rows are kept, and
    so are they when a variant fails (its error is one line in the panel).
    """

    def __init__(self, variants: dict[str, Variant], *, baseline: str | None = None,
                 target_acc: float | None = None, title: str = "comparison", selected: list[str] | None = None):
        if not variants:
            raise LabkitError("A comparison panel needs at least one variant.")
        super().__init__()
        self.variants = dict(variants)
        self.baseline = baseline or next(iter(self.variants))
        if self.baseline not in self.variants:
            raise LabkitError(f"baseline {self.baseline!r} is not one of the variants: {', '.join(self.variants)}.")
        self.target_acc = target_acc
        self.title = title
        self.card = ResultCard(baseline=self.baseline, title=title)
        self._histories: dict[str, pd.DataFrame] = {}

        chosen = selected or list(self.variants)
        self.checkboxes = {name: widgets.Checkbox(value=name in chosen, description=name, indent=False,
                                                  layout=widgets.Layout(width="auto"))
                           for name in self.variants}
        self.locked = list(self.checkboxes.values())
        self.progress = widgets.IntProgress(value=0, min=0, max=len(chosen), description="variants")
        self.curves = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        self.table = widgets.HTML()
        self.show_status("ready: tick variants and press Run")
        self.widget.children = [
            widgets.HTML(f"<b>{html.escape(title)}</b> — baseline: <code>{html.escape(self.baseline)}</code>"
                         + (f", target accuracy {100 * target_acc:.1f} %" if target_acc else "")),
            widgets.HBox(list(self.checkboxes.values())),
            widgets.HBox([self.run_button, self.stop_button, self.progress]),
            self.message, self.curves, self.table,
        ]
        self.table.add_class("labkit-card")

    # --- running ---
    def selected(self) -> list[str]:
        return [name for name, box in self.checkboxes.items() if box.value]

    def run(self, names: list[str] | None = None, *, echo: bool = True) -> ResultCard:
        """Run the variants (the ticked ones by default) and return the card; prints its text summary."""
        names = list(names) if names is not None else self.selected()
        unknown = [n for n in names if n not in self.variants]
        if unknown:
            raise LabkitError(f"Unknown variant(s) {', '.join(unknown)}: choose from {', '.join(self.variants)}.")
        if not names:
            raise LabkitError("No variant is ticked: tick at least one, then press Run.")
        if self.baseline not in names:
            names.insert(0, self.baseline)  # ratios need the baseline measured in the same run
        self.card = ResultCard(baseline=self.baseline, title=self.title)
        self._histories = {}
        self.progress.max, self.progress.value = len(names), 0
        with self.running():
            for name in names:
                if self.stop_requested() or self._run_variant(name).get("interrupted"):
                    break
        stopped = self.stop_requested() or any(r.get("interrupted") for r in self.card.rows)
        self._redraw()
        self.show_summary(self.card.to_text(), echo=echo)
        diverged = [r["variant"] for r in self.card.rows if r.get("diverged")]
        self.show_status(("stopped: finished rows kept" if stopped else "done")
                         + f" ({len(self.card.rows)} of {len(names)} variants)"
                         + (f"; diverged (the loss became inf/NaN, its accuracy is chance — lower the rate): "
                            f"{', '.join(diverged)}" if diverged else ""))
        return self.card

    def _run_variant(self, name: str) -> dict:
        """Run one variant, add its row to the card and redraw; Ctrl-C counts as Stop."""
        self.show_status(f"running {name} …")
        try:
            outcome = self.variants[name]([_PanelObserver(self, name)])
        except KeyboardInterrupt:
            self._stop.set()
            return {}
        if isinstance(outcome, FitResult):
            if outcome.target_acc is None:
                outcome.target_acc = self.target_acc  # time-to-target read from its history
            self._histories[name] = outcome.history
        row = row_from_fit(name, outcome) if isinstance(outcome, FitResult) else {"variant": name, **outcome}
        self.card.add(row)
        self.progress.value += 1
        self._show_card()
        self._redraw()
        return row

    def background_work(self) -> None:
        self.run(echo=False)

    def wait(self, timeout: float | None = None) -> ResultCard:
        """Wait for a run started by the Run button to finish; returns the card (finished rows kept)."""
        super().wait(timeout)
        return self.card

    # --- drawing ---
    def _redraw(self) -> None:
        self.draw(self.curves, plot_curves(self._histories, self.target_acc))

    def _show_card(self) -> None:
        self.table.value = self.card._repr_html_() + f"<small>{RATIO_NOTE}</small>"


def text_summary(title: str, values: dict[str, float | str]) -> str:
    """One line 'title: key=value, …' that explorers print beside their plot."""
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    return f"{title}: " + ", ".join(parts)


@lab_figure
def plot_roofline(points: list[dict], peak_gflops: float, bandwidth_gbs: float) -> Figure:
    """Measured matmul GFLOP/s (from `bench.matmul_gflops`) against arithmetic intensity, under
    the roofline min(peak, bandwidth × intensity), with the best measured rate dashed."""
    fig = new_figure(6.5, 4.4)
    ax = fig.subplots()
    intensities = [p["intensity"] for p in points]
    lo, hi = min(intensities) / 2, max(intensities) * 2
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak_gflops, bandwidth_gbs * i) for i in grid], color="black", linestyle="-",
            label=f"roofline: estimated peak {peak_gflops:.0f} GFLOP/s, bandwidth {bandwidth_gbs:.0f} GB/s")
    best = max(p["gflops"] for p in points)
    ax.axhline(best, color=VERMILLION, linestyle="--", linewidth=1, label=f"best measured {best:.0f} GFLOP/s")
    ax.scatter(intensities, [p["gflops"] for p in points], color=VERMILLION, marker="D", zorder=3,
               label="measured matmul (n×n)")
    for i, p in enumerate(sorted(points, key=lambda p: p["intensity"])):  # labels alternate below / above
        ax.annotate(f"n={p['n']}", (p["intensity"], p["gflops"]), textcoords="offset points",
                    xytext=(5, -11 if i % 2 == 0 else 5), fontsize=7)
    log_axis(ax, "x")
    log_axis(ax, "y")
    rates = [p["gflops"] for p in points] + [peak_gflops]
    ax.set_ylim(min(rates) / 2.5, max(rates) * 1.6)  # room for the labels below the lowest and above the top point
    ax.set(xlabel="arithmetic intensity (FLOP / byte)", ylabel="GFLOP/s",
           title=f"Roofline of this {points[0]['device'].upper()} ({points[0]['dtype']})")
    legend_below(fig, ncols=1)
    return fig
