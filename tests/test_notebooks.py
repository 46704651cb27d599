"""Notebooks are committed without outputs, and each asserts its key result (one that ran nothing fails)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, "a notebook without code runs nothing"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_key_results_are_asserted(path):
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "assert " in source, "a notebook's key result must be asserted in code"
    assert "!pip" not in source and "filterwarnings(\"ignore\")" not in source


def heading_anchor(line: str) -> str:
    """The id JupyterLab gives a Markdown heading: its rendered text with spaces as dashes."""
    text = line.lstrip("#").strip().replace("`", "").replace("*", "")
    return text.replace(" ", "-")


def test_tensorflow_page_links_to_real_notebook_sections():
    import re

    page = NOTEBOOKS[0].parent / "coming_from_tensorflow.md"
    links = re.findall(r"\]\(([0-9][^)#]*\.ipynb)#([^)]*)\)", page.read_text())
    for name in ("MirroredStrategy", "multi_gpu_model", "mixed_float16", "prune_low_magnitude", "quantize_model",
                 "ReduceLROnPlateau", "EarlyStopping"):
        assert name in page.read_text(), f"the page should map {name}"
    assert len(links) >= 15
    for target, anchor in links:
        cells = json.loads((page.parent / target).read_text())["cells"]
        headings = {heading_anchor(line) for c in cells if c["cell_type"] == "markdown"
                    for line in "".join(c["source"]).splitlines() if line.startswith("#")}
        assert anchor in headings, f"{target}#{anchor} names no heading of {target}"
