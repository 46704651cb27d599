"""The search explorer: best accuracy so far against trials and against wall time, and what mattered.

Thin: it reads the trials a `labkit.techniques.hpo.compare` run recorded (no training here), calls
`hpo.summarize_trials` / `hpo.best_so_far`, and draws what comes back. Every redraw also writes a
plain-text summary (for tests and static viewers).
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from labkit.techniques import hpo
from labkit.ui import text_summary
from labkit.ui.base import Explorer
from labkit.ui.style import GREEN, GREY, PURPLE, SKY, floor_marks, lab_figure, legend_below, new_figure, series_style

# one style per method (colour, dash, marker): curves that coincide stay tellable apart
METHOD_STYLES = {"grid": series_style(6), "random": series_style(0), "tpe": series_style(1),
                 "tpe_pruned": series_style(2)}
FLOOR_PT = 6  # the y axis shows the top 6 points; anything lower is drawn on the floor, and said so


def _floor(tops: list[float]) -> float | None:
    """The y axis's floor: 6 points under the best top (a diverged first trial at 10 % would flatten
    every curve); None without data."""
    tops = [t for t in tops if not math.isnan(t)]
    return max(tops) - FLOOR_PT if tops else None


def _clip(values: list[float], floor: float | None) -> list[float]:
    return list(values) if floor is None else [max(v, floor) for v in values]


def _floor_note(ax, floor: float | None, clipped: bool) -> None:
    """Say on the axes that lower values sit on its bottom edge (a zoom must not hide that lines go on)."""
    if floor is None:
        return
    ax.set_ylim(floor - 0.3, None)
    if clipped:
        ax.annotate(f"▼ lower values drawn at {floor:.1f} %", (0.99, 0.02), xycoords="axes fraction", ha="right",
                    va="bottom", fontsize=7, color=GREY)


@lab_figure
def plot_best_so_far(comp: hpo.Comparison, seeds: tuple[int, ...] | None = None, n_trials: int | None = None,
                     highlight: str | None = None) -> Figure:
    """Best validation accuracy so far, per method, against trials (left) and wall time (right).
    Each method has its own colour, dash and marker; one thin line per seed and, against trials, the
    median over seeds drawn thick. The dotted line is grid's best − 0.5 point (the pruned_time_ratio's
    target). The y axis shows the top 6 points: lower values are drawn on its floor, marked ▼."""
    seeds = seeds or comp.cfg.seeds
    fig = new_figure(11, 4.4)
    ax_n, ax_t = fig.subplots(1, 2, sharey=True)
    curves = {m: {seed: hpo.best_so_far([r.value for r in by_seed[seed][:n_trials]]) for seed in seeds}
              for m, by_seed in comp.runs.items()}
    floor = _floor([b[-1] for per_seed in curves.values() for b in per_seed.values() if b])
    clipped = any(v < floor for per_seed in curves.values() for b in per_seed.values() for v in b) if floor else False
    for method, by_seed in comp.runs.items():
        style = METHOD_STYLES.get(method, series_style(len(METHOD_STYLES)))
        faded = highlight not in (None, method)
        alpha = 0.35 if faded else 1.0
        for seed in seeds:
            recs, best = by_seed[seed][:n_trials], curves[method][seed]
            thin = dict(color=style["color"], linestyle=style["linestyle"], lw=1.0, alpha=0.5 * alpha)
            ax_n.step(range(1, len(recs) + 1), _clip(best, floor), where="post", **thin)
            ax_t.step([r.wall_s for r in recs], _clip(best, floor), where="post", **thin)
            if recs:  # each seed's search ends at its marker
                ax_t.plot(recs[-1].wall_s, _clip(best, floor)[-1], marker=style["marker"], color=style["color"],
                          alpha=alpha, linestyle="none")
        lengths = [len(b) for b in curves[method].values() if b]
        if lengths:
            n = min(lengths)
            median = np.median([b[:n] for b in curves[method].values() if b], axis=0)
            ax_n.step(range(1, n + 1), _clip(median, floor), where="post", color=style["color"],
                      linestyle=style["linestyle"], lw=2.6 if method == highlight else 1.8, alpha=alpha)
            ax_n.plot(range(1, n + 1), _clip(median, floor), linestyle="none", marker=style["marker"],
                      markevery=max(1, n // 8), color=style["color"], alpha=alpha)
            floor_marks(ax_n, range(1, n + 1), median, floor, style["color"])
    handles = [Line2D([], [], color=METHOD_STYLES.get(m, series_style(4))["color"],
                      linestyle=METHOD_STYLES.get(m, series_style(4))["linestyle"],
                      marker=METHOD_STYLES.get(m, series_style(4))["marker"], label=m) for m in comp.runs]
    if len(seeds) > 1:
        handles.append(Line2D([], [], color=GREY, lw=1.0, alpha=0.6, label="thin: one seed; thick: median of seeds"))
    if "grid" in comp.runs and len(seeds) == 1:
        target = hpo.best_value(comp.runs["grid"][seeds[0]]) - hpo.WITHIN_PT
        for ax in (ax_n, ax_t):
            ax.axhline(max(target, floor or target), color="black", linestyle=":", lw=1)
        handles.append(Line2D([], [], color="black", linestyle=":", lw=1, label="grid's best − 0.5"))
    seed_note = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds"
    ax_n.set(xlabel="trial", ylabel="best validation accuracy so far (%)",
             title=f"Best so far against trials ({seed_note})")
    ax_t.set(xlabel="wall time since the search started (s)",
             title="Best so far against wall time (same epoch budget)")
    for ax in (ax_n, ax_t):
        _floor_note(ax, floor, clipped)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    return fig


@lab_figure
def plot_trial_curves(records: list[hpo.TrialRecord], title: str = "") -> Figure:
    """Validation accuracy after each epoch for every trial: finished trials solid with dots, stopped ones
    grey, dashed, with crosses. The y axis shows the top 25 points; lower values sit on its floor (▼)."""
    fig = new_figure(7.5, 3.8)
    ax = fig.subplots()
    finished = [v for r in records for v in r.curve]
    floor = max(0.0, max(finished) - 25) if finished else None
    for r in records:
        epochs = range(1, r.epochs + 1)
        if r.pruned:
            ax.plot(epochs, _clip(r.curve, floor), color=GREY, alpha=0.6, lw=1, linestyle="--", marker="x", ms=3)
        else:
            ax.plot(epochs, _clip(r.curve, floor), color=GREEN, alpha=0.8, lw=1.2, marker="o", ms=3)
    stopped = sum(r.pruned for r in records)
    ax.plot([], [], color=GREY, linestyle="--", marker="x", label=f"stopped early ({stopped})")
    ax.plot([], [], color=GREEN, marker="o", label=f"finished ({len(records) - stopped})")
    if finished:
        ax.set_ylim(None, max(finished) + 2)
        _floor_note(ax, floor, any(v < floor for v in finished))
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title=title or "Every trial's learning curve")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 1.25 ticks on a short run
    legend_below(fig, ncols=2)
    return fig


@lab_figure
def plot_importance(importances: dict[str, float], spreads: dict[str, float] | None = None,
                    title: str = "Which hyperparameters matter") -> Figure:
    """Optuna's importance (share of 1) and, if given, the ablation's spread (points) per hyperparameter."""
    names = list(importances)
    panels = 2 if spreads else 1
    fig = new_figure(4.8 * panels + 0.6, 0.5 * len(names) + 2.0)
    axes = fig.subplots(1, panels, squeeze=False, sharey=True)[0]
    bars = axes[0].barh(names, [importances[n] for n in names], color=PURPLE, edgecolor="#333333", linewidth=0.5)
    axes[0].bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    axes[0].set(xlabel="importance (PED-ANOVA, sums to 1)", ylabel="hyperparameter", title=title, xlim=(0, 1.15))
    if spreads:
        bars = axes[1].barh(names, [spreads[n] for n in names], color=SKY, edgecolor="#333333", linewidth=0.5)
        axes[1].bar_label(bars, fmt="%.1f pt", padding=3, fontsize=8)
        axes[1].set_xscale("symlog", linthresh=1)  # the learning rate's spread dwarfs the others
        axes[1].set_xlim(0, max(spreads.values()) * 4 + 1)
        axes[1].set(xlabel="accuracy spread, one at a time (points, log above 1)",
                    title="Ablation around the best setting")
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="y", visible=False)
    return fig


def summary_text(view: hpo.SearchView) -> str:
    """The view (from `hpo.summarize_trials`) as text: one line per method, then the importance ranking."""
    lines = [f"seed {view.seed}, first {view.n_trials} trials:"]
    lines += ["  " + text_summary(m, numbers) for m, numbers in view.methods.items()]
    if view.importance is None:
        lines.append(f"  importance ({view.method}): {view.importance_error}")
    else:
        lines.append("  " + text_summary(f"importance ({view.method})",
                                         {k: round(v, 3) for k, v in view.importance.items()}))
    return "\n".join(lines)


class SearchExplorer(Explorer):
    """Pick a method, a seed and how many trials to look at; redraws the curves, the importance and the text."""

    def __init__(self, comp: hpo.Comparison, method: str = "tpe_pruned", seed: int | None = None):
        hpo.check_method(method)
        super().__init__()
        self.comp = comp
        seeds = list(comp.cfg.seeds)
        most = max(len(t) for by_seed in comp.runs.values() for t in by_seed.values())
        self.method = widgets.Dropdown(options=list(comp.runs), value=method, description="method")
        self.seed = widgets.Dropdown(options=seeds, value=seeds[0] if seed is None else seed, description="seed")
        self.trials = widgets.IntSlider(value=most, min=1, max=most, description="trials", continuous_update=False)
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="1000px"))
        self.bars = widgets.Image(format="png", layout=widgets.Layout(max_width="500px"))
        for control in (self.method, self.seed, self.trials):
            control.observe(lambda _: self.update(), names="value")
        self.widget.children = [widgets.HBox([self.method, self.seed, self.trials]), self.message, self.picture,
                                self.bars, self.text]
        self.update()

    def update(self) -> str:
        """Redraw for the current controls and return the summary; a problem gives a one-line message."""
        self.attempt(self._draw)
        return self.summary

    def _draw(self) -> None:
        method, seed, n = self.method.value, self.seed.value, self.trials.value
        view = hpo.summarize_trials(self.comp, method, seed, n)
        self.draw(self.picture, plot_best_so_far(self.comp, (seed,), n, highlight=method))
        if view.importance is None:  # too few trials for importance: the summary says so
            self.bars.value = b""
        else:
            self.draw(self.bars, plot_importance(view.importance, title=f"Importance, {method}, {n} trials"))
        self.show_summary(summary_text(view))
