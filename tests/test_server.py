"""trioweb.serve() over real sockets: addresses, graceful shutdown, limits.

The server runs in-process on port 0 (or a Unix socket); clients are raw
trio sockets speaking HTTP/1.1 through h11. Waits on the network are real,
so the timeouts here are kept tiny (graceful_timeout=0.2 s) and every test
runs under a hard deadline.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing

from trioweb import Application, Exchange, RequestHandler, ServerConfig, serve
from trioweb.server import ListenError

#: Every test must be over well within this (a broken server must not hang
#: the suite).
DEADLINE = 5

BIG = 16 * 1024 * 1024


class App:
    """An exchange app the tests steer. Routes by path:

    * ``/wait`` answers "done" once :attr:`release` is set;
    * ``/forever`` never answers;
    * ``/big`` sends a 16 MiB body (more than both socket buffers hold);
    * ``/crash`` raises;
    * anything else answers "ok".

    It records what it saw (:attr:`seen`), what it finished and what was
    cancelled, and sets ``started[path]`` when a handler starts.
    """

    def __init__(self) -> None:
        self.started: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.release = trio.Event()
        self.seen: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.events: list[Any] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        target = exchange.target
        path = target.partition("?")[0]
        self.seen.append(target)
        self.started[path].set()
        try:
            if path == "/wait":
                await self.release.wait()
                body = b"done"
            elif path == "/forever":
                await trio.sleep_forever()
            elif path == "/big":
                body = b"x" * BIG
            elif path == "/crash":
                raise RuntimeError("the /crash handler crashed")
            else:
                body = b"ok"
            await exchange.send_response(
                200, [(b"content-length", str(len(body)).encode())], body
            )
        except trio.Cancelled:
            self.cancelled.append(path)
            raise
        self.finished.append(path)
        self.events.append(f"handled {path}")


@attrs.define
class Running:
    addresses: list[Any]
    trigger: trio.Event
    stopped: trio.Event

    @property
    def port(self) -> int:
        return int(self.addresses[0][1])

    async def connect(self) -> trio.SocketStream:
        return await trio.open_tcp_stream("127.0.0.1", self.port)

    async def shutdown(self) -> float:
        """Trigger a graceful shutdown; return how long serve() took to end."""
        start = trio.current_time()
        self.trigger.set()
        await self.stopped.wait()
        return trio.current_time() - start


@asynccontextmanager
async def running(app: Any, **options: Any) -> AsyncIterator[Running]:
    """serve() the app in the background; shut it down gracefully at the end."""
    options = {"port": 0, "graceful_timeout": 0.2, **options}
    config = ServerConfig(**options)
    trigger = trio.Event()
    stopped = trio.Event()

    async def server(task_status: trio.TaskStatus[list[Any]]) -> None:
        try:
            await serve(app, config, shutdown_trigger=trigger, task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(server)
            try:
                yield Running(addresses, trigger, stopped)
            finally:
                trigger.set()


# -- a minimal HTTP/1.1 client over a raw stream --------------------------------


@attrs.define
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def send_request(
    stream: trio.abc.Stream, target: str, method: str = "GET", body: bytes = b""
) -> h11.Connection:
    conn = h11.Connection(h11.CLIENT)
    headers = [("host", "test")]
    if method != "GET":
        headers.append(("content-length", str(len(body))))
    data = conn.send(h11.Request(method=method, target=target, headers=headers))
    if body:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
    return conn


async def read_reply(stream: trio.abc.Stream, conn: h11.Connection) -> Reply:
    status = 0
    headers: dict[str, str] = {}
    chunks = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return Reply(status, headers, b"".join(chunks))
        else:
            raise AssertionError(f"connection closed before a response: {event}")


async def request(stream: trio.abc.Stream, target: str) -> Reply:
    return await read_reply(stream, await send_request(stream, target))


async def closed_by_server(stream: trio.abc.Stream) -> bool:
    """Whether the server ended the connection (EOF or reset), sending nothing."""
    try:
        return await stream.receive_some(65536) == b""
    except trio.BrokenResourceError:
        return True


# -- the tests ------------------------------------------------------------------


async def test_task_status_gives_the_bound_address() -> None:
    async with running(App()) as server:
        assert len(server.addresses) == 1
        host, port = server.addresses[0]
        assert host == "127.0.0.1"
        assert port > 0
        stream = await trio.open_tcp_stream(host, port)
        reply = await request(stream, "/")
        assert (reply.status, reply.body) == (200, b"ok")
        await stream.aclose()


async def test_graceful_shutdown_finishes_in_flight_and_refuses_new() -> None:
    app = App()
    async with running(app, graceful_timeout=5, keep_alive_timeout=30) as server:
        idle = await server.connect()
        reply = await request(idle, "/")
        assert reply.status == 200
        assert reply.headers.get("connection") != "close"

        busy = await server.connect()
        conn = await send_request(busy, "/wait")
        await app.started["/wait"].wait()

        server.trigger.set()
        await trio.testing.wait_all_tasks_blocked()

        # The idle keep-alive connection is closed at once (long before its
        # 30 s keep-alive timeout), and nobody new gets in.
        with trio.fail_after(1):
            assert await closed_by_server(idle)
        with pytest.raises(OSError):
            await server.connect()
        assert not server.stopped.is_set()

        # The request in flight completes, and says the connection ends.
        app.release.set()
        reply = await read_reply(busy, conn)
        assert (reply.status, reply.body) == (200, b"done")
        assert reply.headers["connection"] == "close"
        assert await closed_by_server(busy)
        # serve() returns as soon as the last request is done, not after
        # the 5 s graceful timeout.
        with trio.fail_after(1):
            await server.stopped.wait()
    assert app.finished == ["/", "/wait"]
    assert app.cancelled == []


async def test_a_response_sent_once_shutdown_began_says_connection_close() -> None:
    # Regression: connections were told about the shutdown only after the
    # listeners had closed, a few scheduling steps later; a request that
    # completed in between was answered as keep-alive.
    app = App()
    async with running(app, graceful_timeout=5) as server:
        busy = await server.connect()
        conn = await send_request(busy, "/wait")
        await app.started["/wait"].wait()

        async def release_when_shutdown_begins() -> None:
            await server.trigger.wait()
            app.release.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_when_shutdown_begins)
            await trio.testing.wait_all_tasks_blocked()
            server.trigger.set()
        reply = await read_reply(busy, conn)
        assert reply.status == 200
        assert reply.headers.get("connection") == "close"


async def test_graceful_timeout_cancels_a_handler_that_runs_too_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    async with running(app, graceful_timeout=0.2) as server:
        stream = await server.connect()
        await send_request(stream, "/forever")
        await app.started["/forever"].wait()
        elapsed = await server.shutdown()
        assert 0.2 <= elapsed < 1.5
        assert app.cancelled == ["/forever"]
        assert await closed_by_server(stream)
    assert "graceful timeout (0.2 s): cancelling 1 connection(s)" in caplog.text


async def test_the_end_of_the_graceful_period_cancels_hooks_after_a_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # After its client left, a handler's on_connection_close() runs shielded
    # from the connection's cancelled scope, under its own deadline (60 s
    # here). The end of the graceful period must cancel it all the same, or
    # the shutdown would wait for that deadline.
    started = trio.Event()
    hook_started = trio.Event()
    hook_cancelled: list[bool] = []

    class H(RequestHandler):
        async def get(self) -> None:
            started.set()
            await trio.sleep_forever()

        async def on_connection_close(self) -> None:
            hook_started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                hook_cancelled.append(True)
                raise

    app = Application([("/", H)], cleanup_timeout=60)
    async with running(app, graceful_timeout=0.2) as server:
        stream = await server.connect()
        await send_request(stream, "/")
        await started.wait()
        await stream.aclose()
        await hook_started.wait()
        elapsed = await server.shutdown()
        assert 0.2 <= elapsed < 1.5
    assert hook_cancelled == [True]
    assert "cancelling 1 connection(s)" in caplog.text


async def test_on_stop_registered_after_the_stop_is_called_at_once() -> None:
    # A shield entered after the server's stop (in a finally that the stop's
    # cancellation ran) must be cancelled at once, not left to its deadline.
    started = trio.Event()
    late_calls: list[str] = []

    class StopAware:
        async def handle_exchange(self, exchange: Exchange) -> None:
            exchange.on_stop(lambda: late_calls.append("early"))
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                exchange.on_stop(lambda: late_calls.append("late"))

    async with running(StopAware(), graceful_timeout=0.2) as server:
        stream = await server.connect()
        await send_request(stream, "/")
        await started.wait()
        assert late_calls == []
        await server.shutdown()
    assert late_calls == ["early", "late"]


async def test_a_client_that_does_not_read_cannot_hold_shutdown() -> None:
    app = App()
    async with running(app, graceful_timeout=0.2) as server:
        sock = trio.socket.socket()
        # A tiny receive window, never read: the 16 MiB response cannot be
        # sent, and the handler sits in send_all.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", server.port))
        stream = trio.SocketStream(sock)
        await send_request(stream, "/big")
        await app.started["/big"].wait()
        await trio.testing.wait_all_tasks_blocked()
        elapsed = await server.shutdown()
        assert 0.2 <= elapsed < 1.5
        assert app.cancelled == ["/big"]
        assert app.finished == []
        await stream.aclose()


async def test_max_connections_holds_back_the_next_client() -> None:
    app = App()
    async with running(app, max_connections=1, keep_alive_timeout=30) as server:
        first = await server.connect()
        assert (await request(first, "/?first")).status == 200

        second = await server.connect()  # lands in the listen backlog
        conn = await send_request(second, "/?second")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.1):
            await trio.sleep_forever()
        assert app.seen == ["/?first"]

        await first.aclose()
        with trio.fail_after(2):
            reply = await read_reply(second, conn)
        assert reply.status == 200
        assert app.seen == ["/?first", "/?second"]
        await second.aclose()


async def test_a_crashing_request_does_not_disturb_another_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    async with running(app) as server:
        busy = await server.connect()
        conn = await send_request(busy, "/wait")
        await app.started["/wait"].wait()

        crashing = await server.connect()
        reply = await request(crashing, "/crash")
        assert reply.status == 500
        assert await closed_by_server(crashing)
        assert "the /crash handler crashed" in caplog.text

        app.release.set()
        reply = await read_reply(busy, conn)
        assert (reply.status, reply.body) == (200, b"done")
        # And the listener still serves newcomers.
        fresh = await server.connect()
        assert (await request(fresh, "/")).status == 200
        for stream in (busy, fresh):
            await stream.aclose()


class LifespanApp(App):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # Before listening, the socket file does not exist yet.
        self.events.append(("enter", await trio.Path(self.path).exists()))
        try:
            yield
        finally:
            self.events.append(("exit", await trio.Path(self.path).exists()))


@pytest.fixture
def uds_path() -> Iterator[str]:
    # Not tmp_path: a Unix socket path must stay under ~100 bytes.
    directory = tempfile.mkdtemp(prefix="trioweb-test-", dir="/tmp")
    try:
        yield os.path.join(directory, "server.sock")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_lifespan_wraps_listening_and_connections_over_uds(
    uds_path: str,
) -> None:
    app = LifespanApp(uds_path)
    async with running(app, uds=uds_path, graceful_timeout=5) as server:
        assert server.addresses == [uds_path]
        assert app.events == [("enter", False)]
        stream = await trio.open_unix_socket(uds_path)
        assert (await request(stream, "/")).status == 200
        conn = await send_request(stream, "/wait")
        await app.started["/wait"].wait()

        server.trigger.set()
        await trio.testing.wait_all_tasks_blocked()
        assert app.events == [("enter", False), "handled /"]
        app.release.set()
        reply = await read_reply(stream, conn)
        assert reply.status == 200
        await server.stopped.wait()
    # Entered before listening, left after the last request, and the socket
    # file is gone once the server has stopped.
    assert app.events == [
        ("enter", False),
        "handled /",
        "handled /wait",
        ("exit", False),
    ]
    assert not await trio.Path(uds_path).exists()


async def test_uds_replaces_a_stale_socket_and_refuses_a_live_one(
    uds_path: str,
) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(uds_path)  # what a crashed server leaves behind
    stale.close()
    async with running(App(), uds=uds_path) as server:
        stream = await trio.open_unix_socket(uds_path)
        assert (await request(stream, "/")).status == 200
        await stream.aclose()

        with trio.fail_after(1), pytest.raises(ListenError, match="in use"):
            await serve(App(), ServerConfig(uds=uds_path))
        await server.shutdown()
    assert not await trio.Path(uds_path).exists()


async def test_uds_never_removes_a_file_that_is_not_a_socket(uds_path: str) -> None:
    await trio.Path(uds_path).write_text("precious")
    with trio.fail_after(DEADLINE), pytest.raises(ListenError, match="not a socket"):
        await serve(App(), ServerConfig(uds=uds_path))
    assert await trio.Path(uds_path).read_text() == "precious"


async def test_port_in_use_raises_listen_error_not_a_group() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with trio.fail_after(DEADLINE), pytest.raises(ListenError) as info:
            await serve(App(), ServerConfig(port=port))
    finally:
        holder.close()
    assert isinstance(info.value, OSError)
    assert f"cannot listen on 127.0.0.1:{port}" in str(info.value.strerror)


async def test_a_failing_lifespan_is_raised_as_itself() -> None:
    class Broken(App):
        @asynccontextmanager
        async def running(self) -> AsyncIterator[None]:
            raise RuntimeError("the database is down")
            yield

    with trio.fail_after(DEADLINE), pytest.raises(RuntimeError, match="database"):
        await serve(Broken(), ServerConfig(port=0))


async def test_cancelling_serve_stops_everything_at_once() -> None:
    app = App()
    config = ServerConfig(port=0, graceful_timeout=10)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(functools.partial(serve, app, config))
            stream = await trio.open_tcp_stream(*addresses[0])
            await send_request(stream, "/forever")
            await app.started["/forever"].wait()
            nursery.cancel_scope.cancel()
    assert app.cancelled == ["/forever"]


async def test_a_unix_socket_client_has_no_address_anywhere(
    uds_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: request.remote_ip and the error log said 127.0.0.1 while
    # the access log said "-".
    class Ip(RequestHandler):
        async def get(self) -> None:
            self.write(repr(self.request.remote_ip))

    class Boom(RequestHandler):
        async def get(self) -> None:
            raise RuntimeError("boom")

    app = Application([("/ip", Ip), ("/boom", Boom)])
    caplog.set_level(logging.INFO, logger="trioweb")
    async with running(app, uds=uds_path):
        stream = await trio.open_unix_socket(uds_path)
        reply = await request(stream, "/ip")
        assert (reply.status, reply.body) == (200, b"''")
        assert (await request(stream, "/boom")).status == 500
    access = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert [line.split(" ", 1)[0] for line in access] == ["-", "-"], access
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(line.startswith("Uncaught exception GET /boom (-)") for line in errors)
    assert "127.0.0.1" not in caplog.text
