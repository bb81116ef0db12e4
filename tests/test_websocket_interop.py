"""WebSockets over real sockets, against third-party clients: the
``websockets`` library (its threaded client) and wsproto driven by hand."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import wsproto
import wsproto.events as ev
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import trioweb
from trioweb import ServerConfig, serve

DEADLINE = 30


class Echo(trioweb.WebSocketHandler):
    def get_compression_options(self) -> dict[str, Any]:
        return {}

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0]

    async def on_message(self, message: str | bytes) -> None:
        await self.write_message(message)


class Listener(trioweb.WebSocketHandler):
    async def open(self) -> None:
        await self.write_message("ready")
        async for _ in self:
            pass


class Firehose(trioweb.WebSocketHandler):
    async def open(self) -> None:
        try:
            while True:
                await self.write_message(b"x" * 65536)
        except trioweb.WebSocketClosedError as exc:
            self.settings["outcome"].append(str(exc))
            self.settings["aborted"].set()
            raise


@asynccontextmanager
async def running(
    **options: Any,
) -> AsyncIterator[tuple[int, list[str], trio.Event]]:
    outcome: list[str] = []
    aborted = trio.Event()
    app = trioweb.Application(
        [("/echo", Echo), ("/listen", Listener), ("/firehose", Firehose)],
        outcome=outcome,
        aborted=aborted,
    )
    config = ServerConfig(**{"host": "127.0.0.1", "port": 0, **options})
    trigger = trio.Event()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(
                functools.partial(serve, app, config, shutdown_trigger=trigger)
            )
            try:
                yield addresses[0][1], outcome, aborted
            finally:
                trigger.set()


def websockets_echo(port: int) -> dict[str, Any]:
    with connect(
        f"ws://127.0.0.1:{port}/echo",
        subprotocols=["proto.a", "proto.b"],  # type: ignore[list-item]
        compression="deflate",
        proxy=None,
    ) as ws:
        ws.send("héllo")
        text = ws.recv()
        ws.send(b"\x00\x01" * 1000)
        binary = ws.recv()
        ws.send(["frag", "mented"])  # one message in two frames
        fragmented = ws.recv()
        ws.ping(b"alive").wait(5)
        result = {
            "text": text,
            "binary": binary,
            "fragmented": fragmented,
            "subprotocol": ws.subprotocol,
            "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
        }
    result["close"] = ws.close_code
    return result


async def test_the_websockets_library_talks_to_trioweb() -> None:
    async with running() as (port, _, _):
        result = await trio.to_thread.run_sync(websockets_echo, port)
    assert result == {
        "text": "héllo",
        "binary": b"\x00\x01" * 1000,
        "fragmented": "fragmented",
        "subprotocol": "proto.a",
        "extensions": result["extensions"],
        "close": 1000,
    }
    assert result["extensions"].startswith("permessage-deflate")


def websockets_too_big(port: int) -> int | None:
    with connect(f"ws://127.0.0.1:{port}/echo", proxy=None, max_size=None) as ws:
        ws.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed):
            ws.recv()
    return ws.close_code


async def test_the_size_limit_with_the_websockets_library() -> None:
    async with running() as (port, _, _):
        code = await trio.to_thread.run_sync(websockets_too_big, port)
    assert code == 1009


def websockets_wait_for_close(port: int, opened: Any) -> tuple[int | None, str | None]:
    with connect(f"ws://127.0.0.1:{port}/listen", proxy=None) as ws:
        assert ws.recv() == "ready"
        trio.from_thread.run_sync(opened.set)
        with pytest.raises(ConnectionClosed):
            ws.recv()
    return ws.close_code, ws.close_reason


async def test_graceful_shutdown_sends_1001_and_ends_within_the_deadline() -> None:
    opened = trio.Event()
    result: list[Any] = []
    stopped = trio.Event()
    app = trioweb.Application([("/listen", Listener)])
    # A graceful period far longer than the test's deadline: serve() ending
    # in time means it did not wait for it.
    config = ServerConfig(host="127.0.0.1", port=0, graceful_timeout=600)
    trigger = trio.Event()

    async def server(task_status: trio.TaskStatus[Any]) -> None:
        try:
            await serve(app, config, shutdown_trigger=trigger, task_status=task_status)
        finally:
            stopped.set()

    async def client(port: int) -> None:
        result.append(
            await trio.to_thread.run_sync(websockets_wait_for_close, port, opened)
        )

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(server)
            nursery.start_soon(client, addresses[0][1])
            await opened.wait()
            trigger.set()
            await stopped.wait()
    assert result == [(1001, "server shutting down")]


async def test_raw_wsproto_over_a_socket() -> None:
    async with running() as (port, _, _):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(
            client.send(ev.Request(host=f"127.0.0.1:{port}", target="/echo"))
        )
        events: list[Any] = []

        async def pump_until(kind: type) -> Any:
            while True:
                for event in client.events():
                    events.append(event)
                    if isinstance(event, kind):
                        return event
                data = await stream.receive_some(65536)
                client.receive_data(data or None)

        await pump_until(ev.AcceptConnection)
        await stream.send_all(client.send(ev.Message(data="raw")))
        message = await pump_until(ev.TextMessage)
        await stream.send_all(client.send(ev.Ping(payload=b"p")))
        pong = await pump_until(ev.Pong)
        await stream.send_all(client.send(ev.CloseConnection(code=1000)))
        close = await pump_until(ev.CloseConnection)
        # The server closes the TCP connection after the handshake.
        assert await stream.receive_some(10) == b""
        await stream.aclose()
    assert message.data == "raw"
    assert pong.payload == b"p"
    assert close.code == 1000


async def test_a_client_that_does_not_read_is_aborted_over_tcp() -> None:
    async with running(write_timeout=0.5) as (port, outcome, aborted):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(
            client.send(ev.Request(host=f"127.0.0.1:{port}", target="/firehose"))
        )
        # Never read: the kernel buffers fill, then the write times out.
        await aborted.wait()
        await stream.aclose()
    assert "write timed out after 0.5 s" in outcome[0]
