import json

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from labkit import LabkitError, report, results

LAPTOP = {"host": "laptop", "cpu": "Intel i5", "gpu": None, "device": "cpu", "torch": "2.13.0", "commit": "abc"}
GPU_BOX = {"host": "box", "cpu": "AMD EPYC", "gpu": "NVIDIA H100", "device": "cuda", "torch": "2.13.0", "commit": "abc"}


def _report(machine, speedup, mode="full"):
    card = results.ResultCard(title="demo", baseline="fp32")
    card.add({"variant": "fp32", "latency_ms": 2.0, "accuracy": 0.9})
    card.add({"variant": "int8", "latency_ms": 2.0 / speedup, "accuracy": 0.89})
    return results.BenchReport("quantization", mode, card, {"int8_speedup": speedup}, machine=machine)


def test_two_machines_merge_into_one_leaderboard(tmp_path):
    results.append(_report(LAPTOP, 1.5), tmp_path / "laptop.csv")
    results.append(_report(GPU_BOX, 3.0), tmp_path / "box.csv")
    results.append(_report(GPU_BOX, 3.0), tmp_path / "box_copy.csv")  # the same rows twice count once
    frame = report.collect(sorted(tmp_path.glob("*.csv")), reference_dir=tmp_path / "none")
    assert len(frame) == 2 * 3
    path = report.build(sorted(tmp_path.glob("*.csv")), tmp_path / "out", reference_dir=tmp_path / "none")
    text = path.read_text()
    assert "laptop · Intel i5" in text and "box · AMD EPYC · NVIDIA H100" in text
    assert "| 1.5 |" in text and "| 3 |" in text
    assert (tmp_path / "out" / "report_quantization_full.png").stat().st_size > 1000


def test_the_latest_run_per_machine_is_shown(tmp_path):
    results.append(_report(LAPTOP, 1.2), tmp_path / "r.csv")
    frame = report.collect([tmp_path / "r.csv"], reference_dir=tmp_path / "none")
    frame.loc[:, "time"] = "2026-01-01T00:00:00+0000"
    older = frame.copy()
    frame.loc[frame["variant"] == results.HEADLINE_ROW, "int8_speedup"] = 2.2
    frame.loc[:, "time"] = "2026-02-01T00:00:00+0000"
    older.loc[older["variant"] == results.HEADLINE_ROW, "int8_speedup"] = 9.9
    both = report.latest_runs(pd.concat([older, frame]))
    table = report.headline_table(both, "quantization")
    assert table["int8_speedup"].tolist() == [2.2]


def test_reference_results_are_labelled(tmp_path):
    ref = tmp_path / "reference"
    ref.mkdir()
    saved = _report(GPU_BOX, 4.0).to_dict() | {"provenance": {"date": "2026-11-01", "command": "labkit bench q"}}
    (ref / "quantization_h100.json").write_text(json.dumps(saved))
    results.append(_report(LAPTOP, 1.5), tmp_path / "laptop.csv")
    text = report.build([tmp_path / "laptop.csv"], tmp_path / "out", reference_dir=ref).read_text()
    assert "NVIDIA H100 (reference)" in text and "laptop · Intel i5 |" in text
    (ref / "broken.json").write_text("{not json")
    with pytest.raises(LabkitError, match="broken.json"):
        report.collect([tmp_path / "laptop.csv"], reference_dir=ref)


def test_no_results_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    with pytest.raises(LabkitError, match="labkit bench all"):
        report.collect(reference_dir=tmp_path / "none")


def test_markdown_table_formats_numbers_and_gaps():

    text = report.markdown_table(pd.DataFrame({"a": [1.23456, None], "b": ["x|y", "z"]}))
    assert text.splitlines()[2] == "| 1.235 | x/y |" and text.splitlines()[3] == "| – | z |"


# ---------------------------------------------------------------- the figures: the bench's own quantity, per mode


def _rows(bench, mode, variants, machine="laptop · Intel i5"):
    """Latest-run rows as `report.latest_runs` returns them: one per variant, plus the headline row."""
    rows = [{"bench": bench, "mode": mode, "machine": machine, "time": "2026-01-01", "variant": v, **numbers}
            for v, numbers in variants.items()]
    return pd.DataFrame(rows + [{"bench": bench, "mode": mode, "machine": machine, "time": "2026-01-01",
                                 "variant": results.HEADLINE_ROW}])


HPO = {"grid": {"accuracy": 0.86, "time_to_best_s": 40.0, "val_best_pct": 85.0},
       "random": {"accuracy": 0.86, "time_to_best_s": 20.0, "val_best_pct": 84.5},
       "tpe_pruned": {"accuracy": 0.86, "time_to_best_s": 10.0, "val_best_pct": 85.5}}
KD = {"teacher": {"accuracy": 0.90, "latency_ms": 30.0},
      "student scratch · all labelled": {"accuracy": 0.856, "latency_ms": 2.0},
      "student distilled · all labelled": {"accuracy": 0.857, "latency_ms": 2.0},
      "student scratch · 2000 labelled": {"accuracy": 0.820, "latency_ms": 2.0},
      "student distilled · 2000 labelled": {"accuracy": 0.853, "latency_ms": 2.0}}


def _drawn(ax, machine):
    """(variant, x) of the markers `machine` has on a panel (its line of points, labelled with the machine)."""
    line = next(line for line in ax.lines if line.get_label() == machine)
    first = ax.figure.axes[0]  # the panels share the variant axis; the first one names the rows
    names = {round(y): t.get_text() for y, t in zip(first.get_yticks(), first.get_yticklabels())}
    return {names[round(y)]: x for x, y in zip(line.get_xdata(), line.get_ydata())}


def test_hpo_shows_time_to_best_as_a_speedup_not_the_equal_accuracies():
    fig = report.plot_bench(_rows("hpo", "full", HPO), "hpo", "full")
    time_panel, best_panel = fig.axes
    assert time_panel.get_title() == "time to best" and time_panel.get_xscale() == "log"
    assert _drawn(time_panel, "laptop · Intel i5") == pytest.approx({"grid": 1.0, "random": 2.0, "tpe_pruned": 4.0})
    assert best_panel.get_xscale() == "linear"  # a difference in points, 0 marked
    assert _drawn(best_panel, "laptop · Intel i5") == pytest.approx({"grid": 0.0, "random": -0.5, "tpe_pruned": 0.5})
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in best_panel.lines)  # the 0 line
    runs = report.mode_runs(_rows("hpo", "full", HPO), "hpo", "full")
    assert [q.column for q in report.choose("hpo", runs)[0]] == ["time_to_best_s", "val_best_pct"]


def test_distillation_shows_the_gain_over_the_scratch_student_in_points():
    fig = report.plot_bench(_rows("distillation", "full", KD), "distillation", "full")
    (ax,) = fig.axes
    assert ax.get_xscale() == "linear" and "gain" in ax.get_title()
    assert _drawn(ax, "laptop · Intel i5") == pytest.approx({"student distilled · all labelled": 0.1,
                                                             "student distilled · 2000 labelled": 3.3})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["student distilled · all labelled",
                                                           "student distilled · 2000 labelled"]


def test_an_all_equal_column_is_passed_over_and_an_uninformative_bench_gets_a_note(tmp_path):
    same_time = {v: {"time_to_target_s": 5.0, "epochs_to_target": e} for v, e in (("sgd", 4), ("adam", 3))}
    runs = report.mode_runs(_rows("momentum", "full", same_time), "momentum", "full")
    chosen, passed = report.choose("momentum", runs)
    assert [q.column for q in chosen] == ["epochs_to_target"] and "same time_to_target_s" in passed[0]
    flat = {v: {"time_to_target_s": 5.0, "epochs_to_target": 3} for v in ("sgd", "adam")}
    assert report.plot_bench(_rows("momentum", "full", flat), "momentum", "full") is None
    card = results.ResultCard(title="flat", baseline="sgd")
    for v, numbers in flat.items():
        card.add({"variant": v, **numbers})
    results.append(results.BenchReport("momentum", "full", card, {"iters_ratio": 7.5}, machine=LAPTOP),
                   tmp_path / "r.csv")
    text = report.build([tmp_path / "r.csv"], tmp_path / "out", reference_dir=tmp_path / "none").read_text()
    assert "full mode: no figure — every variant reports the same time_to_target_s (5)" in text
    assert not list((tmp_path / "out").glob("*.png"))


def test_one_figure_per_mode_the_smoke_one_marked(tmp_path):
    results.append(_report(LAPTOP, 1.5, mode="smoke"), tmp_path / "r.csv")
    results.append(_report(LAPTOP, 3.0, mode="full"), tmp_path / "r.csv")
    text = report.build([tmp_path / "r.csv"], tmp_path / "out", reference_dir=tmp_path / "none").read_text()
    assert text.index("(report_quantization_full.png)") < text.index("(report_quantization_smoke.png)")
    assert "![quantization, full mode" in text and "![[smoke mode" in text  # alt text from the figure
    latest = report.latest_runs(report.collect([tmp_path / "r.csv"], reference_dir=tmp_path / "none"))
    full, smoke = (report.plot_bench(latest, "quantization", m) for m in ("full", "smoke"))
    assert "full mode" in full.get_suptitle() and not getattr(full, "_labkit_smoke", False)
    assert "smoke mode" in smoke.get_suptitle() and smoke._labkit_smoke
    assert _drawn(full.axes[0], "laptop · Intel i5")["int8"] == pytest.approx(3.0)
    assert _drawn(smoke.axes[0], "laptop · Intel i5")["int8"] == pytest.approx(1.5)


def test_the_machine_legend_sits_outside_every_panel():
    slower = {v: {**numbers, "time_to_best_s": 2 * numbers["time_to_best_s"]} for v, numbers in HPO.items()
              if v != "random"}
    frame = pd.concat([_rows("hpo", "full", HPO), _rows("hpo", "full", slower, machine="box · EPYC")])
    fig = report.plot_bench(frame, "hpo", "full")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["laptop · Intel i5", "box · EPYC"]
    outline = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not outline.overlaps(ax.get_window_extent(renderer)), "the legend is drawn over a panel"
        assert any("not measured on box" in t.get_text() for t in ax.texts)  # the variant box did not run
