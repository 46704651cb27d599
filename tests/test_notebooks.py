"""Notebooks are committed without outputs, and each asserts its key result (one that ran nothing fails)."""

import ast
import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path

import pytest

from labkit import coursemap

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_numbered_notebooks_are_the_course_map():
    numbered = [p.stem for p in NOTEBOOKS if p.stem[:2].isdigit()]
    main = [n for n in numbered if n[2] == "_"]
    assert [int(n[:2]) for n in main] == list(range(len(main))), "notebooks numbered 00, 01, ... without gaps"
    follow_ups = [n for n in numbered if n[2] != "_"]  # 04b_…: an optional follow-up of 04_…
    assert all(any(m.startswith(n[:2] + "_") for m in main) for n in follow_ups), "a follow-up needs its notebook"
    assert numbered == coursemap.notebooks(), "numbered names are NN_name or NNx_name (x a lower-case letter)"
    assert set(numbered) <= set(coursemap.load()["notebooks"]), "every notebook has measured times in the course map"


MARKER = re.compile(r"#\s*shown in notebooks?\s+(.+)")


def _code(cell: dict) -> str:
    """A code cell's Python, without IPython's magics and shell lines."""
    return "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))


def shown_sources(path: Path) -> list[tuple[str, object]]:
    """Every labkit object that the notebook prints with inspect.getsource, as (expression, object)."""
    trees = [ast.parse(_code(c)) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    aliases = {}
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full if importlib.util.find_spec(full) else node.module
    loops = {n.target.id: n.iter.elts for tree in trees for n in ast.walk(tree)
             if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and isinstance(n.iter, ast.Tuple)}
    found = []
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("inspect.getsource", "getsource"):
            arg = node.args[0]
            for expr in loops.get(arg.id, [arg]) if isinstance(arg, ast.Name) else [arg]:
                parts = ast.unparse(expr).split(".")
                if parts[0] not in aliases:
                    continue
                obj = importlib.import_module(aliases[parts[0]])
                for attr in parts[1:]:
                    obj = getattr(obj, attr)
                found.append((ast.unparse(expr), obj))
    return found


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.name)
def test_every_function_a_notebook_shows_carries_its_marker(path):
    """Renaming or rewriting shown code must be a visible decision: the code says which lessons show it."""
    missing = []
    for expr, obj in shown_sources(path):
        names = [n for m in MARKER.finditer(inspect.getsource(obj)) for n in re.split(r"[,\s]+", m.group(1)) if n]
        if path.stem not in names:
            missing.append(f"{expr} has no '# shown in notebook {path.stem}' line")
    assert not missing, "\n".join(missing)


def test_the_marker_check_finds_what_notebooks_show():
    shown = dict(shown_sources(NOTEBOOKS[0].parent / "08_quantization.ipynb"))
    from labkit.techniques import quantization
    assert shown["quant.qat_prepare"] is quantization.qat_prepare
    loop = dict(shown_sources(NOTEBOOKS[0].parent / "06_ddp.ipynb"))
    assert "ddp.shard_loader" in loop and "ddp.save_checkpoint" in loop


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


def test_every_figure_a_notebook_shows_carries_alt_text():
    """Figures are shown with `ui.show(fig)`: the PNG's metadata and its text form carry a sentence saying
    what is plotted (an IPython Image shows as '<IPython.core.display.Image object>' where images don't render)."""
    for path in NOTEBOOKS:
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "Image(" not in code, f"{path.name}: show figures with ui.show(fig), not IPython's Image"
        assert "plt.show(" not in code and "figure_png(" not in code, f"{path.name}: show figures with ui.show(fig)"
