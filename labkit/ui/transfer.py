"""Notebook 10's plots and its explorer: how many labels, which strategy, which backbone learning rate."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from labkit import data
from labkit.techniques import transfer
from labkit.ui import figure_png, text_summary
from labkit.ui.base import Explorer

COLORS = {"scratch": "tab:grey", "linear probe": "tab:blue", "fine-tune": "tab:red", "discriminative": "tab:green",
          "EfficientNet-Lite0 probe": "tab:purple"}


def plot_label_efficiency(rows: list[dict], extra: dict[str, dict[int, tuple[float, float]]] | None = None) -> Figure:
    """Test accuracy against labelled images per class (log scale), one line per strategy, ± std over seeds.
    `extra`: more lines, {name: {k: (mean, std)}} (e.g. an ImageNet probe)."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    strategies = [s for s in transfer.STRATEGIES if any(r["strategy"] == s for r in rows)]
    lines = {s: {r["k"]: (r["accuracy"], r["acc_std"]) for r in rows if r["strategy"] == s} for s in strategies}
    lines |= extra or {}
    for name, points in lines.items():
        ks = sorted(points)
        ax.errorbar(ks, [100 * points[k][0] for k in ks], yerr=[100 * points[k][1] for k in ks], marker="o",
                    capsize=3, label=name, color=COLORS.get(name))
    all_ks = sorted({k for points in lines.values() for k in points})
    ax.set_xscale("log")
    ax.set_xticks(all_ks, [f"all {k}\n(1 seed)" if k == transfer.ALL_LABELS else str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set(xlabel="labelled training images per class (k)", ylabel="test accuracy on classes 5–9 (%)",
           title="Label efficiency: what a pretrained backbone is worth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_time_to_target(curves: dict[str, list[list]], target_acc: float) -> Figure:
    """Test accuracy against training seconds with every target label: scratch and fine-tuning, one line per seed."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, per_seed in curves.items():
        for i, curve in enumerate(per_seed):
            ax.plot([s for _, s, _ in curve], [100 * a for _, _, a in curve], alpha=0.8, markersize=4,
                    marker="s" if name == "scratch" else "o", linestyle="--" if name == "scratch" else "-",
                    label=f"{name} ({len(per_seed)} seed{'s' if len(per_seed) > 1 else ''})" if i == 0 else None,
                    color=COLORS.get(name))
    ax.axhline(100 * target_acc, color="black", linestyle=":", linewidth=1.2, label=f"target {100 * target_acc:.0f} %")
    ax.set(xlabel="training time (s, evaluation not counted)", ylabel="test accuracy (%)",
           title="All 5,000 target labels: test accuracy against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def plot_examples(source: data.Splits, target: data.Splits, per_class: int = 3) -> Figure:
    """A few training images of each source class (top) and each target class (bottom)."""
    fig = Figure(figsize=(8, 0.2 + 0.6 * per_class), layout="constrained")
    axes = fig.subplots(2, 5 * per_class)
    for row, (splits, title) in enumerate(((source, "source"), (target, "target"))):
        for c in range(5):
            picks = (splits.y_train == c).nonzero().flatten()[:per_class]
            for j, i in enumerate(picks):
                ax = axes[row, c * per_class + j]
                ax.imshow(splits.X_train[i, 0].cpu().numpy(), cmap="gray_r")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_title(splits.classes[c], fontsize=8, loc="left")
        axes[row, 0].set_ylabel(title, fontsize=9)
    return fig


class TransferExplorer(Explorer):
    """Pick k, a strategy and the backbone learning rate; Run trains scratch and that strategy on the
    same k images per class (one seed) and shows both accuracies with a one-line summary."""

    def __init__(self, target: data.Splits, cfg: transfer.TransferConfig):
        super().__init__()
        self.target, self.cfg = target, cfg
        self.k = widgets.IntSlider(value=5, min=1, max=200, description="k per class", continuous_update=False)
        self.strategy = widgets.Dropdown(options=list(transfer.STRATEGIES[1:]), value="fine-tune",
                                         description="strategy")
        self.lr = widgets.FloatText(value=cfg.finetune_lr, description="backbone lr", step=0.005)
        self.seed = widgets.IntText(value=0, description="seed")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.buttons = [self.run_button]
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="520px"))
        self.run_button.on_click(lambda _: self.run())
        self.widget.children = [widgets.HBox([self.k, self.strategy]), widgets.HBox([self.lr, self.seed]),
                                self.run_button, self.message, self.image, self.text]

    def run(self) -> dict | None:
        """Train and draw; returns {strategy: accuracy, ...} or None (with a message) for bad settings."""
        return self.attempt(self._train, status="training …", echo=True)

    def _train(self) -> dict:
        cfg = transfer.explorer_config(self.cfg, self.k.value, self.seed.value, self.lr.value)
        runs = transfer.compare(self.target, cfg, strategies=("scratch", self.strategy.value))
        result = {r["strategy"]: r["accuracy"] for r in runs} | {"gain_pt": transfer.gain_pt(runs, self.strategy.value)}
        self.image.value = figure_png(self._plot(runs))
        self.show_summary(text_summary(f"k={cfg.ks[0]}, seed {cfg.seeds[0]}, backbone lr {cfg.finetune_lr:g}",
                                       {f"{r['strategy']} acc %": 100 * r["accuracy"] for r in runs}
                                       | {"gain pt": result["gain_pt"]}
                                       | {f"{r['strategy']} s": r["train_time_s"] for r in runs}), echo=True)
        return result

    def _plot(self, runs: list[dict]) -> Figure:
        fig = Figure(figsize=(5, 2.6), layout="constrained")
        ax = fig.subplots()
        names = [r["strategy"] for r in runs]
        accs = [100 * r["accuracy"] for r in runs]
        bars = ax.barh(names, accs, color=[COLORS.get(n) for n in names])
        ax.bar_label(bars, fmt="%.1f %%", padding=3, fontsize=8)
        ax.set(xlim=(0, 100), xlabel="test accuracy on classes 5–9 (%)", title=f"k = {runs[0]['k']} labels per class")
        ax.invert_yaxis()
        return fig
