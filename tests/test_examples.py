"""The examples shipped with trioweb do what their docstrings say."""

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from examples.fanout import app as fanout_app
from examples.hello import app as hello_app
from trioweb.testing import TestClient


async def test_hello_root_and_json() -> None:
    async with TestClient(hello_app) as client:
        r = await client.get("/")
        assert r.status == 200
        assert r.text == "Hello from trioweb!\n"
        r = await client.get("/hello/ann")
        assert r.json() == {"hello": "ann"}


async def test_fanout_gathers_every_source(autojump_clock: trio.abc.Clock) -> None:
    async with TestClient(fanout_app) as client:
        start = trio.current_time()
        r = await client.get("/quote", params={"sources": "3"})
        assert r.status == 200
        assert r.json() == {"quotes": {f"source-{i}": f"answer {i}" for i in range(3)}}
        # The sources ran concurrently: the slowest (1.5 s), not the sum (3 s).
        assert trio.current_time() - start == pytest.approx(1.5)


async def test_fanout_rejects_bad_count() -> None:
    async with TestClient(fanout_app) as client:
        r = await client.get("/quote", params={"sources": "50"})
        assert r.status == 400


async def test_fanout_cancels_every_call_when_the_client_leaves(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with TestClient(fanout_app) as client:
        start = trio.current_time()
        sent = await client.abort("GET", "/quote", params={"sources": "3"}, after=0.7)
        # Nothing was answered, and the server side ended right after the
        # client left, not when the slowest source would have finished.
        assert sent == b""
        assert trio.current_time() - start == pytest.approx(0.7)
    messages = [r.getMessage() for r in caplog.records]
    # Source 0 (0.5 s) finished; sources 1 and 2 were cancelled.
    assert "source 1 cancelled: its client left" in messages
    assert "source 2 cancelled: its client left" in messages
    assert "source 0 cancelled: its client left" not in messages
    assert "client left /quote?sources=3 early" in messages
    assert any(
        r.name == "trioweb.access" and '" 499 ' in r.getMessage()
        for r in caplog.records
    )


# -- the example really serves, both ways the README says ----------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "trioweb", "serve", "examples.hello:app", "--port", "0"],
        [sys.executable, "examples/hello.py"],
    ],
    ids=["trioweb-serve", "python-script"],
)
async def test_the_hello_example_serves(command: list[str]) -> None:
    process = await trio.lowlevel.open_process(
        command,
        cwd=ROOT,
        env={**os.environ, "PORT": "0"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        with trio.fail_after(15):
            stderr = b""
            while b"\n" not in stderr.partition(b"serving on http://")[2]:
                data = await process.stderr.receive_some(4096)
                assert data, stderr
                stderr += data
            port = int(re.findall(rb"serving on http://127\.0\.0\.1:(\d+)", stderr)[0])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(
                b"GET /hello/ann HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            response = b""
            while data := await stream.receive_some(4096):
                response += data
            await stream.aclose()
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            assert response.endswith(b'{"hello": "ann"}')
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            rest = b""
            while data := await process.stderr.receive_some(4096):
                rest += data
            assert b"Traceback" not in stderr + rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stderr.aclose()
