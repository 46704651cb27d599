"""Explorer for notebook 03_mixed_precision: what a loss scale does to gradients stored in fp16."""

from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from labkit.errors import LabkitError
from labkit.techniques import amp
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import BLUE, ORANGE, PURPLE, VERMILLION, lab_figure, legend_right, new_figure

FP16_SUBNORMAL, FP16_NORMAL, FP16_MAX = -24, -14, 15.999  # log2 of fp16's smallest subnormal, normal, largest


@lab_figure
def plot_fp16_fate(grads: torch.Tensor, scale: float = 1.0, fate: dict | None = None) -> Figure:
    """Histogram of log2(|gradient| × scale) with fp16's zones: underflow, subnormal, normal, overflow.
    `fate`: `amp.fp16_fate(grads, scale)` when already computed (the legend's percentages).
    Each zone has its own hatch as well as its colour."""
    values = torch.log2(grads.double() * scale).float().numpy()
    fate = fate or amp.fp16_fate(grads, scale)
    fig = new_figure(8.5, 3.4)
    ax = fig.subplots()
    ax.hist(values, bins=120, color=BLUE, alpha=0.85, label="gradients (histogram)")
    zones = ((min(values.min(), FP16_SUBNORMAL) - 2, FP16_SUBNORMAL - 1, VERMILLION, "///",
              f"becomes 0 in fp16 ({100 * fate['underflow']:.1f} %)"),
             (FP16_SUBNORMAL - 1, FP16_NORMAL, ORANGE, "...", f"subnormal: few bits left ({100 * fate['subnormal']:.1f} %)"),
             (FP16_MAX, max(values.max(), FP16_MAX) + 2, PURPLE, "xxx", f"overflows to inf ({100 * fate['overflow']:.2f} %)"))
    for low, high, color, hatch, label in zones:
        ax.axvspan(low, high, facecolor=color, alpha=0.2, hatch=hatch, edgecolor=color, linewidth=0, label=label)
    ax.set(xlabel="log2(|activation gradient| × loss scale)", ylabel="count",
           title=f"Gradients stored in fp16 with loss scale 2^{torch.log2(torch.tensor(scale)).item():.0f}")
    legend_right(ax)
    return fig


class ScaleExplorer(Explorer):
    """Slide the loss scale (a power of two) and watch gradients leave fp16's underflow zone — or overflow."""

    def __init__(self, grads: torch.Tensor):
        if grads.numel() == 0:
            raise LabkitError("no gradients to explore: pass amp.activation_gradients(...).")
        super().__init__()
        self.grads = grads
        self.slider = widgets.IntSlider(value=0, min=-8, max=40, description="log2 scale", continuous_update=False)
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="750px"))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget.children = [self.slider, self.message, self.text, self.image]
        self.attempt(lambda: self._draw(0, echo=False))  # printed when displayed

    def show(self, log2_scale: int) -> dict | None:
        """Redraw for scale 2**log2_scale; prints and returns the fractions (None after a bad value)."""
        return self.attempt(lambda: self._draw(log2_scale, echo=True), echo=True)

    def _draw(self, log2_scale: int, echo: bool) -> dict:
        scale = amp.loss_scale(log2_scale)
        fate = amp.fp16_fate(self.grads, scale)
        self.draw(self.image, plot_fp16_fate(self.grads, scale, fate))
        self.show_summary(text_summary(f"loss scale 2^{log2_scale}", {
            "underflow %": 100 * fate["underflow"], "subnormal %": 100 * fate["subnormal"],
            "normal %": 100 * fate["normal"], "overflow %": 100 * fate["overflow"]}), echo=echo)
        return fate
