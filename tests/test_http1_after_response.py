"""What a disconnect means once the response is complete, and the access log
line of a request the server itself gave up on."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from helpers import STALL_SIZE, not_reading

import trioweb
from trioweb.testing import TestClient


class WorkAfterFinish(trioweb.RequestHandler):
    """Answers first, then keeps working (bookkeeping after the response)."""

    log: list[str]

    async def get(self) -> None:
        await self.finish("done")
        try:
            await trio.sleep(5)
            self.log.append("bookkeeping done")
        except trio.Cancelled:
            self.log.append("cancelled")
            raise

    def on_connection_close(self) -> None:
        self.log.append("on_connection_close")

    def on_finish(self) -> None:
        self.log.append("on_finish")


async def test_client_closing_after_a_complete_response_does_not_cancel(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    log: list[str] = []
    WorkAfterFinish.log = log
    app = trioweb.Application([(r"/", WorkAfterFinish)])
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await raw.read_response()
        assert response.body == b"done"
        # The client got everything and leaves while the handler still works.
        await raw.aclose()
        await raw.server_done.wait()
    assert log == ["bookkeeping done", "on_finish"]
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert len(lines) == 1 and '" 200 4 ' in lines[0]


class Forever(trioweb.RequestHandler):
    async def get(self) -> None:
        await trio.sleep_forever()


async def test_a_request_cancelled_by_the_server_is_logged_as_444(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    app = trioweb.Application([(r"/forever", Forever)])
    addresses: list[tuple[str, int]] = []
    shutdown = trio.Event()
    config = trioweb.ServerConfig(port=0, graceful_timeout=2.0)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: trioweb.serve(
                app, config, shutdown_trigger=shutdown, task_status=task_status
            )
        )
        host, port = addresses[0]
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        # autojump_clock only jumps once every task is blocked: wait for the
        # handler to be sleeping, then ask for the shutdown.
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        shutdown.set()
    assert trio.current_time() - start == pytest.approx(2.0)
    await stream.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert len(lines) == 1
    assert '"GET /forever HTTP/1.1" 444 0 ' in lines[0]


class GivesUpOnASlowClient(trioweb.RequestHandler):
    """Bounds its own write with a deadline: the server's choice, not the
    client leaving."""

    log: list[str]

    async def get(self) -> None:
        self.write(b"x" * STALL_SIZE)
        with trio.move_on_after(1):
            await self.flush()
        self.log.append("gave up")

    def on_connection_close(self) -> None:
        self.log.append("on_connection_close")


async def test_a_write_the_handler_cancels_itself_is_not_a_disconnect(
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    transport: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    log: list[str] = []
    GivesUpOnASlowClient.log = log
    app = trioweb.Application([(r"/", GivesUpOnASlowClient)])
    async with TestClient(app, **not_reading(transport)) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # Never read: the handler's own deadline cancels its flush.
        with trio.fail_after(10):
            await raw.server_done.wait()
    assert log == ["gave up"]
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert len(lines) == 1 and '" 444 0 ' in lines[0], lines


async def test_a_partial_pipelined_request_gets_the_header_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = trioweb.ServerConfig(header_timeout=10, keep_alive_timeout=5)

    class Quick(trioweb.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    app = trioweb.Application([(r"/.*", Quick)])
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HT")
        assert (await raw.read_response()).status == 200
        start = trio.current_time()
        # Part of a request is here: not an idle connection (a quiet close
        # at the keep-alive timeout), but a slow head (408).
        assert (await raw.read_response()).status == 408
        assert trio.current_time() - start == pytest.approx(10)
