"""One request of an ASGI server as the web layer sees a request:
:class:`ASGIExchange`, with the interface of the connection engine's
:class:`~trioweb.Exchange` over the ASGI ``receive`` and ``send`` callables.

:class:`trioweb.asgi.ASGIAdapter` makes one per ``http`` scope and hands it to
``app.handle_exchange``. This module also names the ASGI types trioweb uses
(:data:`Scope`, :data:`Message`, :data:`Receive`, :data:`Send`,
:data:`ASGIApp`); :mod:`trioweb.asgi` re-exports them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import trio

from .errors import HTTPInputError, StreamClosedError
from .server import observe, writer
from .server.config import ServerConfig
from .server.exchange import body_wait_deadline, count_down_length, fire

__all__ = [
    "READ_AHEAD_LIMIT",
    "ASGIApp",
    "ASGIExchange",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

log = logging.getLogger("trioweb.error")

#: An ASGI connection scope.
Scope = MutableMapping[str, Any]
#: An ASGI event (what ``receive()`` returns and ``send()`` takes).
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application: ``await app(scope, receive, send)``.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The adapter reads at most this much request body ahead of the handler.
READ_AHEAD_LIMIT = 64 * 1024

# Fields the ASGI server owns: the connection-specific ones (it frames the
# response and owns the connection, and HTTP/2 forbids them outright,
# RFC 9113 8.2.2), and Server.
_HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        # Not connection-specific, but the server's to say: it adds its own,
        # and two Server fields would be one too many.
        b"server",
    )
)


class ClientDisconnected(StreamClosedError, OSError):
    """The client is gone: a :exc:`~trioweb.StreamClosedError` that is also
    an :exc:`OSError`, as ASGI 2.4 asks of a ``send()`` to a closed
    connection (so ASGI frameworks recognise it)."""


def _target(scope: Scope) -> str:
    # The request target as the client sent it (percent-encoded), so that
    # routing sees what it sees under trioweb's own server. ``raw_path``
    # holds the whole path, root_path included (ASGI: ``path`` does too).
    raw = scope.get("raw_path")
    if raw is None:
        raw = quote(scope["path"], safe="/:@!$&'()*+,;=-._~%").encode("ascii")
    target = bytes(raw).decode("latin-1")
    query = scope.get("query_string")
    if query:
        target += "?" + bytes(query).decode("latin-1")
    return target


def _address(value: Any) -> tuple[str, int] | None:
    # (host, port); a Unix socket's server address is (path, None).
    if not value or value[1] is None:
        return None
    return (str(value[0]), int(value[1]))


class ASGIExchange:
    """One request of an ASGI server, with the interface of
    :class:`~trioweb.Exchange` (the connection engine's), so that the web
    layer serves it unchanged.

    The request: ``method``, ``target`` (the raw path and query),
    ``http_version`` (``"1.1"``, ``"2"``, ``"3"``), ``headers``,
    ``client``, ``server``, ``scheme``, from the ASGI scope. The body:
    :meth:`receive_body` / :meth:`read_body`, bounded by
    :attr:`max_body_size` and the body timeouts. The response:
    :meth:`send_response` and :meth:`send_body`, which become
    ``http.response.start`` and ``http.response.body`` messages and return
    when the server's ``send()`` has. The disconnect signal:
    :meth:`on_disconnect`, fired by ``http.disconnect`` while the response
    is incomplete.
    """

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, config: ServerConfig
    ) -> None:
        self._receive = receive
        self._send = send
        self.config = config
        self.method: str = scope["method"]
        self.target = _target(scope)
        self.http_version: str = scope.get("http_version", "1.1")
        self.headers: list[tuple[bytes, bytes]] = [
            (bytes(name).lower(), bytes(value)) for name, value in scope["headers"]
        ]
        #: The request's id (:mod:`trioweb.server.observe`): the client's
        #: ``X-Request-Id`` when sane, else a new one; None when the
        #: ``request_id`` setting is off.
        self.request_id: str | None = (
            observe.request_id(self.headers) if config.request_id else None
        )
        self.client = _address(scope.get("client"))
        self.server = _address(scope.get("server"))
        self.scheme: str = scope.get("scheme", "http")
        self.start_time = trio.current_time()
        self.max_body_size = config.max_body_size
        content_length: int | None = None
        chunked = expects_continue = False
        for name, value in self.headers:
            # (Past 19 digits no body limit applies, and int() has a limit.)
            if name == b"content-length" and value.isdigit() and len(value) < 20:
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect" and value.lower() == b"100-continue":
                expects_continue = True
        self.content_length = content_length
        # HTTP/2 and 3 frame a body without either header: the body is
        # then read to find out (a bodiless request's ends at once).
        self.has_body = (
            chunked
            or bool(content_length)
            or (content_length is None and self.http_version not in ("1.0", "1.1"))
        )
        self.expects_continue = expects_continue and self.has_body
        # The ASGI server owns the connection: what the engine decides here
        # is the server's, so these stay as they are.
        self.keep_alive = True
        self.close_after = False
        self.shutting_down = False
        self.head_sent = False
        self.finished = False
        self.disconnected = False
        self.status = 0
        self.bytes_sent = 0
        self.note: str | None = None
        self._nursery: trio.Nursery | None = None
        self._receiving = False
        # The body the receiver task read ahead, and its state.
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._body_in = False  # the receiver saw the body's last message
        self._body_done = not self.has_body  # the application read it all
        self._body_started = False
        self._body_start = 0.0
        self._body_waited = 0.0  # seconds spent waiting for body bytes
        self._received = 0
        self._arrived = trio.lowlevel.ParkingLot()  # body or disconnect
        self._space = trio.lowlevel.ParkingLot()  # the reader took body
        # The response.
        self._send_lock = trio.Lock()
        self._framing = writer.NO_BODY
        self._remaining = -1
        self._broken = False
        self._ending = False
        self._head_only = False
        self._callbacks: list[Callable[[], object]] | None = None
        self._shutdown_callbacks: list[Callable[[], object]] = []

    async def upgrade(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[trio.abc.Stream, bytes]:
        """Not possible here: under ASGI the server owns the connection, and
        a websocket arrives as a ``websocket`` scope, which this adapter
        does not serve yet."""
        raise RuntimeError(
            "a connection cannot be upgraded through the ASGI adapter: serve "
            "websockets with trioweb's own server (trioweb serve)"
        )

    @property
    def transport(self) -> None:
        """The connection belongs to the ASGI server: there is no stream to
        show (so no TLS details either)."""
        return None

    # -- the disconnect signal ------------------------------------------------

    #: Never: the connection is the ASGI server's (see below).
    connection_cancelled = False

    def cancel_connection_on_disconnect(self) -> bool:
        """False: the connection and its scope belong to the ASGI server.
        Use :meth:`on_disconnect` with a scope of your own (see
        :meth:`trioweb.Exchange.cancel_connection_on_disconnect`)."""
        return False

    def stop_cancelling_connection(self) -> None:
        """Nothing to stop: a disconnect never cancels the connection here
        (see :meth:`trioweb.Exchange.stop_cancelling_connection`)."""

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the client goes away during this
        exchange (see :meth:`trioweb.Exchange.on_disconnect`)."""
        if self.disconnected:
            if not self.finished:
                callback()
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def on_shutdown(self, callback: Callable[[], object]) -> None:
        """Kept for the interface: ASGI tells an application of a shutdown
        only after the server stopped serving (``lifespan.shutdown``), so
        this is never called. The ASGI server drains requests itself."""
        self._shutdown_callbacks.append(callback)

    def on_stop(self, callback: Callable[[], object]) -> None:
        """Kept for the interface: never called. Nothing here runs shielded
        from a connection's scope (:meth:`cancel_connection_on_disconnect`
        is False), and the connection belongs to the ASGI server."""

    def _mark_disconnected(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        self._arrived.unpark_all()
        if self.finished:
            self._callbacks = None
        elif not self._ending:
            self._fire_callbacks()

    def _fire_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        fire(callbacks)

    def abort(self) -> None:
        """End the response incomplete: later sends raise
        :exc:`~trioweb.StreamClosedError`, and the adapter returns to the
        server without the final body message, which the server takes as
        an incomplete response (it closes the connection or resets the
        stream). Does nothing once the response is complete."""
        if not self.finished:
            self._broken = True

    # -- the request body -------------------------------------------------------

    def _start_receiving(self) -> None:
        if not self._receiving and self._nursery is not None:
            self._receiving = True
            self._nursery.start_soon(self._receiver)

    async def _receiver(self) -> None:
        """Own ``receive()``: read the body ahead (bounded), then wait for
        ``http.disconnect``."""
        while True:
            while self._buffered >= READ_AHEAD_LIMIT:
                await self._space.park()
            try:
                message = await self._receive()
            except Exception:
                # A server that cannot say what happened: nobody to answer.
                log.debug("ASGI receive() failed", exc_info=True)
                self._mark_disconnected()
                return
            kind = message.get("type")
            if kind == "http.disconnect":
                self._mark_disconnected()
                return
            if kind == "http.request" and not self._body_in:
                body = bytes(message.get("body", b""))
                if body:
                    self._chunks.append(body)
                    self._buffered += len(body)
                if not message.get("more_body", False):
                    self._body_in = True
                self._arrived.unpark_all()

    @property
    def body_complete(self) -> bool:
        """True when the whole request body has been read (or there is none)."""
        return self._body_done

    async def receive_body(self) -> bytes:
        """Return the next chunk of the request body, or ``b""`` at its end.

        Raises :exc:`~trioweb.HTTPInputError` 413 past
        :attr:`max_body_size` (before reading, when ``Content-Length`` says
        so) and 408 when no body arrives within ``body_timeout``, the body
        arrives slower than ``min_body_rate`` or not whole within
        ``body_deadline`` (the engine's rule:
        :func:`trioweb.server.exchange.body_wait_deadline`);
        :exc:`~trioweb.StreamClosedError` if the client left.
        """
        if self._body_done:
            return b""
        if not self._body_started:
            self._body_started = True
            self._body_start = trio.current_time()
            length = self.content_length
            if length is not None and length > self.max_body_size:
                raise HTTPInputError(
                    413,
                    "Content-Length %d exceeds the %d-byte body limit",
                    length,
                    self.max_body_size,
                )
            self._start_receiving()
        now = trio.current_time()
        deadline, why = body_wait_deadline(
            self.config, now, self._received, self._body_waited, self._body_start
        )
        with trio.move_on_at(deadline) as scope:
            while not (self._chunks or self._body_in or self.disconnected):
                await self._arrived.park()
        self._body_waited += trio.current_time() - now
        if self.disconnected:
            raise StreamClosedError("the client closed mid-body")
        if scope.cancelled_caught:
            raise HTTPInputError(408, "%s", why)
        if not self._chunks:
            self._body_done = True
            return b""
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        self._space.unpark_all()
        self._received += len(chunk)
        if self._received > self.max_body_size:
            raise HTTPInputError(
                413, "request body exceeds %d bytes", self.max_body_size
            )
        return chunk

    async def read_body(self) -> bytes:
        """Read and return the whole request body (see :meth:`receive_body`)."""
        chunks = []
        while chunk := await self.receive_body():
            chunks.append(chunk)
        return b"".join(chunks)

    # -- the response ---------------------------------------------------------

    async def send_response(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        reason: bytes | None = None,
        end: bool = True,
    ) -> None:
        """Send ``http.response.start`` and the first ``http.response.body``.

        As :meth:`trioweb.Exchange.send_response`: the head is validated
        first (:exc:`ValueError`, and :exc:`~trioweb.server.writer.FramingError`
        for a body that does not match its ``Content-Length``), before
        anything is sent; HEAD, 1xx, 204 and 304 responses carry no body,
        and a HEAD response is complete at its head. The reason phrase is
        not sent (ASGI has none). Connection-specific headers are dropped:
        the server frames the response; so is ``Server``: the server
        adds its own.
        """
        if self.head_sent:
            raise RuntimeError("the response head was already sent")
        writer.check_final_status(status)
        config = self.config
        if self.request_id is not None or config.server_timing:
            headers = observe.response_headers(
                headers,
                self.request_id,
                (trio.current_time() - self.start_time) * 1000
                if config.server_timing
                else None,
            )
        _, framing, length, _ = writer.encode_head(
            status,
            reason if reason is not None else b"",
            headers,
            head_request=self.method == "HEAD",
            http11=True,
            close=False,
        )
        fields = []
        for name, value in headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == b"content-length" and (
                framing == writer.CHUNKED or status == 204 or status < 200
            ):
                continue
            fields.append((lower, value))
        if self.disconnected or self._broken:
            raise StreamClosedError()
        self._framing = framing
        self._remaining = length
        try:
            body = self._frame(body, end)
        except writer.FramingError:
            self._framing = writer.NO_BODY
            raise
        self.head_sent = True
        self.status = status
        start = {"type": "http.response.start", "status": status, "headers": fields}
        if end:
            await self._send_final(start, body)
        elif framing == writer.NO_BODY and self.method == "HEAD":
            # Complete at its head, as with the engine: the application's
            # work on a body nobody will receive is cancelled.
            self._head_only = True
            await self._send_final(start, b"")
            self._fire_callbacks()
        else:
            # An empty body message too: some servers send the head only
            # with the first body message, and flush() means sent.
            await self._send_messages(start, _body(body, more=True))
        self.bytes_sent += len(body)

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        """Send more of the body as ``http.response.body``; ``end=True``
        completes it (see :meth:`trioweb.Exchange.send_body`)."""
        if not self.head_sent:
            raise RuntimeError("send_response() must be called first")
        if self._head_only:
            await trio.lowlevel.checkpoint()
            return
        if self.finished or self._ending:
            raise RuntimeError("the response is already complete")
        if self.disconnected or self._broken:
            raise StreamClosedError()
        data = self._frame(data, end)
        if end:
            await self._send_final(None, data)
        elif data:
            await self._send_messages(_body(data, more=True))
        self.bytes_sent += len(data)

    def _frame(self, data: bytes, end: bool) -> bytes:
        if self._framing == writer.NO_BODY:
            return b""
        if self._framing == writer.LENGTH:
            self._remaining = count_down_length(self._remaining, len(data), end)
        return data

    async def _send_final(self, start: Message | None, data: bytes) -> None:
        # As the engine's: complete once the server took the last message.
        # An http.disconnect the server queues while taking it (hypercorn
        # does, as the response completes) is then no abandonment.
        self._ending = True
        try:
            messages = [_body(data, more=False)]
            if start is not None:
                messages.insert(0, start)
            await self._send_messages(*messages)
        except BaseException:
            self._ending = False
            if self.disconnected:
                self._fire_callbacks()
            raise
        self._ending = False
        self.finished = True
        if self.disconnected and not self._head_only:
            self._callbacks = None

    async def _send_messages(self, *messages: Message) -> None:
        """``send()`` each message, in order, under the write timeout.

        Sends are serialized (a handler may flush from several tasks).
        Raises StreamClosedError if the server says the client is gone or
        the send timed out; the response is broken then.
        """
        async with self._send_lock:
            if self._broken:
                raise StreamClosedError()
            failure: BaseException | None = None
            try:
                with trio.move_on_after(self.config.write_timeout) as scope:
                    for message in messages:
                        try:
                            await self._send(message)
                        except OSError as exc:
                            failure = exc
                            break
            except trio.Cancelled:
                # Cut off mid-message: nothing more can be sent sensibly.
                self._broken = True
                raise
            if failure is None and not scope.cancelled_caught:
                return
            self._broken = True
            self._mark_disconnected()
            if scope.cancelled_caught:
                raise StreamClosedError(
                    f"write timed out after {self.config.write_timeout} s"
                )
            raise StreamClosedError() from failure


def _body(data: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}
