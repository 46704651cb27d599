"""Every figure the notebooks, the explorers and the report draw, rendered (smoke mode) and read back from
the matplotlib objects: no two pieces of text overlap or leave the figure, no legend covers a data point,
every axis is labelled, every series differs from the others by more than colour, smoke figures say so,
and `show(fig, alt)` carries its alt text.

Inputs are small and realistic (the shapes the techniques return), built here without training.
"""

from __future__ import annotations

import base64
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from labkit import report, train
from labkit.results import ResultCard
from labkit.techniques import dataloading as dl
from labkit.techniques import hpo, schedules, transfer
from labkit.techniques import momentum as mom
from labkit.ui import style

# ---------------------------------------------------------------- inputs


def _fit(accs: list[float], seconds_per_epoch: float = 3.0, target: float | None = 0.85) -> train.FitResult:
    n = len(accs)
    history = pd.DataFrame({"epoch": range(1, n + 1), "train_loss": [1.2 / (e + 1) for e in range(n)],
                            "test_acc": accs, "train_time_s": [seconds_per_epoch * (e + 1) for e in range(n)]})
    return train.FitResult(history=history, train_time_s=seconds_per_epoch * n, images_seen=10_000 * n,
                           target_acc=target)


def _seed_summaries() -> dict[str, schedules.SeedSummary]:
    rng = np.random.default_rng(0)
    base = np.array([0.70, 0.79, 0.83, 0.845, 0.855, 0.86, 0.865, 0.87])
    out = {}
    for i, name in enumerate(("constant 0.05", "step", "cosine", "one-cycle")):
        fits = [_fit(list(np.clip(base + 0.002 * i + rng.normal(0, 0.004, 8), 0, 1))) for _ in range(3)]
        out[name] = schedules.SeedSummary(name, fits, budget=8)
    return out


def _hpo_comparison() -> hpo.Comparison:
    rng = np.random.default_rng(1)
    runs = {}
    for method in ("grid", "random", "tpe", "tpe_pruned"):
        runs[method] = {}
        for seed in (0, 1, 2):
            recs, wall = [], 0.0
            for n in range(12):
                pruned = method == "tpe_pruned" and n % 3 == 2
                value = None if pruned else (10.0 if n == 0 and method == "random" else 84 + rng.normal(0, 1.2))
                wall += 2.0 if pruned else 6.0
                curve = [70 + 3 * e + rng.normal(0, 0.5) for e in range(2 if pruned else 6)]
                recs.append(hpo.TrialRecord(n, {"lr": 0.01}, value, len(curve), wall, pruned, curve))
            runs[method][seed] = recs
    return hpo.Comparison(cfg=hpo.SearchConfig(), runs=runs, test_acc={}, run_mode="smoke")


def _distillation_card() -> ResultCard:
    cost = {"latency_ms": 2.0, "latency_b1_ms": 0.3, "latency_threads": 2, "size_mb": 0.2, "params": 50_890}
    card = ResultCard(baseline="teacher")
    card.add({"variant": "teacher", "accuracy": 0.8955, "acc_std_pt": 0.0, "latency_ms": 30.0, "latency_b1_ms": 1.2,
              "latency_threads": 2, "size_mb": 1.7, "params": 430_000})
    for setting, (scratch, distilled) in {"all 10000 labelled": (0.8565, 0.8570),
                                          "2000 labelled": (0.8195, 0.8532)}.items():
        card.add({"variant": f"student scratch · {setting}", "accuracy": scratch, "acc_std_pt": 0.4, **cost})
        card.add({"variant": f"student distilled · {setting}", "accuracy": distilled, "acc_std_pt": 0.3, **cost})
    return card


def _chain_card() -> ResultCard:
    rows = [("teacher", 0.8955, 30.0, 1.7), ("student, distilled", 0.853, 2.0, 0.2),
            ("+ pruned 70%", 0.851, 1.9, 0.199), ("+ int8", 0.850, 1.1, 0.06)]
    return ResultCard([{"variant": v, "accuracy": a, "latency_ms": t, "size_mb": s} for v, a, t, s in rows])


def _report_frame() -> pd.DataFrame:
    """Latest-run rows as the report sees them: quantization in full mode on two machines (one variant
    skipped on the second), HPO and distillation in smoke mode."""
    rows = []
    machines = ("laptop · Intel Xeon 2 cores", "gpu-box · AMD EPYC · NVIDIA H100 (reference)")

    def add(bench: str, mode: str, machine: str, variant: str, **numbers: float) -> None:
        rows.append({"bench": bench, "mode": mode, "machine": machine, "time": "2025-01-01", "variant": variant,
                     **numbers})

    for m, machine in enumerate(machines):
        for v, ms, acc in (("fp32 eager", 7.6, 0.871), ("int8 dynamic", 2.4, 0.869), ("int8 static", 0.23, 0.866),
                           ("bf16 autocast", 13.6, 0.872)):
            if m == 1 and v == "int8 static":
                continue  # skipped on that machine: must be a labelled gap
            add("quantization", "full", machine, v, latency_ms=ms / (1 + 3 * m), accuracy=acc - 0.001 * m)
        for v, acc, best, t in (("grid", 0.8612, 85.1, 40.0), ("random", 0.8601, 84.6, 31.0),
                                ("tpe", 0.8634, 85.3, 22.0), ("tpe_pruned", 0.8625, 85.2, 12.5)):
            add("hpo", "smoke", machine, v, accuracy=acc - 0.002 * m, val_best_pct=best - 0.1 * m,
                time_to_best_s=t * (1 + m))
        add("distillation", "smoke", machine, "teacher", accuracy=0.8955)
        for setting, scratch, distilled in (("all labelled", 0.8565, 0.8570), ("2000 labelled", 0.8195, 0.8532)):
            add("distillation", "smoke", machine, f"student scratch · {setting}", accuracy=scratch)
            add("distillation", "smoke", machine, f"student distilled · {setting}", accuracy=distilled - 0.004 * m)
    return pd.DataFrame(rows)


def _step_times(wait_ms: float) -> dl.StepTimes:
    return dl.StepTimes(wait_s=[wait_ms / 1e3 * (1 + 0.1 * i) for i in range(6)], compute_s=[0.3] * 6,
                        batch_size=128, first_batch_s=0.02, samples=[128] * 6)


def _splits() -> SimpleNamespace:
    return SimpleNamespace(X_train=torch.rand(50, 1, 28, 28), y_train=torch.arange(50) % 5,
                           classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"))


def builders() -> dict[str, callable]:
    """name → a function drawing that figure from small realistic inputs (every plot function in labkit)."""
    from labkit import ui
    from labkit.ui import amp as amp_ui
    from labkit.ui import dataloading as dl_ui
    from labkit.ui import ddp as ddp_ui
    from labkit.ui import distillation as kd_ui
    from labkit.ui import gpu as gpu_ui
    from labkit.ui import hpo as hpo_ui
    from labkit.ui import momentum as mom_ui
    from labkit.ui import pruning as pruning_ui
    from labkit.ui import quantization as quant_ui
    from labkit.ui import schedules as sched_ui
    from labkit.ui import speedrun as sr_ui
    from labkit.ui import transfer as transfer_ui

    torch.manual_seed(0)
    summaries = _seed_summaries()
    histories = {name: s.fits[0].history for name, s in summaries.items()}
    comparison = _hpo_comparison()
    wait_card = ResultCard([{"variant": name, "images_per_s": 400 + 7 * i, "wait_ms": w, "compute_ms": 300.0,
                             "data_wait_pct": 100 * w / (w + 300)}
                            for i, (name, w) in enumerate((("naive", 12.0), ("batched", 3.0), ("in memory", 0.4),
                                                           ("2 workers", 5.0), ("pinned", 4.0),
                                                           ("prefetch 4", 3.5)))])
    roofline = [{"n": n, "intensity": n / 6, "gflops": min(150.0, 8 * n / 6), "device": "cpu", "dtype": "float32"}
                for n in (64, 128, 256, 512, 1024)]
    lr_sens = {"momentum": mom.LrSensitivity("momentum", 0.05, {0.01: [0.84, 0.845], 0.05: [0.86, 0.865],
                                                                 0.5: [0.10, 0.12]}),
               "adam": mom.LrSensitivity("adam", 1e-3, {1e-4: [0.82, 0.83], 1e-3: [0.86, 0.862], 1e-2: [0.85, 0.84]})}
    gains = [{"variant": "naive", "time_to_target_s": 25.0, "ttt_std_s": 1.5, "reached": "3/3", "accuracy": 0.86,
              "acc_std_pt": 0.3},
             {"variant": "+ in_memory", "time_to_target_s": 14.0, "ttt_std_s": 1.0, "reached": "3/3",
              "accuracy": 0.862, "acc_std_pt": 0.4, "marginal_gain": 1.79},
             {"variant": "+ compile", "skipped": "needs a C compiler"},
             {"variant": "+ big_batch", "time_to_target_s": 9.0, "ttt_std_s": 0.0, "reached": "1/3",
              "accuracy": 0.849, "acc_std_pt": 0.6, "marginal_gain": 1.56},
             {"variant": "+ one_cycle", "time_to_target_s": float("nan"), "ttt_std_s": float("nan"),
              "reached": "0/3", "accuracy": 0.84, "acc_std_pt": 0.5}]
    claim = pd.DataFrame([{"width": w, "batch_size": b, "params": 784 * w + 10 * w, "predicted_s": 0.001 * w * 128 / b,
                           "time_to_target_s": (0.0012 * w * 128 / b) if (w, b) != (256, 512) else float("nan")}
                          for w in (64, 256) for b in (64, 128, 512)])
    entries = [{"run": i + 1, "label": label, "history": s.fits[0].history, "time_to_target_s": s.fits[0].time_to_target_s}
               for i, (label, s) in enumerate(summaries.items())]
    t_rows = [{"strategy": s, "k": k, "accuracy": 0.6 + 0.05 * i + 0.03 * math.log(k), "acc_std": 0.02}
              for i, s in enumerate(transfer.STRATEGIES) for k in (5, 20, 100, transfer.ALL_LABELS)]
    t_curves = {name: [[(e, 4.0 * e * (1 + 0.1 * s), 0.7 + 0.03 * e + 0.02 * (name == "fine-tune"))
                        for e in range(1, 6)] for s in range(2)] for name in ("scratch", "fine-tune")}
    log_table = pd.DataFrame([{"grid": g, "bits": b, "sqnr_db": 6.0 * b - 3 * i, "accuracy": 0.8 - 0.01 * i}
                              for i, g in enumerate(("linear, per tensor", "linear, per channel", "log, per tensor",
                                                     "log, per channel")) for b in (2, 4, 8)])
    width_card = ResultCard([{"variant": f"MLP width {w}", "x86_speedup": 0.4 * (i + 1), "fbgemm_speedup": 1.5 + i}
                             for i, w in enumerate((64, 256, 1024))])
    logits = torch.randn(3, 10) * 3
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
    latest = _report_frame()
    quad = mom.Quadratic(30)
    return {
        "ui.plot_curves": lambda: ui.plot_curves(histories, 0.85),
        "ui.plot_roofline": lambda: ui.plot_roofline(roofline, 150.0, 8.0),
        "amp.plot_fp16_fate": lambda: amp_ui.plot_fp16_fate(torch.exp(torch.randn(5000) * 3 - 18), 2.0 ** 8),
        "dataloading.plot_timelines": lambda: dl_ui.plot_timelines({"naive, 0 workers": _step_times(40),
                                                                    "batched, 2 workers": _step_times(2)}),
        "dataloading.plot_timelines (one run: the explorer's)": lambda: dl_ui.plot_timelines(
            {"naive, 0 worker(s), mlp": _step_times(40)}),
        "dataloading.plot_wait_compute": lambda: dl_ui.plot_wait_compute(wait_card),
        "dataloading.plot_first_batch": lambda: dl_ui.plot_first_batch({"fork": [0.01, 0.012, 0.011],
                                                                        "spawn": [1.2, 1.1, 1.3]}),
        "dataloading.plot_augmentation": lambda: dl_ui.plot_augmentation(
            [{"seed": s, "augment": a, "test_acc": 0.8 + 0.01 * s + 0.004 * a, "gap_pt": 5.0 - 3 * a}
             for s in (0, 1, 2) for a in (False, True)]),
        "ddp.plot_scaling": lambda: ddp_ui.plot_scaling(SimpleNamespace(
            card=ResultCard([{"variant": v, "images_per_s": x} for v, x in
                             (("1 rank", 1893.0), ("2 ranks", 3370.0), ("2 ranks, no_sync", 3699.0),
                              ("1 process, 2 threads", 3156.0))]),
            headline={"throughput_1": 1893.0, "scaling_efficiency": 0.89, "comm_fraction": 0.077})),
        "ddp.plot_comm_runs": lambda: ddp_ui.plot_comm_runs(
            [{"ranks": r, "bucket_cap_mb": b, "accum": a, "images_per_s": 3000.0 + 100 * i,
              "images_per_s_no_comm": 3500.0 + 50 * i, "comm_fraction": 0.1}
             for i, (r, b, a) in enumerate(((2, 25.0, 1), (2, 0.01, 1), (2, 25.0, 4), (1, 25.0, 1)))]),
        "ddp.plot_pipeline": lambda: ddp_ui.plot_pipeline(
            [{"microbatches": m, "idle_rank0": 1 / (m + 1) + 0.02, "idle_rank1": 1 / (m + 1) + 0.05,
              "bubble_theory": 1 / (m + 1), "step_ms": 40 + 60 / m} for m in (1, 2, 4, 8, 16)]),
        "distillation.plot_softened": lambda: kd_ui.plot_softened(torch.rand(3, 1, 28, 28), logits,
                                                                  torch.tensor([0, 5, 9]), classes, 4.0),
        "distillation.plot_students": lambda: kd_ui.plot_students(_distillation_card()),
        "distillation.plot_pareto": lambda: kd_ui.plot_pareto(_chain_card()),
        "gpu.plot_batch_sweep": lambda: gpu_ui.plot_batch_sweep(
            {"small_cnn on cpu": [{"batch_size": b, "images_per_s": 2400 / (1 + 0.01 * b)} for b in (16, 32, 64, 128, 256)],
             "mlp, 2 thread(s)": [{"batch_size": b, "images_per_s": 9000 + 10 * b} for b in (16, 64, 256)]}),
        "gpu.plot_fraction_of_peak": lambda: gpu_ui.plot_fraction_of_peak(
            [{"n": n, "fraction_of_peak": min(0.9, n / 2000)} for n in (64, 128, 256, 512, 1024, 2048)], "cpu"),
        "hpo.plot_best_so_far": lambda: hpo_ui.plot_best_so_far(comparison),
        "hpo.plot_best_so_far (one seed)": lambda: hpo_ui.plot_best_so_far(comparison, (0,), 8, highlight="tpe"),
        "hpo.plot_trial_curves": lambda: hpo_ui.plot_trial_curves(comparison.runs["tpe_pruned"][0]),
        "hpo.plot_importance": lambda: hpo_ui.plot_importance({"lr": 0.7, "width": 0.2, "batch_size": 0.1},
                                                              {"lr": 40.0, "width": 0.5, "batch_size": 1.2}),
        "momentum.plot_lr_sensitivity": lambda: mom_ui.plot_lr_sensitivity(lr_sens, floor_pt=70),
        "momentum.plot_trajectories": lambda: mom_ui.plot_trajectories(
            quad, mom.explore(30, 1.0, 0.8, 0.05, mom.QUADRATIC_OPTIMIZERS, steps=80)),
        "momentum.plot_iterations_vs_kappa": lambda: mom_ui.plot_iterations_vs_kappa(mom.iterations_vs_kappa([3, 10, 30])),
        "momentum.plot_steady_steps": lambda: mom_ui.plot_steady_steps([0.1 * (1 - 0.9 ** k) / 0.1 * 0.1
                                                                        for k in range(1, 40)], 0.1, 0.9),
        "momentum.plot_rosenbrock": lambda: mom_ui.plot_rosenbrock([mom.run_rosenbrock(1e-3, b, max_steps=200)
                                                                    for b in (0.0, 0.9)]),
        "momentum.plot_double_well": lambda: mom_ui.plot_double_well([mom.double_well_basins(b, n_starts=11, steps=50)
                                                                      for b in (0.0, 0.9)]),
        "momentum.plot_epochs_per_seed": lambda: mom_ui.plot_epochs_per_seed(ResultCard(
            [{"variant": "sgd", "epochs_per_seed": [None, 7, None]}, {"variant": "momentum", "epochs_per_seed": [6, 7, 8]},
             {"variant": "adam", "epochs_per_seed": [5, 9, 7]}]), budget=8),
        "pruning.plot_sparsity_curve": lambda: pruning_ui.plot_sparsity_curve(
            pd.DataFrame({"sparsity": [0, 0.5, 0.8, 0.9, 0.95], "layer-wise": [0.86, 0.85, 0.8, 0.6, 0.3],
                          "global": [0.86, 0.86, 0.84, 0.75, 0.5]}),
            {"layer-wise at 80 %": (0.8, 0.8), "global at 80 %": (0.8, 0.84)}, 0.86),
        "pruning.plot_sensitivity": lambda: pruning_ui.plot_sensitivity(pd.DataFrame(
            [[0.86, 0.85, 0.7], [0.86, 0.86, 0.84], [0.86, 0.8, 0.4]], index=["conv1", "conv2", "fc"],
            columns=[0.3, 0.6, 0.9])),
        "quantization.plot_bits": lambda: quant_ui.plot_bits(torch.randn(64, 64), 3)[0],
        "quantization.plot_bits (per channel)": lambda: quant_ui.plot_bits(torch.randn(64, 64), 8, per_channel=True)[0],
        "quantization.plot_width_sweep": lambda: quant_ui.plot_width_sweep(width_card),
        "quantization.plot_log_vs_linear": lambda: quant_ui.plot_log_vs_linear(torch.randn(32, 32), log_table, 0.82,
                                                                              (2, 4, 8)),
        "schedules.plot_lr_traces": lambda: sched_ui.plot_lr_traces(
            {name: schedules.lr_trace(name, lr=0.05, epochs=8, steps_per_epoch=20, warmup_epochs=1)
             for name in ("constant", "step", "cosine", "onecycle")}, 20),
        "schedules.plot_range_tests": lambda: sched_ui.plot_range_tests(
            [schedules.RangeTest(list(np.geomspace(1e-4, 1, 60)), list(2.3 - np.sin(np.linspace(0, 3, 60)) + 0.05 * s),
                                 list(2.3 - np.sin(np.linspace(0, 3, 60)) + 0.05 * s), 0.02, 0.2, False)
             for s in range(3)], ["seed 0", "seed 1", "seed 2"]),
        "schedules.plot_seed_curves": lambda: sched_ui.plot_seed_curves(summaries, 0.85),
        "schedules.plot_epochs_vs_target": lambda: sched_ui.plot_epochs_vs_target(
            schedules.epochs_vs_target(summaries, [0.83, 0.85, 0.87]), 8),
        "schedules.plot_lr_sweep": lambda: sched_ui.plot_lr_sweep({0.01: summaries["step"], 0.05: summaries["cosine"],
                                                                   0.2: summaries["one-cycle"]}, 10),
        "speedrun.plot_runs": lambda: sr_ui.plot_runs(entries, 0.85),
        "speedrun.plot_ablation": lambda: sr_ui.plot_ablation(gains, 0.85),
        "speedrun.plot_claim": lambda: sr_ui.plot_claim(claim),
        "transfer.plot_label_efficiency": lambda: transfer_ui.plot_label_efficiency(
            t_rows, extra={"EfficientNet-Lite0 probe": {5: (0.85, 0.01), 20: (0.88, 0.01)}}),
        "transfer.plot_time_to_target": lambda: transfer_ui.plot_time_to_target(t_curves, 0.8),
        "transfer.plot_examples": lambda: transfer_ui.plot_examples(_splits(), _splits(), per_class=2),
        "transfer.TransferExplorer._plot": lambda: transfer_ui.TransferExplorer._plot(
            [{"strategy": "scratch", "k": 5, "accuracy": 0.61}, {"strategy": "fine-tune", "k": 5, "accuracy": 0.70}]),
        "report.plot_bench (ratios)": lambda: report.plot_bench(latest, "quantization", "full"),
        "report.plot_bench (time to best)": lambda: report.plot_bench(latest, "hpo", "smoke"),
        "report.plot_bench (gain in points)": lambda: report.plot_bench(latest, "distillation", "smoke"),
    }


# ---------------------------------------------------------------- what is read off a figure

def _render(fig: Figure):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def text_boxes(fig: Figure, renderer) -> list[tuple[str, object]]:
    """(what, display bbox) of every piece of text drawn: titles, axis labels, tick labels, annotations,
    figure texts, legends (each legend as one box)."""
    boxes = []

    def add(artist, what: str) -> None:
        if artist is None or not artist.get_visible():
            return
        if isinstance(artist, Text) and not artist.get_text().strip():
            return
        box = artist.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            boxes.append((what, box))

    for t in fig.texts:
        add(t, f"figure text {t.get_text()!r}")
    for i, legend in enumerate(fig.legends):
        add(legend, f"figure legend {i}")
    for a, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add(t, f"axes {a} title {t.get_text()!r}")
        for t in ax.texts:
            add(t, f"axes {a} text {t.get_text()!r}")
        if ax.get_legend() is not None:
            add(ax.get_legend(), f"axes {a} legend")
        if not ax.axison:
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            add(axis.label, f"axes {a} {name}label")
            add(axis.offsetText, f"axes {a} {name} offset")
            for tick in axis._update_ticks():  # the ticks drawn (inside the view limits)
                for label in (tick.label1, tick.label2):
                    add(label, f"axes {a} {name} tick {label.get_text()!r}")
    return boxes


def overlaps(fig: Figure) -> list[str]:
    renderer = _render(fig)
    boxes = text_boxes(fig, renderer)
    found = []
    for (what1, b1), (what2, b2) in itertools.combinations(boxes, 2):
        w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
        h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
        if w > 1 and h > 1:  # a pixel of anti-aliasing is not an overlap
            found.append(f"{what1} overlaps {what2}")
    page = fig.bbox
    for what, b in boxes:
        if b.x0 < page.x0 - 2 or b.y0 < page.y0 - 2 or b.x1 > page.x1 + 2 or b.y1 > page.y1 + 2:
            found.append(f"{what} spills outside the figure")
    return found


def data_points(ax, renderer) -> list[tuple[float, float]]:
    """Display coordinates of the data an axes shows (inside its box: what is clipped is not drawn): line
    vertices, scatter offsets, line-collection vertices (error bars, hlines)."""
    box = ax.get_window_extent(renderer)
    return [p for p in _all_points(ax) if box.x0 - 1 <= p[0] <= box.x1 + 1 and box.y0 - 1 <= p[1] <= box.y1 + 1]


def _all_points(ax) -> list[tuple[float, float]]:
    points = []
    for line in ax.lines:
        if line.get_visible() and len(line.get_xydata()):
            xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            points += [tuple(p) for p in xy if np.isfinite(p).all()]
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            points += [tuple(p) for p in xy if np.isfinite(p).all()]
        elif isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                if len(seg):
                    xy = coll.get_transform().transform(np.asarray(seg, dtype=float))
                    points += [tuple(p) for p in xy if np.isfinite(p).all()]
    return points


def data_patches(ax, renderer) -> list:
    """Display bboxes of bars, histogram bins and shaded spans (zero-area ones left out)."""
    boxes, frame = [], ax.get_window_extent(renderer)
    for patch in ax.patches:
        if patch.get_visible():
            box = Bbox.intersection(patch.get_window_extent(renderer), frame)  # clipped to the axes: what is drawn
            if box is not None and box.width > 1 and box.height > 1:
                boxes.append(box)
    return boxes


def covered_data(fig: Figure) -> list[str]:
    renderer = _render(fig)
    legends = [(f"figure legend {i}", lg) for i, lg in enumerate(fig.legends)]
    legends += [(f"axes {a} legend", ax.get_legend()) for a, ax in enumerate(fig.axes) if ax.get_legend()]
    found = []
    for what, legend in legends:
        box = legend.get_window_extent(renderer)
        for a, ax in enumerate(fig.axes):
            inside = [p for p in data_points(ax, renderer) if box.x0 < p[0] < box.x1 and box.y0 < p[1] < box.y1]
            if inside:
                found.append(f"{what} covers {len(inside)} data point(s) of axes {a}")
            for patch in data_patches(ax, renderer):
                w = min(box.x1, patch.x1) - max(box.x0, patch.x0)
                h = min(box.y1, patch.y1) - max(box.y0, patch.y0)
                if w > 1 and h > 1:
                    found.append(f"{what} covers a bar or span of axes {a}")
                    break
    return found


def unlabelled_axes(fig: Figure) -> list[str]:
    """Axes without an x or y label; an image panel is exempt, and so is an axis that shares its scale
    with a labelled sibling (the left panel of a row says it for the row)."""
    found = []
    for a, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison or ax.images:
            continue
        for name, label, shared in (("x", ax.get_xlabel(), ax.get_shared_x_axes()),
                                    ("y", ax.get_ylabel(), ax.get_shared_y_axes())):
            siblings = [s for s in shared.get_siblings(ax) if s is not ax]
            sibling_labelled = any((s.get_xlabel() if name == "x" else s.get_ylabel()).strip() for s in siblings)
            if not label.strip() and not sibling_labelled:
                found.append(f"axes {a} ({ax.get_title()!r}) has no {name}label")
    return found


def _signature(handle) -> tuple:
    """What tells a legend entry apart besides its colour."""
    if isinstance(handle, Line2D):
        hollow = str(handle.get_markerfacecolor()).lower() in ("none", "white", "#ffffff", "w")
        dashes = getattr(handle, "_unscaled_dash_pattern", None)
        return ("line", handle.get_linestyle(), str(dashes), str(handle.get_marker()), hollow,
                round(handle.get_linewidth(), 1))
    if isinstance(handle, Patch):
        return ("patch", handle.get_hatch() or "", handle.get_fill(), handle.get_linestyle())
    if isinstance(handle, PathCollection):
        paths = handle.get_paths()
        return ("points", tuple(np.round(paths[0].vertices, 2).flatten()) if paths else ())
    if isinstance(handle, LineCollection):
        return ("lines", str(handle.get_linestyle()))
    return (type(handle).__name__,)


def legend_entries(legend: Legend) -> list[tuple[str, list]]:
    """(label, the artists drawn as its key) for every entry of a drawn legend (an error bar's key is
    several artists: the marker line and the bars)."""
    entries = []
    for column in legend._legend_handle_box.get_children():
        for item in column.get_children():
            key, text = item.get_children()
            entries.append((text.get_children()[0].get_text(), key.get_children()))
    return entries


def colour_only_pairs(fig: Figure) -> list[str]:
    """Legend entries that differ from another entry of the same legend by colour alone."""
    _render(fig)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    found = []
    for legend in legends:
        keys = [(label, tuple(sorted(map(str, (_signature(a) for a in artists)))))
                for label, artists in legend_entries(legend)]
        for (t1, k1), (t2, k2) in itertools.combinations(keys, 2):
            if k1 == k2:
                found.append(f"legend entries {t1!r} and {t2!r} differ by colour only")
    return found


def smoke_marked(fig: Figure) -> bool:
    title = fig._suptitle
    return bool(getattr(fig, "_labkit_smoke", False) and title is not None
                and title.get_gid() == style.SMOKE_GID and style.SMOKE_NOTE in title.get_text())


# ---------------------------------------------------------------- the tests

NAMES = list(builders())


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("LABKIT_MODE", "smoke")


@pytest.fixture(scope="module")
def figures():
    """Every figure, drawn once in smoke mode."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_MODE", "smoke")
    try:
        yield {name: build() for name, build in builders().items()}
    finally:
        mp.undo()


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_is_readable(figures, name):
    fig = figures[name]
    assert isinstance(fig, Figure), f"{name} drew nothing"
    problems = overlaps(fig) + covered_data(fig) + unlabelled_axes(fig) + colour_only_pairs(fig)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_smoke_figures_say_so(figures, name):
    fig = figures[name]
    if name.startswith("report.") and "(ratios)" in name:
        assert not smoke_marked(fig), "the report marks by the mode of its data: this bench's data is full mode"
    else:
        assert smoke_marked(fig), f"{name} in smoke mode carries no '{style.SMOKE_NOTE}' mark"


def test_full_mode_figures_carry_no_smoke_mark(monkeypatch):
    monkeypatch.setenv("LABKIT_MODE", "full")
    from labkit.ui import gpu as gpu_ui
    fig = gpu_ui.plot_fraction_of_peak([{"n": 64, "fraction_of_peak": 0.1}, {"n": 128, "fraction_of_peak": 0.3}], "cpu")
    style.figure_png(fig)
    assert not smoke_marked(fig) and not fig.get_suptitle()


def test_the_checks_catch_what_they_are_for():
    """Each check fails on a figure that has the fault."""
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 2], color="red", label="a")
    ax.plot([0, 1, 2], [2, 1, 0], color="green", label="b")
    ax.legend(loc="center")  # sits on the crossing point (1, 1)
    ax.text(0.5, 0.5, "note", transform=ax.transAxes)  # under the legend
    assert covered_data(fig) and overlaps(fig) and colour_only_pairs(fig) and unlabelled_axes(fig)
    ax.set_xscale("log")
    ax.set_xticks([1, 2], ["1", "2"])
    assert "has no xlabel" in " ".join(unlabelled_axes(fig))


def test_show_carries_alt_text(smoke):
    from labkit.ui import gpu as gpu_ui
    fig = gpu_ui.plot_fraction_of_peak([{"n": 64, "fraction_of_peak": 0.1}, {"n": 128, "fraction_of_peak": 0.3}], "cpu")
    shown = style.show(fig, "Share of the CPU's peak  reached by n×n matmuls, for n from 64 to 128.")
    data, meta = shown._repr_mimebundle_()
    alt = "Share of the CPU's peak reached by n×n matmuls, for n from 64 to 128."
    assert data["text/plain"] == alt and meta["image/png"]["alt"] == alt and repr(shown) == alt
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG")
    width, height = meta["image/png"]["width"], meta["image/png"]["height"]
    assert (width, height) == (round(fig.get_size_inches()[0] * 100), round(fig.get_size_inches()[1] * 100))
    assert int.from_bytes(png[16:20], "big") == 2 * width  # rendered at twice the screen size: sharp on hi-dpi
    default = style.show(fig)._repr_mimebundle_()[1]["image/png"]["alt"]
    assert "% of the estimated fp32 peak against matrix size n" in default  # read off the figure's labels


def test_ratio_axis_and_gap():
    fig = Figure()
    ax = fig.subplots()
    style.ratio_axis(ax, [0.4, 33.0], "x")
    style.gap(ax, 0, "skipped on this device")
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] < 0.4 and ax.get_xlim()[1] > 33
    assert any(line.get_xdata()[0] == 1.0 for line in ax.lines)  # 1× is marked
    assert any("skipped on this device" in t.get_text() for t in ax.texts)


def test_series_styles_differ_by_more_than_colour():
    styles = [style.series_style(i) for i in range(8)]
    assert len({s["marker"] for s in styles}) == 8 and len({str(s["linestyle"]) for s in styles}) == 8
    assert len({style.bar_style(i)["hatch"] for i in range(8)}) == 8
