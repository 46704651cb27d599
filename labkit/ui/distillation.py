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
from labkit.ui import figure_png
from labkit.ui.base import Explorer


def plot_softened(images: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...],
                  temperature: float) -> Figure:
    """One column per image: the image, then its class probabilities at T=1 (outline) and at T (bars)."""
    rows = kd.temperature_table(logits, temperature)
    k = len(images)
    fig = Figure(figsize=(3.1 * k, 4.6), layout="constrained")
    axes = fig.subplots(2, k, squeeze=False, gridspec_kw={"height_ratios": [1, 1.6]})
    at_one = kd.soften(logits, 1.0)
    for i in range(k):
        ax_img, ax_bar = axes[0, i], axes[1, i]
        ax_img.imshow(images[i, 0].cpu().numpy(), cmap="gray_r")
        ax_img.set_title(f"true: {classes[int(labels[i])]}", fontsize=9)
        ax_img.axis("off")
        xs = range(len(classes))
        ax_bar.bar(xs, rows[i]["probs"], color="tab:blue", label=f"T = {temperature:g}")
        ax_bar.bar(xs, at_one[i].tolist(), fill=False, edgecolor="black", linewidth=0.8, label="T = 1")
        ax_bar.set_xticks(list(xs), [c.split("/")[0] for c in classes], rotation=70, fontsize=7)
        ax_bar.set_yscale("log")
        ax_bar.set_ylim(1e-4, 1.5)  # log scale: the small probabilities are the teacher's "dark knowledge"
        ax_bar.set_title(f"entropy {rows[i]['entropy_bits']:.2f} bits", fontsize=9)
        ax_bar.grid(axis="y", alpha=0.3, which="major")
    axes[1, 0].set_ylabel("probability (log scale)")
    axes[1, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"The teacher's outputs softened at T = {temperature:g} (max entropy for 10 classes: 3.32 bits)",
                 fontsize=10)
    return fig


def plot_students(card: ResultCard) -> Figure:
    """Left: student accuracy (mean ± std over seeds), scratch vs distilled, per setting, the teacher dashed.
    Right: how many times cheaper the student is than the teacher (latency, size, parameters)."""
    fig = Figure(figsize=(10.5, 3.9), layout="constrained")
    ax_acc, ax_cost = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    teacher = card.value("teacher", "accuracy")
    settings = [v.split(" · ", 1)[1] for v in card.variants if v.startswith("student scratch · ")]
    width = 0.38
    for j, (name, color) in enumerate((("scratch", "tab:grey"), ("distilled", "tab:orange"))):
        means = [100 * card.value(f"student {name} · {s}", "accuracy") for s in settings]
        stds = [card.value(f"student {name} · {s}", "acc_std_pt") for s in settings]
        xs = [i + (j - 0.5) * width for i in range(len(settings))]
        ax_acc.bar(xs, means, width, yerr=stds, capsize=4, color=color, label=f"student, {name}")
        for x, m, sd in zip(xs, means, stds):
            ax_acc.annotate(f"{m:.1f}", (x, m + sd), textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=8)
    ax_acc.axhline(100 * teacher, color="black", linestyle="--", linewidth=1, label=f"teacher {100 * teacher:.1f} %")
    low = min(100 * card.value(f"student scratch · {s}", "accuracy") for s in settings)
    ax_acc.set_ylim(max(0, low - 6), min(100, 100 * teacher + 5))
    ax_acc.set_xticks(range(len(settings)), [s if "all" in s else f"{s}\n(the teacher labels the rest)"
                                             for s in settings])
    ax_acc.set(ylabel="test accuracy (%)", title="Scratch vs distilled student (mean ± std over seeds)")
    ax_acc.legend(fontsize=8, loc="upper center", ncol=3)
    ax_acc.grid(axis="y", alpha=0.3)

    student = next(v for v in card.variants if v.startswith("student"))
    costs = [(f"latency, batch {b}", c) for b, c in ((1, "latency_b1_ms"), (64, "latency_ms"))]
    costs += [("size on disk", "size_mb"), ("parameters", "params")]
    ratios = [card.value("teacher", c) / card.value(student, c) for _, c in costs]
    threads = card.value("teacher", "latency_threads")
    ys = range(len(costs))
    ax_cost.barh(ys, ratios, color="tab:green")
    for y, r in zip(ys, ratios):
        ax_cost.annotate(f"{r:.1f}×", (r, y), textcoords="offset points", xytext=(3, -3), fontsize=9)
    ax_cost.set_yticks(list(ys), [label for label, _ in costs])
    ax_cost.invert_yaxis()
    ax_cost.set_xscale("log")
    ax_cost.set_xlim(1, max(ratios) * 3)  # bars start at 1×: no saving
    ax_cost.set(xlabel="teacher ÷ student (log scale)",
                title=f"How much cheaper the student is\n(CPU, {threads:.0f} thread{'s' if threads > 1 else ''})")
    ax_cost.grid(axis="x", alpha=0.3)
    return fig


def plot_pareto(card: ResultCard) -> Figure:
    """Accuracy against latency (batch 64) and against size on disk, one point per step of the chain;
    the Pareto front (no other point is both more accurate and cheaper) joined by a line."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    for ax, cost, label in zip(fig.subplots(1, 2), ("latency_ms", "size_mb"),
                               ("latency at batch 64 (ms, log scale)", "size on disk (MB, log scale)")):
        for i, row in enumerate(card.rows):  # labels staggered up and down: neighbours often coincide
            ax.scatter(row[cost], 100 * row["accuracy"], s=50, zorder=3)
            ax.annotate(row["variant"], (row[cost], 100 * row["accuracy"]), textcoords="offset points",
                        xytext=(6, (8 + 7 * (i // 2)) * (1 if i % 2 == 0 else -1.6)), fontsize=8,
                        arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5})
        front = sorted((r for r in card.rows if r["variant"] in kd.pareto_front(card, cost)), key=lambda r: r[cost])
        ax.plot([r[cost] for r in front], [100 * r["accuracy"] for r in front], color="grey", linestyle="--",
                linewidth=1, label="Pareto front", zorder=2)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.margins(x=0.25, y=0.15)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
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
        self.picture.value = figure_png(plot_softened(self.images, self.logits, self.labels, self.classes, temperature))
        self.show_summary(summary)
