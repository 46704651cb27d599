"""The lab's one figure style: every figure a notebook, an explorer or the report draws goes through here.

- Colours: the Okabe–Ito palette (readable with every common colour-vision deficiency), and every
  series also gets its own marker, line style or hatch, so no comparison rests on colour alone.
- Figures: white, constrained layout, rendered at twice the screen resolution (sharp on high-density
  screens), legends outside the axes so they cover no data.
- Honest axes: `ratio_axis` (log scale, 1× marked), `gap` (a missing value is a labelled gap, never a
  0 or a blank), `dots` (points ± spread where bars from zero would hide a small difference).
- Smoke mode (LABKIT_MODE=smoke): every figure says "smoke mode — not for quoting" and gets a red frame.
- `show(fig, alt)`: the figure as a notebook output with alt text (one sentence, also its text form).
"""

from __future__ import annotations

import base64
import functools
import html
import io
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

import matplotlib
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from labkit import env

# Okabe & Ito (2008), "Color Universal Design": the eight colours, by name.
BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
PURPLE, SKY, YELLOW, BLACK = "#CC79A7", "#56B4E9", "#F0E442", "#000000"
GREY = "#777777"  # references (target, baseline, 1×): not a series
PALETTE = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, BLACK, YELLOW)  # yellow last: faint on white
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "+++", "ooo", "---")

SCREEN_DPI = 100  # the figure's size on screen: inches × 100 CSS pixels
DPI = 2 * SCREEN_DPI  # rendered at twice that: sharp on high-density screens
SMOKE_NOTE = "smoke mode — shrunken run, not for quoting"
SMOKE_GID = "labkit-smoke"

LAB_RC = {
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
    "figure.dpi": SCREEN_DPI, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "figure.titlesize": 10,
    "axes.prop_cycle": cycler(color=PALETTE) + cycler(linestyle=LINESTYLES),
    "axes.grid": True, "grid.alpha": 0.35, "grid.linewidth": 0.6, "axes.axisbelow": True,
    "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.6, "lines.markersize": 5, "legend.frameon": False, "hatch.linewidth": 0.7,
    "image.cmap": "gray_r",
}

R = TypeVar("R")


# ---------------------------------------------------------------- series

def series_style(i: int, points: int = 0) -> dict:
    """Colour, marker and line style of the i-th series: no two of the first eight share any of them.
    `points`: the series' length; long lines get a marker every few points only."""
    style = {"color": PALETTE[i % 8], "marker": MARKERS[i % 8], "linestyle": LINESTYLES[i % 8]}
    if points > 25:
        style["markevery"] = max(1, points // 12)
    return style


def bar_style(i: int) -> dict:
    """Face colour and hatch of the i-th bar series (a dark edge, so the hatch shows on every colour)."""
    return {"color": PALETTE[i % 8], "hatch": HATCHES[i % 8], "edgecolor": "#333333", "linewidth": 0.6}


# ---------------------------------------------------------------- figures

def new_figure(width: float, height: float) -> Figure:
    """A white figure with constrained layout (labels never cut off), `width` × `height` inches."""
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def lab_figure(plot: Callable[..., R]) -> Callable[..., R]:
    """Decorator for a plot function: it draws in the lab's style (LAB_RC) and its figure is finished
    (`finish`: the smoke mark). It may return a Figure, None, or a tuple whose first item is the Figure."""
    @functools.wraps(plot)
    def draw(*args, **kwargs):
        with matplotlib.rc_context(LAB_RC):
            out = plot(*args, **kwargs)
            fig = out[0] if isinstance(out, tuple) else out
            if isinstance(fig, Figure):
                finish(fig)
        return out
    return draw


def finish(fig: Figure, smoke: bool | None = None) -> Figure:
    """What every figure gets before it is shown: the smoke mark (once) when `smoke`, by default in smoke mode."""
    if env.mode() == "smoke" if smoke is None else smoke:
        mark_smoke(fig)
    return fig


def mark_smoke(fig: Figure) -> None:
    """Say on the figure that its numbers come from a shrunken run: a line above it and a red frame."""
    if getattr(fig, "_labkit_smoke", False):
        return
    title = fig.get_suptitle()
    colour = {} if title else {"color": VERMILLION}  # an existing title keeps its colour; the frame is red
    fig.suptitle(f"[{SMOKE_NOTE}]" + (f"\n{title}" if title else ""), gid=SMOKE_GID, **colour)
    fig.patch.set_edgecolor(VERMILLION)
    fig.patch.set_linewidth(4)
    fig._labkit_smoke = True


def figure_png(fig: Figure, dpi: int = DPI, smoke: bool | None = None) -> bytes:
    """Render a Figure to PNG bytes at `dpi` (no pyplot: safe from a worker thread); smoke-marked in smoke
    mode (`smoke`: True or False to decide otherwise, e.g. by the mode of the data drawn)."""
    finish(fig, smoke)
    buffer = io.BytesIO()
    with matplotlib.rc_context(LAB_RC):
        FigureCanvasAgg(fig)
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# ---------------------------------------------------------------- legends

def _entries(axes: Iterable[Axes]) -> dict[str, object]:
    """Legend entries of `axes`, each label once (per-seed lines often share one)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    return entries


def legend_right(ax: Axes, **kwargs) -> None:
    """The axes' legend to the right of the axes, outside it (it covers no data); each label once."""
    entries = _entries([ax])
    ax.legend(list(entries.values()), list(entries), loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0,
              **kwargs)


def legend_below(fig: Figure, axes: Iterable[Axes] | None = None, ncols: int | None = None, **kwargs) -> None:
    """One legend for the whole figure, below the panels (outside every axes); entries of all `axes`
    (default: every axes), each label once."""
    entries = _entries(axes if axes is not None else fig.axes)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncols=ncols or min(len(entries), 4), **kwargs)


# ---------------------------------------------------------------- honest axes

def times_formatter() -> FuncFormatter:
    return FuncFormatter(lambda v, _: f"{v:g}×")


def log_axis(ax: Axes, axis: str = "x", ticks: Sequence[float] | None = None, fmt: str = "{:g}") -> None:
    """A log scale whose labels never collide: majors at `ticks`, or at 1-2-5 within a decade and a half
    of data and at powers of ten beyond; minor ticks never labelled (no "6×10¹" among custom labels).
    Call it after plotting: the span of the data decides the ticks."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if ticks is not None:
        (ax.set_xticks if axis == "x" else ax.set_yticks)(list(ticks), [fmt.format(t) for t in ticks])
    else:
        lo, hi = (ax.dataLim.intervalx if axis == "x" else ax.dataLim.intervaly)
        narrow = 0 < lo < float("inf") and 0 < hi < float("inf") and hi / lo < 30
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
        target.set_major_formatter(FuncFormatter(lambda v, _: fmt.format(v)))
    target.set_minor_formatter(NullFormatter())


def ratio_axis(ax: Axes, values: Iterable[float], axis: str = "x", label: str | None = None) -> None:
    """Ratios on a log axis (0.5× and 2× are equally far from 1×), with 1× (no change) marked."""
    finite = [v for v in values if v is not None and v == v and v > 0] + [1.0]
    lo, hi = min(finite) / 1.6, max(finite) * 1.6
    log_axis(ax, axis, fmt="{:g}×")
    if axis == "x":
        ax.set_xlim(lo, hi)
        ax.axvline(1.0, color=GREY, linestyle="--", linewidth=1, zorder=1)
    else:
        ax.set_ylim(lo, hi)
        ax.axhline(1.0, color=GREY, linestyle="--", linewidth=1, zorder=1)
    if label:
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)


def floor_marks(ax: Axes, xs: Sequence[float], ys: Sequence[float], floor: float | None, color: str) -> None:
    """Where a zoomed axis drew a value on its floor (the value is lower), put a ▼ there: a clipped point
    must not read as a measured one."""
    if floor is None:
        return
    low = [(x, floor) for x, y in zip(xs, ys) if y == y and y < floor]
    if low:
        ax.plot(*zip(*low), marker="v", linestyle="none", color=color, markersize=6, zorder=4)


def gap(ax: Axes, position: float, label: str, orient: str = "h") -> None:
    """A missing value as a labelled gap at category `position` (horizontal bars: a y position): no bar,
    no 0, the reason written where the bar would start."""
    if orient == "h":
        ax.annotate(f"— {label}", (0.01, position), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8, fontstyle="italic", color=GREY)
    else:
        ax.annotate(f"— {label}", (position, 0.02), xycoords=("data", "axes fraction"), rotation=90, ha="center",
                    va="bottom", fontsize=8, fontstyle="italic", color=GREY)


def dots(ax: Axes, positions: Sequence[float], values: Sequence[float], spread: Sequence[float] | None = None,
         points: Sequence[Sequence[float]] | None = None, orient: str = "h", i: int = 0, label: str | None = None,
         ) -> None:
    """A dot plot for small differences: the mean as a dot, ± `spread` as a bar, and each seed's value
    (`points`) as a faint mark beside it. The value axis starts where the data are, not at 0."""
    style = series_style(i)
    err = {"xerr" if orient == "h" else "yerr": spread} if spread is not None else {}
    xs, ys = (values, positions) if orient == "h" else (positions, values)
    ax.errorbar(xs, ys, **err, color=style["color"], marker=style["marker"], linestyle="none", capsize=3,
                markersize=6, label=label, zorder=3)
    for p, seeds in zip(positions, points or []):
        if seeds:
            px, py = (list(seeds), [p + 0.22] * len(seeds)) if orient == "h" else ([p + 0.22] * len(seeds), list(seeds))
            ax.plot(px, py, linestyle="none", marker=style["marker"], markersize=3.5, color=style["color"],
                    alpha=0.55, zorder=2)


# ---------------------------------------------------------------- alt text and display

def describe(fig: Figure) -> str:
    """A one-sentence text form of a figure, read off its panels: what each plots against what."""
    parts = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        x, y = ax.get_xlabel().replace("\n", " "), ax.get_ylabel().replace("\n", " ")
        what = f"{y or 'values'} against {x or 'category'}"
        title = ax.get_title().replace("\n", " ")
        labels = [lb for lb in ax.get_legend_handles_labels()[1] if not lb.startswith("_")]
        series = f" ({len(labels)} series: {', '.join(labels[:6])}{', …' if len(labels) > 6 else ''})" if labels else ""
        parts.append(f"{title + ': ' if title else ''}{what}{series}")
    images = sum(1 for ax in fig.axes if ax.images)
    if images:
        parts.append(f"{images} image{'s' if images > 1 else ''}")
    head = fig.get_suptitle().replace("\n", " ")
    return (f"{head}. " if head else "") + "Chart of " + "; ".join(parts or ["an empty figure"]) + "."


@dataclass
class FigureImage:
    """A rendered figure as a notebook output: the PNG with its alt text (in the image's metadata and as
    the text/plain form, so screen readers, static viewers and tests read the same sentence)."""
    png: bytes
    alt: str
    width: int
    height: int

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        png = base64.b64encode(self.png).decode("ascii")
        data = {"text/html": self.html(png), "image/png": png, "text/plain": self.alt}
        return data, {"image/png": {"alt": self.alt, "width": self.width, "height": self.height}}

    def html(self, png: str | None = None) -> str:
        """An <img> with the alt text: front-ends and nbconvert's HTML prefer it to the bare PNG, whose
        metadata most of them do not read."""
        png = png or base64.b64encode(self.png).decode("ascii")
        alt = html.escape(self.alt, quote=True)
        return f"<img src='data:image/png;base64,{png}' alt='{alt}' style='max-width:100%;width:{self.width}px'>"

    def __repr__(self) -> str:
        return self.alt


def show(fig: Figure, alt: str | None = None) -> FigureImage:
    """The figure as a display object with alt text: `display(show(fig, "one sentence"))`, or the cell's
    last value. Without `alt`, the sentence is read off the figure (`describe`)."""
    alt = " ".join((alt or describe(fig)).split())
    width, height = fig.get_size_inches()
    return FigureImage(figure_png(fig), alt, round(width * SCREEN_DPI), round(height * SCREEN_DPI))
