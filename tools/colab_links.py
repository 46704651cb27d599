"""Put the "Open in Colab" link and the Colab install cell into every notebook, from the one address in
pyproject.toml ([project.urls] Repository). Run it after changing that address or adding a notebook.

    python tools/colab_links.py           # rewrite notebooks/*.ipynb (outputs stay stripped)
    python tools/colab_links.py --check   # exit 1 and name each notebook that is out of date

The install cell does nothing outside Colab. On Colab it installs labkit from the repository with pip,
whose version ranges accept Colab's own torch and ipywidgets 7.7.1: torch is never reinstalled or pinned.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BRANCH = "main"
CELL_MARKER = "# Google Colab only:"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$")


def repository() -> str | None:
    """The public address from [project.urls] Repository, e.g. https://github.com/OWNER/NAME; None while unset
    (then the notebooks carry no Colab link, and their Colab cell asks for the wheel instead of guessing)."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("urls", {})
    url = urls.get("Repository", "").rstrip("/").removesuffix(".git")
    if not url:
        return None
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"pyproject.toml: [project.urls] Repository = {url!r} is not a https://github.com/OWNER/NAME address")
    return url


def colab_url(repo: str, notebook: str) -> str:
    """Colab opens a notebook straight from GitHub: /github/OWNER/NAME/blob/BRANCH/PATH."""
    return f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/{BRANCH}/{notebook}"


def badge(repo: str, notebook: str) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(repo, notebook)})"


def install_cell(repo: str | None) -> str:
    if repo is None:
        return (f"{CELL_MARKER} labkit must be installed in the runtime (Colab keeps its own torch). Elsewhere: nothing.\n"
                "import sys\n"
                "\n"
                "if \"google.colab\" in sys.modules:\n"
                "    try:\n"
                "        import labkit  # noqa: F401\n"
                "    except ImportError:\n"
                "        raise SystemExit(\"labkit is not installed here: upload the labkit wheel, run \"\n"
                "                         \"`%pip install labkit-*.whl` in a new cell, then run this notebook again.\")")
    return (f"{CELL_MARKER} install labkit from its repository (Colab keeps its own torch). Elsewhere: nothing.\n"
            "import subprocess\n"
            "import sys\n"
            "\n"
            "if \"google.colab\" in sys.modules:\n"
            f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", \"labkit @ git+{repo}\"], check=True)")


def lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: lines that keep their newline."""
    return text.splitlines(keepends=True)


def updated(nb: dict, notebook: str, repo: str | None) -> dict:
    """The notebook with its header badge (after the title line) and its install cell (right after the header)."""
    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    header = [line for line in "".join(cells[0]["source"]).splitlines() if not BADGE_LINE.match(line)]
    if header[1:2] == [""] and header[2:3] == [""]:
        del header[1]
    link = ["", badge(repo, notebook)] if repo else []
    cells[0]["source"] = lines("\n".join([header[0]] + link + header[1:]))
    cells[:] = [c for c in cells if not "".join(c["source"]).startswith(CELL_MARKER)]
    cells.insert(1, {"cell_type": "code", "execution_count": None, "id": "colab", "metadata": {}, "outputs": [],
                     "source": lines(install_cell(repo))})
    for i, cell in enumerate(cells):  # the ids nbstripout would give
        cell["id"] = str(i)
    return nb


def main(argv: list[str]) -> int:
    repo, stale = repository(), []
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        new = updated(nb, f"notebooks/{path.name}", repo)
        if new == nb:
            continue
        stale.append(path.name)
        if "--check" not in argv:
            path.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")
    if stale and "--check" in argv:
        print(f"out of date (run `python tools/colab_links.py`): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"{'rewrote' if stale else 'up to date:'} {', '.join(stale) or 'every notebook'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
