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
    assert saved["notebooks"] == {"00_welcome": {"smoke_s": 3.0, "full_s": 3.0}} and saved["machine"]["cpu"]


def test_bad_names_and_files_say_what_to_do(tmp_path):
    with pytest.raises(LabkitError, match="choose one of"):
        coursemap.run_notebook("99_nothing", "smoke")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LabkitError, match="coursemap --measure"):
        coursemap.load(tmp_path / "bad.json")
