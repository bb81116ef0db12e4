"""The transport under :class:`trioweb.testing.TestClient`: httpx requests
served by an application's real connection code over trio memory streams,
or over real TCP connections on 127.0.0.1 (``via="tcp"``).

Public names are re-exported by :mod:`trioweb.testing`; see there.
"""

from __future__ import annotations

import contextlib
import math
import select
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import h11
import httpx
import trio
import trio.testing

from ._concurrency import open_side_nursery
from .httputil import HTTPHeaders
from .server.config import ServerConfig
from .server.exchange import ExchangeApp
from .server.http1 import HTTP1Connection
from .server.limits import limit_concurrency

__all__ = [
    "Headers",
    "MemoryTransport",
    "Response",
    "ServerDisconnected",
    "StreamPair",
    "Via",
]

StreamPair = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]

#: How the test client's connections are made: ``"memory"`` (trio memory
#: streams: the engine's Stream path) or ``"tcp"`` (real sockets on
#: 127.0.0.1: the path a served app takes for a plain TCP client).
Via = Literal["memory", "tcp"]

# httpx adds these to every request; the test client leaves them out, so the
# application sees only what a test sends (and an ``Accept-Encoding`` a test

# The extension under which TestClient passes a request target httpx would
# have rewritten (``/a/../b``, a query string plus ``params``), with the URL
# it belongs to: a redirect that httpx builds from the request copies its
# extensions but has another URL, so the override does not follow it.
TARGET_EXTENSION = "trioweb.target"

# Set by TestClient on a request whose whole response it reads: the body is
# then kept as received too, for ``Response.body``. Not for a streamed
# response, which may be far larger than memory should hold.
KEEP_BODY_EXTENSION = "trioweb.keep_body"


class ServerDisconnected(httpx.RemoteProtocolError, ConnectionError):
    """The server closed the connection before the response was complete.

    An :class:`httpx.RemoteProtocolError` (what httpx raises for the same
    thing on a real socket) and a :class:`ConnectionError`.
    """


class Headers(httpx.Headers):
    """:class:`httpx.Headers`, plus Tornado's ``get_all()``."""

    def get_all(self) -> Iterator[tuple[str, str]]:
        """Every ``(name, value)`` pair, names in the canonical case of
        :class:`trioweb.HTTPHeaders` (``Content-Type``, ``Etag``), as
        :meth:`trioweb.HTTPHeaders.get_all` gives them."""
        return HTTPHeaders.from_raw(self.raw).get_all()


class Response(httpx.Response):
    """An :class:`httpx.Response`, with trioweb's earlier names kept.

    ``status`` is ``status_code``, ``reason`` is ``reason_phrase``, ``body``
    is the body as it came over the wire (before any ``Content-Encoding`` is
    decoded: ``content`` is the decoded one; a streamed response does not
    keep it, and its ``body`` is ``content`` once read), and ``headers``
    also have Tornado's ``get_all()``. On a streamed response,
    :meth:`receive`, :meth:`iter_bytes` and :meth:`read` are async and read
    the body as the server sent it.
    """

    _wire: _ResponseBody | None = None
    _pieces: AsyncIterator[bytes] | None = None
    headers: Headers

    @property
    def status(self) -> int:
        """The status code (``status_code``)."""
        return self.status_code

    @property
    def reason(self) -> str:
        """The reason phrase (``reason_phrase``)."""
        return self.reason_phrase

    @property
    def body(self) -> bytes:
        """The body as received, before any content decoding (for a
        response read whole; else ``content``)."""
        if self._wire is not None and self._wire.received is not None:
            return bytes(self._wire.received)
        return self.content

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived."""
        return self._wire is None or self._wire.complete

    async def receive(self) -> bytes:
        """The next piece of body as the server sent it, ``b""`` at the end."""
        if self._pieces is None:
            if self.is_stream_consumed:
                return b""
            self._pieces = self.aiter_raw()
        return await anext(self._pieces, b"")

    async def iter_bytes(  # type: ignore[override]
        self, chunk_size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the body's pieces as they arrive (async: this client is).

        ``chunk_size`` is accepted for httpx's signature and ignored; use
        :meth:`aiter_bytes` for httpx's own chunking and decoding.
        """
        while chunk := await self.receive():
            yield chunk

    async def read(self) -> bytes:  # type: ignore[override]
        """The rest of the body (async: this client is)."""
        return b"".join([chunk async for chunk in self.iter_bytes()])


# -- the client side of one connection ---------------------------------------------


class _ClientConnection:
    """One client connection to the app: an h11 client on a memory stream,
    with the server side running in the transport's nursery."""

    def __init__(self, stream: trio.abc.Stream, server_done: trio.Event) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.server_done = server_done
        self.usable = True

    async def send_request(self, request: httpx.Request) -> None:
        target = request.extensions.get("target")
        override = request.extensions.get(TARGET_EXTENSION)
        if override is not None and override[0] == str(request.url):
            target = override[1]
        head = h11.Request(
            method=request.method,
            target=target or request.url.raw_path,
            headers=request.headers.raw,
        )
        try:
            await self.stream.send_all(self.h11.send(head) or b"")
            async for chunk in request.stream:  # type: ignore[union-attr]
                if chunk:
                    await self.stream.send_all(self.h11.send(h11.Data(chunk)) or b"")
            await self.stream.send_all(self.h11.send(h11.EndOfMessage()) or b"")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The server answered and closed before reading it all (a 413,
            # say); its response is still there to read.
            pass

    async def next_event(self) -> Any:
        while True:
            # h11 moves to ERROR when it raises: note where the server was.
            state = self.h11.their_state
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if state is h11.SEND_RESPONSE:
                    what = "without a response"
                elif state is h11.SEND_BODY:
                    what = "mid-body"
                else:
                    raise httpx.RemoteProtocolError(
                        f"the server sent invalid HTTP/1.1: {exc}"
                    ) from exc
                # h11 raises this when EOF comes before the response ends.
                raise ServerDisconnected(
                    f"the server closed the connection {what}"
                ) from None
            if event is not h11.NEED_DATA:
                return event
            try:
                data = bytes(await self.stream.receive_some(65536))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self.h11.receive_data(data)

    async def read_head(self) -> h11.Response:
        while True:
            event = await self.next_event()
            if type(event) is h11.InformationalResponse:
                continue
            if type(event) is h11.ConnectionClosed:
                raise ServerDisconnected(
                    "the server closed the connection without a response"
                )
            assert type(event) is h11.Response, event
            return event

    def after_response(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        else:
            self.usable = False

    async def aclose(self) -> None:
        self.usable = False
        await trio.aclose_forcefully(self.stream)


class _ResponseBody(httpx.AsyncByteStream):
    """A response body read off a client connection as it arrives.

    Closing it before the end closes the connection (the server sees the
    client leave) and waits for the server side to finish with it; a
    complete body gives the connection back to the pool.
    """

    def __init__(
        self,
        conn: _ClientConnection,
        release: Callable[[_ClientConnection], None],
        wait_bound: float,
        keep: bool,
    ) -> None:
        self.conn = conn
        self.release = release
        self.wait_bound = wait_bound
        self.complete = False
        #: The body as received, if asked to keep it.
        self.received = bytearray() if keep else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.complete:
            event = await self.conn.next_event()
            if type(event) is h11.Data:
                if self.received is not None:
                    self.received += event.data
                yield bytes(event.data)
            elif type(event) is h11.ConnectionClosed:
                raise ServerDisconnected("the server closed the connection mid-body")
            else:
                self.complete = True
                self.conn.after_response()
                self.release(self.conn)

    async def aclose(self) -> None:
        if self.complete:
            return
        await self.conn.aclose()
        with trio.move_on_after(self.wait_bound):
            await self.conn.server_done.wait()


# -- bytes in flight on loopback, and trio's autojump clock --------------------------

# Linux: ioctl()s that say how many bytes a socket has received and not yet
# read, and queued to send and not yet sent (SIOCINQ, SIOCOUTQNSD).
_SIOCINQ = 0x541B
_SIOCOUTQNSD = 0x894B
# The longest real time the guard lets the kernel take (its delayed ACK is
# at most 200 ms); past it, the clock may jump.
_KERNEL_GRACE = 1.0


def _queued(fd: int, request: int) -> int:
    # Imported here: the guard runs on Linux only, and fcntl is Unix's.
    import fcntl
    import struct

    try:
        answer = fcntl.ioctl(fd, request, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])


class _InFlightGuard(trio.abc.Instrument):
    """Keeps trio's autojump clock from jumping while loopback bytes are
    still on their way between the two ends of a test connection.

    Over loopback, what one end sends is usually readable at the other
    before the send returns, but not always: a sender that filled its
    buffer waits for the receiver's ACK, which the kernel may delay (its
    delayed-ACK timer) or leave to a kernel thread under load. For that
    moment every task is blocked, and ``autojump_clock`` would jump the
    virtual clock past a timeout, as if the client had stalled. Just before
    trio polls for I/O with no wait (which it does before calling every
    task blocked), this instrument waits in real time, a few milliseconds,
    until no connection has bytes in flight: a receiver with nothing to
    read while its peer has bytes not yet sent, or cannot send.

    A client that does not read is not "in flight": its receive queue is
    full, and the clock jumps to the write timeout as it should.
    """

    def __init__(self) -> None:
        #: The two ends of every open connection, as file descriptors' owners.
        self.pairs: list[tuple[trio.socket.SocketType, trio.socket.SocketType]] = []

    def before_io_wait(self, timeout: float) -> None:
        if timeout > 0:
            return  # the kernel works during the wait anyway
        deadline = time.monotonic() + _KERNEL_GRACE
        while (pending := self._in_flight()) and time.monotonic() < deadline:
            poller = select.poll()
            for fd, events in pending:
                poller.register(fd, events)
            poller.poll(max(0.0, deadline - time.monotonic()) * 1000)

    def _in_flight(self) -> list[tuple[int, int]]:
        """What to wait for: (fd, poll events) of each stalled direction."""
        pending = []
        open_pairs = []
        for a, b in self.pairs:
            fds = (a.fileno(), b.fileno())
            if -1 in fds:
                continue  # closed: nothing more to watch on that connection
            open_pairs.append((a, b))
            for sender, receiver in (fds, fds[::-1]):
                if _queued(receiver, _SIOCINQ):
                    continue  # readable: trio's poll sees it
                if _queued(sender, _SIOCOUTQNSD):
                    pending.append((receiver, select.POLLIN))
                elif not _writable(sender):
                    pending.append((sender, select.POLLOUT))
        self.pairs = open_pairs
        return pending


def _writable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(0))


# -- the transport -----------------------------------------------------------------


class MemoryTransport(httpx.AsyncBaseTransport):
    """An httpx transport that serves requests with an app, in process.

    Each connection is a :func:`trio.testing.memory_stream_pair` whose server
    end runs the app's real :class:`~trioweb.server.http1.HTTP1Connection` -- or,
    with ``via="tcp"``, a real TCP connection over 127.0.0.1 whose
    accepted end (a :class:`trio.SocketStream`, as the server's accept loop
    makes) runs it. Build your own client on it::

        transport = MemoryTransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver"
        ) as client:
            r = await client.get("/")

    Entering it (which ``httpx.AsyncClient`` does) runs the app's lifespan;
    leaving it cancels what is still running and runs the shutdown hooks.

    Args:
      app: An :class:`~trioweb.Application`, or anything with
        ``handle_exchange`` (see :mod:`trioweb.server.http1`).
      config: The server limits to apply; defaults to :class:`ServerConfig`'s.
      client_address: The address the app sees as the client's; None for
        none, as for a client on a Unix socket.
      via: ``"memory"`` (the default) or ``"tcp"``. Memory streams
        need no sockets and hold no kernel buffers; ``"tcp"`` opens one
        listening socket on 127.0.0.1 (an ephemeral port) when the
        transport is entered, and each connection is a real TCP connection
        to it, so the engine serves it as it serves a plain-TCP client of
        :func:`trioweb.serve` (with kernel buffers, FIN and RST). Both work
        under ``autojump_clock``: over TCP, a guard keeps a
        :class:`trio.testing.MockClock` from jumping while bytes are still
        crossing loopback (see ``_InFlightGuard``).
      stream_pair: Makes ``(client_stream, server_stream)`` for each
        connection, for a memory transport of your own;
        :func:`trio.testing.memory_stream_pair` by default. Use
        :func:`trio.testing.lockstep_stream_pair` to test a client that does
        not read (a send then waits for the client to receive). Not with
        ``via="tcp"``.
      socket_buffer: With ``via="tcp"``, the size asked of the kernel for
        the send and receive buffers of both ends (``SO_SNDBUF``,
        ``SO_RCVBUF``; Linux doubles it and has a floor). Small buffers
        make a client that does not read stall the server's sends after a
        few KiB, as :func:`trio.testing.lockstep_stream_pair` does at once
        in memory; by default the kernel's own sizes, which can hold
        megabytes on loopback.
      lifespan: Whether to run the app's lifespan (``app.running()``).

    Keep-alive connections are reused across requests while the server
    keeps them open; a request sent while every open connection is busy
    (from another task) gets a new one. httpx's ``timeout`` is not applied:
    the server's own deadlines (``config``) bound every wait, and tests run
    under ``autojump_clock`` would otherwise time out in virtual time.
    A request's ``target`` extension, if set, is sent as the request target.
    On either transport the app sees ``client_address`` as the client's
    address and ``127.0.0.1:80`` as its own, so a test's expectations do
    not depend on the transport.
    """

    def __init__(
        self,
        app: ExchangeApp,
        *,
        config: ServerConfig | None = None,
        client_address: tuple[str, int] | None = ("127.0.0.1", 50000),
        via: Via = "memory",
        stream_pair: StreamPair | None = None,
        socket_buffer: int | None = None,
        lifespan: bool = True,
    ) -> None:
        if via not in ("memory", "tcp"):
            raise ValueError(f"via must be 'memory' or 'tcp', not {via!r}")
        if via == "tcp" and stream_pair is not None:
            raise ValueError("stream_pair= makes memory connections: not via 'tcp'")
        if via == "memory" and socket_buffer is not None:
            raise ValueError("socket_buffer= sizes socket buffers: only via 'tcp'")
        self._socket_buffer = socket_buffer
        self.app = app
        #: ``"memory"`` or ``"tcp"``: how each connection is made.
        self.via = via
        self.config = config or ServerConfig()
        # As the server does: the app behind config.limit_concurrency.
        self._served = limit_concurrency(app, self.config)
        self.client_address = client_address
        self._stream_pair = stream_pair or trio.testing.memory_stream_pair
        self._lifespan = lifespan
        # via="tcp": the listening socket every connection goes
        # through, and a lock that keeps connect() and accept() paired.
        self._listener: trio.SocketListener | None = None
        self._connecting = trio.Lock()
        self._guard: _InFlightGuard | None = None
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        # Keep-alive connections waiting for a request, most recent last; a
        # request takes one or opens a new one, so concurrent requests from
        # several tasks each get their own connection.
        self._idle: list[_ClientConnection] = []
        self._client_connections: list[_ClientConnection] = []
        self._connections: list[HTTP1Connection] = []

    async def __aenter__(self) -> MemoryTransport:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            running = getattr(self.app, "running", None)
            if self._lifespan and running is not None:
                await stack.enter_async_context(running())
            if self.via == "tcp":
                # Closed after the connections (the exit stack runs last in,
                # first out), as a server closes its listener.
                [self._listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
                stack.push_async_callback(self._listener.aclose)
                # An accepted socket inherits the listener's buffer sizes.
                self._size_buffers(self._listener.socket)
                if sys.platform == "linux" and isinstance(
                    trio.lowlevel.current_clock(), trio.testing.MockClock
                ):
                    self._guard = _InFlightGuard()
                    trio.lowlevel.add_instrument(self._guard)
                    stack.callback(trio.lowlevel.remove_instrument, self._guard)
            # A side nursery: an exception from the test's own code comes out
            # as itself, not wrapped in an exception group.
            self._nursery = await stack.enter_async_context(open_side_nursery())
            stack.push_async_callback(self._close_all)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        await stack.__aexit__(*exc_info)

    async def aclose(self) -> None:
        """Close the client side of every connection (``__aexit__`` does the
        rest: it is where the lifespan ends)."""
        self._idle.clear()
        for client_conn in self._client_connections:
            await client_conn.aclose()

    async def _close_all(self) -> None:
        await self.aclose()
        for conn in self._connections:
            conn.shutdown()
        self._nursery = None

    @property
    def server_connections(self) -> list[HTTP1Connection]:
        """The server side of every connection this transport opened."""
        return list(self._connections)

    async def connect(self) -> tuple[trio.abc.Stream, trio.Event]:
        """Open a new connection to the app.

        Returns the client's end of it and an event set when the server
        side has ended.
        """
        if self._nursery is None:
            raise RuntimeError(
                "use the client inside 'async with TestClient(app)' (or enter "
                "the httpx.AsyncClient that has this transport)"
            )
        client_stream, server_stream = await self._open_pair()
        conn = HTTP1Connection(
            server_stream,
            self._served,
            self.config,
            client=self.client_address,
            server=("127.0.0.1", 80),
        )
        self._connections.append(conn)
        done = trio.Event()

        async def serve() -> None:
            try:
                await conn.run()
            finally:
                done.set()

        self._nursery.start_soon(serve)
        return client_stream, done

    async def _open_pair(self) -> tuple[trio.abc.Stream, trio.abc.Stream]:
        """A new connection's two ends: ``(client_stream, server_stream)``."""
        if self._listener is None:
            return self._stream_pair()
        # One connection at a time from connect() to accept(): with two in
        # the backlog, a task could accept the other task's connection.
        async with self._connecting:
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
            try:
                # Before connect(): the TCP window scale is agreed on then.
                self._size_buffers(sock)
                await sock.connect(self._listener.socket.getsockname())
                ours = sock.getsockname()
                while True:
                    # The accepted end is what the server's accept loop
                    # hands the engine: a trio.SocketStream.
                    server_stream = await self._listener.accept()
                    if server_stream.socket.getpeername() == ours:
                        break
                    # Left in the backlog by a connect() cancelled before
                    # its accept(): nobody's.
                    await trio.aclose_forcefully(server_stream)
            except BaseException:
                sock.close()
                raise
        if self._guard is not None:
            self._guard.pairs.append((sock, server_stream.socket))
        return trio.SocketStream(sock), server_stream

    def _size_buffers(self, sock: trio.socket.SocketType) -> None:
        if self._socket_buffer is not None:
            for option in (trio.socket.SO_SNDBUF, trio.socket.SO_RCVBUF):
                sock.setsockopt(trio.socket.SOL_SOCKET, option, self._socket_buffer)

    def _release(self, conn: _ClientConnection) -> None:
        if conn.usable and not conn.server_done.is_set():
            self._idle.append(conn)

    async def _checkout(self) -> _ClientConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and not conn.server_done.is_set():
                return conn
            await conn.aclose()
        stream, done = await self.connect()
        conn = _ClientConnection(stream, done)
        self._client_connections.append(conn)
        return conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection; return once the head of
        the response has arrived (the body streams)."""
        conn = await self._checkout()
        try:
            await conn.send_request(request)
            head = await conn.read_head()
        except BaseException:
            await conn.aclose()
            raise
        body = _ResponseBody(
            conn,
            self._release,
            wait_bound=self.config.graceful_timeout + 1,
            keep=bool(request.extensions.get(KEEP_BODY_EXTENSION)),
        )
        response = Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=body,
            request=request,
            extensions={
                "http_version": b"HTTP/" + head.http_version,
                "reason_phrase": head.reason,
            },
        )
        response._wire = body
        response.headers = Headers(head.headers.raw_items())
        return response

    async def abort(self, request: httpx.Request, after: float) -> bytes:
        """Send ``request`` on a new connection and leave after ``after`` s;
        see :meth:`TestClient.abort`."""
        stream, done = await self.connect()
        conn = _ClientConnection(stream, done)
        await conn.send_request(request)
        received = bytearray()
        with trio.move_on_after(after):
            while data := await receive_or_empty(stream):
                received += data
        await conn.aclose()
        # Bounded so that a handler that ignores the disconnect fails the
        # test instead of hanging it.
        with trio.fail_after(_longest_timeout(self.config) + 1.0):
            await done.wait()
        return bytes(received)


async def receive_or_empty(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(65536))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


def _longest_timeout(config: ServerConfig) -> float:
    longest = max(
        config.header_timeout,
        config.body_timeout,
        config.write_timeout,
        config.keep_alive_timeout,
    )
    return longest if math.isfinite(longest) else 3600.0
