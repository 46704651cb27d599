import json

import pandas as pd

import pytest

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
    assert (tmp_path / "out" / "report_quantization.png").stat().st_size > 1000


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
