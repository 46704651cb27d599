"""The schedule explorer and the plots of notebook 04 (learning-rate schedules).

The explorer draws exactly what the scheduler object does, step by step (from
`techniques.schedules.lr_trace`), so stepping once per epoch instead of once per batch shows up.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from labkit.errors import check_number
from labkit.techniques import schedules
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import BLUE, GREY, VERMILLION, floor_marks, lab_figure, legend_right, log_axis, new_figure, series_style


# ----------------------------------------------------------------------------- plots
@lab_figure
def plot_lr_traces(traces: dict[str, list[float]], steps_per_epoch: int, title: str = "Learning rate per batch") -> Figure:
    """One line per schedule: the rate each batch trained with, against epochs (own colour, dash, marker)."""
    fig = new_figure(9.5, 3.4)
    ax = fig.subplots()
    for i, (name, rates) in enumerate(traces.items()):
        x = np.arange(len(rates)) / steps_per_epoch
        ax.plot(x, rates, label=name, linewidth=1.8, **series_style(i, len(rates)))
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    legend_right(ax)
    return fig


@lab_figure
def plot_range_tests(tests: list[schedules.RangeTest], labels: list[str]) -> Figure:
    """Smoothed loss against the rate (log axis) for each range test, its suggestion marked."""
    fig = new_figure(8.8, 3.8)
    ax = fig.subplots()
    for i, (test, label) in enumerate(zip(tests, labels)):
        style = series_style(i, len(test.lrs))
        ax.plot(test.lrs, test.smoothed, linewidth=1.5, label=f"{label}: suggests {test.suggested_lr:.2g}", **style)
        ax.axvline(test.suggested_lr, color=style["color"], linestyle=":", linewidth=1)
        ax.plot(test.lrs, test.losses, color=style["color"], alpha=0.15, linewidth=0.8)
    first = min(min(t.smoothed) for t in tests)
    start = max(t.smoothed[0] for t in tests)
    log_axis(ax, "x", fmt="{:g}")
    ax.set(xlabel="learning rate (grows every batch)", ylabel="training loss (smoothed; raw faint)",
           title="LR range test: loss against learning rate, one curve per seed (dotted: suggested rate)",
           ylim=(0.8 * first, 1.6 * start))
    legend_right(ax)
    return fig


@lab_figure
def plot_seed_curves(summaries: dict[str, schedules.SeedSummary], target_acc: float | None = None,
                     title: str = "Test accuracy (mean over seeds, band = min to max)") -> Figure:
    """Test accuracy per epoch for each variant: the mean over seeds (own colour, dash and marker) and the
    min–max band. The y axis zooms on the last epochs, where schedules differ; earlier, lower values are
    drawn on its floor (▼) so no line is cut off."""
    fig = new_figure(10, 3.9)
    ax = fig.subplots()
    lows = [100 * f.history["test_acc"].iloc[min(2, len(f.history) - 1)] for s in summaries.values() for f in s.fits
            if len(f.history)]
    floor = max(0.0, min(lows) - 2) if lows else 0.0
    clipped = False
    for i, (name, summary) in enumerate(summaries.items()):
        accs = np.array([100 * f.history["test_acc"].to_numpy() for f in summary.fits if len(f.history) == summary.budget])
        if not len(accs):
            continue
        epochs = np.arange(1, accs.shape[1] + 1)
        style = series_style(i)
        mean = accs.mean(0)
        clipped |= bool((accs.min(0) < floor).any())
        ax.plot(epochs, np.maximum(mean, floor), label=name, markersize=4, **style)
        floor_marks(ax, epochs, mean, floor, style["color"])
        ax.fill_between(epochs, np.maximum(accs.min(0), floor), np.maximum(accs.max(0), floor), color=style["color"],
                        alpha=0.12)
    if target_acc is not None:
        ax.axhline(100 * target_acc, color=GREY, linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
    ax.set_ylim(bottom=floor - 0.5)
    if clipped:
        ax.annotate(f"▼ lower values drawn at {floor:.0f} %", (0.99, 0.02), xycoords="axes fraction", ha="right",
                    va="bottom", fontsize=7, color=GREY)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_right(ax)
    return fig


@lab_figure
def plot_epochs_vs_target(curves: dict[str, list[dict]], budget: int) -> Figure:
    """Mean epochs to reach each target accuracy (from `schedules.epochs_vs_target`; never reached:
    budget + 1, drawn hollow)."""
    fig = new_figure(10, 3.7)
    ax = fig.subplots()
    for i, (name, points) in enumerate(curves.items()):
        style = series_style(i)
        ax.plot([100 * p["target"] for p in points], [p["epochs"] for p in points], label=name,
                color=style["color"], linestyle=style["linestyle"])
        for p in points:
            ax.plot(100 * p["target"], p["epochs"], marker=style["marker"], color=style["color"], linestyle="none",
                    markerfacecolor="white" if p["censored"] else style["color"])
    ax.axhline(budget, color=GREY, linestyle="--", linewidth=1, label=f"budget ({budget} epochs)")
    ax.plot([], [], marker="o", color=GREY, markerfacecolor="white", linestyle="none",
            label="hollow: some seed never got there\n(counted as budget + 1)")
    ax.set(xlabel="target test accuracy (%)", ylabel="epochs to reach it (mean over seeds)",
           title="Epochs to reach each target accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_right(ax)
    return fig


@lab_figure
def plot_lr_sweep(sweep: dict[float, schedules.SeedSummary], num_classes: int) -> Figure:
    """Final accuracy and epochs to target against a constant rate, each seed a dot; diverged runs as ×."""
    fig = new_figure(10, 3.9)
    ax_acc, ax_ep = fig.subplots(1, 2)
    for lr, summary in sweep.items():
        for f, epochs in zip(summary.fits, summary.epochs):
            bad = schedules.diverged(f, num_classes)
            mark = dict(marker="x", color=VERMILLION) if bad else dict(marker="o", color=BLUE, alpha=0.6)
            ax_acc.plot(lr, 100 * f.final_acc, linestyle="none", **mark)
            ax_ep.plot(lr, epochs, linestyle="none", **mark)
    lrs = list(sweep)
    means = [s.row() for s in sweep.values()]  # means over seeds
    ax_acc.plot(lrs, [100 * m["accuracy"] for m in means], color=BLUE, linewidth=1)
    ax_ep.plot(lrs, [m["epochs_to_target"] for m in means], color=BLUE, linewidth=1)
    budget = next(iter(sweep.values())).budget
    ax_ep.axhline(budget + 1, color=GREY, linestyle="--", linewidth=1)
    ax_ep.annotate("never reached (budget + 1)", xy=(0.02, budget + 1), xycoords=("axes fraction", "data"),
                   xytext=(0, -4), textcoords="offset points", fontsize=8, va="top")
    ax_acc.set(xscale="log", xlabel="constant learning rate", ylabel="final test accuracy (%)",
               title="Final test accuracy")
    ax_ep.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ep.set(xscale="log", xlabel="constant learning rate", ylabel="epochs to target",
              title="Epochs to target")
    for ax in (ax_acc, ax_ep):
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])  # label the rates tried, not powers of ten
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax_acc.plot([], [], marker="o", color=BLUE, linestyle="-", label="one seed (line: mean over seeds)")
    ax_acc.plot([], [], marker="x", color=VERMILLION, linestyle="none", label="diverged")
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncols=2)
    return fig


# ----------------------------------------------------------------------------- the explorer
class ScheduleExplorer(Explorer):
    """Pick a schedule, a peak rate, a budget and how often `scheduler.step()` is called; see the rate per batch.

    Every change redraws the plot and rewrites a one-line text summary (`explorer.summary`).
    A bad value (lr ≤ 0, zero steps) shows a one-line message in the widget, never a traceback.
    """

    def __init__(self, schedule: str = "onecycle", lr: float = 0.05, epochs: int = 12, steps_per_epoch: int = 79,
                 warmup_epochs: int = 1, step_per: str = "batch"):
        super().__init__(framed=True)
        style = {"description_width": "120px"}
        self.schedule = widgets.Dropdown(options=schedules.SCHEDULES, value=schedule, description="schedule", style=style)
        self.lr = widgets.FloatText(value=lr, step=0.01, description="peak lr", style=style)
        self.epochs = widgets.IntSlider(value=epochs, min=1, max=40, description="epochs", style=style,
                                        continuous_update=False)
        self.steps_per_epoch = widgets.IntText(value=steps_per_epoch, description="batches / epoch", style=style)
        self.warmup_epochs = widgets.IntSlider(value=warmup_epochs, min=0, max=10, description="warm-up epochs",
                                               style=style, continuous_update=False)
        self.step_per = widgets.ToggleButtons(options=["batch", "epoch"], value=step_per,
                                              description="step() every", style=style)
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))
        for control in self.controls:
            control.observe(lambda _: self.update(), names="value")
        self.widget.children = [widgets.HBox([widgets.VBox(self.controls[:3]), widgets.VBox(self.controls[3:])]),
                                self.message, self.text, self.image]
        self.update()

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.schedule, self.lr, self.epochs, self.steps_per_epoch, self.warmup_epochs, self.step_per]

    def update(self) -> str:
        """Recompute the trace from the controls, redraw, and return (and show) the text summary."""
        self.attempt(self._draw)
        return self.summary

    MAX_BATCHES_PER_EPOCH = 1000  # the trace steps a scheduler once per batch: 40 epochs × 1000 take ~2 s

    def _draw(self) -> None:
        check_number("batches / epoch", self.steps_per_epoch.value, low=1, high=self.MAX_BATCHES_PER_EPOCH,
                     integer=True, hint="the shape of the schedule is the same at any count")
        settings = dict(lr=self.lr.value, epochs=self.epochs.value, steps_per_epoch=self.steps_per_epoch.value,
                        warmup_epochs=self.warmup_epochs.value)
        rates = schedules.lr_trace(self.schedule.value, step_per=self.step_per.value, **settings)
        planned = schedules.lr_trace(self.schedule.value, step_per="batch", **settings)
        traces = {f"stepped every {self.step_per.value}": rates}
        if self.step_per.value == "epoch":
            traces["planned (stepped every batch)"] = planned
        fig = plot_lr_traces(traces, self.steps_per_epoch.value,
                             title=f"{self.schedule.value}: the rate each batch trains with")
        self.draw(self.image, fig)
        trace = schedules.summarize_trace(rates)
        self.show_summary(text_summary(self.schedule.value, {
            "step() every": self.step_per.value, "first lr": trace["first"], "max lr": trace["max"],
            "last lr": trace["last"], "mean lr": trace["mean"],
            "mean lr as planned": schedules.summarize_trace(planned)["mean"]}))
