"""A client that leaves: the disconnect signal, sends after it, the access
log, and the write timeout for a client that stops reading."""

from __future__ import annotations

import logging
import select

import pytest
import trio
import trio.testing
from helpers import STALL_SIZE, content_length, not_reading

from trioweb.errors import StreamClosedError
from trioweb.server.config import ServerConfig
from trioweb.server.http1 import (
    READ_AHEAD_LIMIT,
    Exchange,
    ExchangeApp,
    HTTP1Connection,
)
from trioweb.testing import RawConnection, TestClient

REQUEST = b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"

pytestmark = pytest.mark.usefixtures("no_tracebacks")


class Hanger:
    """Waits forever in a scope the disconnect signal cancels."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.cancelled_at: float | None = None
        self.exchanges: list[Exchange] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        with trio.CancelScope() as scope:
            exchange.on_disconnect(scope.cancel)
            self.started.set()
            await trio.sleep_forever()
        if scope.cancelled_caught:
            self.cancelled_at = trio.current_time()


async def _started(app: Hanger, raw: RawConnection) -> None:
    await raw.send(REQUEST)
    await app.started.wait()
    await trio.testing.wait_all_tasks_blocked()
    assert app.cancelled_at is None


async def test_client_close_cancels_the_handler_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Hanger()
    async with TestClient(app) as client:
        raw = await client.raw()
        await _started(app, raw)
        await trio.sleep(3)
        await raw.aclose()
        await raw.server_done.wait()
        assert app.cancelled_at == 3.0
        assert app.exchanges[0].disconnected


async def test_client_eof_cancels_the_handler_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Hanger()
    async with TestClient(app) as client:
        raw = await client.raw()
        await _started(app, raw)
        await trio.sleep(2)
        await raw.send_eof()
        await raw.server_done.wait()
        assert app.cancelled_at == 2.0
        # Nothing was sent for the request the client gave up on.
        assert await raw.receive_until_closed() == b""


async def test_abort_cancels_the_handler(autojump_clock: trio.abc.Clock) -> None:
    app = Hanger()
    async with TestClient(app) as client:
        received = await client.abort("GET", "/wait", after=1.5)
        assert received == b""
        assert app.cancelled_at == 1.5


async def test_eof_right_after_a_complete_request_is_a_disconnect(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Hanger()
    async with TestClient(app) as client:
        raw = await client.raw()
        # The EOF is there before the handler even starts.
        await raw.send(REQUEST)
        await raw.send_eof()
        with trio.fail_after(1):
            await raw.server_done.wait()
        assert app.cancelled_at == 0.0
        assert app.exchanges[0].disconnected


class Scripted(trio.abc.HalfCloseableStream):
    """A server stream whose peer has already sent ``chunks`` and then EOF.

    The EOF comes back without a checkpoint, so the reader sees it before
    the main task has even parsed the request: the order a real socket
    gives when the request and the FIN arrive together.
    """

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.sent = b""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.chunks:
            await trio.lowlevel.checkpoint()
            return self.chunks.pop(0)
        return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


@pytest.mark.memory_only("a scripted stream; its socket form: the test above")
async def test_eof_seen_before_the_exchange_starts_is_a_disconnect(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Hanger()
    server_stream = Scripted(REQUEST)

    def pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        return trio.testing.memory_stream_pair()[0], server_stream

    async with TestClient(app, stream_pair=pair) as client:
        raw = await client.raw()
        with trio.fail_after(1):
            await raw.server_done.wait()
        assert app.cancelled_at == 0.0
        assert app.exchanges[0].disconnected
        assert server_stream.sent == b""


async def test_abort_right_after_sending(autojump_clock: trio.abc.Clock) -> None:
    app = Hanger()
    async with TestClient(app) as client:
        start = trio.current_time()
        await client.abort("GET", "/wait")
        assert trio.current_time() == start
        assert app.exchanges[0].disconnected


async def test_callback_registered_after_the_disconnect_runs_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[str] = []

    class Late:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await trio.sleep(5)
            exchange.on_disconnect(lambda: calls.append("late"))

    async with TestClient(Late()) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        await trio.sleep(1)
        await raw.aclose()
        await raw.server_done.wait()
        assert calls == ["late"]


async def test_pipelined_bytes_during_a_handler_are_not_a_close() -> None:
    gate = trio.Event()
    fired: list[str] = []
    seen: list[str] = []

    class Gated:
        async def handle_exchange(self, exchange: Exchange) -> None:
            seen.append(exchange.target)
            exchange.on_disconnect(lambda: fired.append(exchange.target))
            if exchange.target == "/1":
                await gate.wait()
            assert not exchange.disconnected
            body = exchange.target.encode()
            await exchange.send_response(200, [content_length(body)], body)

    async with TestClient(Gated()) as client:
        raw = await client.raw()
        await raw.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        # More requests arrive, in pieces, while /1 is still running.
        await raw.send(b"GET /2 HTTP/1.1\r\nHo")
        await raw.send(b"st: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        assert seen == ["/1"]
        gate.set()
        bodies = [(await raw.read_response()).body for _ in range(3)]
        assert bodies == [b"/1", b"/2", b"/3"]
        assert fired == []
        assert not raw.server_done.is_set()


# -- sending to a client that left ---------------------------------------------------


class SendsAfterLeaving:
    """Waits for the disconnect (without being cancelled), then sends."""

    def __init__(self, *, head_first: bool) -> None:
        self.head_first = head_first
        self.errors: list[str] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        gone = trio.Event()
        exchange.on_disconnect(gone.set)
        if self.head_first:
            await exchange.send_response(200, [], b"start", end=False)
        await gone.wait()
        try:
            if self.head_first:
                await exchange.send_body(b"more")
            else:
                await exchange.send_response(200, [content_length(b"late")], b"late")
        except StreamClosedError:
            self.errors.append("send")
            raise


@pytest.mark.parametrize("head_first", [False, True])
async def test_sending_after_the_peer_left_raises_stream_closed(
    head_first: bool,
) -> None:
    app = SendsAfterLeaving(head_first=head_first)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        await trio.testing.wait_all_tasks_blocked()
        await raw.aclose()
        await raw.server_done.wait()
        assert app.errors == ["send"]


@pytest.mark.memory_only("a socket may take a send after the peer left")
async def test_send_to_a_broken_stream_raises_stream_closed() -> None:
    """The reader has not seen the close yet; the write itself fails."""
    errors: list[BaseException] = []

    class Writer:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await client_side.aclose()  # the peer vanishes under us
            try:
                await exchange.send_response(200, [content_length(b"x")], b"x")
            except StreamClosedError as exc:
                errors.append(exc)

    client_side: trio.abc.Stream

    def pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        nonlocal client_side
        client_side, server_side = trio.testing.memory_stream_pair()
        return client_side, server_side

    async with TestClient(Writer(), stream_pair=pair) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        await raw.server_done.wait()
        assert len(errors) == 1


async def test_peer_closing_mid_body_is_stream_closed() -> None:
    outcome: list[str] = []

    class BodyReader:
        async def handle_exchange(self, exchange: Exchange) -> None:
            try:
                await exchange.read_body()
            except StreamClosedError:
                outcome.append("closed")
                raise

    async with TestClient(BodyReader()) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        await trio.testing.wait_all_tasks_blocked()
        await raw.aclose()
        await raw.server_done.wait()
        assert outcome == ["closed"]


async def test_access_log_says_499_for_a_client_that_left(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.abc.Clock
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    async with TestClient(Hanger()) as client:
        await client.abort("GET", "/wait", after=1)
    [record] = [r for r in caplog.records if r.name == "trioweb.access"]
    assert '"GET /wait HTTP/1.1" 499 ' in record.getMessage()


async def test_access_log_says_200_for_a_normal_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Ok:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [content_length(b"ok")], b"ok")

    caplog.set_level(logging.INFO, logger="trioweb.access")
    async with TestClient(Ok()) as client:
        await client.get("/fine")
    [record] = [r for r in caplog.records if r.name == "trioweb.access"]
    assert '"GET /fine HTTP/1.1" 200 2 ' in record.getMessage()


# -- the write timeout ----------------------------------------------------------


async def test_write_timeout_aborts_for_a_client_that_does_not_read(
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    transport: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb")
    outcome: list[tuple[float, str]] = []

    class Big:
        async def handle_exchange(self, exchange: Exchange) -> None:
            try:
                await exchange.send_response(
                    200, [content_length(b"x" * STALL_SIZE)], b"x" * STALL_SIZE
                )
            except StreamClosedError:
                outcome.append((trio.current_time(), "closed"))
                raise

    config = ServerConfig(write_timeout=4)
    async with TestClient(Big(), config=config, **not_reading(transport)) as client:
        raw = await client.raw()
        await raw.send(REQUEST)  # and then never read
        await raw.server_done.wait()
        assert outcome == [(4.0, "closed")]
    [record] = [r for r in caplog.records if r.name == "trioweb.access"]
    assert " 499 " in record.getMessage()


@pytest.mark.memory_only("paces each small send by a read; kernel buffers hold them")
async def test_write_timeout_is_per_send_not_per_response(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A slow reader that keeps up within the timeout gets the whole body."""

    class Pieces:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [], b"0", end=False)
            for i in range(1, 5):
                await exchange.send_body(str(i).encode())
            await exchange.send_body(b"", end=True)

    config = ServerConfig(write_timeout=4)
    async with TestClient(
        Pieces(), config=config, stream_pair=trio.testing.lockstep_stream_pair
    ) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        received = b""
        while not received.endswith(b"0\r\n\r\n"):
            await trio.sleep(3)  # reads only every 3 s: each send waits 3 s
            received += await raw.receive()
        assert trio.current_time() > 4
        assert b"\r\n\r\n1\r\n0\r\n" in received
        assert received.endswith(b"1\r\n4\r\n0\r\n\r\n")


async def test_a_send_cancelled_by_the_app_breaks_the_connection(
    autojump_clock: trio.abc.Clock, transport: str | None
) -> None:
    """How much of a cancelled send_all went out is unknown: nothing more
    may be framed on that stream, or the client would get garbage."""
    outcome: list[str] = []

    class Impatient:
        async def handle_exchange(self, exchange: Exchange) -> None:
            with trio.move_on_after(1):
                # A head and part of the body too large to go out at once.
                await exchange.send_response(
                    200, [content_length(part + b"56789")], part, end=False
                )
            try:
                await exchange.send_body(b"56789", end=True)
            except StreamClosedError:
                outcome.append("closed")
                raise
            outcome.append("sent")

    part = b"0" * STALL_SIZE
    async with TestClient(Impatient(), **not_reading(transport)) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        await trio.sleep(2)  # the client reads only after the app gave up
        received = await raw.receive_until_closed()
        await raw.server_done.wait()
        assert outcome == ["closed"]
        assert b"56789" not in received


# -- shutdown ------------------------------------------------------------------------


async def test_shutdown_closes_an_idle_connection_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Ok:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [content_length(b"ok")], b"ok")

    async with TestClient(Ok()) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        await raw.read_response()
        # The server may not have run since its send (over TCP, the client
        # can wake first): let it get back to waiting for a request.
        await trio.testing.wait_all_tasks_blocked()
        [conn] = client.server_connections
        assert conn.idle
        conn.shutdown()
        assert await raw.receive_until_closed() == b""
        assert trio.current_time() == 0


async def test_shutdown_lets_the_request_in_progress_finish_with_close(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Slow:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await trio.sleep(3)
            await exchange.send_response(200, [content_length(b"done")], b"done")

    async with TestClient(Slow()) as client:
        raw = await client.raw()
        await raw.send(REQUEST + REQUEST)  # the second is never served
        await trio.sleep(1)
        [conn] = client.server_connections
        assert not conn.idle
        conn.shutdown()
        r = await raw.read_response()
        assert (r.status, r.body) == (200, b"done")
        assert r.headers["Connection"] == "close"
        assert await raw.receive_until_closed() == b""
        assert trio.current_time() == 3


# -- a full read-ahead buffer ---------------------------------------------------

needs_epoll = pytest.mark.skipif(
    not hasattr(select, "EPOLLRDHUP"), reason="the hang-up watch needs Linux epoll"
)
PADDED = b"GET /wait HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"
# Past the read-ahead limit, and past what the reader may take in one read.
FLOOD = PADDED * ((2 * READ_AHEAD_LIMIT + 16384) // len(PADDED) + 1)


class _Wrapped(trio.abc.Stream):
    """A TCP stream the engine does not recognize as a plain socket (as a
    TLS stream): it takes the Stream path, with its reader task. Like
    trio.SSLStream, it names the stream it wraps ``transport_stream``."""

    def __init__(self, transport_stream: trio.SocketStream) -> None:
        self.transport_stream = transport_stream

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.transport_stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.transport_stream.aclose()


async def _tcp_connection(
    app: ExchangeApp, path: str
) -> tuple[trio.SocketStream, HTTP1Connection]:
    """A client socket, and the engine's connection for its server side,
    on the engine's ``path``: "plain" (the socket itself) or "stream"."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server_stream = await listener.accept()
    await listener.aclose()
    served = server_stream if path == "plain" else _Wrapped(server_stream)
    conn = HTTP1Connection(served, app, ServerConfig())
    assert conn.plain == (path == "plain")
    return client, conn


async def _wait_flood_unread(conn: HTTP1Connection) -> None:
    # The kernel, not a task, decides when the bytes arrive: nothing to wait
    # on but the engine's state.
    if not conn.plain:
        # The Stream path's reader stops once its read-ahead buffer is full.
        while conn._space is None:  # noqa: ASYNC110
            await trio.sleep(0.001)
        await trio.sleep(0.02)
        assert len(conn._rbuf) >= READ_AHEAD_LIMIT
        assert conn._space is not None
    else:
        # The plain path reads nothing while the handler runs: the flood
        # waits in the kernel.
        await trio.sleep(0.02)
        assert not conn._rbuf
    assert not conn.peer_closed


PATHS = pytest.mark.parametrize("path", ["plain", "stream"])


def _flood(path: str) -> bytes:
    # The plain path leaves it all in the kernel, whose buffers must then
    # hold it: a smaller flood, still several requests behind the first.
    return FLOOD if path == "stream" else PADDED * 16


@needs_epoll
@PATHS
async def test_client_leaving_after_pipelining_past_the_read_ahead_limit(
    path: str,
) -> None:
    """Over a real socket: the FIN waits in the kernel behind pipelined bytes
    the engine does not read yet; it is noticed anyway."""
    app = Hanger()
    client, conn = await _tcp_connection(app, path)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            await client.send_all(PADDED)
            await app.started.wait()
            await client.send_all(_flood(path))
            await _wait_flood_unread(conn)
            await client.aclose()
    assert app.cancelled_at is not None
    assert app.exchanges[0].disconnected
    assert len(app.exchanges) == 1, "no request after the hang-up is served"


@needs_epoll
@PATHS
async def test_a_full_buffer_is_not_mistaken_for_a_hang_up(path: str) -> None:
    gate = trio.Event()
    served = 0

    class Gated:
        async def handle_exchange(self, exchange: Exchange) -> None:
            nonlocal served
            with trio.CancelScope() as scope:
                exchange.on_disconnect(scope.cancel)
                await gate.wait()
            assert not scope.cancelled_caught
            served += 1
            await exchange.send_response(200, [content_length(b"")])

    client, conn = await _tcp_connection(Gated(), path)
    count = 1 + _flood(path).count(b"GET")
    raw = RawConnection(client, trio.Event())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            await client.send_all(PADDED + _flood(path))
            await _wait_flood_unread(conn)
            gate.set()
            for _ in range(count):
                assert (await raw.read_response()).status == 200
            await client.aclose()
    assert served == count
