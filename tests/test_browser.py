"""examples/site in a real browser: Debian's headless Chromium, driven by
selenium through chromedriver, against ``trioweb serve`` on a free port.

Checks what only a browser can: the page renders with its CSS applied, the
login form submits and the cookie comes back, the SSE counter ticks in the
page, and closing the tab cancels the server's SSE handler (read off the
server's ``/stats`` and its log).

``make test`` installs the browser (tests/system/install.sh, apt) and
selenium (the ``test`` extra). The test skips -- loudly, with the reason --
only when no browser can be found after that; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: The longest any single wait may take; the whole test stays well inside
#: the suite's per-test timeout.
WAIT = 15.0
BASE = ""

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs it
    webdriver = None


def _skip_reason() -> str | None:
    if webdriver is None:
        return "selenium is not installed: pip install -e '.[test]' (make test does)"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return (
            "Debian's chromium and chromium-driver are not installed and could "
            "not be: run `bash tests/system/install.sh` as root (make test does)"
        )
    return None


class Server:
    """A running ``trioweb serve``: its base URL and what it has logged."""

    def __init__(self, base: str, log: list[str]) -> None:
        self.base = base
        self.log = log


@pytest.fixture
def server() -> Iterator[Server]:
    """``trioweb serve examples.site.app:app`` on a free port."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trioweb",
            "serve",
            "examples.site.app:app",
            "--port",
            "0",
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + WAIT
        line = ""
        while "serving on http://" not in line:
            assert time.monotonic() < deadline, "the server did not start"
            line = process.stderr.readline()
            assert line, "the server exited before serving"
        port = re.findall(r"serving on http://127\.0\.0\.1:(\d+)", line)[0]
        # Keep reading stderr: a full pipe would block the server's logging.
        log: list[str] = []
        reader = threading.Thread(
            target=lambda: log.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        yield Server(f"http://127.0.0.1:{port}", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason is not None:
        # Loud: printed in the summary with -rs and on stderr now.
        print(f"\n!!! SKIPPING THE BROWSER TEST: {reason}", file=sys.stderr)
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="trioweb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/stats", timeout=WAIT) as response:
        result: dict[str, int] = json.load(response)
        return result


def wait_until(condition: Any, message: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {WAIT} s waiting for {message}; last stats: {stats(BASE)}"
    )


def test_the_example_site_in_chromium(server: Server, browser: Any) -> None:
    global BASE
    base = BASE = server.base
    wait = WebDriverWait(browser, WAIT)

    # The page renders, with its stylesheet applied (the header's colour
    # comes only from static/site.css, loaded by its versioned URL).
    browser.get(base + "/")
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(32, 64, 128, 1)"
    stylesheet = browser.find_element(By.CSS_SELECTOR, "link[rel=stylesheet]")
    assert re.search(
        r"/static/site\.css\?v=[0-9a-f]+$", stylesheet.get_attribute("href")
    )

    # The SSE counter ticks in the page.
    counter = browser.find_element(By.ID, "counter")
    wait.until(lambda _: counter.text.isdigit() and int(counter.text) >= 2)

    # The login form submits; the cookie comes back; the page greets.
    browser.find_element(By.ID, "login-link").click()
    wait.until(lambda d: d.find_elements(By.ID, "name"))
    browser.find_element(By.ID, "name").send_keys("Ann <b>")
    browser.find_element(By.ID, "submit").click()
    user = wait.until(lambda d: d.find_elements(By.ID, "user"))[0]
    assert user.text == "Signed in as Ann <b>"  # shown as text, not markup
    assert browser.find_element(By.TAG_NAME, "h1").text == "Hello, Ann <b>!"

    # A second tab with the counter; closing it cancels its SSE handler on
    # the server at once, and only that one.
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(base + "/")
    counter = browser.find_element(By.ID, "counter")
    wait.until(lambda _: counter.text.isdigit())
    before = stats(base)
    assert before["active"] >= 2  # this tab's stream and the first tab's
    browser.close()
    browser.switch_to.window(first_tab)
    after = wait_until(
        lambda: (s := stats(base))["cancelled"] > before["cancelled"] and s,
        "the closed tab's handler to be cancelled",
    )
    assert after["active"] == before["active"] - 1
    # The server's access log says so too: 499, the client closed.
    wait_until(
        lambda: any('"GET /events HTTP/1.1" 499' in line for line in server.log),
        "a 499 for /events in the access log",
    )
    # The first tab's counter goes on ticking.
    counter = browser.find_element(By.ID, "counter")
    now = int(counter.text)
    wait.until(lambda _: int(counter.text) > now)
    assert not any("Traceback" in line for line in server.log), server.log
