"""Explorer for notebook 01_gpu: training throughput against batch size, model and CPU threads."""

from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from labkit.techniques import gpu
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import lab_figure, legend_right, log_axis, new_figure, series_style


@lab_figure
def plot_batch_sweep(curves: dict[str, list[dict]]) -> Figure:
    """Training images/s against batch size, one marked line per label (rows from `gpu.batch_sweep`);
    both axes log, labelled at the batch sizes measured and at 1-2-5 steps of images/s."""
    fig = new_figure(7.5, 3.6)
    ax = fig.subplots()
    for i, (label, rows) in enumerate(curves.items()):
        rows = sorted(rows, key=lambda r: r["batch_size"])
        ax.plot([r["batch_size"] for r in rows], [r["images_per_s"] for r in rows], label=label, **series_style(i))
    sizes = sorted({r["batch_size"] for rows in curves.values() for r in rows})
    log_axis(ax, "x", ticks=sizes or None)
    ax.xaxis.set_minor_locator(NullLocator())  # only the measured sizes: no automatic ticks among them
    log_axis(ax, "y", fmt="{:,.0f}")
    ax.set(xlabel="batch size", ylabel="training images / s", title="Training throughput against batch size")
    ax.grid(alpha=0.3, which="major")
    if curves:
        legend_right(ax)
    return fig


@lab_figure
def plot_fraction_of_peak(points: list[dict], device: str) -> Figure:
    """Fraction of the device's peak reached by n×n matmuls (rows from `gpu.matmul_sweep`), axis from 0."""
    fig = new_figure(6.5, 3.4)
    ax = fig.subplots()
    ns = [p["n"] for p in points]
    ax.plot(ns, [100 * p["fraction_of_peak"] for p in points], **series_style(3))
    log_axis(ax, "x", ticks=ns)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel="matrix size n (n×n @ n×n)", ylabel="% of the estimated fp32 peak",
           title=f"Share of this {device.upper()}'s estimated peak reached by a matmul")
    ax.set_ylim(bottom=0)
    return fig


class BatchExplorer(Explorer):
    """Pick a model, a batch size and a thread count, press Measure: the point joins the plot."""

    def __init__(self, device: torch.device | str = "cpu", min_run_time: float = 0.2):
        super().__init__()
        self.device = torch.device(device)
        self.min_run_time = min_run_time
        self.curves: dict[str, list[dict]] = {}
        self.model = widgets.Dropdown(options=["mlp", "small_cnn"], value="small_cnn", description="model")
        self.batch = widgets.IntText(value=64, description="batch size")
        cores = max(torch.get_num_threads(), 1)
        self.threads = widgets.IntSlider(value=cores, min=1, max=max(cores, 2), description="threads",
                                         disabled=self.device.type != "cpu")
        self.button = widgets.Button(description="Measure", button_style="primary")
        self.buttons = [self.button]
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="700px"))
        self.button.on_click(lambda _: self.measure())
        self.widget.children = [widgets.HBox([self.model, self.batch, self.threads, self.button]),
                                self.message, self.text, self.image]

    def measure(self, model: str | None = None, batch_size: int | None = None, threads: int | None = None) -> dict | None:
        """Measure one point (the widget's values unless given); returns the row, or None after a bad value."""
        model = model or self.model.value
        batch_size = self.batch.value if batch_size is None else batch_size
        threads = self.threads.value if threads is None else threads
        return self.attempt(lambda: self._measure(model, batch_size, threads), status="measuring …", echo=True)

    def _measure(self, model: str, batch_size: int, threads: int) -> dict:
        row = gpu.measure_batch(model, batch_size, threads, self.device, self.min_run_time)
        label = f"{model}, {threads} thread(s)" if self.device.type == "cpu" else model
        self.curves.setdefault(label, []).append(row)
        self.draw(self.image, plot_batch_sweep(self.curves))
        self.show_summary(text_summary(f"{label} on {self.device.type}", {
            "batch": batch_size, "images/s": row["images_per_s"], "ms/step": row["ms_per_step"]}), echo=True)
        return row
