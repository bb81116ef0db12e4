"""examples/chat.py in a real browser: two Chromium tabs chat over
websockets, and closing one is seen by the other at once (the server's
handler for the closed tab is cancelled and leaves the room).

Uses the browser fixture of tests/test_browser.py (Debian's headless
Chromium through selenium; skipped, loudly, only when it cannot be found).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import WAIT, browser

pytestmark = pytest.mark.browser

__all__ = ["browser"]  # the fixture, imported for the tests below

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def chat_server() -> Iterator[tuple[str, list[str]]]:
    """``trioweb serve examples.chat:app`` on a free port: (base URL, log)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trioweb", "serve", "examples.chat:app", "--port", "0"],
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
        log: list[str] = []
        reader = threading.Thread(
            target=lambda: log.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lines(driver: Any) -> list[str]:
    return [item.text for item in driver.find_elements("css selector", "#log li")]


def wait_for(driver: Any, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while text not in lines(driver):
        assert time.monotonic() < deadline, f"{text!r} never shown: {lines(driver)}"
        time.sleep(0.05)


def test_two_tabs_chat_and_a_closed_tab_leaves(
    chat_server: tuple[str, list[str]], browser: Any
) -> None:
    base, log = chat_server
    browser.get(base + "/?name=ann")
    wait_for(browser, "* ann joined")
    ann = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(base + "/?name=bob")
    wait_for(browser, "* bob joined")
    bob = browser.current_window_handle

    browser.switch_to.window(ann)
    wait_for(browser, "* bob joined")
    browser.find_element("id", "text").send_keys("hello <b>bob</b>")
    browser.find_element("css selector", "#form button").click()
    wait_for(browser, "ann: hello <b>bob</b>")  # text, not markup

    browser.switch_to.window(bob)
    wait_for(browser, "ann: hello <b>bob</b>")
    browser.close()

    browser.switch_to.window(ann)
    wait_for(browser, "* bob left")
    assert not any("Traceback" in line for line in log), log
