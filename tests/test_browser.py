"""JupyterLab in headless Chromium: open 00_welcome, run all, drive the comparison panel, check it changed.

Needs Debian's `chromium` (`make test` installs it when run as root). Outside CI it is skipped
when Chromium is missing; in CI (CI=true) a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_chromium() -> None:
    """Skip without Debian's Chromium outside CI; in CI (CI=true) a missing Chromium is a failure."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: `make test` should have installed Debian's chromium")
        pytest.skip("Debian's chromium is not installed (sudo apt-get install chromium)")


def _stop(server: subprocess.Popen, log) -> None:
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A throw-away JupyterLab on a free 127.0.0.1 port, serving a copy of the notebooks."""
    _require_chromium()
    base = tmp_path_factory.mktemp("lab")
    served = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", served)  # autosave writes outputs: never into the repo
    port, token = _free_port(), secrets.token_hex(16)
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news pop-up
    env = {**os.environ, "LABKIT_MODE": "smoke", "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "LABKIT_RESULTS_DIR": str(base / "results")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
               f"--LabApp.workspaces_dir={base / 'workspaces'}",
               f"--LabApp.user_settings_dir={base / 'settings'}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(base / "jupyter.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"JupyterLab did not start: see {base / 'jupyter.log'}")
            time.sleep(0.5)
    yield url, token
    _stop(server, log)


def test_welcome_panel_runs_and_reacts_in_the_browser(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)  # a 2-core machine starting a kernel is not quick
        try:
            page.goto(f"{url}/lab/tree/00_welcome.ipynb?reset&token={token}")
            notebook = page.locator(".jp-NotebookPanel:visible")
            expect(notebook.locator(".jp-Cell").first).to_be_visible()
            kernel_dialog = page.get_by_role("dialog").filter(has_text="Select Kernel")
            try:  # a fresh lab may ask which kernel to start: take the notebook's own
                kernel_dialog.get_by_role("button", name="Select Kernel").click(timeout=10_000)
            except Exception:  # noqa: BLE001 - no dialog this time
                pass
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1)

            # Run all cells from the menu, as a learner would (focus the notebook first).
            first_prompt = notebook.locator(".jp-CodeCell .jp-InputPrompt").first
            for attempt in range(2):
                notebook.locator(".jp-Cell").first.click()
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    expect(first_prompt).to_contain_text(re.compile(r"\[[0-9*]+\]"), timeout=60_000)
                    break
                except AssertionError:
                    if attempt:
                        raise

            panel = notebook.locator(".labkit-panel").first
            table = panel.locator(".labkit-card table")
            expect(table).to_be_visible()
            expect(table).to_contain_text("small_cnn")
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=180_000)
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_welcome_after_run_all.png"), full_page=False)

            # Move a widget: untick the CNN, press Run, and the card must change to the MLP alone.
            panel.locator(".widget-checkbox", has_text="small_cnn").locator("input").uncheck()
            panel.locator(".widget-button", has_text="Run").click()
            expect(panel.locator(".labkit-status")).to_contain_text("done (1 of 1 variants)")
            expect(table).not_to_contain_text("small_cnn")
            expect(table).to_contain_text("mlp")
            expect(panel.locator("img.widget-image")).to_be_visible()
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_welcome_after_rerun.png"), full_page=False)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_welcome_FAILED.png"))
            raise
        finally:
            context.close()


def test_voila_dashboard_serves_a_notebook_and_its_widget_reacts(tmp_path):
    """`make demo`'s server (labkit demo): 08_quantization as a Voilà dashboard; tick 'per channel' and the
    bit-width explorer's summary must change."""
    from playwright.sync_api import expect, sync_playwright

    _require_chromium()
    port = _free_port()
    env = {**os.environ, "LABKIT_MODE": "smoke", "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "LABKIT_RESULTS_DIR": str(tmp_path / "results")}
    log_path = tmp_path / "voila.log"
    log = open(log_path, "w")
    server = subprocess.Popen([sys.executable, "-m", "labkit.cli", "demo", "08_quantization", "--no-browser",
                               f"--port={port}"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        deadline, url = time.time() + 60, None
        while url is None:
            found = re.search(rf"http://127\.0\.0\.1:{port}/\?token=\w+", log_path.read_text())
            url = found.group(0) if found else None
            if url is None and (time.time() > deadline or server.poll() is not None):
                pytest.fail(f"Voilà did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1300, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(180_000)
            try:
                page.goto(url)  # Voilà runs the whole notebook (smoke mode) before it shows the page
                summary = page.locator(".labkit-status", has_text="⚠ bits=0")  # the notebook's last update()
                expect(summary).to_be_visible(timeout=240_000)
                checkbox = page.locator(".widget-checkbox", has_text="per channel")
                checkbox.locator("input").check()
                expect(page.locator(".labkit-summary", has_text="4-bit per-channel")).to_be_visible(timeout=60_000)
                expect(summary).to_have_count(0)
                checkbox.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "voila_quantization_per_channel.png"))
                assert "Traceback" not in page.content()
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "voila_FAILED.png"))
                raise
            finally:
                context.close()
    finally:
        _stop(server, log)
