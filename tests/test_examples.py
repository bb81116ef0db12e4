"""The examples shipped with trioweb do what their docstrings say."""

import logging

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
