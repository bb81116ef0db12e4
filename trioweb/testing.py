"""Test your application with httpx, over trio memory streams.

:class:`TestClient` *is* an :class:`httpx.AsyncClient`: your tests speak the
HTTP client they already know -- ``status_code``, a cookie jar kept across
requests, ``files=`` uploads, ``follow_redirects``, ``auth``, ``json=``,
streaming responses. Its transport, :class:`MemoryTransport`, runs your
application's real connection code -- the same
:class:`~trioweb.server.http1.HTTP1Connection` the server uses -- over
:func:`trio.testing.memory_stream_pair`, so a test exercises the whole HTTP
path (parsing, limits, keep-alive, disconnects) with no sockets, no threads
and no real time: it works under pytest-trio's ``autojump_clock``::

    from trioweb.testing import TestClient

    async def test_hello():
        async with TestClient(app) as client:
            r = await client.get("/hello/ann", params={"x": "1"})
            assert r.status_code == 200
            assert r.json() == {"hello": "ann"}

Entering the client runs the application's lifespan (startup hooks, the
application nursery); leaving it closes the connections and runs the
shutdown hooks.

Beyond what httpx does, it can open a connection that speaks raw bytes for
protocol tests (:meth:`TestClient.raw`) and play a client that leaves
mid-request (:meth:`TestClient.abort`), so you can test your own
cancellation and ``on_connection_close`` code.

``TestClient(app, via="tcp")`` makes each connection a real TCP connection
over 127.0.0.1 instead: the server end is the :class:`trio.SocketStream` an
accepted client is, so the engine takes the same path as for a plain-TCP
client of :func:`trioweb.serve`, with kernel socket buffers, FIN and RST.
Everything above works the same over it, ``autojump_clock`` included (the
clock does not jump while bytes are still crossing loopback).

Two conveniences of trioweb's earlier client stay: ``body=`` is another
name for ``content=``, and responses (:class:`Response`) also answer to
``.status``, ``.reason`` and ``.body``, with ``receive()`` and async
``iter_bytes()`` / ``read()`` on a streamed response.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import h11

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trioweb.testing needs httpx: pip install httpx (the [testing] "
        "extra of trioweb)"
    ) from exc
import trio
import trio.testing

from ._memory_transport import (
    KEEP_BODY_EXTENSION,
    TARGET_EXTENSION,
    Headers,
    MemoryTransport,
    Response,
    ServerDisconnected,
    StreamPair,
    Via,
    receive_or_empty,
)
from .httputil import url_concat
from .server.config import ServerConfig
from .server.exchange import ExchangeApp
from .server.http1 import HTTP1Connection

__all__ = [
    "MemoryTransport",
    "RawConnection",
    "Response",
    "ServerDisconnected",
    "TestClient",
]

#: The first test client's name for a streamed response.
StreamingResponse = Response

# httpx adds these to every request; the test client leaves them out, so the
# application sees only what a test sends (and an ``Accept-Encoding`` a test
# did not ask for cannot make a response arrive compressed).
_HTTPX_DEFAULT_HEADERS = ("Accept", "Accept-Encoding", "Connection", "User-Agent")


# -- raw connections ---------------------------------------------------------------


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
        data = await receive_or_empty(self.stream)
        if not data:
            self._eof = True
        return data

    async def receive_available(self) -> bytes:
        """What the server has sent so far, without waiting for more.

        Waits until every task is blocked -- the server has done all it can
        with what it was sent -- then returns the bytes that arrived (``b""``
        if none did, or at EOF). Costs no clock time, so it is the way to
        check that something was *not* sent, with or without
        ``autojump_clock``. Over ``via="tcp"`` too: what a server sends on
        loopback is readable when its send returns, and trio looks for
        readable sockets before it calls every task blocked.
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
        responses are read one by one. The response's headers and body are
        what came over the wire: a ``Content-Encoding`` is not decoded
        (``content`` is ``body``). Informational responses (100 Continue)
        are skipped.
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
            raise ServerDisconnected("the connection closed before a response")
        rest, closed = parser.trailing_data
        self._pending[:0] = rest
        self._eof = self._eof or closed
        # The body is kept as it came (``content`` is ``body``: nothing is
        # decoded), so it is read before the headers that name an encoding
        # are put in; and a stream, not content=, which would add a
        # Content-Length the server did not send.
        response = Response(
            head.status_code,
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions={
                "http_version": b"HTTP/" + head.http_version,
                "reason_phrase": head.reason,
            },
        )
        await response.aread()
        response.headers = Headers(head.headers.raw_items())
        return response

    async def aclose(self) -> None:
        """Close the connection (the server sees the client leave)."""
        await trio.aclose_forcefully(self.stream)


# -- the client --------------------------------------------------------------------


class TestClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` that talks to ``app`` in memory.

    Everything httpx offers works (see httpx's documentation); requests go
    through a :class:`MemoryTransport`, with ``base_url`` ``http://<host>``,
    so paths like ``"/items?x=1"`` are enough. The client sends only the
    headers a test gives it (plus ``Host``, and ``Content-Type`` /
    ``Content-Length`` for a body): httpx's default ``Accept``,
    ``Accept-Encoding``, ``Connection`` and ``User-Agent`` are left out.

    Args:
      app: An :class:`~trioweb.Application`, or anything with
        ``handle_exchange`` (see :mod:`trioweb.server.http1`).
      config: The server limits to apply; defaults to :class:`ServerConfig`'s.
      host: The host of ``base_url``, hence the ``Host`` header.
      client_address: The address the app sees as the client's; None for
        none, as for a client on a Unix socket.
      via: ``"memory"`` (the default: trio memory streams) or ``"tcp"``
        (each connection a real TCP connection over 127.0.0.1, served as
        :func:`trioweb.serve` serves a plain-TCP client); see
        :class:`MemoryTransport`. Everything here works the same over both.
      stream_pair: How each memory connection's streams are made (see
        :class:`MemoryTransport`).
      socket_buffer: With ``via="tcp"``, the kernel's socket buffer sizes
        for both ends: small ones model a client that does not read (see
        :class:`MemoryTransport`).
      lifespan: Whether to run the app's lifespan (``app.running()``).
      **kwargs: Passed to :class:`httpx.AsyncClient` (``cookies``,
        ``auth``, ``follow_redirects``, ``headers``, ...).

    Requests also take ``body=`` (another name for ``content=``) and
    ``data=`` as a list of pairs; the method and the path are sent as
    written (httpx would uppercase the one and resolve ``..`` in the other)
    and ``params`` are added to a query string the path already has.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        app: ExchangeApp,
        *,
        config: ServerConfig | None = None,
        host: str = "testserver",
        client_address: tuple[str, int] | None = ("127.0.0.1", 50000),
        via: Via = "memory",
        stream_pair: StreamPair | None = None,
        socket_buffer: int | None = None,
        lifespan: bool = True,
        **kwargs: Any,
    ) -> None:
        transport = MemoryTransport(
            app,
            config=config,
            client_address=client_address,
            via=via,
            stream_pair=stream_pair,
            socket_buffer=socket_buffer,
            lifespan=lifespan,
        )
        given = httpx.Headers(kwargs.get("headers"))
        kwargs.setdefault("base_url", f"http://{host}")
        super().__init__(transport=transport, **kwargs)
        for name in _HTTPX_DEFAULT_HEADERS:
            if name not in given:
                del self.headers[name]
        if self.base_url.netloc.decode("ascii") != host and "Host" not in given:
            # httpx lowercases the URL's host; send the one asked for.
            self.headers["Host"] = host
        self.app = app
        self.host = host
        self.transport = transport

    @property
    def config(self) -> ServerConfig:
        """The server limits the app runs with."""
        return self.transport.config

    @property
    def via(self) -> Via:
        """``"memory"`` or ``"tcp"``: how this client's connections are made."""
        return self.transport.via

    @property
    def client_address(self) -> tuple[str, int] | None:
        """The address the app sees as the client's."""
        return self.transport.client_address

    @property
    def server_connections(self) -> list[HTTP1Connection]:
        """The server side of every connection this client opened."""
        return self.transport.server_connections

    def build_request(
        self, method: str, url: httpx.URL | str, **kwargs: Any
    ) -> httpx.Request:
        """httpx's ``build_request``, plus ``body=`` and ``data=`` pairs,
        and a path sent as written."""
        body = kwargs.pop("body", None)
        if body is not None:
            if kwargs.get("content") is not None:
                raise TypeError("pass the body as content= or body=, not both")
            kwargs["content"] = body
        data = kwargs.get("data")
        if data is not None and not isinstance(data, Mapping):
            kwargs["data"] = None
            kwargs["content"] = urlencode(list(data), doseq=True)
            headers = httpx.Headers(kwargs.get("headers"))
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            kwargs["headers"] = headers
        request = super().build_request(method, url, **kwargs)
        # Sent as given: httpx uppercases it, and a method is
        # case-sensitive (RFC 9110 9.1): "get" is not GET.
        request.method = method
        given = httpx.Headers(kwargs.get("headers"))
        if "Transfer-Encoding" in given and "Content-Length" not in given:
            # httpx frames a bytes body with a Content-Length even next to a
            # Transfer-Encoding the test gave; the test meant chunked.
            request.headers.pop("Content-Length", None)
        if isinstance(url, str) and url.startswith(("/", "*")):
            target = url_concat(url, _pairs(kwargs.get("params")))
            # Only a target that can go on the wire as written: httpx's
            # percent-encoding of a space or a non-ASCII path is right.
            sendable = target.isascii() and not any(c <= " " for c in target)
            if sendable and request.url.raw_path != target.encode("ascii"):
                request.extensions[TARGET_EXTENSION] = (str(request.url), target)
        return request

    async def request(
        self, method: str, url: httpx.URL | str, **kwargs: Any
    ) -> Response:
        """Send a request and return the complete response.

        Takes everything :meth:`httpx.AsyncClient.request` does (``params``,
        ``headers``, ``content``, ``data``, ``files``, ``json``, ``auth``,
        ``follow_redirects``, ...) and ``body=`` for ``content=``.
        """
        send_options = {
            name: kwargs.pop(name)
            for name in ("auth", "follow_redirects")
            if name in kwargs
        }
        request = self.build_request(method, url, **kwargs)
        request.extensions[KEEP_BODY_EXTENSION] = True
        response = await self.send(request, **send_options)
        assert isinstance(response, Response)
        return response

    async def get(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def options(self, url: httpx.URL | str, **kwargs: Any) -> Response:
        return await self.request("OPTIONS", url, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: httpx.URL | str, **kwargs: Any
    ) -> AsyncIterator[Response]:
        """Send a request and read the response body as it arrives::

            async with client.stream("GET", "/events") as r:
                async for chunk in r.aiter_bytes():
                    ...

        Leaving the block before the body is complete closes the connection,
        which the server sees as the client leaving; the block's end waits
        for the server side to be done with it.
        """
        send_options = {
            name: kwargs.pop(name)
            for name in ("auth", "follow_redirects")
            if name in kwargs
        }
        request = self.build_request(method, url, **kwargs)
        response = await self.send(request, stream=True, **send_options)
        assert isinstance(response, Response)
        try:
            yield response
        finally:
            await response.aclose()

    def websocket_connect(self, path: str, **kwargs: Any) -> Any:
        """``async with client.websocket_connect("/ws") as ws:`` a websocket
        over this client (see ``docs/websockets.md``; trioweb._ws_testing)."""
        from ._ws_testing import websocket_connect

        return websocket_connect(self, path, **kwargs)

    async def raw(self) -> RawConnection:
        """Open a new connection that sends and receives raw bytes."""
        stream, done = await self.transport.connect()
        return RawConnection(stream, done)

    async def abort(
        self, method: str, url: str, *, after: float = 0.0, **kwargs: Any
    ) -> bytes:
        """Send a request on a new connection, then leave after ``after`` s.

        Takes the request options :meth:`request` does. Returns once the
        server side of that connection has ended, so your handler's
        ``finally`` blocks, ``on_connection_close()`` and ``on_finish()``
        have run when it returns. The return value is what the server sent
        before the client left (often nothing). Under ``autojump_clock``
        the wait costs no real time.
        """
        # build_request() adds the cookie jar's cookies, as for any request.
        request = self.build_request(method, url, **kwargs)
        return await self.transport.abort(request, after)


def _pairs(params: Any) -> list[tuple[str, Any]] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return [
            (key, item)
            for key, value in params.items()
            for item in (value if isinstance(value, list | tuple) else [value])
        ]
    if isinstance(params, Iterable) and not isinstance(params, str | bytes):
        return list(params)
    raise TypeError(f"params must be a mapping or pairs, not {type(params).__name__}")
