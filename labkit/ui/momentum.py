"""The momentum explorer (a Distill-style playground on a 2-D quadratic) and the notebook's plots.

The explorer only calls `labkit.techniques.momentum.explore` — the same function the tests call —
and draws what comes back. Bad settings (lr ≤ 0, β ≥ 1) become a one-line message in the widget.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labkit.errors import LabkitError
from labkit.results import ResultCard
from labkit.techniques import momentum as mom
from labkit.ui.base import Explorer
from labkit.ui.style import (BLUE, GREY, VERMILLION, bar_style, lab_figure, legend_below, legend_right, log_axis,
                             new_figure, series_style)

# one style per optimizer (colour, dash, marker), the same in every plot
STYLES = {name: series_style(i) for i, name in enumerate(("gd", "heavy_ball", "nesterov", "rmsprop", "adam"))}
COLORS = {name: style["color"] for name, style in STYLES.items()}
LABELS = {"gd": "gradient descent", "heavy_ball": "heavy ball (SGD momentum)", "nesterov": "Nesterov",
          "rmsprop": "RMSprop", "adam": "Adam"}


# ---------------------------------------------------------------- plots

SWEEP_STYLES = {name: (series_style(i)["marker"], series_style(i)["linestyle"], series_style(i)["color"])
                for i, name in enumerate(("momentum", "adam", "rmsprop"))}


@lab_figure
def plot_lr_sensitivity(sens: dict[str, mom.LrSensitivity], floor_pt: float) -> Figure:
    """Final accuracy against the learning rate, per optimizer: a line through the means over seeds and a
    small mark per seed, on the absolute rate (left) and on the rate ÷ the optimizer's default (right).
    Points below `floor_pt` are drawn on it as ▼, so a collapse does not squash the rest of the axis."""
    fig = new_figure(10, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, relative in zip(axes, (False, True)):
        for name, s in sens.items():
            marker, line, colour = SWEEP_STYLES.get(name, ("D", "-.", GREY))
            xs = [lr / s.default_lr if relative else lr for lr in s.lrs]
            means = [s.mean_pt(lr) for lr in s.lrs]
            ax.plot(xs, [max(m, floor_pt) for m in means], linestyle=line, color=colour)
            for x, m in zip(xs, means):
                ax.plot(x, max(m, floor_pt), marker="v" if m < floor_pt else marker, markersize=8, color=colour)
            for x, lr in zip(xs, s.lrs):
                for a in (100 * a for a in s.acc[lr]):
                    ax.plot(x, max(a, floor_pt), marker="v" if a < floor_pt else marker, markersize=4,
                            linestyle="none", color=colour, alpha=0.4)
        log_axis(ax, "x")
        ax.set_ylim(floor_pt - 1, None)
    axes[0].set(xlabel="learning rate", ylabel="final test accuracy (%)", title="Accuracy vs learning rate")
    axes[1].set(xlabel="learning rate ÷ the optimizer's default", title="The same, each centred on its default")
    axes[1].axvline(1, color=GREY, linestyle=":", linewidth=1)
    handles = [Line2D([], [], marker=SWEEP_STYLES[n][0], linestyle=SWEEP_STYLES[n][1], color=SWEEP_STYLES[n][2],
                      label=f"{n}, mean") for n in sens if n in SWEEP_STYLES]
    handles += [Line2D([], [], marker="o", markersize=4, alpha=0.4, linestyle="none", color=GREY, label="one seed"),
                Line2D([], [], marker="v", linestyle="none", color=GREY, label=f"below {floor_pt:.0f} % (drawn at it)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize="small")
    return fig



@lab_figure
def plot_trajectories(q: mom.Quadratic, runs: list[mom.Trajectory], title: str = "") -> Figure:
    """Left: the paths on the contours of f. Right: f(x_k) per step, log scale. One style per optimizer."""
    fig = new_figure(10.5, 4.6)
    ax_path, ax_loss = fig.subplots(1, 2, width_ratios=[1.35, 1])
    span = 1.6
    xs = np.linspace(-span, span, 241)
    X, Y = np.meshgrid(xs, xs * 0.75)
    A = q.matrix().numpy()
    Z = 0.5 * (A[0, 0] * X ** 2 + 2 * A[0, 1] * X * Y + A[1, 1] * Y ** 2)
    levels = np.geomspace(max(Z.min(), 1e-5) + 1e-5, Z.max(), 14)
    ax_path.contour(X, Y, Z, levels=levels, colors="lightgrey", linewidths=0.8)
    ax_path.plot([0], [0], marker="*", color="black", markersize=12, linestyle="none", label="minimum")
    for i, run in enumerate(runs):
        pts = run.points.numpy()
        finite = np.isfinite(pts).all(axis=1) & (np.abs(pts) < 10).all(axis=1)
        pts = pts[: np.argmin(finite) if not finite.all() else len(pts)]
        style = STYLES.get(run.name, series_style(i))
        ax_path.plot(pts[:, 0], pts[:, 1], markersize=3, linewidth=1, label="_path",  # the loss line names it
                     **style | {"markevery": max(1, len(pts) // 15)})
        losses = np.array(run.losses, dtype=float)
        losses[~np.isfinite(losses)] = np.nan
        ax_loss.plot(np.arange(len(losses)), np.maximum(losses, 1e-300), linewidth=1.2,
                     label=f"{LABELS.get(run.name, run.name)}: {run.describe().split(': ', 1)[1]}",
                     **style | {"markevery": max(1, len(losses) // 10)})
    ax_path.plot(*q.start().numpy(), marker="o", color="black", linestyle="none", label="start")
    ax_path.set(xlim=(-span, span), ylim=(-0.75 * span, 0.75 * span), aspect="equal",
                xlabel="x₁", ylabel="x₂", title=title or f"Paths on f(x) = ½xᵀAx, κ = {q.kappa:.0f}")
    ax_path.grid(False)
    ax_loss.set(yscale="log", xlabel="step k", ylabel="f(x_k) − f(x*)", title="Loss per step (log scale)")
    f0 = runs[0].losses[0] if runs else 1.0
    ax_loss.set_ylim(max(1e-16, f0 * 1e-14), f0 * 1e3)
    legend_below(fig, [ax_loss, ax_path], ncols=2)
    return fig


@lab_figure
def plot_iterations_vs_kappa(rows: list[dict]) -> Figure:
    """Steps to tolerance against κ (log-log): measured markers, theory lines; slopes 1 and ½."""
    fig = new_figure(7.5, 4)
    ax = fig.subplots()
    kappas = [r["kappa"] for r in rows]
    for key, label in (("gd", "gradient descent"), ("heavy_ball", "heavy ball")):
        style = STYLES[key]
        ax.plot(kappas, [r[f"theory_{key}"] for r in rows], color=style["color"], linestyle=style["linestyle"],
                linewidth=1, label=f"{label}: theory (rate only)")
        ax.plot(kappas, [r[key] if r[key] is not None else np.nan for r in rows], color=style["color"],
                marker=style["marker"], linestyle="none", label=f"{label}: measured (torch.optim.SGD)")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set(xlabel="condition number κ = L/μ", ylabel="steps to ||x_k|| ≤ 1e-6·||x_0||",
           title="Steps to tolerance against condition number κ")
    legend_right(ax)
    return fig


@lab_figure
def plot_steady_steps(lengths: list[float], lr: float, beta: float) -> Figure:
    """Step length under a constant gradient: it climbs from lr to lr/(1−β)."""
    fig = new_figure(7.5, 3.3)
    ax = fig.subplots()
    ax.plot(range(1, len(lengths) + 1), lengths, label="SGD momentum step", **STYLES["heavy_ball"] | {"markersize": 3})
    ax.axhline(lr, color=STYLES["gd"]["color"], linestyle="--", linewidth=1, label=f"plain SGD step: lr = {lr:g}")
    ax.axhline(lr / (1 - beta), color="black", linestyle=":", linewidth=1,
               label=f"lr/(1−β) = {lr / (1 - beta):g}")
    ax.set(xlabel="step", ylabel="distance moved (gradient = 1)", ylim=(0, 1.15 * lr / (1 - beta)),
           title=f"Step length under a constant gradient (β = {beta:g})")
    legend_right(ax)
    return fig


@lab_figure
def plot_rosenbrock(runs: list[dict]) -> Figure:
    """Paths of SGD with and without momentum in the Rosenbrock valley, one style per run."""
    fig = new_figure(7.8, 4.2)
    ax = fig.subplots()
    X, Y = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    Z = (1 - X) ** 2 + 100 * (Y - X ** 2) ** 2
    ax.contour(X, Y, np.log10(Z + 1e-3), levels=20, colors="lightgrey", linewidths=0.8)
    for i, run in enumerate(runs):
        path = run["path"].numpy()
        path = path[np.isfinite(path).all(axis=1) & (np.abs(path) < 5).all(axis=1)]
        steps = "diverged" if run["diverged"] else (f"{run['steps']} steps" if run["steps"] else "not there")
        ax.plot(path[:, 0], path[:, 1], linewidth=1, markersize=3,
                label=f"lr {run['lr']:.3g}, β {run['beta']:g}: {steps}",
                **series_style(i) | {"markevery": max(1, len(path) // 15)})
    ax.plot([1], [1], marker="*", color="black", markersize=12, linestyle="none", label="minimum (1, 1)")
    ax.plot(*mom.ROSENBROCK_START, marker="o", color="black", linestyle="none", label="start")
    ax.set(xlim=(-2, 2), ylim=(-1, 3), xlabel="x", ylabel="y",
           title="Paths in the Rosenbrock valley: (1−x)² + 100(y−x²)²")
    ax.grid(False)
    legend_right(ax)
    return fig


@lab_figure
def plot_double_well(rows: list[dict]) -> Figure:
    """Left: the function. Right: per β, the share of starts that escaped / were knocked out (bars from 0,
    told apart by hatch as well as colour)."""
    fig = new_figure(10.5, 3.9)
    ax_f, ax_bar = fig.subplots(1, 2)
    x = torch.linspace(-2, 2, 400, dtype=torch.float64)
    ax_f.plot(x.numpy(), mom.double_well(x).numpy(), color="black", label="f(x)")
    ax_f.axvline(mom.DOUBLE_WELL_BARRIER, color=GREY, linestyle=":", linewidth=1, label="hill top")
    ax_f.set(xlabel="x", ylabel="f(x)", ylim=(-3, 5), title="f(x) = x⁴ − 2x² + x/2: global min left, local right")
    positions = np.arange(len(rows))
    width = 0.38
    for offset, key, label, i in ((-width / 2, "escaped_local", "started in the local basin, ended global", 0),
                                  (width / 2, "knocked_out_of_global", "started in the global basin, ended local", 1)):
        bars = ax_bar.bar(positions + offset, [100 * r[key] for r in rows], width, label=label, **bar_style(i))
        ax_bar.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)  # a 0 % bar is invisible without its number
    ax_bar.set_xticks(positions, [f"β = {r['beta']:g}" for r in rows])
    ax_bar.set(xlabel="momentum β", ylabel="% of starts", ylim=(0, 105),
               title="Where SGD(momentum=β) ends, by starting basin")
    ax_bar.grid(axis="x", visible=False)
    legend_below(fig, ncols=2)
    return fig


@lab_figure
def plot_epochs_per_seed(card: ResultCard, budget: int) -> Figure:
    """Epochs to target for each optimizer and seed: the spread is the point (× above the budget: never)."""
    fig = new_figure(7.5, 3.6)
    ax = fig.subplots()
    for i, row in enumerate(card.rows):
        seeds = row.get("epochs_per_seed", [])
        offsets = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else [0.0]
        for offset, epochs in zip(offsets, seeds):
            if epochs is None:
                ax.plot(i + offset, budget + 1, marker="x", color=VERMILLION, linestyle="none",
                        label="never reached (drawn above the budget)")
            else:
                ax.plot(i + offset, epochs, marker="o", color=BLUE, alpha=0.7, linestyle="none", label="one seed")
        reached = [e for e in seeds if e is not None]
        if reached:
            ax.plot([i - 0.25, i + 0.25], [sum(reached) / len(reached)] * 2, color="black", linewidth=2,
                    label="mean of the seeds that got there")
    ax.axhline(budget + 0.5, color=GREY, linestyle=":", linewidth=1, label=f"budget: {budget} epochs")
    ax.set_xticks(range(len(card.rows)), card.variants)
    ax.set(xlabel="optimizer", ylabel="epochs to target", ylim=(0, budget + 2.5),
           title="Epochs to target, one dot per seed")
    ax.grid(axis="x", visible=False)
    legend_right(ax)
    return fig


# ---------------------------------------------------------------- the explorer

class MomentumExplorer(Explorer):
    """Sliders for κ, rotation, learning rates and β; paths of five torch.optim optimizers, redrawn.

    `explorer.summary` holds the plain-text result of the last redraw (it is also printed when
    the explorer is displayed), so tests and static viewers see the numbers.
    """

    def __init__(self, kappa: float = 100.0, lr: float = 1.0, beta: float = 0.8, adaptive_lr: float = 0.05,
                 steps: int = 200, names: tuple[str, ...] = mom.QUADRATIC_OPTIMIZERS):
        super().__init__(framed=True)
        self._quiet = False  # True while set_best moves two sliders: one redraw, not two
        slider = dict(continuous_update=False, style={"description_width": "150px"},
                      layout=widgets.Layout(width="420px"))
        self.kappa = widgets.FloatLogSlider(value=kappa, base=10, min=0, max=3, step=0.05,
                                            description="condition number κ", readout_format=".3g", **slider)
        self.angle = widgets.FloatSlider(value=0, min=0, max=90, step=5, description="rotation (°)", **slider)
        self.lr = widgets.FloatSlider(value=lr, min=0, max=4, step=0.01, description="lr (GD, momentum)", **slider)
        self.beta = widgets.FloatSlider(value=beta, min=0, max=1, step=0.01, description="β (momentum, Adam β1)",
                                        **slider)
        self.adaptive_lr = widgets.FloatSlider(value=adaptive_lr, min=0, max=0.5, step=0.005, readout_format=".3f",
                                               description="lr (Adam, RMSprop)", **slider)
        self.steps = widgets.IntSlider(value=steps, min=20, max=1000, step=10, description="steps", **slider)
        self.checkboxes = {n: widgets.Checkbox(value=n in names, description=LABELS[n], indent=False,
                                               layout=widgets.Layout(width="auto"))
                           for n in mom.QUADRATIC_OPTIMIZERS}
        self.best_button = widgets.Button(description="best lr, β for heavy ball", icon="star")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="1000px"))
        for control in (self.kappa, self.angle, self.lr, self.beta, self.adaptive_lr, self.steps,
                        *self.checkboxes.values()):
            control.observe(lambda _: self.update(), names="value")
        self.best_button.on_click(lambda _: self.set_best())
        self.widget.children = [
            widgets.HTML("<b>Momentum explorer</b> — f(x) = ½xᵀAx with eigenvalues 1/κ and 1; "
                         "every path is a real torch.optim optimizer"),
            widgets.HBox([widgets.VBox([self.kappa, self.angle, self.steps]),
                          widgets.VBox([self.lr, self.beta, self.adaptive_lr])]),
            widgets.HBox([*self.checkboxes.values(), self.best_button]),
            self.message, self.image, self.text,
        ]
        self.update()

    def set_best(self) -> None:
        """Move lr and β to Polyak's optimum for the current κ (one redraw)."""
        self.attempt(self._set_best)

    def _set_best(self) -> None:
        best = mom.best_heavy_ball(mom.Quadratic(self.kappa.value))
        self._quiet = True  # the two assignments below would each redraw
        try:
            self.lr.value, self.beta.value = round(best["lr"], 2), round(best["beta"], 2)
        finally:
            self._quiet = False
        self.update()

    def update(self) -> str:
        """Recompute every chosen path, redraw and return the summary; a bad setting becomes a one-line message."""
        if not self._quiet:
            self.attempt(self._draw)
        return self.summary

    def _draw(self) -> None:
        names = [n for n, box in self.checkboxes.items() if box.value]
        if not names:
            raise LabkitError("Tick at least one optimizer.")
        runs = mom.explore(self.kappa.value, self.lr.value, self.beta.value, self.adaptive_lr.value, names,
                           steps=self.steps.value, angle_deg=self.angle.value)
        q = mom.Quadratic(self.kappa.value, self.angle.value)
        self.draw(self.image, plot_trajectories(q, runs))
        head = (f"κ={q.kappa:.3g}, rotation {self.angle.value:g}°, lr={self.lr.value:g}, β={self.beta.value:g}, "
                f"adaptive lr={self.adaptive_lr.value:g}, tolerance 1e-6·||x_0||")
        self.show_summary("momentum explorer: " + head + "\n" + "\n".join("  " + r.describe() for r in runs))
