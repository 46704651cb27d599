import json

import pytest

from labkit import LabkitError, coursemap, paths


def test_every_notebook_is_on_the_map_with_measured_times():
    times = coursemap.load()["notebooks"]
    for name in coursemap.notebooks():
        assert name in coursemap.COURSE, f"{name} needs a line in coursemap.COURSE"
        assert times.get(name, {}).get("smoke_s", 0) > 0 and times[name].get("full_s", 0) > 0, \
            f"{name} has no measured times: run `labkit coursemap --measure {name} --readme`"


def test_readme_shows_the_recorded_course_map():
    text = paths.README.read_text()
    block = text.split(coursemap.START, 1)[1].split(coursemap.END, 1)[0].strip()
    assert block == coursemap.markdown().strip(), "README is stale: run `labkit coursemap --readme`"


def test_durations_read_well():
    assert [coursemap.duration(s) for s in (None, 12.4, 89, 150)] == ["–", "12 s", "89 s", "2.5 min"]


def test_measure_keeps_each_time_as_it_goes(tmp_path, monkeypatch):
    calls = []

    def fake_run(name, mode):
        if name == "01_gpu":
            raise KeyboardInterrupt
        calls.append((name, mode))
        return 3.0

    monkeypatch.setattr(coursemap, "run_notebook", fake_run)
    path = tmp_path / "times.json"
    with pytest.raises(KeyboardInterrupt):
        coursemap.measure(["00_welcome", "01_gpu"], ("smoke", "full"), path=path)
    saved = json.loads(path.read_text())
    assert list(saved["notebooks"]) == ["00_welcome"] and saved["machine"]["cpu"]
    welcome = saved["notebooks"]["00_welcome"]
    assert (welcome["smoke_s"], welcome["full_s"]) == (3.0, 3.0)
    assert welcome["measured_on"]["full"]["cpu"] == saved["machine"]["cpu"] and welcome["measured_on"]["full"]["date"]


def test_bad_names_and_files_say_what_to_do(tmp_path):
    with pytest.raises(LabkitError, match="choose one of"):
        coursemap.run_notebook("99_nothing", "smoke")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LabkitError, match="coursemap --measure"):
        coursemap.load(tmp_path / "bad.json")


def test_lettered_follow_ups_come_right_after_their_notebook(tmp_path, monkeypatch):
    for name in ("05_b", "04_a", "04b_side", "10_j", "04c_more", "4_bad", "04B_caps", "scratch", "04b-dash"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(coursemap, "NOTEBOOK_DIR", tmp_path)
    assert coursemap.notebooks() == ["04_a", "04b_side", "04c_more", "05_b", "10_j"]


def test_measuring_some_notebooks_keeps_the_others_and_says_where_each_was_measured(tmp_path, monkeypatch):
    """`labkit coursemap --measure NAME…` re-times only those; the table marks rows from another machine."""
    from labkit import cli

    calls = []
    monkeypatch.setattr(coursemap, "run_notebook", lambda name, mode: calls.append((name, mode)) or 7.0)
    path = tmp_path / "times.json"
    old_machine = {"cpu": "Old CPU", "cores": 4, "device": "cpu"}
    path.write_text(json.dumps({"notebooks": {"00_welcome": {"smoke_s": 1.0, "full_s": 2.0},
                                              "06_ddp": {"smoke_s": 3.0, "full_s": 4.0}},
                                "machine": old_machine, "measured": "2020-01-01", "command": "x"}))
    real_measure = coursemap.measure
    monkeypatch.setattr(coursemap, "measure", lambda names, modes: real_measure(names, modes, path=path))
    monkeypatch.setattr(coursemap, "markdown", lambda: "")
    assert cli.main(["coursemap", "--measure", "06_ddp", "--modes", "full"]) == 0
    assert calls == [("06_ddp", "full")]
    saved = json.loads(path.read_text())
    assert saved["notebooks"]["00_welcome"] == {"smoke_s": 1.0, "full_s": 2.0}
    assert saved["machine"] == old_machine and saved["measured"] == "2020-01-01"
    ddp_times = saved["notebooks"]["06_ddp"]
    assert (ddp_times["smoke_s"], ddp_times["full_s"]) == (3.0, 7.0) and list(ddp_times["measured_on"]) == ["full"]

    monkeypatch.undo()
    table = coursemap.markdown(path)
    welcome = next(line for line in table.splitlines() if line.startswith("| `00_welcome`"))
    ddp_row = next(line for line in table.splitlines() if line.startswith("| `06_ddp`"))
    assert "(1)" not in welcome and ddp_row.endswith("| 3 s | 7 s (1) |"), ddp_row
    assert "Old CPU (4 cores, cpu) on 2020-01-01" in table
    assert f"(1) measured on {ddp_times['measured_on']['full']['cpu']}" in table
