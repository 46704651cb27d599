"""One build step on top of pyproject.toml: the wheel carries data/, notebooks/ and README.md.

They stay at the repository root, where learners and instructors use them; a wheel copies them into
labkit/_shipped/, where labkit/paths.py finds them when labkit is installed without the repository.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("data", "notebooks", "README.md")
SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")


class BuildPyWithShippedFiles(build_py):
    """build_py, then copy the shipped folders into build/lib/labkit/_shipped/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the clone's own data/ and notebooks/
        target = Path(self.build_lib) / "labkit" / "_shipped"
        for name in SHIPPED:
            source, dest = HERE / name, target / name
            if not source.exists():
                raise SystemExit(f"setup.py: {source} is missing; the wheel would ship without it")
            if source.is_dir():
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(source, dest, ignore=SKIP)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
