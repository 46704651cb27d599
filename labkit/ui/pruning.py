"""The sparsity explorer (notebook 07): a slider redraws the sparsity–accuracy curve at the chosen sparsity."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from labkit.data import Splits
from labkit.techniques import pruning
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import GREY, lab_figure, legend_right, new_figure, series_style


@lab_figure
def plot_sparsity_curve(curve: pd.DataFrame, marks: dict[str, tuple[float, float]] | None = None,
                        baseline_acc: float | None = None) -> Figure:
    """Test accuracy against sparsity (layer-wise and global, no fine-tuning), with optional marked points."""
    fig = new_figure(7.8, 3.6)
    ax = fig.subplots()
    for i, column in enumerate(("layer-wise", "global")):
        ax.plot(100 * curve["sparsity"], 100 * curve[column], label=f"{column} (no fine-tuning)", **series_style(i))
    if baseline_acc is not None:
        ax.axhline(100 * baseline_acc, color=GREY, linestyle="--", linewidth=1, label="dense")
    for i, (label, (s, acc)) in enumerate((marks or {}).items()):
        style = series_style(i)
        ax.plot([100 * s], [100 * acc], marker="*" if i == 0 else "P", markersize=13, color=style["color"],
                markeredgecolor="black", linestyle="none", label=label)
    ax.set(xlabel="sparsity (% of weights set to zero)", ylabel="test accuracy (%)",
           title="Test accuracy after magnitude pruning", ylim=(0, 100))
    legend_right(ax)
    return fig


@lab_figure
def plot_sensitivity(scan: pd.DataFrame) -> Figure:
    """One line per layer: accuracy when only that layer is pruned to each amount."""
    fig = new_figure(7.8, 3.6)
    ax = fig.subplots()
    for i, (name, row) in enumerate(scan.iterrows()):
        ax.plot([100 * a for a in scan.columns], [100 * v for v in row.values], label=name, **series_style(i))
    ax.set(xlabel="sparsity of this one layer (%)", ylabel="test accuracy (%)",
           title="Test accuracy with one layer pruned (others kept dense)")
    legend_right(ax, title="pruned layer")
    return fig


class SparsityExplorer(Explorer):
    """Slide the sparsity: the model is pruned (layer-wise and global) and the curve redrawn with both points."""

    def __init__(self, model: nn.Module, splits: Splits, curve: pd.DataFrame, sparsity: float = 0.8):
        super().__init__()
        self.model, self.splits, self.curve = model, splits, curve
        self.dense_acc = pruning.accuracy(model, splits)
        self.slider = widgets.FloatSlider(value=sparsity, min=0.0, max=0.99, step=0.01, description="sparsity",
                                          continuous_update=False, readout_format=".2f")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="700px"))
        self.slider.observe(lambda _: self.update(), names="value")
        self.widget.children = [self.slider, self.message, self.image, self.text]
        self.update()

    def update(self, sparsity: float | None = None) -> str:
        """Prune copies to `sparsity` (the slider's by default), redraw, and return the text summary."""
        sparsity = self.slider.value if sparsity is None else sparsity
        self.attempt(lambda: self._draw(sparsity), status="measuring …")
        return self.summary

    def _draw(self, sparsity: float) -> None:
        accs = pruning.accuracy_at(self.model, self.splits, sparsity)
        marks = {f"{k} at {100 * sparsity:.0f} %": (sparsity, v) for k, v in accs.items()}
        self.draw(self.image, plot_sparsity_curve(self.curve, marks, self.dense_acc))
        self.show_summary(text_summary(f"sparsity {100 * sparsity:.0f} %",
                                       {"dense_acc": self.dense_acc, "layerwise_acc": accs["layer-wise"],
                                        "global_acc": accs["global"]}))
