"""Charts and the pipeline explorer for notebooks/02_data_loading.ipynb.

The explorer only calls `labkit.techniques.dataloading` (`effective_setting`, `seeded_model`,
`measure`: what the tests and the CLI use) and draws the StepTimes it returns; it also prints a
one-line text summary.
"""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labkit import env
from labkit.results import ResultCard
from labkit.techniques import dataloading as dl
from labkit.ui import figure_png, text_summary
from labkit.ui.base import Explorer

WAIT_COLOR, COMPUTE_COLOR = "tab:red", "tab:blue"


def plot_timelines(runs: dict[str, dl.StepTimes], title: str = "Where each training step's time goes") -> Figure:
    """One panel per run: every step as a bar, waiting for data (red) stacked under computing (blue)."""
    fig = Figure(figsize=(4.2 * len(runs) + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for ax, (name, t) in zip(axes, runs.items()):
        steps = range(1, len(t.wait_s) + 1)
        wait = [1e3 * s for s in t.wait_s]
        ax.bar(steps, wait, color=WAIT_COLOR, label="waiting for data (next(iterator))")
        ax.bar(steps, [1e3 * s for s in t.compute_s], bottom=wait, color=COMPUTE_COLOR,
               label="computing (copy, forward, backward, step)")
        ax.set(xlabel="timed training step", title=f"{name}\n{t.wait_pct:.0f} % waiting, {t.samples_per_s:,.0f} samples/s")
        ax.grid(axis="y", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("milliseconds per step")
    axes[0].legend(fontsize="small", loc="upper left")
    fig.suptitle(title)
    return fig


def plot_wait_compute(card: ResultCard, title: str = "Mean time per training step") -> Figure:
    """One horizontal bar per card row: mean ms waiting for data (red), then computing (blue)."""
    names = card.variants
    fig = Figure(figsize=(8.5, 0.55 * len(names) + 1.5), layout="constrained")
    ax = fig.subplots()
    ys = list(range(len(names)))[::-1]  # first configuration on top
    waits = [card.value(n, "wait_ms") for n in names]
    computes = [card.value(n, "compute_ms") for n in names]
    ax.barh(ys, waits, color=WAIT_COLOR, label="waiting for data")
    ax.barh(ys, computes, left=waits, color=COMPUTE_COLOR, label="computing")
    for y, n, w, c in zip(ys, names, waits, computes):
        ax.text(w + c, y, f"  {card.value(n, 'images_per_s'):,.0f} samples/s, {card.value(n, 'data_wait_pct'):.0f} % waiting",
                va="center", fontsize=8)
    ax.set_yticks(ys, names)
    ax.set_xlim(0, 1.6 * max(w + c for w, c in zip(waits, computes)))
    ax.set(xlabel="milliseconds per training step (median window)", title=title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_first_batch(latencies: dict[str, list[float]], title: str = "Time to the first batch of each epoch") -> Figure:
    """Grouped bars: seconds from starting an epoch to its first batch, per epoch, per setting."""
    fig = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(latencies)
    for k, (name, values) in enumerate(latencies.items()):
        ax.bar([e + 1 + (k - (len(latencies) - 1) / 2) * width for e in range(len(values))],
               [1e3 * v for v in values], width=width, label=name)
    epochs = max(len(v) for v in latencies.values())
    ax.set_xticks(range(1, epochs + 1))
    ax.set(xlabel="epoch", ylabel="ms to the first batch", title=title)
    values = [v for vs in latencies.values() for v in vs]
    if max(values) > 20 * min(values):  # spawn's seconds next to fork's milliseconds: a log scale shows both
        ax.set_yscale("log")
        ax.set_ylabel("ms to the first batch (log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_augmentation(rows: list[dict]) -> Figure:
    """Plain vs augmented, one line per seed joining its two runs: test accuracy (left) and the
    train − test gap (right). A paired comparison reads as the slope of each seed's line."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    seeds = sorted({r["seed"] for r in rows})
    markers = "osD^v<>"
    for ax, key, label in ((axes[0], "test_acc", "test accuracy (%)"), (axes[1], "gap_pt", "train − test gap (points)")):
        for i, seed in enumerate(seeds):
            mine = {r["augment"]: r for r in rows if r["seed"] == seed}
            values = [mine[a][key] * (100 if key == "test_acc" else 1) for a in (False, True)]
            ax.plot([0, 1], values, marker=markers[i % len(markers)], color="0.35", alpha=0.85, label=f"seed {seed}")
        ax.set_xticks([0, 1], ["plain", "augmented\n(crops + flips)"])
        ax.set_xlim(-0.4, 1.4)
        ax.set(ylabel=label)
        ax.grid(axis="y", alpha=0.3)
    axes[1].axhline(0, color="black", linewidth=0.8)
    axes[0].legend(fontsize="small", loc="best")
    fig.suptitle("Augmentation and generalisation: the same images, epochs and rate, per seed")
    return fig


def summary(name: str, t: dl.StepTimes) -> str:
    """The plain-text line the explorer prints beside its chart."""
    return text_summary(name, {"samples_per_s": round(t.samples_per_s), "wait_ms": t.wait_ms,
                               "compute_ms": t.compute_ms, "wait_pct": t.wait_pct,
                               "first_batch_ms": 1e3 * t.first_batch_s})


class PipelineExplorer(Explorer):
    """Pick a pipeline and DataLoader knobs, press Run, see where each step's time goes.

    `explorer.run()` measures the current settings from code (tests, static viewers) and prints
    the text summary; the Run button does the same. A bad value is one line in the widget.
    """

    def __init__(self, source: dl.Source, *, steps: int | None = None, warmup_steps: int = 3,
                 device: str = "auto"):
        super().__init__()
        self.source, self.device = source, env.device(device)
        self.steps = steps or env.pick(smoke=4, full=15)
        self.warmup_steps = warmup_steps
        self.pipeline = widgets.Dropdown(options=dl.PIPELINES, value="naive", description="pipeline")
        self.model = widgets.Dropdown(options=["mlp", "small_cnn"], value="mlp", description="model")
        self.num_workers = widgets.IntText(value=0, description="num_workers")
        self.batch_size = widgets.IntText(value=128, description="batch_size")
        self.prefetch_factor = widgets.IntText(value=2, description="prefetch")
        self.read_latency_ms = widgets.FloatText(value=0.0, description="read ms/img")
        self.pin_memory = widgets.Checkbox(value=False, description="pin_memory (GPU only)", indent=False)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.buttons = [self.run_button]
        self.chart = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))
        self.run_button.on_click(lambda _: self.run(echo=False))
        self.widget.children = [
            widgets.HBox([self.pipeline, self.model]),
            widgets.HBox([self.num_workers, self.batch_size]),
            widgets.HBox([self.prefetch_factor, self.read_latency_ms]),
            widgets.HBox([self.pin_memory, self.run_button]),
            self.message, self.text, self.chart,
        ]

    def setting(self) -> dl.LoaderSetting:
        """The LoaderSetting the controls describe (unchecked: `dl.effective_setting` checks it)."""
        return dl.LoaderSetting(pipeline=self.pipeline.value, batch_size=self.batch_size.value,
                                num_workers=self.num_workers.value, pin_memory=self.pin_memory.value,
                                prefetch_factor=self.prefetch_factor.value, read_latency_ms=self.read_latency_ms.value)

    def run(self, echo: bool = True) -> dl.StepTimes | None:
        """Measure the current settings, redraw the chart, and return (and print) the result; None after a bad value."""
        return self.attempt(lambda: self._measure(echo), status="measuring …", echo=echo)

    def _measure(self, echo: bool) -> dl.StepTimes:
        setting, notes = dl.effective_setting(self.setting(), self.device)
        times = dl.measure(setting, self.source, dl.seeded_model(self.model.value, self.device), steps=self.steps,
                           warmup_steps=self.warmup_steps, device=self.device)
        name = f"{setting.pipeline}, {setting.num_workers} worker(s), {self.model.value}"
        self.chart.value = figure_png(plot_timelines({name: times}))
        self.show_summary(summary(name, times) + ("" if not notes else " (" + "; ".join(notes) + ")"), echo=echo)
        return times
