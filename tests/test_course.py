"""`labkit course build` makes an nbgrader course that grades: nbgrader's own generate_assignment and autograde
on notebooks 00 and 08, three submissions each (the untouched release, the answer key, one typical mistake)."""

import inspect
import json
import time
from pathlib import Path

import pytest

from labkit import course
from labkit.paths import NOTEBOOK_DIR
from labkit.exercises import SKIP_MARK
from labkit.exercises.answers import quantization as q_key
from labkit.exercises.answers import welcome as w_key

pytest.importorskip("nbgrader")

# One typical mistake per notebook: the exercise it breaks, and the student's code.
MISTAKES = {
    "00_welcome": ("median_timer", '''def median_timer(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
'''),
    "08_quantization": ("quantize_dequantize", '''def my_quantize_dequantize(x, scale, zero_point, bits):
    q = torch.round(x / scale) + zero_point
    q = torch.clamp(q, max=2 ** (bits - 1) - 1)
    return (q - zero_point) * scale
'''),
}
KEYS = {"00_welcome": w_key.KEY, "08_quantization": q_key.KEY}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _meta(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


def _submit(course_dir: Path, student: str, lab: str, answers: dict[str, str]) -> None:
    """The release notebook with the solution cells named in `answers` (grade id → source) filled in."""
    release = course_dir / "release" / lab / f"{lab}.ipynb"
    nb = json.loads(release.read_text())
    for cell in nb["cells"]:
        if _meta(cell).get("grade_id") in answers:
            cell["source"] = answers[_meta(cell)["grade_id"]]
    target = course_dir / "submitted" / student / lab / f"{lab}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Build, release, submit three notebooks per lab, autograde: {(lab, student): {grade_id: (score, max)}}."""
    root = tmp_path_factory.mktemp("course")
    start = time.perf_counter()
    written = course.build(root, list(MISTAKES))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LABKIT_MODE", raising=False)  # grading means smoke mode (NBGRADER_EXECUTION)
        mp.setenv("LABKIT_RESULTS_DIR", str(root / "results"))
        for lab, (broken, code) in MISTAKES.items():
            source = {_meta(c)["grade_id"]: "".join(c["source"])
                      for c in _cells(written[list(MISTAKES).index(lab)]) if _meta(c).get("solution")}
            _submit(root, "release", lab, {})
            _submit(root, "key", lab, source)
            _submit(root, "mistake", lab, {**source, f"{broken}_answer": code})
            course.nbgrader(root, "autograde", lab, "--force")
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for lab in MISTAKES:
            for student in ("release", "key", "mistake"):
                nb = gb.find_submission_notebook(lab, lab, student)
                scores[(lab, student)] = {g.name: (g.score, g.max_score) for g in nb.grades}
    print(f"build + release + autograde of {len(MISTAKES)} labs x 3 submissions: {time.perf_counter() - start:.0f} s")
    return root, written, scores


def test_source_notebooks_hold_the_key_between_markers_and_locked_graded_check_cells(graded):
    _, written, _ = graded
    for path in written:
        lab = path.parent.name
        cells = _cells(path)
        solutions = [c for c in cells if _meta(c).get("solution")]
        tests = [c for c in cells if _meta(c).get("grade")]
        assert len(solutions) == len(tests) == len(KEYS[lab]) >= 3
        for cell in solutions:
            text = "".join(cell["source"])
            assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text
        for cell in tests:
            assert _meta(cell)["locked"] and _meta(cell)["points"] > 0
            assert "".join(cell["source"]).startswith("check.")
        skipped = [c for c in cells if "".join(c["source"]).startswith(SKIP_MARK)]
        assert skipped and not any(_meta(c) for c in skipped), "the measurements are skipped while grading"
        assert not any("import" in "".join(c["source"]) and "as check" in "".join(c["source"]) for c in skipped)


def test_while_grading_the_marked_cells_ran_nothing(graded):
    root, written, _ = graded
    for path in written:
        lab = path.parent.name
        for cell in _cells(root / "autograded" / "key" / lab / path.name):
            if "".join(cell["source"]).startswith(SKIP_MARK):
                assert ["".join(o.get("text", "")) for o in cell["outputs"]] == [
                    "skipped while nbgrader grades: the exercises do not need this cell\n"], cell["outputs"]


def test_the_release_holds_no_answer(graded):
    root, written, _ = graded
    for path in written:
        lab = path.parent.name
        release = "".join("".join(c["source"]) for c in _cells(root / "release" / lab / path.name))
        assert "BEGIN SOLUTION" not in release and "# YOUR CODE\n    ..." in release
        for reference in KEYS[lab].values():
            body = [line.strip() for line in inspect.getsource(reference).splitlines()[1:]]
            assert not any(line in release for line in body if len(line) > 12), f"{lab}: an answer line leaked"


@pytest.mark.parametrize("lab", MISTAKES)
def test_the_release_scores_nothing_the_key_everything_a_mistake_loses_its_exercise(graded, lab):
    _, _, scores = graded
    release, key, mistake = (scores[(lab, s)] for s in ("release", "key", "mistake"))
    full = {g: m for g, (_, m) in key.items()}
    assert set(full) == set(KEYS[lab]) and all(m > 0 for m in full.values())
    assert all(s == 0 for s, _ in release.values()), release
    assert all(s == full[g] for g, (s, _) in key.items()), key
    broken = MISTAKES[lab][0]
    assert {g: s for g, (s, _) in mistake.items()} == {**full, broken: 0}, mistake


@pytest.mark.parametrize("lab", MISTAKES)
def test_check_cells_write_nothing_to_stderr_when_right(graded, lab):
    root, _, _ = graded
    nb = root / "autograded" / "key" / lab / f"{lab}.ipynb"
    for cell in _cells(nb):
        if _meta(cell).get("grade"):
            outputs = cell.get("outputs", [])
            assert not [o for o in outputs if o["output_type"] == "error"
                        or o["output_type"] == "stream" and o["name"] == "stderr"], outputs
            assert any("passed" in "".join(o.get("text", "")) for o in outputs), outputs


def test_the_build_refuses_a_notebook_without_an_answer_key(tmp_path, monkeypatch):
    from labkit.errors import LabkitError
    from labkit.exercises.answers import gpu as key
    monkeypatch.delitem(key.KEY, "copy_ms")  # one exercise of 01 without its reference answer
    with pytest.raises(LabkitError, match="no reference answer"):
        course.build(tmp_path, ["01_gpu"], release=False)


NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_every_notebook_with_exercises_is_gradable():
    with_exercises = [p for p in NOTEBOOKS if course.exercise_cells(json.loads(p.read_text()))]
    assert len(with_exercises) == len(NOTEBOOKS), "every notebook has exercises"
    assert [p.stem for p in with_exercises if not course.gradable(p)] == []


def test_every_exercise_stub_takes_its_keys_arguments_and_every_key_is_used():
    """solution_source refuses a key whose arguments differ from the notebook stub's (the course build uses it)."""
    used: dict[str, set[str]] = {}
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        module = course.check_module(nb)
        for cell in course.exercise_cells(nb):
            course.solution_source("".join(nb["cells"][cell.index]["source"]), course.answer_key(module)[cell.check])
            used.setdefault(module, set()).add(cell.check)
    assert {m: set(course.answer_key(m)) for m in used} == used


def test_course_build_cli_writes_the_source_without_release(tmp_path):
    from labkit import cli
    assert cli.main(["course", "build", str(tmp_path), "--notebooks", "00_welcome", "--no-release"]) == 0
    assert (tmp_path / "source" / "00_welcome" / "00_welcome.ipynb").is_file()
    assert "ClearSolutions.code_stub" in (tmp_path / "nbgrader_config.py").read_text()
    assert not (tmp_path / "release").exists()


def test_autograding_means_smoke_mode_unless_told(monkeypatch):
    from labkit import env
    monkeypatch.delenv("LABKIT_MODE", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert env.autograding() and env.mode() == "smoke"
    monkeypatch.setenv("LABKIT_MODE", "full")
    assert env.mode() == "full"
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.delenv("LABKIT_MODE")
    assert not env.autograding() and env.mode() == "full"
