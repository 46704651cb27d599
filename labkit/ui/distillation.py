"""The temperature explorer: the real teacher's output distributions, softened at T.

Thin: it calls `labkit.techniques.distillation.soften` / `temperature_table` and draws what comes back.
Every redraw also writes a plain-text summary (for tests and static viewers).
"""

from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from labkit.results import ResultCard
from labkit.techniques import distillation as kd
from labkit.ui.base import Explorer
from labkit.ui.style import (BLUE, GREY, dots, lab_figure, legend_below, log_axis, new_figure, ratio_axis,
                             series_style)


@lab_figure
def plot_softened(images: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...],
                  temperature: float) -> Figure:
    """One column per image: the image, then its class probabilities at T=1 (outline) and at T (bars)."""
    rows = kd.temperature_table(logits, temperature)
    k = len(images)
    fig = new_figure(3.1 * k + 0.4, 5.0)
    axes = fig.subplots(2, k, squeeze=False, gridspec_kw={"height_ratios": [1, 1.6]})
    at_one = kd.soften(logits, 1.0)
    for i in range(k):
        ax_img, ax_bar = axes[0, i], axes[1, i]
        ax_img.imshow(images[i, 0].cpu().numpy(), cmap="gray_r")
        ax_img.set_title(f"true: {classes[int(labels[i])]}", fontsize=9)
        ax_img.axis("off")
        xs = range(len(classes))
        ax_bar.bar(xs, rows[i]["probs"], color=BLUE, alpha=0.8, label=f"T = {temperature:g} (filled)")
        ax_bar.bar(xs, at_one[i].tolist(), fill=False, edgecolor="black", linewidth=0.8, label="T = 1 (outline)")
        ax_bar.set_xticks(list(xs), [c.split("/")[0] for c in classes], rotation=70, fontsize=7)
        ax_bar.set_yscale("log")
        ax_bar.set_ylim(1e-4, 1.5)  # log scale: the small probabilities are the teacher's "dark knowledge"
        ax_bar.set_title(f"entropy {rows[i]['entropy_bits']:.2f} bits", fontsize=9)
        ax_bar.set_xlabel("class", fontsize=8)
        ax_bar.set_ylabel("probability (log)" if i == 0 else "")
        ax_bar.grid(axis="x", visible=False)
        if i:
            ax_bar.sharey(axes[1, 0])
            ax_bar.tick_params(labelleft=False)
    legend_below(fig, [axes[1, 0]], ncols=2)
    fig.suptitle(f"The teacher's class probabilities softened at T = {temperature:g} "
                 "(max entropy for 10 classes: 3.32 bits)", fontsize=10)
    return fig


@lab_figure
def plot_students(card: ResultCard) -> Figure:
    """Left: student accuracy, mean ± std over seeds, scratch vs distilled, per setting, the teacher dashed:
    a dot plot, since the differences are a point or less. Right: how many times cheaper the student is
    than the teacher (latency, size, parameters), on a log ratio axis with 1× marked."""
    fig = new_figure(11, 4.2)
    ax_acc, ax_cost = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    teacher = card.value("teacher", "accuracy")
    settings = [v.split(" · ", 1)[1] for v in card.variants if v.startswith("student scratch · ")]
    for j, name in enumerate(("scratch", "distilled")):
        means = [100 * card.value(f"student {name} · {s}", "accuracy") for s in settings]
        stds = [card.value(f"student {name} · {s}", "acc_std_pt") for s in settings]
        dots(ax_acc, [i + (j - 0.5) * 0.3 for i in range(len(settings))], means, stds, orient="v", i=j,
             label=f"student, {name} (mean ± std)")
    ax_acc.axhline(100 * teacher, color="black", linestyle="--", linewidth=1, label=f"teacher {100 * teacher:.1f} %")
    ax_acc.set_xticks(range(len(settings)), [s if "all" in s else f"{s}\n(the teacher labels the rest)"
                                             for s in settings])
    ax_acc.set_xlim(-0.6, len(settings) - 0.4)
    ax_acc.margins(y=0.15)
    ax_acc.set(xlabel="labels the student trains with", ylabel="test accuracy (%, axis starts near the data)",
               title="Student test accuracy, scratch vs distilled")
    ax_acc.grid(axis="x", visible=False)

    student = next(v for v in card.variants if v.startswith("student"))
    costs = [(f"latency, batch {b}", c) for b, c in ((1, "latency_b1_ms"), (64, "latency_ms"))]
    costs += [("size on disk", "size_mb"), ("parameters", "params")]
    ratios = [card.value("teacher", c) / card.value(student, c) for _, c in costs]
    threads = card.value("teacher", "latency_threads")
    ys = list(range(len(costs)))
    ax_cost.hlines(ys, 1, ratios, color=GREY, linewidth=1.5)
    ax_cost.plot(ratios, ys, linestyle="none", **{k: v for k, v in series_style(2).items() if k != "linestyle"},
                 markersize=7)
    for y, r in zip(ys, ratios):
        ax_cost.annotate(f"{r:.1f}×", (r, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax_cost.set_yticks(ys, [label for label, _ in costs])
    ax_cost.set_ylim(len(costs) - 0.4, -0.7)  # top to bottom, room for the labels above the dots
    ratio_axis(ax_cost, ratios, "x", label="teacher ÷ student (log scale; 1× = no saving)")
    ax_cost.set_ylabel("cost")
    ax_cost.set_title(f"Teacher ÷ student cost (CPU, {threads:.0f} thread{'s' if threads > 1 else ''})")
    ax_cost.grid(axis="y", visible=False)
    legend_below(fig, [ax_acc], ncols=3)
    return fig


@lab_figure
def plot_pareto(card: ResultCard) -> Figure:
    """Accuracy against latency (batch 64) and against size on disk, one marked point per step of the chain
    (named in the legend: labels beside close points would overprint); the Pareto front (no other point is
    both more accurate and cheaper) joined by a dashed line."""
    fig = new_figure(10, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, cost, label in zip(axes, ("latency_ms", "size_mb"),
                               ("latency at batch 64 (ms, log scale)", "size on disk (MB, log scale)")):
        for i, row in enumerate(card.rows):
            style = series_style(i)
            ax.plot([row[cost]], [100 * row["accuracy"]], linestyle="none", marker=style["marker"],
                    color=style["color"], markersize=8, label=row["variant"], zorder=3)
        front = sorted((r for r in card.rows if r["variant"] in kd.pareto_front(card, cost)), key=lambda r: r[cost])
        ax.plot([r[cost] for r in front], [100 * r["accuracy"] for r in front], color=GREY, linestyle="--",
                linewidth=1, label="Pareto front", zorder=2)
        log_axis(ax, "x")
        ax.set_xlabel(label)
        ax.margins(x=0.2, y=0.15)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("Accuracy against latency")
    axes[1].set_title("Accuracy against size")
    legend_below(fig, axes[:1], ncols=min(len(card.rows) + 1, 5))
    return fig


def summary_text(logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], temperature: float) -> str:
    """One line per image: top two classes with their probabilities at T, and the entropy."""
    lines = [f"T = {temperature:g}:"]
    for row, label in zip(kd.temperature_table(logits, temperature), labels.tolist()):
        (c1, p1), (c2, p2) = row["top2"]
        lines.append(f"  true {classes[label]:<12} → {classes[c1]} {p1:.3f}, {classes[c2]} {p2:.3f}, "
                     f"entropy {row['entropy_bits']:.2f} bits")
    return "\n".join(lines)


class TemperatureExplorer(Explorer):
    """A temperature slider over the teacher's logits for a few images; redraws the bars and the text."""

    def __init__(self, images: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
                 classes: tuple[str, ...], temperature: float = 2.0):
        super().__init__()
        self.images, self.logits, self.labels, self.classes = images, logits.detach().cpu(), labels.cpu(), classes
        self.slider = widgets.FloatSlider(value=temperature, min=0.0, max=10.0, step=0.25, description="T",
                                          continuous_update=False, readout_format=".2f")
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="1000px"))
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        self.widget.children = [self.slider, self.message, self.picture, self.text]
        self.update(temperature)

    def update(self, temperature: float) -> str:
        """Redraw at T and return the summary; a bad T gives a one-line message in the widget (never a traceback)."""
        self.attempt(lambda: self._draw(temperature))
        return self.summary

    def _draw(self, temperature: float) -> None:
        summary = summary_text(self.logits, self.labels, self.classes, temperature)
        self.draw(self.picture, plot_softened(self.images, self.logits, self.labels, self.classes, temperature))
        self.show_summary(summary)
