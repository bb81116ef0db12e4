"""A hostile or careless client, as a black-box suite over raw connections
would play it, on both transports (the plain-TCP fast path and the Stream
path) and both parser backends.

What is here was found by such a review of the plain-TCP path: the edges
the other modules did not reach.
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing
from helpers import content_length, not_reading

from trioweb.errors import StreamClosedError
from trioweb.server.config import ServerConfig
from trioweb.server.http1 import LINGER_SECONDS, Exchange
from trioweb.testing import RawConnection, TestClient

pytestmark = pytest.mark.usefixtures("no_tracebacks")


def _get(path: str, *extra: str) -> bytes:
    lines = "".join(f"{line}\r\n" for line in extra)
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode()


async def _read_to_clean_end(raw: RawConnection) -> bytes:
    """Everything the server sends, which must end in a clean close: over
    TCP a reset (the server closing with the client's bytes unread, RFC 9112
    9.6) raises here instead of reading as the end."""
    received = bytearray()
    while data := await raw.stream.receive_some(65536):
        received += data
    return bytes(received)


class Gated:
    """Answers each request once ``gate`` is set (a large body: a response
    still in the server's send buffer when it closes)."""

    body = b"x" * 100_000

    def __init__(self) -> None:
        self.started = trio.Event()
        self.gate = trio.Event()
        self.targets: list[str] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.targets.append(exchange.target)
        self.started.set()
        await self.gate.wait()
        await exchange.send_response(200, [content_length(self.body)], self.body)


async def _closes_with_a_request_unread(app: Gated, raw: RawConnection) -> None:
    """The client pipelines ``/2`` while the server answers a request it
    will close the connection after; the response arrives whole and the
    connection ends cleanly (no reset), and ``/2`` is not served."""
    await app.started.wait()
    # While the handler runs, nothing reads: /2 waits in the kernel.
    await raw.send(_get("/2"))
    await trio.testing.wait_all_tasks_blocked()
    app.gate.set()
    with trio.fail_after(5):
        received = await _read_to_clean_end(raw)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(Gated.body)
    assert b"connection: close" in received.lower()
    assert app.targets == ["/1"]
    await raw.aclose()
    with trio.fail_after(5):
        await raw.server_done.wait()


async def test_a_request_pipelined_after_connection_close_does_not_reset_it() -> None:
    app = Gated()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(_get("/1", "Connection: close"))
        await _closes_with_a_request_unread(app, raw)


async def test_a_request_pipelined_after_the_last_allowed_does_not_reset_it() -> None:
    app = Gated()
    async with TestClient(
        app, config=ServerConfig(max_requests_per_connection=1)
    ) as client:
        raw = await client.raw()
        await raw.send(_get("/1"))
        await _closes_with_a_request_unread(app, raw)


class Refuses:
    """Answers 413 to a body over ``max_body_size`` without reading it,
    once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = trio.Event()

    async def handle_exchange(self, exchange: Exchange) -> None:
        await self.gate.wait()
        length = exchange.content_length or 0
        status = 413 if length > exchange.max_body_size else 200
        body = b"no" if status == 413 else await exchange.read_body()
        await exchange.send_response(status, [content_length(body)], body)


async def test_a_body_left_unread_behind_a_413_does_not_reset_the_answer() -> None:
    # More body than the Stream path reads ahead, sent whole before the
    # answer (as a client that does not ask for 100 Continue does); small
    # enough for the kernel's buffers to hold what the server leaves.
    body = b"b" * 120_000
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    app = Refuses()
    async with TestClient(app, config=ServerConfig(max_body_size=1000)) as client:
        raw = await client.raw()
        await raw.send(head.encode() + body)
        await trio.testing.wait_all_tasks_blocked()
        app.gate.set()
        with trio.fail_after(5):
            received = await _read_to_clean_end(raw)
        assert received.startswith(b"HTTP/1.1 413 ")
        assert received.endswith(b"\r\n\r\nno")
        await raw.aclose()
        with trio.fail_after(5):
            await raw.server_done.wait()


async def test_closing_in_stages_waits_no_longer_than_its_deadline(
    autojump_clock: trio.abc.Clock, transport: str
) -> None:
    # A client that reads its answer but neither closes nor stops sending:
    # over TCP the server reads and discards for LINGER_SECONDS, then
    # closes. (Memory streams hold no bytes a close could lose: the server
    # closes at once.)
    app = Gated()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(_get("/1", "Connection: close"))
        await app.started.wait()
        await raw.send(b"more ")
        await trio.testing.wait_all_tasks_blocked()
        app.gate.set()
        response = await raw.read_response()
        assert response.status == 200
        start = trio.current_time()
        with trio.move_on_after(60):
            while not raw.server_done.is_set():
                await trio.sleep(0.25)
                try:
                    await raw.send(b"more ")
                except trio.BrokenResourceError:
                    pass
        lingered = LINGER_SECONDS if transport == "tcp" else 0
        assert trio.current_time() - start == pytest.approx(lingered, abs=0.3)
        await raw.aclose()


class Large:
    """Sends a body far larger than any socket buffer: in one final send
    (``/final``) or piece by piece in a scope the disconnect cancels."""

    def __init__(self) -> None:
        self.outcome: list[str] = []
        self.sending = trio.Event()

    async def handle_exchange(self, exchange: Exchange) -> None:
        piece = b"x" * 1_000_000
        try:
            if exchange.target == "/final":
                body = piece * 20
                self.sending.set()
                await exchange.send_response(200, [content_length(body)], body)
            else:
                with trio.CancelScope() as scope:
                    exchange.on_disconnect(scope.cancel)
                    self.sending.set()
                    await exchange.send_response(200, [], b"", end=False)
                    while True:
                        await exchange.send_body(piece)
                self.outcome.append("cancelled")
        except StreamClosedError:
            self.outcome.append("StreamClosedError")
        assert exchange.disconnected


@pytest.mark.parametrize("path", ["/final", "/stream"])
async def test_a_reset_in_the_middle_of_a_large_response(
    path: str, transport: str
) -> None:
    # The server waits for the client to read (the kernel's buffers are
    # full) when the client resets the connection: the wait ends at once,
    # the application learns it as for any disconnect, nothing is logged as
    # an error, and the connection ends.
    app = Large()
    async with TestClient(app, **not_reading(transport)) as client:
        raw = await client.raw()
        await raw.send(_get(path))
        await app.sending.wait()
        assert (await raw.stream.receive_some(65536)).startswith(b"HTTP/1.1 200 ")
        await trio.testing.wait_all_tasks_blocked()
        assert app.outcome == []
        if isinstance(raw.stream, trio.SocketStream):
            # SO_LINGER 0: close() sends RST instead of FIN.
            raw.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        await raw.aclose()
        with trio.fail_after(5):
            await raw.server_done.wait()
    if path == "/final":
        # The last bytes of the response: a failed send, not a cancellation.
        assert app.outcome == ["StreamClosedError"]
    else:
        # Whichever comes first: the failed send, or the watcher's signal.
        assert app.outcome in (["cancelled"], ["StreamClosedError"])
