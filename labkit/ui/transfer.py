"""Notebook 10's plots and its explorer: how many labels, which strategy, which backbone learning rate."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from labkit import data
from labkit.techniques import transfer
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import dots, lab_figure, legend_right, new_figure, series_style

# one style per strategy (colour, dash, marker), the same in every plot of notebook 10
STYLES = {name: series_style(i) for i, name in enumerate(
    ("scratch", "linear probe", "fine-tune", "discriminative", "EfficientNet-Lite0 probe"))}
COLORS = {name: style["color"] for name, style in STYLES.items()}


@lab_figure
def plot_label_efficiency(rows: list[dict], extra: dict[str, dict[int, tuple[float, float]]] | None = None) -> Figure:
    """Test accuracy against labelled images per class (log scale), one line per strategy, ± std over seeds.
    `extra`: more lines, {name: {k: (mean, std)}} (e.g. an ImageNet probe)."""
    fig = new_figure(9, 4.2)
    ax = fig.subplots()
    strategies = [s for s in transfer.STRATEGIES if any(r["strategy"] == s for r in rows)]
    lines = {s: {r["k"]: (r["accuracy"], r["acc_std"]) for r in rows if r["strategy"] == s} for s in strategies}
    lines |= extra or {}
    for i, (name, points) in enumerate(lines.items()):
        ks = sorted(points)
        ax.errorbar(ks, [100 * points[k][0] for k in ks], yerr=[100 * points[k][1] for k in ks], capsize=3,
                    label=name, **STYLES.get(name, series_style(i + len(STYLES))))
    all_ks = sorted({k for points in lines.values() for k in points})
    ax.set_xscale("log")
    ax.set_xticks(all_ks, [f"all {k}\n(1 seed)" if k == transfer.ALL_LABELS else str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set(xlabel="labelled training images per class (k)", ylabel="test accuracy on classes 5–9 (%)",
           title="Test accuracy against labelled images per class")
    legend_right(ax)
    return fig


@lab_figure
def plot_time_to_target(curves: dict[str, list[list]], target_acc: float) -> Figure:
    """Test accuracy against training seconds with every target label: scratch and fine-tuning, one line per seed."""
    fig = new_figure(8.5, 3.6)
    ax = fig.subplots()
    for j, (name, per_seed) in enumerate(curves.items()):
        style = STYLES.get(name, series_style(j + len(STYLES)))
        for i, curve in enumerate(per_seed):
            ax.plot([s for _, s, _ in curve], [100 * a for _, _, a in curve], alpha=0.8, markersize=4,
                    label=f"{name} ({len(per_seed)} seed{'s' if len(per_seed) > 1 else ''})" if i == 0 else None,
                    **style)
    ax.axhline(100 * target_acc, color="black", linestyle=":", linewidth=1.2, label=f"target {100 * target_acc:.0f} %")
    ax.set(xlabel="training time (s, evaluation not counted)", ylabel="test accuracy (%)",
           title="Test accuracy against training time, all 5,000 target labels")
    legend_right(ax)
    return fig


@lab_figure
def plot_examples(source: data.Splits, target: data.Splits, per_class: int = 3) -> Figure:
    """A few training images of each source class (top) and each target class (bottom): an image grid,
    deliberately without axes."""
    fig = new_figure(8, 0.5 + 0.6 * per_class)
    axes = fig.subplots(2, 5 * per_class)
    for row, (splits, title) in enumerate(((source, "source"), (target, "target"))):
        for c in range(5):
            picks = (splits.y_train == c).nonzero().flatten()[:per_class]
            for j, i in enumerate(picks):
                ax = axes[row, c * per_class + j]
                ax.imshow(splits.X_train[i, 0].cpu().numpy(), cmap="gray_r")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if j == 0:
                    ax.set_title(splits.classes[c], fontsize=7, loc="left")
        axes[row, 0].set_ylabel(title, fontsize=9)
    return fig


def diverged_note(runs: list[dict]) -> str:
    """' — NAME diverged …' for runs whose test loss became inf/NaN (their accuracy is chance), else ''."""
    names = [r["strategy"] for r in runs if r.get("diverged")]
    return (f" — {', '.join(names)} diverged (the test loss is inf/NaN: lower the backbone lr); "
            "its accuracy is chance, not a result") if names else ""


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
        self.draw(self.image, self._plot(runs))
        self.show_summary(text_summary(f"k={cfg.ks[0]}, seed {cfg.seeds[0]}, backbone lr {cfg.finetune_lr:g}",
                                       {f"{r['strategy']} acc %": 100 * r["accuracy"] for r in runs}
                                       | {"gain pt": result["gain_pt"]}
                                       | {f"{r['strategy']} s": r["train_time_s"] for r in runs})
                          + diverged_note(runs), echo=True)
        return result

    @staticmethod
    @lab_figure
    def _plot(runs: list[dict]) -> Figure:
        fig = new_figure(6, 2.4)
        ax = fig.subplots()
        names = [r["strategy"] for r in runs]
        accs = [100 * r["accuracy"] for r in runs]
        for y, (name, acc) in enumerate(zip(names, accs)):  # dots: two accuracies a few points apart
            dots(ax, [y], [acc], i=list(STYLES).index(name) if name in STYLES else y)
            ax.annotate(f"{acc:.1f} %", (acc, y), textcoords="offset points", xytext=(8, 0), va="center", fontsize=8)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.margins(x=0.3)
        ax.set(xlabel="test accuracy on classes 5–9 (%, axis starts near the data)", ylabel="strategy",
               title=f"Test accuracy, k = {runs[0]['k']} labels per class")
        ax.grid(axis="y", visible=False)
        return fig
