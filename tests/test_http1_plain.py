"""The plain-TCP fast path: one task per connection talking to the socket
itself, with the run's hang-up watcher seeing a client leave.

These tests run the engine over real loopback sockets, since that is the
only place the fast path is taken. What every connection must do (the
protocol, the limits, the timeouts) is tested over both paths elsewhere;
here is what only this path can get wrong: whether it is taken, the sends
that the kernel does not take at once, the hang-up seen while nothing
reads, and fairness (a connection that never has to wait must still let the
others run).
"""

from __future__ import annotations

import gc
import select
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from helpers import content_length

from trioweb.errors import StreamClosedError
from trioweb.server.config import ServerConfig
from trioweb.server.http1 import Exchange, ExchangeApp, HTTP1Connection
from trioweb.testing import RawConnection

pytestmark = pytest.mark.usefixtures("no_tracebacks")

needs_epoll = pytest.mark.skipif(
    not hasattr(select, "EPOLLRDHUP"), reason="the hang-up watch needs Linux epoll"
)


class _Listener:
    """Real loopback connections, each served by an HTTP1Connection in
    ``nursery``."""

    def __init__(
        self,
        listener: trio.SocketListener,
        nursery: trio.Nursery,
        app: ExchangeApp,
        config: ServerConfig,
    ) -> None:
        self.listener = listener
        self.nursery = nursery
        self.app = app
        self.config = config
        self.connections: list[HTTP1Connection] = []

    async def connect(self) -> tuple[trio.SocketStream, trio.Event]:
        port = self.listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server_stream = await self.listener.accept()
        conn = HTTP1Connection(server_stream, self.app, self.config)
        self.connections.append(conn)
        done = trio.Event()

        async def run() -> None:
            try:
                await conn.run()
            finally:
                done.set()

        self.nursery.start_soon(run)
        return client, done


@asynccontextmanager
async def _serving(
    app: ExchangeApp, config: ServerConfig | None = None
) -> AsyncIterator[_Listener]:
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener, trio.open_nursery() as nursery:
        yield _Listener(listener, nursery, app, config or ServerConfig())
        nursery.cancel_scope.cancel()


class Hello:
    def __init__(self) -> None:
        self.order: list[str] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.order.append(exchange.target)
        body = b"hello"
        await exchange.send_response(200, [content_length(body)], body)


class Hanger:
    """Waits forever in a scope the disconnect signal cancels."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.cancelled = trio.Event()

    async def handle_exchange(self, exchange: Exchange) -> None:
        with trio.CancelScope() as scope:
            exchange.on_disconnect(scope.cancel)
            self.started.set()
            await trio.sleep_forever()
        assert exchange.disconnected
        self.cancelled.set()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def test_a_socket_stream_takes_the_plain_path() -> None:
    app = Hello()
    async with _serving(app) as server:
        client, _ = await server.connect()
        raw = RawConnection(client, trio.Event())
        await raw.send(_get("/") * 3)
        for _ in range(3):
            r = await raw.read_response()
            assert (r.status, r.body) == (200, b"hello")
        [conn] = server.connections
        assert conn.plain
        await client.aclose()


async def test_a_memory_stream_takes_the_stream_path() -> None:
    _, server_stream = trio.testing.memory_stream_pair()
    conn = HTTP1Connection(server_stream, Hello(), ServerConfig())
    assert not conn.plain


@needs_epoll
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_leaving_mid_handler_cancels_it(how: str) -> None:
    app = Hanger()
    async with _serving(app) as server:
        client, done = await server.connect()
        await client.send_all(_get("/wait"))
        await app.started.wait()
        if how == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            client.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        with trio.fail_after(5):
            await client.aclose()
            await app.cancelled.wait()
            await done.wait()


async def test_sends_the_kernel_does_not_take_at_once_arrive_whole() -> None:
    # A body far larger than the socket buffers, in several sends, one of
    # them a large piece sent after its chunk line: the rest of each waits
    # for the client to read.
    parts = [bytes([65 + i]) * (700_000 + i) for i in range(4)]

    class Big:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [], b"", end=False)
            for part in parts:
                await exchange.send_body(part)
            await exchange.send_body(b"", end=True)

    async with _serving(Big()) as server:
        client, _ = await server.connect()
        raw = RawConnection(client, trio.Event())
        await raw.send(_get("/big"))
        await trio.sleep(0.05)  # let the server fill the buffers first
        r = await raw.read_response()
        assert r.status == 200
        assert r.body == b"".join(parts)
        await client.aclose()


async def test_a_client_that_stops_reading_meets_the_write_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    failure: list[BaseException] = []

    class Flood:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [], b"", end=False)
            try:
                while True:
                    await exchange.send_body(b"x" * 1_000_000)
            except StreamClosedError as exc:
                failure.append(exc)
                raise

    config = ServerConfig(write_timeout=7)
    async with _serving(Flood(), config) as server:
        client, done = await server.connect()
        await client.send_all(_get("/flood"))
        start = trio.current_time()
        await done.wait()
        # The kernel's buffers filled, then nothing moved for 7 s.
        assert trio.current_time() - start == pytest.approx(7, abs=0.01)
        [exc] = failure
        assert "write timed out after 7" in str(exc)
        await client.aclose()


async def test_a_pipelining_client_does_not_starve_another() -> None:
    app = Hello()
    count = 640
    async with _serving(app) as server:
        pipeliner, _ = await server.connect()
        other, _ = await server.connect()
        # Every request of the pipeliner is in the kernel before either
        # connection is served: without a fair share, its connection would
        # answer them all without ever having to wait.
        await pipeliner.send_all(b"".join(_get(f"/p{i}") for i in range(count)))
        await other.send_all(_get("/other"))
        raw = RawConnection(other, trio.Event())
        assert (await raw.read_response()).body == b"hello"
        # Served long before the pipeliner's last request.
        assert "/other" in app.order[: count // 2]
        await pipeliner.aclose()
        await other.aclose()


async def test_a_handler_streaming_to_a_fast_reader_lets_others_run() -> None:
    sends = 320
    progress = 0
    finished = trio.Event()

    class Stream:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [], b"", end=False)
            for _ in range(sends):
                # Small sends the kernel takes at once: this handler never
                # has to wait.
                await exchange.send_body(b"x" * 10)
            await exchange.send_body(b"", end=True)
            finished.set()

    async def count() -> None:
        nonlocal progress
        while not finished.is_set():
            progress += 1
            await trio.lowlevel.checkpoint()

    async with _serving(Stream()) as server:
        client, _ = await server.connect()
        await client.send_all(_get("/stream"))
        server.nursery.start_soon(count)
        await finished.wait()
        # The counter ran at least once per fair share of the handler.
        # At least about once per fair share of the handler.
        assert progress >= 10
        await client.aclose()


async def test_an_idle_connection_keeps_nothing_of_its_last_request() -> None:
    def exchanges() -> int:
        gc.collect()
        return sum(type(o) is Exchange for o in gc.get_objects())

    before = exchanges()
    async with _serving(Hello()) as server:
        client, _ = await server.connect()
        raw = RawConnection(client, trio.Event())
        await raw.send(_get("/"))
        assert (await raw.read_response()).status == 200
        await trio.testing.wait_all_tasks_blocked()
        [conn] = server.connections
        assert conn.idle
        assert exchanges() == before, "the idle connection holds its last exchange"
        await client.aclose()


async def test_without_a_watcher_a_socket_takes_the_stream_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A system without epoll (macOS, Windows): nothing would see a client
    # leave while nothing reads, so the connection keeps a reader task.
    import trioweb.server.http1

    monkeypatch.setattr(trioweb.server.http1, "hangup_watcher", lambda: None)
    app = Hanger()
    async with _serving(app) as server:
        client, done = await server.connect()
        await client.send_all(_get("/wait"))
        await app.started.wait()
        [conn] = server.connections
        assert not conn.plain
        with trio.fail_after(5):
            await client.aclose()
            await app.cancelled.wait()
            await done.wait()
