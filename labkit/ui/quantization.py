"""The bit-width explorer (notebook 08): the quantization grid and the error histogram at b bits."""

from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from labkit.techniques import quantization as quant
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import (BLUE, GREY, ORANGE, VERMILLION, lab_figure, legend_below, new_figure, ratio_axis,
                             series_style)


@lab_figure
def plot_bits(x: torch.Tensor, bits: int, per_channel: bool = False) -> tuple[Figure, dict]:
    """Left: the values and the b-bit grid they are rounded to; right: the rounding error. Returns (figure, numbers)."""
    numbers = quant.quant_error(x, bits, per_channel=per_channel)
    xq = quant.fake_quantize(x, bits, per_channel=per_channel)
    scale, zero_point = quant.scale_zero_point(x, bits, per_channel=per_channel)
    fig = new_figure(9, 3.8)
    ax_grid, ax_err = fig.subplots(1, 2)
    values = x.flatten().numpy()
    ax_grid.hist(values, bins=120, color=BLUE, alpha=0.6, label="fp32 weights (histogram)")
    if not per_channel:
        q_min, q_max = quant.qrange(bits, symmetric=False)
        levels = (torch.arange(q_min, q_max + 1).float() - zero_point) * scale
        if len(levels) <= 64:
            for level in levels:
                ax_grid.axvline(float(level), color=VERMILLION, linestyle="--", linewidth=0.8, alpha=0.7)
        ax_grid.plot([], [], color=VERMILLION, linestyle="--",
                     label=f"{len(levels)} grid levels" + ("" if len(levels) <= 64 else " (too many to draw)"))
    else:
        ax_grid.plot([], [], " ", label=f"one {2 ** bits}-level grid per row (not drawn)")
    ax_grid.set(xlabel="weight value", ylabel="count (log scale)", yscale="log",
                title=f"{bits}-bit grid ({'per channel' if per_channel else 'per tensor'})")
    ax_err.hist((xq - x).flatten().numpy(), bins=80, color=ORANGE, hatch="///", edgecolor="#333333", linewidth=0.3)
    ax_err.set(xlabel="quantized − original", ylabel="count",
               title=f"Rounding error: mean |e| {numbers['mean_abs_error']:.2e}, SQNR {numbers['sqnr_db']:.1f} dB")
    legend_below(fig, [ax_grid], ncols=2)
    return fig, numbers


@lab_figure
def plot_width_sweep(card) -> Figure:
    """int8 speed-up over fp32 (batch 64) against the MLP's width: each int8 kernel against fp32 run the
    same way (compiled against compiled, eager against eager), on a log axis with 1× (no gain) marked.
    A width an int8 kernel could not run is a labelled gap (×), not a 0."""
    fig = new_figure(7.4, 4.2)
    ax = fig.subplots()
    widths = [int(v.split()[-1]) for v in card.variants]
    everything = []
    for i, (column, label) in enumerate((("x86_speedup", "torchao x86 PT2E int8 vs compiled fp32"),
                                         ("fbgemm_speedup", "fbgemm int8 (eager, deprecated) vs eager fp32"))):
        values = [r.get(column) for r in card.rows]
        values = [v if isinstance(v, (int, float)) and v == v else None for v in values]
        ax.plot(widths, [v if v is not None else float("nan") for v in values], label=label, **series_style(i))
        everything += [v for v in values if v is not None]
        for w, v in zip(widths, values):
            if v is None:
                ax.annotate("not run", (w, 1.0), textcoords="offset points", xytext=(0, 6 + 10 * i), ha="center",
                            fontsize=7, color=series_style(i)["color"])
    ratio_axis(ax, everything, "y", label="fp32 time ÷ int8 time (log scale; 1× = no gain)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("hidden width of the MLP (two hidden layers)")
    ax.set_title("int8 speed-up against layer width (batch 64)")
    legend_below(fig, ncols=1)
    return fig


@lab_figure
def plot_log_vs_linear(weight: torch.Tensor, table, fp32_accuracy: float, bits: tuple[int, ...]) -> Figure:
    """Left: one layer's weights with both 4-bit level sets (linear above, log below). Middle and right:
    rounding error (SQNR) and test accuracy against bits, per grid; `table` is log_vs_linear's rows
    (columns grid, bits, sqnr_db, accuracy). Series differ by line style and marker, not colour alone."""
    fig = new_figure(13, 4.8)
    ax_hist, ax_err, ax_acc = fig.subplots(1, 3)
    ax_hist.hist(weight.flatten().numpy(), bins=150, color="lightgrey", label="middle layer's weights (histogram)")
    for grid, rounded, color, style, span in (("linear", quant.fake_quantize(weight, 4), BLUE, "-", (0.5, 1.0)),
                                             ("log", quant.log_quantize(weight, 4), ORANGE, "--", (0.0, 0.5))):
        for v in rounded.unique().tolist():
            ax_hist.axvline(v, *span, color=color, linestyle=style, linewidth=0.9)
        ax_hist.plot([], [], color=color, linestyle=style, label=f"{grid} 4-bit levels ({len(rounded.unique())})")
    ax_hist.set(xlabel="weight value", ylabel="count", title="4-bit levels, one scale per tensor\n(linear above, log below)")
    styles = {"linear": (BLUE, "-"), "log": (ORANGE, "--")}
    for name, rows in table.groupby("grid", sort=False):
        color, style = styles[name.split(",")[0]]
        marker = "o" if name.endswith("per tensor") else "s"
        ax_err.plot(rows["bits"], rows["sqnr_db"], marker=marker, linestyle=style, color=color, label=name)
        ax_acc.plot(rows["bits"], 100 * rows["accuracy"], marker=marker, linestyle=style, color=color, label=name)
    ax_acc.axhline(100 * fp32_accuracy, color=GREY, linestyle=":", label="fp32")
    ax_err.set(xlabel="bits per weight", ylabel="SQNR of all weights (dB, higher is better)", title="Rounding error")
    ax_acc.set(xlabel="bits per weight", ylabel="test accuracy (%)", title="Test accuracy, weights rounded")
    for ax in (ax_err, ax_acc):
        ax.set_xticks(list(bits))
    handles = [h for ax in (ax_hist, ax_acc) for h in ax.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="outside lower center", ncols=4)
    return fig


def summary(numbers: dict, per_channel: bool) -> str:
    return text_summary(f"{numbers['bits']}-bit {'per-channel' if per_channel else 'per-tensor'}",
                        {"levels": numbers["levels"], "mean_abs_error": numbers["mean_abs_error"],
                         "sqnr_db": numbers["sqnr_db"]})


class BitWidthExplorer(Explorer):
    """A bits slider and a per-channel switch over one weight tensor; redraws the grid and the error."""

    def __init__(self, weight: torch.Tensor, bits: int = 8):
        super().__init__()
        self.weight = weight.detach().float().cpu()
        self.bits = widgets.IntSlider(value=bits, min=1, max=8, description="bits", continuous_update=False)
        self.per_channel = widgets.Checkbox(value=False, description="per channel", indent=False)
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        self.bits.observe(lambda _: self.update(), names="value")
        self.per_channel.observe(lambda _: self.update(), names="value")
        self.widget.children = [widgets.HBox([self.bits, self.per_channel]), self.message, self.image, self.text]
        self.update()

    def update(self, bits: int | None = None, per_channel: bool | None = None) -> str:
        """Redraw for `bits` (the slider's value by default); returns and shows the text summary."""
        bits = self.bits.value if bits is None else bits
        per_channel = self.per_channel.value if per_channel is None else per_channel
        self.attempt(lambda: self._draw(bits, per_channel))
        return self.summary

    def _draw(self, bits: int, per_channel: bool) -> None:
        fig, numbers = plot_bits(self.weight, bits, per_channel)
        self.draw(self.image, fig)
        self.show_summary(summary(numbers, per_channel))
