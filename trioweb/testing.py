"""Test your application over trio memory streams: :class:`TestClient`.

The client runs your application's real connection code -- the same
:class:`~trioweb.http1.HTTP1Connection` the server uses -- over
:func:`trio.testing.memory_stream_pair`, so a test exercises the whole HTTP
path (parsing, limits, keep-alive, disconnects) with no sockets, no threads
and no real time: it works under pytest-trio's ``autojump_clock``::

    from trioweb.testing import TestClient

    async def test_hello():
        async with TestClient(app) as client:
            r = await client.get("/hello/ann", params={"x": "1"})
            assert r.status == 200
            assert r.json() == {"hello": "ann"}

Entering the client runs the application's lifespan (startup hooks, the
application nursery); leaving it closes the connections and runs the
shutdown hooks.

Beyond plain requests it can stream a response (:meth:`TestClient.stream`),
open a connection that speaks raw bytes for protocol tests
(:meth:`TestClient.raw`), and play a client that leaves mid-request
(:meth:`TestClient.abort`), so you can test your own cancellation and
``on_connection_close`` code.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import attrs
import h11
import trio
import trio.testing

from ._concurrency import open_side_nursery
from .config import ServerConfig
from .http1 import ExchangeApp, HTTP1Connection
from .httputil import HTTPHeaders, url_concat
from .overload import limit_concurrency

__all__ = ["RawConnection", "Response", "StreamingResponse", "TestClient"]

StreamPair = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]
HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]] | None


@attrs.define
class Response:
    """A complete response, as the client received it."""

    status: int
    reason: str
    headers: HTTPHeaders
    body: bytes
    http_version: str = "1.1"

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (the charset trioweb always sends)."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)


def _headers_from_h11(event: h11.Response | h11.InformationalResponse) -> HTTPHeaders:
    return HTTPHeaders.from_raw(event.headers.raw_items())


class _ClientConnection:
    """One client connection to the app: an h11 client on a memory stream,
    with the server side running in the test client's nursery."""

    def __init__(self, stream: trio.abc.Stream, server_done: trio.Event) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.server_done = server_done
        self.usable = True

    async def send(self, *events: h11.Request | h11.Data | h11.EndOfMessage) -> None:
        data = b"".join(self.h11.send(e) or b"" for e in events)
        await self.stream.send_all(data)

    async def next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
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
                raise ConnectionError(
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


class StreamingResponse:
    """A response whose body you read as it arrives (see
    :meth:`TestClient.stream`)."""

    def __init__(
        self,
        conn: _ClientConnection,
        head: h11.Response,
        on_complete: Callable[[_ClientConnection], None] | None = None,
    ) -> None:
        self._conn = conn
        self._on_complete = on_complete
        self.status: int = head.status_code
        self.reason: str = head.reason.decode("latin-1")
        self.headers = _headers_from_h11(head)
        self.http_version = head.http_version.decode("ascii")
        self.complete = False

    async def receive(self) -> bytes:
        """The next piece of body as the server sent it, ``b""`` at the end."""
        if self.complete:
            return b""
        event = await self._conn.next_event()
        if type(event) is h11.Data:
            return bytes(event.data)
        if type(event) is h11.ConnectionClosed:
            raise ConnectionError("the server closed the connection mid-body")
        self.complete = True
        self._conn.after_response()
        if self._on_complete is not None:
            self._on_complete(self._conn)
        return b""

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body's pieces until the response is complete."""
        while chunk := await self.receive():
            yield chunk

    async def read(self) -> bytes:
        """The rest of the body."""
        return b"".join([chunk async for chunk in self.iter_bytes()])


class RawConnection:
    """A connection to the app that speaks raw bytes, for protocol tests.

    Send exactly the bytes you want (malformed, pipelined, split anywhere),
    and read back bytes or parsed responses.
    """

    def __init__(self, stream: trio.abc.Stream, server_done: trio.Event) -> None:
        self.stream = stream
        #: Set when the server side of this connection has ended.
        self.server_done = server_done
        self._pending = bytearray()
        self._eof = False

    async def send(self, data: bytes) -> None:
        """Send ``data`` as is."""
        await self.stream.send_all(data)

    async def send_eof(self) -> None:
        """Half-close: the server reads EOF, and we can still receive."""
        await self.stream.send_eof()  # type: ignore[attr-defined]

    async def receive(self) -> bytes:
        """Whatever arrives next (already-buffered bytes first); ``b""`` at EOF."""
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            return data
        if self._eof:
            return b""
        try:
            data = bytes(await self.stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._eof = True
        return data

    async def receive_available(self) -> bytes:
        """What the server has sent so far, without waiting for more.

        Waits until every task is blocked -- the server has done all it can
        with what it was sent -- then returns the bytes that arrived (``b""``
        if none did, or at EOF). Costs no clock time, so it is the way to
        check that something was *not* sent, with or without
        ``autojump_clock``.
        """
        received = b""

        async def take() -> None:
            nonlocal received
            received = await self.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(take)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return received

    async def receive_until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        chunks = []
        while data := await self.receive():
            chunks.append(data)
        return b"".join(chunks)

    async def read_response(self, method: str = "GET") -> Response:
        """Parse the next response (answering a ``method`` request).

        Bytes after it stay buffered for the next call, so pipelined
        responses are read one by one. ``Response.headers`` shows what came
        over the wire; ``informational`` ones (100 Continue) are skipped.
        """
        parser = h11.Connection(h11.CLIENT)
        # Put the parser in the state "request sent" without sending it.
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        head: h11.Response | None = None
        chunks: list[bytes] = []
        if self._pending:
            parser.receive_data(bytes(self._pending))
            self._pending.clear()
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = await self.receive()
                parser.receive_data(data)
                continue
            if type(event) is h11.Response:
                head = event
            elif type(event) is h11.Data:
                chunks.append(bytes(event.data))
            elif type(event) in (h11.EndOfMessage, h11.ConnectionClosed):
                break
        if head is None:
            raise ConnectionError("the connection closed before a response")
        rest, closed = parser.trailing_data
        self._pending[:0] = rest
        self._eof = self._eof or closed
        return Response(
            status=head.status_code,
            reason=head.reason.decode("latin-1"),
            headers=_headers_from_h11(head),
            body=b"".join(chunks),
            http_version=head.http_version.decode("ascii"),
        )

    async def aclose(self) -> None:
        """Close the connection (the server sees the client leave)."""
        await trio.aclose_forcefully(self.stream)


class TestClient:
    """Drive an application through its real connection code, in memory.

    Args:
      app: An :class:`~trioweb.Application`, or anything with
        ``handle_exchange`` (see :mod:`trioweb.http1`).
      config: The server limits to apply; defaults to :class:`ServerConfig`'s.
      host: The ``Host`` header sent with each request.
      client_address: The address the app sees as the client's.
      stream_pair: Makes ``(client_stream, server_stream)`` for each
        connection; :func:`trio.testing.memory_stream_pair` by default. Use
        :func:`trio.testing.lockstep_stream_pair` to test a client that does
        not read (a send then waits for the client to receive).
      lifespan: Whether to run the app's lifespan (``app.running()``).

    Keep-alive connections are reused across requests while the server
    keeps them open; a request sent while every open connection is busy
    (from another task) gets a new one.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        app: ExchangeApp,
        *,
        config: ServerConfig | None = None,
        host: str = "testserver",
        client_address: tuple[str, int] = ("127.0.0.1", 50000),
        stream_pair: StreamPair = trio.testing.memory_stream_pair,
        lifespan: bool = True,
    ) -> None:
        self.app = app
        self.config = config or ServerConfig()
        # As the server does: the app behind config.limit_concurrency.
        self._served = limit_concurrency(app, self.config)
        self.host = host
        self.client_address = client_address
        self._stream_pair = stream_pair
        self._lifespan = lifespan
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        # Keep-alive connections waiting for a request, most recent last; a
        # request takes one or opens a new one, so concurrent requests from
        # several tasks each get their own connection.
        self._idle: list[_ClientConnection] = []
        self._client_connections: list[_ClientConnection] = []
        self._connections: list[HTTP1Connection] = []

    async def __aenter__(self) -> TestClient:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            running = getattr(self.app, "running", None)
            if self._lifespan and running is not None:
                await stack.enter_async_context(running())
            # A side nursery: an exception from the test's own code comes out
            # as itself, not wrapped in an exception group.
            self._nursery = await stack.enter_async_context(open_side_nursery())
            stack.push_async_callback(self._close_all)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        return await stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _close_all(self) -> None:
        self._idle.clear()
        for client_conn in self._client_connections:
            await client_conn.aclose()
        for conn in self._connections:
            conn.shutdown()
        self._nursery = None

    @property
    def server_connections(self) -> list[HTTP1Connection]:
        """The server side of every connection this client opened."""
        return list(self._connections)

    async def _connect(self) -> tuple[trio.abc.Stream, trio.Event]:
        if self._nursery is None:
            raise RuntimeError("use the client inside 'async with TestClient(app)'")
        client_stream, server_stream = self._stream_pair()
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

    # -- building requests ----------------------------------------------------

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: HeadersArg = None,
        body: bytes | str | None = None,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
    ) -> tuple[h11.Request, bytes]:
        target = url_concat(
            path,
            list(params.items())
            if isinstance(params, Mapping)
            else (list(params) if params is not None else None),
        )
        hdrs: list[tuple[str, str]] = [("Host", self.host)]
        extra: list[tuple[str, str]] = []
        if headers is not None:
            extra = (
                list(headers.items()) if isinstance(headers, Mapping) else list(headers)
            )
        content: bytes | None = None
        content_type: str | None = None
        if json is not None:
            content = jsonlib.dumps(json).encode()
            content_type = "application/json"
        elif data is not None:
            content = urlencode(
                list(data.items()) if isinstance(data, Mapping) else list(data),
                doseq=True,
            ).encode()
            content_type = "application/x-www-form-urlencoded"
        elif body is not None:
            content = body.encode() if isinstance(body, str) else body
        names = {name.lower() for name, _ in extra}
        if content_type and "content-type" not in names:
            hdrs.append(("Content-Type", content_type))
        if (
            content is not None
            and "content-length" not in names
            and ("transfer-encoding" not in names)
        ):
            hdrs.append(("Content-Length", str(len(content))))
        hdrs = [h for h in hdrs if h[0].lower() not in names] + extra
        return h11.Request(method=method, target=target, headers=hdrs), content or b""

    def _release(self, conn: _ClientConnection) -> None:
        if conn.usable and not conn.server_done.is_set():
            self._idle.append(conn)

    async def _checkout(self) -> _ClientConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and not conn.server_done.is_set():
                return conn
            await conn.aclose()
        stream, done = await self._connect()
        conn = _ClientConnection(stream, done)
        self._client_connections.append(conn)
        return conn

    async def _send_request(
        self, conn: _ClientConnection, method: str, path: str, kwargs: dict[str, Any]
    ) -> None:
        request, content = self._build(
            method,
            path,
            params=kwargs.pop("params", None),
            headers=kwargs.pop("headers", None),
            body=kwargs.pop("body", None),
            data=kwargs.pop("data", None),
            json=kwargs.pop("json", None),
        )
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
        events: list[Any] = [request]
        if content:
            events.append(h11.Data(data=content))
        events.append(h11.EndOfMessage())
        try:
            await conn.send(*events)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The server answered and closed before reading it all (a 413,
            # say); its response is still there to read.
            pass

    async def _open_response(
        self, method: str, path: str, kwargs: dict[str, Any]
    ) -> StreamingResponse:
        conn = await self._checkout()
        try:
            await self._send_request(conn, method, path, kwargs)
            head = await conn.read_head()
        except BaseException:
            await conn.aclose()
            raise
        return StreamingResponse(conn, head, self._release)

    # -- public API -----------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: HeadersArg = None,
        body: bytes | str | None = None,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
    ) -> Response:
        """Send a request and return the complete response.

        ``params`` become the query string; the body is ``body`` as is,
        ``data`` form-encoded, or ``json`` as JSON (with a matching
        Content-Type). ``headers`` are added after ``Host`` and may replace
        it.
        """
        streaming = await self._open_response(
            method,
            path,
            dict(params=params, headers=headers, body=body, data=data, json=json),
        )
        try:
            body_bytes = await streaming.read()
        except BaseException:
            await streaming._conn.aclose()
            raise
        return Response(
            status=streaming.status,
            reason=streaming.reason,
            headers=streaming.headers,
            body=body_bytes,
            http_version=streaming.http_version,
        )

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> Response:
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> Response:
        return await self.request("OPTIONS", path, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, **kwargs: Any
    ) -> AsyncIterator[StreamingResponse]:
        """Send a request and read the response body as it arrives::

            async with client.stream("GET", "/events") as r:
                async for chunk in r.iter_bytes():
                    ...

        Leaving the block before the body is complete closes the connection,
        which the server sees as the client leaving.
        """
        response = await self._open_response(method, path, kwargs)
        conn = response._conn
        try:
            yield response
        finally:
            if not response.complete:
                await conn.aclose()
                with trio.move_on_after(self.config.graceful_timeout + 1):
                    await conn.server_done.wait()

    def websocket_connect(self, path: str, **kwargs: Any) -> Any:
        """``async with client.websocket_connect("/ws") as ws:`` a websocket
        over this client (see ``docs/websockets.md``; trioweb._ws_testing)."""
        from ._ws_testing import websocket_connect

        return websocket_connect(self, path, **kwargs)

    async def raw(self) -> RawConnection:
        """Open a new connection that sends and receives raw bytes."""
        stream, done = await self._connect()
        return RawConnection(stream, done)

    async def abort(
        self, method: str, path: str, *, after: float = 0.0, **kwargs: Any
    ) -> bytes:
        """Send a request on a new connection, then leave after ``after`` s.

        Returns once the server side of that connection has ended, so your
        handler's ``finally`` blocks, ``on_connection_close()`` and
        ``on_finish()`` have run when it returns. The return value is what
        the server sent before the client left (often nothing). Under
        ``autojump_clock`` the wait costs no real time.
        """
        stream, done = await self._connect()
        conn = _ClientConnection(stream, done)
        await self._send_request(conn, method, path, kwargs)
        received = bytearray()
        with trio.move_on_after(after):
            while data := await _receive_or_empty(stream):
                received += data
        await conn.aclose()
        # Bounded so that a handler that ignores the disconnect fails the
        # test instead of hanging it.
        with trio.fail_after(_longest_timeout(self.config) + 1.0):
            await done.wait()
        return bytes(received)


async def _receive_or_empty(stream: trio.abc.Stream) -> bytes:
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
