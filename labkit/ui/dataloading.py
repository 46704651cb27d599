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
from labkit.errors import LabkitError, check_number
from labkit.results import ResultCard
from labkit.techniques import dataloading as dl
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import (BLUE, VERMILLION, dots, gap, lab_figure, legend_below, legend_right, log_axis,
                             new_figure, series_style)

WAIT_STYLE = {"color": VERMILLION, "hatch": "///", "edgecolor": "#333333", "linewidth": 0.4}  # colour and hatch
COMPUTE_STYLE = {"color": BLUE, "edgecolor": "#333333", "linewidth": 0.4}


@lab_figure
def plot_timelines(runs: dict[str, dl.StepTimes], title: str = "Where each training step's time goes") -> Figure:
    """One panel per run: every step as a bar from 0, waiting for data (hatched) stacked under computing."""
    fig = new_figure(4.2 * len(runs) + 0.6, 3.8)
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for ax, (name, t) in zip(axes, runs.items()):
        steps = range(1, len(t.wait_s) + 1)
        wait = [1e3 * s for s in t.wait_s]
        ax.bar(steps, wait, label="waiting for data (next(iterator))", **WAIT_STYLE)
        ax.bar(steps, [1e3 * s for s in t.compute_s], bottom=wait, label="computing (copy, forward, backward, step)",
               **COMPUTE_STYLE)
        ax.set(xlabel="timed training step", title=f"{name}\n{t.wait_pct:.0f} % waiting, {t.samples_per_s:,.0f} samples/s")
        ax.grid(axis="x", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("milliseconds per step")
    legend_below(fig, axes[:1], ncols=2 if len(runs) > 1 else 1)  # one panel is too narrow for two columns
    fig.suptitle(title)
    return fig


@lab_figure
def plot_wait_compute(card: ResultCard, title: str = "Mean time per training step") -> Figure:
    """Per card row: milliseconds waiting for data per step (bars from 0: the waiting share is small, so
    it gets its own axis) and samples/s (a dot plot: the throughputs are often close, so its axis starts
    near the data). A row without a number is a labelled gap."""
    names = card.variants
    fig = new_figure(10, 0.5 * len(names) + 1.9)
    ax_wait, ax_rate = fig.subplots(1, 2, sharey=True, width_ratios=[1.1, 1])
    ys = list(range(len(names)))
    cell = {r["variant"]: r for r in card.rows}  # a missing number is NaN here (drawn as a gap), not an error
    waits = [float(cell[n].get("wait_ms") if cell[n].get("wait_ms") is not None else "nan") for n in names]
    rates = [float(cell[n].get("images_per_s") if cell[n].get("images_per_s") is not None else "nan") for n in names]
    known = [w for w in waits if w == w]
    for y, n, w in zip(ys, names, waits):
        if w != w:  # NaN: not measured
            gap(ax_wait, y, "not measured")
            continue
        ax_wait.barh(y, w, **WAIT_STYLE)
        share = cell[n].get("data_wait_pct")
        ax_wait.annotate(f"{w:.1f} ms" + (f" ({share:.1f} % of the step)" if share is not None else ""), (w, y),
                         textcoords="offset points", xytext=(3, 0), va="center", fontsize=8)
    ax_wait.set_xlim(0, 1.9 * max(known + [1e-3]))
    ax_wait.set_yticks(ys, names)
    ax_wait.invert_yaxis()  # first configuration on top
    ax_wait.set(xlabel="ms per step waiting for data (median window)", ylabel="configuration",
                title="Waiting for data")
    measured = [(y, r) for y, r in zip(ys, rates) if r == r]
    dots(ax_rate, [y for y, _ in measured], [r for _, r in measured], i=0)
    for y, r in zip(ys, rates):
        if r != r:
            gap(ax_rate, y, "not measured")
    ax_rate.margins(x=0.15)
    ax_rate.set(xlabel="samples / s (axis starts near the data, not at 0)", title="Throughput")
    fig.suptitle(title)
    return fig


@lab_figure
def plot_first_batch(latencies: dict[str, list[float]], title: str = "Time to the first batch of each epoch") -> Figure:
    """Milliseconds from starting an epoch to its first batch, per epoch: one marked line per setting."""
    fig = new_figure(7.5, 3.4)
    ax = fig.subplots()
    for k, (name, values) in enumerate(latencies.items()):
        ax.plot(range(1, len(values) + 1), [1e3 * v for v in values], label=name, **series_style(k))
    epochs = max(len(v) for v in latencies.values())
    ax.set_xticks(range(1, epochs + 1))
    ax.set(xlabel="epoch", ylabel="ms to the first batch", title=title)
    values = [v for vs in latencies.values() for v in vs]
    if max(values) > 20 * min(values):  # spawn's seconds next to fork's milliseconds: a log scale shows both
        log_axis(ax, "y")
        ax.set_ylabel("ms to the first batch (log scale)")
    else:
        ax.set_ylim(bottom=0)
    legend_right(ax)
    return fig


@lab_figure
def plot_augmentation(rows: list[dict]) -> Figure:
    """Plain vs augmented, one line per seed joining its two runs: test accuracy (left) and the
    train − test gap (right). A paired comparison reads as the slope of each seed's line."""
    fig = new_figure(8, 3.8)
    axes = fig.subplots(1, 2)
    seeds = sorted({r["seed"] for r in rows})
    for ax, key, label in ((axes[0], "test_acc", "test accuracy (%)"), (axes[1], "gap_pt", "train − test gap (points)")):
        for i, seed in enumerate(seeds):
            mine = {r["augment"]: r for r in rows if r["seed"] == seed}
            values = [mine[a][key] * (100 if key == "test_acc" else 1) for a in (False, True)]
            style = series_style(i) | {"color": "0.3"}  # seeds differ by marker and dash, not colour
            ax.plot([0, 1], values, alpha=0.85, label=f"seed {seed}", **style)
        ax.set_xticks([0, 1], ["plain", "augmented\n(crops + flips)"])
        ax.set_xlim(-0.4, 1.4)
        ax.set(ylabel=label, xlabel="training images")
        ax.grid(axis="x", visible=False)
    axes[1].axhline(0, color="black", linewidth=0.8)
    legend_below(fig, axes[:1])
    fig.suptitle("Test accuracy and train − test gap, plain vs augmented training, per seed")
    return fig


def summary(name: str, t: dl.StepTimes) -> str:
    """The plain-text line the explorer prints beside its chart."""
    return text_summary(name, {"samples_per_s": round(t.samples_per_s), "wait_ms": t.wait_ms,
                               "compute_ms": t.compute_ms, "wait_pct": t.wait_pct,
                               "first_batch_ms": 1e3 * t.first_batch_s})


def storage_wait_s(setting: dl.LoaderSetting, steps: int) -> float:
    """Seconds the simulated reads take over `steps` batches, with the workers reading side by side."""
    if setting.pipeline != "naive":
        return 0.0  # only the naive pipeline reads each image from "storage"
    return steps * setting.batch_size * setting.read_latency_ms / 1e3 / max(1, setting.num_workers)


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

    MAX_BATCH = 512         # a larger batch only takes longer here (small_cnn, 18 steps at 512: ~6 s)
    MAX_STORAGE_WAIT_S = 15  # the simulated reads alone must end within seconds (a Run has no Stop)

    def _measure(self, echo: bool) -> dl.StepTimes:
        setting, notes = dl.effective_setting(self.setting(), self.device)
        check_number("batch_size", setting.batch_size, low=1, high=self.MAX_BATCH, integer=True)
        waiting = storage_wait_s(setting, self.steps + self.warmup_steps)
        if waiting > self.MAX_STORAGE_WAIT_S:
            raise LabkitError(f"this setting would wait about {waiting:.0f} s for the simulated reads alone "
                              f"(up to {self.MAX_STORAGE_WAIT_S} s here): lower read ms/img or the batch size, "
                              "or add workers.")
        times = dl.measure(setting, self.source, dl.seeded_model(self.model.value, self.device), steps=self.steps,
                           warmup_steps=self.warmup_steps, device=self.device)
        name = f"{setting.pipeline}, {setting.num_workers} worker(s), {self.model.value}"
        self.draw(self.chart, plot_timelines({name: times}))
        self.show_summary(summary(name, times) + ("" if not notes else " (" + "; ".join(notes) + ")"), echo=echo)
        return times
