"""JupyterLab opens the notebooks' py:percent sources as notebooks: jupytext's contents manager reads them (server API),
and the settings `make` installs into the venv (tools/jupyter/labconfig) make a notebook their default viewer, so a
double click in the file browser opens one as a notebook (checked in a headless Chromium where one is installed)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="the JupyterLab checks need jupyterlab, which `make` installs (pyproject.toml)")

REPO = Path(__file__).resolve().parents[1]
LABCONFIG = REPO / "tools" / "jupyter" / "labconfig" / "default_setting_overrides.json"
NO_BROWSER = "the browser check needs Chromium and its driver, not installed here: apt-get install chromium chromium-driver"


def install_lab_settings(prefix: Path) -> Path:
    """Put the project's JupyterLab settings under ``prefix`` as `make` does for the venv (the Makefile's rule for
    ``$(VENV)/etc/jupyter/labconfig/…``, run with ``VENV=prefix``); returns the config folder to hand to JupyterLab."""
    target = prefix / "etc" / "jupyter" / "labconfig" / LABCONFIG.name
    if shutil.which("make"):
        subprocess.run(["make", "--no-print-directory", "-s", f"VENV={prefix}", str(target)], cwd=REPO, check=True,
                       capture_output=True, timeout=60)
    else:  # no make here: the same copy
        target.parent.mkdir(parents=True)
        shutil.copyfile(LABCONFIG, target)
    assert json.loads(target.read_text()) == json.loads(LABCONFIG.read_text())
    return prefix / "etc" / "jupyter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    token = "mfcore-test-token"
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    config = install_lab_settings(tmp_path_factory.mktemp("venv-prefix"))  # read as the venv's own etc/jupyter
    user = tmp_path_factory.mktemp("jupyterlab-user")  # no saved workspace (open tabs) or user settings interfere
    log = user / "jupyter-lab.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={REPO}",
         f"--LabApp.workspaces_dir={user / 'workspaces'}", f"--LabApp.user_settings_dir={user / 'settings'}",
         "--allow-root"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("wb"),  # a file: a full pipe would block the server
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_PATH": str(config)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not start within 90 s")
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # after the contents manager ran in a worker thread, jupyter_server can hang
        proc.kill()                    # at exit joining AnyIO's idle threads (jupyterlab#10442): no kernel is left
        proc.wait(timeout=30)


def test_py_percent_sources_open_as_notebooks(server):
    base, token = server
    stems = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))
    assert stems
    for stem in stems:
        url = f"{base}/api/contents/notebooks/{stem}.py?type=notebook&content=1&token={token}"
        model = json.load(urllib.request.urlopen(url, timeout=30))
        assert model["type"] == "notebook", stem
        cells = model["content"]["cells"]
        assert cells[0]["cell_type"] == "markdown"
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and "profile" in "".join(tagged[0]["source"]), stem
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), stem


def test_the_project_makes_a_notebook_the_default_viewer_of_python_files(server):
    from jupyter_core.paths import jupyter_config_path

    # `make` puts the settings in <venv>/etc/jupyter/labconfig: a folder the venv's own jupyter reads
    assert str(Path(sys.prefix) / "etc" / "jupyter") in jupyter_config_path()
    base, token = server
    url = f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}"
    schema = json.load(urllib.request.urlopen(url, timeout=30))["schema"]
    assert schema["properties"]["defaultViewers"]["default"]["python"] == "Jupytext Notebook"


def test_a_double_click_opens_a_chapter_source_as_a_notebook(server):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip(NO_BROWSER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = server
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        browser.get(f"{base}/lab/tree/notebooks?token={token}")
        wait = WebDriverWait(browser, 120)
        item = wait.until(lambda d: d.find_element(By.CSS_SELECTOR,
                                                   '.jp-DirListing-item[title*="01_fusion_geometry.py"]'))
        ActionChains(browser).double_click(item).perform()
        opened = wait.until(lambda d: "notebook" if d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")
                            else "text editor" if d.find_elements(By.CSS_SELECTOR, ".jp-FileEditor") else None)
        assert opened == "notebook"
    finally:
        browser.quit()
        for session in json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=30)):
            urllib.request.urlopen(urllib.request.Request(  # a kernel the notebook started: stopped with it
                f"{base}/api/sessions/{session['id']}?token={token}", method="DELETE"), timeout=30)
