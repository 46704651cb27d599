"""Explorers for notebooks/06_ddp.ipynb (the communication explorer) and 06b (the pipeline schedule plot).

The explorer only collects settings, calls `labkit.techniques.ddp.measure_comm` (a real torchrun
launch), and draws what comes back; every run also prints a one-line text summary.
"""

from __future__ import annotations

import os

import ipywidgets as widgets
from matplotlib.figure import Figure

from labkit.techniques import ddp
from labkit.ui import text_summary
from labkit.ui.base import RunPanel
from labkit.ui.style import BLUE, GREY, bar_style, lab_figure, legend_below, new_figure, series_style


@lab_figure
def plot_scaling(report) -> Figure:
    """Images/s of each variant on the DDP card (bars from 0), with the perfect-scaling line at 2 × one rank."""
    card, head = report.card, report.headline
    fig = new_figure(8, 0.45 * len(card.variants) + 2.2)
    ax = fig.subplots()
    names = card.variants
    values = [card.value(n, "images_per_s") for n in names]
    ys = range(len(names))
    ax.barh(list(ys), values, color=BLUE, edgecolor="#333333", linewidth=0.5)
    ax.axvline(2 * head["throughput_1"], color="black", linestyle="--", linewidth=1,
               label="perfect scaling: 2 × one rank")
    for y, v in zip(ys, values):
        ax.annotate(f"{v:.0f}", (v, y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set(xlabel="training images / s (median of interleaved windows)", ylabel="configuration",
           title=f"Training throughput: scaling efficiency {head['scaling_efficiency']:.2f}, "
                 f"communication {100 * head['comm_fraction']:.0f} % of a step")
    ax.set_xlim(0, 1.15 * max(values + [2 * head["throughput_1"]]))
    ax.grid(axis="y", visible=False)
    legend_below(fig)
    return fig


@lab_figure
def plot_comm_runs(runs: list[dict]) -> Figure:
    """Images/s with and without all-reduce for every explorer run so far, newest last (bars from 0)."""
    fig = new_figure(8, 3.8)
    ax = fig.subplots()
    labels = [f"{r['ranks']} rank(s)\nbucket {r['bucket_cap_mb']:g} MB\naccum {r['accum']}" for r in runs]
    xs = range(len(runs))
    ax.bar([x - 0.2 for x in xs], [r["images_per_s"] for r in runs], width=0.4, label="with all-reduce",
           **bar_style(0))
    ax.bar([x + 0.2 for x in xs], [r["images_per_s_no_comm"] for r in runs], width=0.4,
           label="no_sync (no communication)", **bar_style(1))
    for x, r in zip(xs, runs):
        ax.annotate(f"comm {100 * r['comm_fraction']:.0f} %", (x, r["images_per_s_no_comm"]),
                    textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7 if len(runs) > 4 else 8)
    ax.set_xticks(list(xs), labels, fontsize=8 if len(runs) <= 5 else 6)
    ax.set(xlabel="explorer run (oldest left)", ylabel="training images / s",
           title="Throughput with and without gradient all-reduce")
    ax.set_ylim(0, 1.2 * max(r["images_per_s_no_comm"] for r in runs))
    ax.grid(axis="x", visible=False)
    legend_below(fig, ncols=2)
    return fig


@lab_figure
def plot_pipeline(rows: list[dict]) -> Figure:
    """Measured idle share of the two pipeline ranks against GPipe's (S − 1)/(M + S − 1), and the step time."""
    fig = new_figure(9, 3.8)
    ax_idle, ax_time = fig.subplots(1, 2)
    m = [r["microbatches"] for r in rows]
    ax_idle.plot(m, [100 * r["idle_rank0"] for r in rows], label="rank 0 (first half) idle", **series_style(0))
    ax_idle.plot(m, [100 * r["idle_rank1"] for r in rows], label="rank 1 (second half) idle", **series_style(1))
    ax_idle.plot(m, [100 * r["bubble_theory"] for r in rows], linestyle=":", color=GREY, linewidth=1.4,
                 label="bubble, equal stages: 1/(M+1)")
    ax_idle.set(xscale="log", xlabel="micro-batches per step (M)", ylabel="idle share of the step (%)",
                title="Idle share of each pipeline rank", ylim=(0, 100))
    ax_time.plot(m, [r["step_ms"] for r in rows], label="step time", **series_style(2))
    ax_time.set(xscale="log", xlabel="micro-batches per step (M)", ylabel="ms per training step",
                title="Step time (same batch of images, 2 ranks)", ylim=(0, 1.15 * max(r["step_ms"] for r in rows)))
    for ax in (ax_idle, ax_time):
        ax.minorticks_off()  # only the measured M values as ticks
        ax.set_xticks(m, [str(v) for v in m])
    legend_below(fig, [ax_idle], ncols=3)
    return fig


class CommExplorer(RunPanel):
    """Ranks, bucket size and gradient accumulation → a real torchrun launch → throughput and comm share."""

    STOPPING = "stopping every rank …"

    def __init__(self, cfg: ddp.DDPConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.runs: list[dict] = []
        self._launch: ddp.Launch | None = None
        self.ranks = widgets.BoundedIntText(value=2, min=-99, max=99, description="ranks",
                                            layout=widgets.Layout(width="160px"))
        self.bucket = widgets.Dropdown(options=[0.01, 0.1, 1.0, 25.0], value=25.0, description="bucket MB",
                                       layout=widgets.Layout(width="200px"))
        self.accum = widgets.BoundedIntText(value=1, min=-99, max=99, description="accum steps",
                                            layout=widgets.Layout(width="190px"))
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="820px"))
        self.log = widgets.Output(layout=widgets.Layout(max_height="160px", overflow="auto"))
        self.show_status(f"ready: this machine has {os.cpu_count()} CPU core(s); press Run")
        self.widget.children = [
            widgets.HTML("<b>Communication explorer</b> — each Run is a real <code>torchrun</code> launch"),
            widgets.HBox([self.ranks, self.bucket, self.accum, self.run_button, self.stop_button]),
            self.message, self.text, self.plot, self.log,
        ]

    def run(self, ranks: int | None = None, bucket_cap_mb: float | None = None, accum: int | None = None,
            *, echo: bool = True) -> dict | None:
        """Measure one setting (the widget's by default); returns the row, or None with a one-line message
        when the setting is not valid or the launch failed."""
        ranks = self.ranks.value if ranks is None else ranks
        bucket_cap_mb = self.bucket.value if bucket_cap_mb is None else bucket_cap_mb
        accum = self.accum.value if accum is None else accum
        return self.attempt(lambda: self._measure(ranks, bucket_cap_mb, accum, echo), echo=echo)

    def _measure(self, ranks: int, bucket_cap_mb: float, accum: int, echo: bool) -> dict:
        with self.running():
            self.show_status(f"running {ranks} rank(s), bucket {bucket_cap_mb:g} MB, accum {accum} …")
            row = ddp.measure_comm(ranks, bucket_cap_mb=bucket_cap_mb, accum=accum, cfg=self.cfg,
                                   on_line=self._log_line, on_start=self._remember)
        self.runs.append(row)
        self.draw(self.plot, plot_comm_runs(self.runs))
        self.show_summary(text_summary("DDP step", {k: row[k] for k in ("ranks", "bucket_cap_mb", "accum", "images_per_s",
                                                                        "images_per_s_no_comm", "comm_fraction")}),
                          echo=echo)
        return row

    def background_work(self) -> None:
        self.log.clear_output()
        self.run(echo=False)

    def stop(self) -> None:
        """End the running launch: every rank stops."""
        super().stop()
        if self._launch is not None:
            self._launch.stop()

    def _log_line(self, line: str) -> None:
        self.log.append_stdout(line + "\n")

    def _remember(self, running: ddp.Launch) -> None:
        self._launch = running
