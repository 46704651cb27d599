"""Versions, the Colab cell and links, and the README: pyproject.toml states ranges, constraints.txt the exact
pins (environment.yml repeats them), every notebook opens in Colab, and the README gives the commands."""

import json
import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _declared() -> list[Requirement]:
    """labkit's own dependencies and the lab and dev extras (what `make lab` / `make test` install)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["lab"] + extras["dev"]]


def test_pyproject_states_ranges_and_constraints_pin_inside_them():
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    for req in _declared():
        name = canonicalize_name(req.name)
        assert not any(s.operator == "==" for s in req.specifier), f"{req}: pyproject.toml states ranges; pins go to constraints.txt"
        assert name in constraints, f"{req.name} has no exact version in constraints.txt"
        assert req.specifier.contains(constraints[name], prereleases=True), f"constraints.txt's {name}=={constraints[name]} is outside {req}"
    widgets = next(r for r in _declared() if r.name == "ipywidgets")
    assert widgets.specifier.contains("7.7.1") and widgets.specifier.contains("8.1.9"), "Colab ships ipywidgets 7.7.1"
    assert not next(r for r in _declared() if r.name == "torch").specifier.contains("2.0.0")


def test_environment_yml_follows_constraints():
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    yml_text = (ROOT / "environment.yml").read_text()
    yml_pins = _pins(line.strip().lstrip("- ").strip() for line in yml_text.splitlines())
    assert {canonicalize_name(r.name) for r in _declared()} == set(yml_pins), "environment.yml lists labkit[lab,dev]'s direct dependencies"
    assert {n: constraints[n] for n in yml_pins} == yml_pins, "environment.yml and constraints.txt disagree"
    assert "python=3.11" in yml_text and "- -e ." in yml_text


def test_make_installs_with_the_constraints_and_ci_runs_the_widgets7_job():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c constraints.txt -e '.[lab,dev]'" in makefile
    assert re.search(r"^test-widgets7:", makefile, flags=re.M) and "ipywidgets==7.7.1" in makefile
    test_target = re.search(r"^test:.*?(?=^\S)", makefile, flags=re.M | re.S).group(0)
    assert "widgets7" not in test_target and "W7" not in test_target, "the ipywidgets-7 job stays out of `make test`"
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test\n") < ci.index("make test-widgets7")


def _colab_tool() -> dict:
    return runpy.run_path(str(ROOT / "tools" / "colab_links.py"))


COLAB_LINK = re.compile(r"\]\((https://colab\.research\.google\.com/github/[^)]*)\)")


def _first_code(nb: dict) -> str:
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def test_the_notebooks_follow_the_repository_address_and_a_set_address_links_each_to_itself():
    tool = _colab_tool()
    repo = tool["repository"]()
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "colab_links.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr  # the committed notebooks are what the tool writes for that address
    assert NOTEBOOKS
    fake = "https://github.com/someone/labkit"  # what the tool writes once an address is set
    prefix = "https://colab.research.google.com/github/someone/labkit/blob/main/"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        links = COLAB_LINK.findall("".join(nb["cells"][0]["source"]))
        assert len(links) == (1 if repo else 0), f"{path.name}: a Colab link only when the address is set"
        with_address = tool["updated"](nb, f"notebooks/{path.name}", fake)
        (link,) = COLAB_LINK.findall("".join(with_address["cells"][0]["source"]))
        assert link.startswith(prefix) and (ROOT / link.removeprefix(prefix)) == path, f"{path.name} links to {link}"
        assert tool["updated"](with_address, f"notebooks/{path.name}", repo) == nb  # and back: nothing else moves


def _run_cell(source: str, name: str, colab: bool, monkeypatch) -> None:
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, name, "exec"), {})


def test_colab_cell_installs_labkit_only_on_colab_and_never_torch(monkeypatch, capsys):
    tool = _colab_tool()
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command))
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        source = _first_code(nb)
        assert source.startswith("# Google Colab only:"), f"{path.name}: the Colab cell is the first code cell"
        _run_cell(source, path.name, False, monkeypatch)
        assert calls == [] and capsys.readouterr() == ("", ""), f"{path.name}: outside Colab the cell does nothing"
        _run_cell(source, path.name, True, monkeypatch)  # labkit is importable here: nothing to do
        assert calls == [] or tool["repository"]()
        calls.clear()
        # with an address set, Colab installs from it and leaves torch alone
        fake = "https://github.com/someone/labkit"
        _run_cell(_first_code(tool["updated"](nb, f"notebooks/{path.name}", fake)), path.name, True, monkeypatch)
        (command,) = calls
        calls.clear()
        assert command[:4] == [sys.executable, "-m", "pip", "install"] and f"labkit @ git+{fake}" in command
        assert not any("torch" in part for part in command), f"{path.name}: Colab keeps its own torch"


def test_without_an_address_the_colab_cell_asks_for_the_wheel_in_one_line(monkeypatch):
    source = _colab_tool()["install_cell"](None)
    monkeypatch.setitem(sys.modules, "labkit", None)  # not installed in this runtime
    with pytest.raises(SystemExit) as stop:
        _run_cell(source, "cell", True, monkeypatch)
    assert "pip install labkit-" in str(stop.value) and "\n" not in str(stop.value)


def test_readme_says_how_to_run_elsewhere():
    readme = (ROOT / "README.md").read_text()
    for heading in ("Google Colab", "JupyterHub", "Binder", "Windows and macOS"):
        assert re.search(rf"^## .*{heading}", readme, flags=re.M), f"README: no section on {heading}"
    for command in ("-m venv", "pip install -c constraints.txt -e", "python -m labkit lab", "python -m pytest",
                    "labkit notebooks", "nbgrader", "repo2docker"):
        assert command in readme, f"README does not mention `{command}`"


def test_python_m_labkit_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "notebooks" in out.stdout and "doctor" in out.stdout


def test_torch_is_the_pinned_cpu_build():
    import torch

    pinned = _pins((ROOT / "constraints.txt").read_text().splitlines())["torch"]
    assert torch.__version__.split("+")[0] == pinned


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_commands = re.findall(r"^make \w+", readme, flags=re.M)[:2]
    assert first_commands == ["make lab", "make test"]


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_import_labkit_does_not_import_torch():
    """`import labkit` stays fast: torch loads only when a submodule needs it."""
    code = "import sys, labkit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_lab_opens_the_clone_or_a_folder_that_labkit_notebooks_filled(tmp_path, capsys):
    import pytest

    from labkit import cli, paths
    from labkit.errors import LabkitError

    assert cli.lab_folder(None) == (paths.ROOT, "notebooks/00_welcome.ipynb")  # in the clone
    with pytest.raises(LabkitError, match="labkit notebooks DIR"):
        cli.lab_folder(str(tmp_path))
    assert cli.main(["notebooks", str(tmp_path / "nb")]) == 0
    assert cli.lab_folder(str(tmp_path / "nb")) == ((tmp_path / "nb").resolve(), "00_welcome.ipynb")
    shipped = sorted(p.name for p in paths.NOTEBOOK_DIR.glob("*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "nb").glob("*.ipynb")) == shipped
    (tmp_path / "nb" / "00_welcome.ipynb").write_text("my edits")
    assert cli.main(["notebooks", str(tmp_path / "nb")]) == 0 and "kept" in capsys.readouterr().out
    assert (tmp_path / "nb" / "00_welcome.ipynb").read_text() == "my edits"
