"""`pip install` of the built wheel gives a working lab, outside the clone and offline.

Builds the wheel from a copy of the sources, installs it into a fresh virtual environment whose
dependencies come from this one (a .pth line, no network), copies the notebooks out with
`labkit notebooks DIR` and runs 00_welcome there in smoke mode. About a minute on 2 cores.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "labkit", "data", "notebooks")
MUST_SHIP = ("data/SHA256SUMS", "data/course_times.json", "data/fashion_mnist/fashion_mnist_subset.npz",
             "data/pretrained/distillation_teacher.pt", "data/pretrained/tiny_resnet_classes0-4.pt",
             "notebooks/00_welcome.ipynb", "README.md")


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, **kwargs)
    assert out.returncode == 0, f"{command}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def build_wheel(tmp: Path) -> Path:
    """The wheel, built offline from a copy of the sources (nothing is written into the clone)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp / "dist", src])
    (wheel,) = (tmp / "dist").glob("labkit-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv with only the wheel installed; its dependencies are this environment's (a .pth line)."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "zz_labkit_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    return tmp, wheel, fresh_venv(tmp, wheel)


def outside_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_RESULTS_DIR")}
    return env | {"LABKIT_MODE": "smoke", "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}


def test_the_wheel_carries_data_weights_sums_and_notebooks(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in MUST_SHIP if f"labkit/_shipped/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    for folder in ("data", "notebooks"):  # everything under data/ and notebooks/ that git tracks
        tracked = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True).stdout.split()
        assert all(f"labkit/_shipped/{f}" in names for f in tracked), f"a tracked file of {folder}/ is not shipped"


def test_installed_lab_finds_its_data_and_runs_the_welcome_notebook(installed):
    tmp, _, python = installed
    work = tmp / "learner"
    work.mkdir()
    env = outside_env(tmp)
    where = run([python, "-c", "import labkit, labkit.paths as p; from labkit import data; data.verify(data.SUBSET_FILE); "
                 "print(labkit.__file__); print(p.IN_CLONE); print(p.DATA_DIR)"], cwd=work, env=env).stdout.split("\n")
    assert Path(where[0]).is_relative_to(tmp / "venv") and where[1] == "False", where  # the wheel's labkit, not the clone's
    assert Path(where[2]).is_relative_to(tmp / "venv"), where

    scripts = python.parent
    copied = run([scripts / "labkit", "notebooks", "nb"], cwd=work, env=env).stdout
    assert (work / "nb" / "00_welcome.ipynb").is_file() and "labkit lab --dir" in copied
    again = run([python, "-m", "labkit", "notebooks", "nb"], cwd=work, env=env).stdout
    assert "kept" in again                                  # a learner's edited notebooks are never overwritten

    out = subprocess.run([python, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=300",
                          "-q", "-p", "no:cacheprovider", "nb/00_welcome.ipynb"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "passed" in out.stdout and "failed" not in out.stdout
    # results went beside the notebook, not into site-packages
    assert (work / "nb" / "results" / "results.csv").is_file()
    assert not list((tmp / "venv").rglob("results.csv"))
