"""A notebook seen without a live kernel — `jupyter nbconvert --execute --to html`, GitHub's view, Colab without
custom widgets — shows every figure and result card it drew, with alt text, and no widget placeholder
("VBox(children=(…") and no frozen progress bar.

Each notebook is executed as nbconvert does (smoke mode), exported to HTML, read back, and opened in headless
Chromium with no network (the widget scripts cannot load: the page is what a static viewer shows). `make test`
checks 00 (a comparison panel, progress lines, figures); `make test-browser-all` (CI) every other notebook.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from test_browser import ARTIFACTS, _open_chromium, _require_chromium, pw  # noqa: F401  (pw: a fixture)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
IN_MAKE_TEST = ("00_welcome",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# What a static view shows of a widget or a widget progress bar: none of it may reach the reader.
PLACEHOLDER = re.compile(r"(VBox|HBox|IntProgress|FloatProgress|Image|HTML)\(children=|"
                         r"(Int|Float)Progress\(value=|\b0%\|")


def execute(name: str, results_dir: Path) -> nbformat.NotebookNode:
    """Run the notebook as `jupyter nbconvert --execute` does (nbclient, widget state stored), in smoke mode."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    saved = {k: os.environ.get(k) for k in ("LABKIT_MODE", "LABKIT_RESULTS_DIR")}
    os.environ.update(LABKIT_MODE="smoke", LABKIT_RESULTS_DIR=str(results_dir))
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def outputs(nb: nbformat.NotebookNode):
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            yield index, output


def check_outputs(name: str, nb: nbformat.NotebookNode) -> None:
    """Every widget is a labkit widget with a plain-text line and a static copy after it in its cell; every
    image has alt text; no progress bar is a widget."""
    for index, cell in enumerate(nb.cells):
        cell_outputs = cell.get("outputs", [])
        for i, output in enumerate(cell_outputs):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                text = "".join(data.get("text/plain", ""))
                assert text.startswith("[") and "interactive widget" in text, \
                    f"{name} cell {index}: a widget that is not a labkit widget (a progress bar?): {text[:120]}"
                after = ["".join(o.get("data", {}).get("text/html", "")) for o in cell_outputs[i + 1:]]
                assert any("labkit-static" in h for h in after), f"{name} cell {index}: no static copy after the widget"
            if "image/png" in data:
                alt = output.get("metadata", {}).get("image/png", {}).get("alt", "")
                assert len(alt.split()) >= 4, f"{name} cell {index}: an image without alt text"


def check_html(name: str, html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    shown = soup.get_text(" ")
    found = PLACEHOLDER.search(shown)
    assert found is None, f"{name}: the HTML shows widget placeholder text: …{shown[found.start() - 80:found.end() + 80]}…"
    for img in soup.find_all("img"):  # nbconvert fills a missing alt with "No description has been provided …"
        alt = img.get("alt") or ""
        assert len(alt.split()) >= 4 and not alt.startswith("No description"), f"{name}: an <img> without alt text"
    return soup


@pytest.mark.parametrize("name", [n if n in IN_MAKE_TEST else pytest.param(n, marks=pytest.mark.browser_all)
                                  for n in NOTEBOOKS])
def test_html_export_shows_every_figure_and_card(name, tmp_path, pw):  # noqa: F811
    from nbconvert import HTMLExporter
    from playwright.sync_api import expect

    _require_chromium()
    nb = execute(name, tmp_path / "results")
    check_outputs(name, nb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    soup = check_html(name, html)
    copies = soup.select(".labkit-static")
    widgets = sum(WIDGET_VIEW in o.get("data", {}) for _, o in outputs(nb))
    assert len(copies) == widgets, f"{name}: {widgets} widgets but {len(copies)} static copies"
    for copy in copies:
        assert copy.get_text(strip=True), f"{name}: a widget's static copy is empty (no summary, no card)"
    page_path = tmp_path / f"{name}.html"
    page_path.write_text(html)

    context, page = _open_chromium(pw, tmp_path)
    try:
        page.route(re.compile(r"^https?://"), lambda route: route.abort())  # a static viewer: no widget scripts
        page.goto(page_path.as_uri())
        shown = page.locator(".labkit-static")
        expect(shown).to_have_count(len(copies))
        for i in range(len(copies)):
            expect(shown.nth(i)).to_be_visible()
        images = page.locator(".jp-OutputArea-output img")
        for i in range(images.count()):  # every figure loads: a data URI that does not decode has no width
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"{name}: image {i} broken"
        ARTIFACTS.mkdir(exist_ok=True)
        if copies:
            shown.first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"static_{name}.png"))
        assert not PLACEHOLDER.search(page.locator("body").inner_text())
        (ARTIFACTS / f"static_{name}.json").write_text(json.dumps({"widgets": widgets, "images": images.count()}))
    finally:
        context.close()
