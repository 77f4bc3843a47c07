"""The course in a real browser: JupyterLab driven by Playwright in Debian's headless Chromium.

- the loss-weighting visualizer notebook runs top to bottom, its sliders render, and moving the
  w0 slider makes the kernel redraw the weight map (the PNG bytes differ before/after);
- an exercise notebook shows nbgrader's Validate button, and validating it answers.

JupyterLab runs on a free loopback port with a token, in its own root folder (copies of the
notebooks: running them must not write outputs into the repository) and its own config/settings
folders; the fixture's finalizer stops the server it started, also when a test fails.
Screenshots go to artifacts/browser/ (gitignored). Never runs `playwright install`: the browser is
/usr/bin/chromium (machine-recipes §4; `make system` installs it).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
VISUALIZER = ROOT / "lectures" / "05b_loss_weighting_visualizer.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
TOKEN = "comp448-browser-test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Variables that make comp448.widgets draw static figures: the browser test needs the sliders.
STATIC_FLAGS = ("COMP448_STATIC", "NBGRADER_EXECUTION", "CI", "PYTEST_CURRENT_TEST", "MPLBACKEND")
SLOW_MS = 180_000                 # generous: the machine is shared by several test runs


def _exercises():
    return sorted((ROOT / "exercises").glob("*/*.ipynb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run `make system` (Debian's chromium)")
    pytest.importorskip("playwright.sync_api")
    work = tmp_path_factory.mktemp("lab")
    root = work / "root"
    (root / "lectures").mkdir(parents=True)
    shutil.copy(VISUALIZER, root / "lectures" / VISUALIZER.name)
    exercises = _exercises()
    if exercises:
        shutil.copytree(exercises[0].parent, root / "exercises" / exercises[0].parent.name)
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    notebook_settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)                  # every cell in the DOM, not only visible ones
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))

    env = {k: v for k, v in os.environ.items() if k not in STATIC_FLAGS}
    env.update(PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
               JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(work / "ws"),
               OMP_NUM_THREADS="1")
    port = _free_port()
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)                  # the server shuts its kernels down
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)           # the group this fixture started
                proc.wait(timeout=10)
        log.close()
    request.addfinalizer(stop)

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(work / 'lab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"jupyter lab did not answer in 120 s:\n{(work / 'lab.log').read_text()[-3000:]}")
        time.sleep(0.5)
    return {"url": url, "root": root, "exercise": exercises[0] if exercises else None, "log": work / "lab.log"}


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(SLOW_MS)
        try:
            yield ctx
        finally:
            ctx.close()


def _kernel_ready(lab, relpath) -> bool:
    """The notebook's kernel runs, is idle and has the page connected (Jupyter's REST API)."""
    with urllib.request.urlopen(f"{lab['url']}/api/sessions?token={TOKEN}", timeout=10) as r:
        sessions = json.load(r)
    return any(s.get("path") == relpath and s["kernel"]["execution_state"] == "idle"
               and s["kernel"].get("connections", 0) >= 1 for s in sessions)


def _open(browser, lab, relpath):
    """Open a notebook and wait until its kernel really answers: the page's execution indicator says
    'idle' before the kernel has started, and a Run All sent then is lost."""
    page = browser.new_page()
    page.goto(f"{lab['url']}/lab/tree/{relpath}?token={TOKEN}")
    deadline = time.monotonic() + SLOW_MS / 1000
    while not _kernel_ready(lab, relpath):
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / "kernel_not_ready.png"))
            pytest.fail(f"the kernel of {relpath} did not start:\n{lab['log'].read_text()[-3000:]}")
        time.sleep(0.5)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return page


def _png(src: str) -> bytes:
    assert src and src.startswith("data:image/png;base64,"), (src or "")[:80]
    return base64.b64decode(src.split(",", 1)[1])


def test_visualizer_runs_and_slider_redraws(browser, lab):
    page = _open(browser, lab, f"lectures/{VISUALIZER.name}")
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        section = page.locator(".widget-vbox", has=page.locator(".widget-html", has_text="Slide 13")).last
        img = section.locator(".widget-output img").first
        img.wait_for()
        # every section rendered its sliders and figure, and the last cell ran
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea .widget-output img').length >= 4",
                               timeout=SLOW_MS)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        page.get_by_text("stage 1: beta in").first.wait_for()
        assert page.locator(".jp-OutputArea .widget-slider").count() >= 6
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0, errors.first.inner_text()
        before = _png(img.get_attribute("src"))
        page.screenshot(path=str(ARTIFACTS / "visualizer_before.png"), full_page=True)

        slider = section.locator(".widget-slider", has=page.locator(".widget-label", has_text="w0"))
        readout = slider.locator(".widget-readout")
        assert readout.inner_text().strip().startswith("10")
        slider.locator(".noUi-handle").focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("el => el.textContent.trim().startsWith('15')", arg=readout.element_handle())
        deadline = time.monotonic() + SLOW_MS / 1000
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.5)
            src = section.locator(".widget-output img").first.get_attribute("src")
            after = _png(src) if src else before
        assert after != before, "moving the w0 slider did not redraw the weight map"
        # each key press is one redraw: wait for the last one before the screenshot
        page.wait_for_function("() => document.querySelector(\".jp-Notebook-ExecutionIndicator\")"
                               ".dataset.status === 'idle'")
        section.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "visualizer_after.png"), full_page=True)
    finally:
        page.close()


def test_exercise_has_validate_button(browser, lab):
    if lab["exercise"] is None:
        pytest.skip("no exercises/*/*.ipynb yet (make exercises generates them from solutions/)")
    ex = lab["exercise"]
    # Validate runs on the server (no kernel needed): open the page and wait for its toolbar only,
    # so a slow kernel start on a loaded machine cannot stall this check.
    page = browser.new_page()
    page.goto(f"{lab['url']}/lab/tree/exercises/{ex.parent.name}/{ex.name}?token={TOKEN}")
    try:
        button = page.locator(".validate-button").filter(visible=True).first   # this notebook's toolbar
        button.wait_for()
        assert "Validate" in button.inner_text()
        page.screenshot(path=str(ARTIFACTS / "exercise_validate_button.png"))
        button.click()                      # the server-side validate extension answers with a dialog
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for()
        page.screenshot(path=str(ARTIFACTS / "exercise_validate_result.png"))
        assert dialog.inner_text().strip()
    finally:
        page.close()
