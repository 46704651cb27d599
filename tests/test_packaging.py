"""The pins in pyproject.toml and environment.yml must agree; the README must give the two commands."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    pyproject_pins = _pins(declared)
    assert len(pyproject_pins) == len(declared), "every dependency in pyproject.toml must be pinned with =="
    yml_lines = [line.strip().lstrip("- ").strip() for line in (ROOT / "environment.yml").read_text().splitlines()]
    yml_pins = _pins(yml_lines)
    assert yml_pins == pyproject_pins
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"


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
