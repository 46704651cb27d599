"""The search explorer: best accuracy so far against trials and against wall time, and what mattered.

Thin: it reads the trials a `labkit.techniques.hpo.compare` run recorded (no training here), calls
`hpo.summarize_trials` / `hpo.best_so_far`, and draws what comes back. Every redraw also writes a
plain-text summary (for tests and static viewers).
"""

from __future__ import annotations

import math

import ipywidgets as widgets
from matplotlib.figure import Figure

from labkit.techniques import hpo
from labkit.ui import figure_png, text_summary
from labkit.ui.base import Explorer

COLORS = {"grid": "tab:grey", "random": "tab:blue", "tpe": "tab:orange", "tpe_pruned": "tab:green"}


def _ylim(ax, tops: list[float]) -> None:
    """Zoom on the top few points: a diverged first trial (10 %) would flatten every curve."""
    tops = [t for t in tops if not math.isnan(t)]
    if tops:
        ax.set_ylim(max(tops) - 6, max(tops) + 0.8)


def plot_best_so_far(comp: hpo.Comparison, seeds: tuple[int, ...] | None = None, n_trials: int | None = None,
                     highlight: str | None = None) -> Figure:
    """Best validation accuracy so far, per method, against trials (left) and wall time (right).
    One line per seed; the dotted line is grid's best − 0.5 point (the pruned_time_ratio's target)."""
    seeds = seeds or comp.cfg.seeds
    fig = Figure(figsize=(11, 3.9), layout="constrained")
    ax_n, ax_t = fig.subplots(1, 2)
    tops = []
    for method, by_seed in comp.runs.items():
        for i, seed in enumerate(seeds):
            recs = by_seed[seed][:n_trials]
            best = hpo.best_so_far([r.value for r in recs])
            thick = 2.4 if method == highlight else 1.4
            alpha = 1.0 if highlight in (None, method) else 0.45
            label = method if i == 0 else None
            ax_n.step(range(1, len(recs) + 1), best, where="post", color=COLORS.get(method), lw=thick,
                      alpha=alpha, label=label)
            ax_t.step([r.wall_s for r in recs], best, where="post", color=COLORS.get(method), lw=thick,
                      alpha=alpha, label=label)
            tops.append(best[-1] if best else math.nan)
    if "grid" in comp.runs and len(seeds) == 1:
        target = hpo.best_value(comp.runs["grid"][seeds[0]]) - hpo.WITHIN_PT
        for ax in (ax_n, ax_t):
            ax.axhline(target, color="black", linestyle=":", lw=1, label="grid's best − 0.5")
    seed_note = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds, one line each"
    ax_n.set(xlabel="trial", ylabel="best validation accuracy so far (%)", title=f"Against trials ({seed_note})")
    ax_t.set(xlabel="wall time since the search started (s)", title="Against wall time (same epoch budget)")
    for ax in (ax_n, ax_t):
        _ylim(ax, tops)
        ax.grid(alpha=0.3)
    ax_n.legend(fontsize=8, loc="lower right")
    return fig


def plot_trial_curves(records: list[hpo.TrialRecord], title: str = "") -> Figure:
    """Validation accuracy after each epoch for every trial: finished trials in colour, stopped ones grey."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for r in records:
        epochs = range(1, r.epochs + 1)
        if r.pruned:
            ax.plot(epochs, r.curve, color="grey", alpha=0.5, lw=1, marker="x", ms=3)
        else:
            ax.plot(epochs, r.curve, color="tab:green", alpha=0.8, lw=1.2, marker="o", ms=3)
    stopped = sum(r.pruned for r in records)
    ax.plot([], [], color="grey", marker="x", label=f"stopped early ({stopped})")
    ax.plot([], [], color="tab:green", marker="o", label=f"finished ({len(records) - stopped})")
    finished = [v for r in records for v in r.curve]
    if finished:
        ax.set_ylim(max(0, max(finished) - 25), max(finished) + 2)
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title=title or "Every trial's learning curve")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_importance(importances: dict[str, float], spreads: dict[str, float] | None = None,
                    title: str = "Which hyperparameters matter") -> Figure:
    """Optuna's importance (share of 1) and, if given, the ablation's spread (points) per hyperparameter."""
    names = list(importances)
    panels = 2 if spreads else 1
    fig = Figure(figsize=(4.6 * panels, 0.5 * len(names) + 1.8), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    bars = axes[0].barh(names, [importances[n] for n in names], color="tab:purple")
    axes[0].bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    axes[0].set(xlabel="importance (PED-ANOVA, sums to 1)", title=title, xlim=(0, 1.12))
    if spreads:
        bars = axes[1].barh(names, [spreads[n] for n in names], color="tab:cyan")
        axes[1].bar_label(bars, fmt="%.1f pt", padding=3, fontsize=8)
        axes[1].set_xscale("symlog", linthresh=1)  # the learning rate's spread dwarfs the others
        axes[1].set_xlim(0, max(spreads.values()) * 4 + 1)
        axes[1].set(xlabel="accuracy spread, one at a time (points, log scale)",
                    title="Ablation around the best setting")
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
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
        self.picture.value = figure_png(plot_best_so_far(self.comp, (seed,), n, highlight=method))
        self.bars.value = (b"" if view.importance is None  # too few trials for importance: the summary says so
                           else figure_png(plot_importance(view.importance, title=f"Importance, {method}, {n} trials")))
        self.show_summary(summary_text(view))
