"""The schedule explorer and the plots of notebook 04 (learning-rate schedules).

The explorer draws exactly what the scheduler object does, step by step (from
`techniques.schedules.lr_trace`), so stepping once per epoch instead of once per batch shows up.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from labkit.techniques import schedules
from labkit.ui import figure_png, text_summary
from labkit.ui.base import Explorer


# ----------------------------------------------------------------------------- plots
def plot_lr_traces(traces: dict[str, list[float]], steps_per_epoch: int, title: str = "Learning rate per batch") -> Figure:
    """One line per schedule: the rate each batch trained with, against epochs."""
    fig = Figure(figsize=(8.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, rates in traces.items():
        x = np.arange(len(rates)) / steps_per_epoch
        ax.plot(x, rates, label=name, linewidth=1.8)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_range_tests(tests: list[schedules.RangeTest], labels: list[str]) -> Figure:
    """Smoothed loss against the rate (log axis) for each range test, its suggestion marked."""
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for test, label in zip(tests, labels):
        line, = ax.plot(test.lrs, test.smoothed, linewidth=1.5, label=f"{label}: suggests {test.suggested_lr:.2g}")
        ax.axvline(test.suggested_lr, color=line.get_color(), linestyle=":", linewidth=1)
        ax.plot(test.lrs, test.losses, color=line.get_color(), alpha=0.15, linewidth=0.8)
    first = min(min(t.smoothed) for t in tests)
    start = max(t.smoothed[0] for t in tests)
    ax.set(xscale="log", xlabel="learning rate (grows every batch)", ylabel="training loss (smoothed; raw faint)",
           title="LR range test: one curve per seed, dotted = suggested rate", ylim=(0.8 * first, 1.6 * start))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def plot_seed_curves(summaries: dict[str, schedules.SeedSummary], target_acc: float | None = None,
                     title: str = "Test accuracy (mean over seeds, band = min to max)") -> Figure:
    """Test accuracy per epoch for each variant: the mean over seeds and the min–max band."""
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.subplots()
    for name, summary in summaries.items():
        accs = np.array([100 * f.history["test_acc"].to_numpy() for f in summary.fits if len(f.history) == summary.budget])
        if not len(accs):
            continue
        epochs = np.arange(1, accs.shape[1] + 1)
        line, = ax.plot(epochs, accs.mean(0), marker="o", markersize=3, label=name)
        ax.fill_between(epochs, accs.min(0), accs.max(0), color=line.get_color(), alpha=0.12)
    if target_acc is not None:
        ax.axhline(100 * target_acc, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
    lows = [100 * f.history["test_acc"].iloc[min(2, len(f.history) - 1)] for s in summaries.values() for f in s.fits]
    ax.set_ylim(bottom=max(0, min(lows) - 2))  # the first epochs are far below: zoom on where schedules differ
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_epochs_vs_target(curves: dict[str, list[dict]], budget: int) -> Figure:
    """Mean epochs to reach each target accuracy (from `schedules.epochs_vs_target`; never reached:
    budget + 1, drawn hollow)."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, points in curves.items():
        line, = ax.plot([100 * p["target"] for p in points], [p["epochs"] for p in points], label=name)
        for p in points:
            ax.plot(100 * p["target"], p["epochs"], "o", color=line.get_color(),
                    markerfacecolor="white" if p["censored"] else line.get_color())
    ax.axhline(budget, color="grey", linestyle="--", linewidth=1, label=f"budget ({budget} epochs)")
    ax.set(xlabel="target test accuracy (%)", ylabel="epochs to reach it (mean over seeds)",
           title="Epochs to target (hollow: some seed never got there, counted as budget + 1)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_lr_sweep(sweep: dict[float, schedules.SeedSummary], num_classes: int) -> Figure:
    """Final accuracy and epochs to target against a constant rate, each seed a dot; diverged runs in red."""
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_acc, ax_ep = fig.subplots(1, 2)
    for lr, summary in sweep.items():
        for f, epochs in zip(summary.fits, summary.epochs):
            bad = schedules.diverged(f, num_classes)
            color = "tab:red" if bad else "tab:blue"
            ax_acc.plot(lr, 100 * f.final_acc, "o", color=color, alpha=0.7)
            ax_ep.plot(lr, epochs, "o", color=color, alpha=0.7)
    lrs = list(sweep)
    means = [s.row() for s in sweep.values()]  # means over seeds
    ax_acc.plot(lrs, [100 * m["accuracy"] for m in means], color="tab:blue", linewidth=1)
    ax_ep.plot(lrs, [m["epochs_to_target"] for m in means], color="tab:blue", linewidth=1)
    budget = next(iter(sweep.values())).budget
    ax_ep.axhline(budget + 1, color="grey", linestyle="--", linewidth=1)
    ax_ep.annotate("never reached (budget + 1)", xy=(0.02, budget + 1), xycoords=("axes fraction", "data"),
                   xytext=(0, -4), textcoords="offset points", fontsize=8, va="top")
    ax_acc.set(xscale="log", xlabel="constant learning rate", ylabel="final test accuracy (%)",
               title="Where training ends (red: diverged)")
    ax_ep.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ep.set(xscale="log", xlabel="constant learning rate", ylabel="epochs to target",
              title="How fast it gets there")
    for ax in (ax_acc, ax_ep):
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])  # label the rates tried, not powers of ten
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
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

    def _draw(self) -> None:
        settings = dict(lr=self.lr.value, epochs=self.epochs.value, steps_per_epoch=self.steps_per_epoch.value,
                        warmup_epochs=self.warmup_epochs.value)
        rates = schedules.lr_trace(self.schedule.value, step_per=self.step_per.value, **settings)
        planned = schedules.lr_trace(self.schedule.value, step_per="batch", **settings)
        traces = {f"stepped every {self.step_per.value}": rates}
        if self.step_per.value == "epoch":
            traces["planned (stepped every batch)"] = planned
        fig = plot_lr_traces(traces, self.steps_per_epoch.value,
                             title=f"{self.schedule.value}: the rate each batch trains with")
        self.image.value = figure_png(fig)
        trace = schedules.summarize_trace(rates)
        self.show_summary(text_summary(self.schedule.value, {
            "step() every": self.step_per.value, "first lr": trace["first"], "max lr": trace["max"],
            "last lr": trace["last"], "mean lr": trace["mean"],
            "mean lr as planned": schedules.summarize_trace(planned)["mean"]}))
