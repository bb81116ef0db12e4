"""The exchange: one request and its response, as the connection engine
hands them to the application.

This is the seam between the engine (:mod:`trioweb.server.http1`) and whatever it
serves: :class:`trioweb.Application`, an ASGI adapter, or a ten-line
function in a test. An :class:`Exchange` carries the parsed request head, a
bounded body reader, a way to send the response that returns when the bytes
are sent, and the disconnect signal. The connection that made it does the
I/O; the exchange keeps the rules of one request: its body limit and
deadlines, its framing, whether it is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import trio

from ..dates import http_date
from ..errors import HTTPInputError, StreamClosedError
from ..httputil import reason_phrase
from . import observe, writer
from .config import ServerConfig
from .events import NEED_DATA, Event, ProtocolError, RequestHead

__all__ = ["Connection", "Exchange", "ExchangeApp"]

error_log = logging.getLogger("trioweb.error")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A body this large goes out as it is, after its head (and chunk line):
# joining them would copy it, and a slow reader would then hold the response
# twice until the write timeout.
_NO_COPY = 64 * 1024


class ExchangeApp(Protocol):
    """What the connection engine serves: anything with ``handle_exchange``.

    ``handle_exchange`` is awaited once per request. It should send a
    complete response through the exchange; if it returns without doing so
    the engine answers 500 (nothing sent yet) or ends the response it began.
    """

    async def handle_exchange(self, exchange: Exchange) -> None: ...


class Connection(Protocol):
    """What an exchange needs of the connection that made it: the I/O.

    :class:`~trioweb.server.http1.HTTP1Connection` is the one there is;
    naming the interface here keeps this module from importing the engine
    that imports it.
    """

    config: ServerConfig
    client: tuple[str, int] | None
    server: tuple[str, int] | None
    scheme: str
    stream: trio.abc.Stream
    #: The response being written must be the last on this connection.
    must_close: bool
    #: The peer sent EOF (or reset the connection).
    peer_closed: bool

    @property
    def broken(self) -> bool:
        """A send failed or was cut short: nothing more can be sent."""

    @property
    def sending(self) -> bool:
        """Whether a send is in progress."""

    def limit_body(self, limit: int) -> None:
        """Refuse a chunked body that grows past ``limit`` bytes."""

    async def next_event(self) -> Event:
        """The next request event (a body piece, END), waiting for bytes."""

    async def next_event_now(self) -> Event:
        """The next request event if its bytes are here, else NEED_DATA."""

    async def send_bytes(
        self, data: bytes | tuple[bytes, ...], exchange: Exchange | None
    ) -> None:
        """Send ``data`` under the write timeout; StreamClosedError if not."""

    def abort_writes(self) -> None:
        """Give up on the response: the framing on the wire is lost."""

    def cancel(self) -> None:
        """Cancel the connection's scope (the application runs inside it)."""

    async def stop_reading(self) -> bytes:
        """Stop reading for good (an upgrade); the bytes read, not parsed."""

    def unread_body_forces_close(self, exchange: Exchange) -> bool:
        """Whether answering with the body unread must end the connection."""


def body_wait_deadline(
    config: ServerConfig, now: float, received: int, waited: float, started: float
) -> tuple[float, str]:
    """When a wait for more request body that starts ``now`` must end, and
    what the 408 then says; for every exchange (the engine's, the ASGI
    adapter's).

    Three bounds, the earliest wins: ``body_timeout`` for this wait;
    ``min_body_rate`` (Kestrel's rule: after ``min_body_rate_grace``
    seconds, the body must have arrived at that many bytes a second on
    average, counting only the ``waited`` seconds spent waiting for it, so a
    slow application does not count against its client); ``body_deadline``
    for the whole body, from ``started``. Without the rate, a client
    dripping a byte every few seconds holds a connection slot for as long as
    it likes.
    """
    deadline = now + config.body_timeout
    why = f"no body bytes for {config.body_timeout:g} s"
    rate = config.min_body_rate
    if rate:
        by = now + max(config.min_body_rate_grace, received / rate) - waited
        if by < deadline:
            deadline = by
            why = f"request body slower than {rate:g} bytes/s"
    if config.body_deadline is not None:
        by = started + config.body_deadline
        if by < deadline:
            deadline = by
            why = f"request body not complete in {config.body_deadline:g} s"
    return deadline, why


def count_down_length(remaining: int, size: int, end: bool) -> int:
    """What is left of a ``Content-Length`` body after ``size`` more bytes;
    :exc:`~trioweb.server.writer.FramingError` for too many, or, with ``end``, too
    few."""
    left = remaining - size
    if left < 0 or (end and left):
        raise writer.FramingError(
            f"response body of {size} more bytes, Content-Length allows {remaining}"
            if left < 0
            else f"response ended {left} bytes short of its Content-Length"
        )
    return left


def fire(callbacks: list[Callable[[], object]] | None) -> None:
    """Call each of ``callbacks`` (disconnect or shutdown signals); one that
    raises is logged, and the others still run."""
    for callback in callbacks or ():
        try:
            callback()
        except Exception:
            error_log.exception("callback %r raised", callback)


class Exchange:
    """One request and its response, as the connection engine sees them.

    The application gets one per request. Reading:

    * ``method``, ``target``, ``http_version`` (``"1.1"``), ``headers`` (a
      list of ``(lowercase name, value)`` byte pairs, in order), ``client``
      and ``server`` addresses, ``scheme``.
    * :meth:`receive_body` returns the body chunk by chunk, and
      :meth:`read_body` all of it, both bounded by :attr:`max_body_size` and
      the server's body timeout.

    Writing: :meth:`send_response` sends the status line, headers and the
    first (often the only) piece of body in one ``send_all``;
    :meth:`send_body` sends the rest. Both return when the bytes have been
    handed to the stream, and raise :exc:`StreamClosedError` if the peer is
    gone.

    The disconnect signal: :attr:`disconnected` becomes true, and every
    callback given to :meth:`on_disconnect` is called once, the moment the
    peer closes or resets the connection while this exchange is active
    and its response is not complete (its last byte not yet handed to the
    stream). The web layer passes its handler's ``cancel_scope.cancel``
    there. The callbacks are also called, without :attr:`disconnected`,
    when a HEAD response is completed at its head while the application
    meant to stream a body nobody will receive (see :meth:`send_response`).

    Also: :meth:`on_shutdown` (the server began a graceful shutdown),
    :meth:`abort` (end the connection with the response incomplete),
    :meth:`upgrade` (switch the connection to another protocol, as a
    websocket does), :attr:`note` (a word the access log adds to the
    request's line), :attr:`request_id` (see :mod:`trioweb.server.observe`) and
    :attr:`transport` (the connection's stream: TLS details).
    """

    __slots__ = (
        "_body_done",
        "_body_start",
        "_body_started",
        "_body_waited",
        "_callbacks",
        "_cancels_connection",
        "_conn",
        "_ending",
        "_framing",
        "_head_only",
        "_received",
        "_remaining",
        "_shutdown_callbacks",
        "_stop_callbacks",
        "_stopped",
        "bytes_sent",
        "client",
        "close_after",
        "connection_cancelled",
        "content_length",
        "disconnected",
        "expects_continue",
        "finished",
        "has_body",
        "head_sent",
        "headers",
        "http_version",
        "keep_alive",
        "max_body_size",
        "method",
        "note",
        "request_id",
        "scheme",
        "server",
        "shutting_down",
        "start_time",
        "status",
        "target",
    )

    def __init__(
        self,
        conn: Connection,
        head: RequestHead,
        *,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expects_continue: bool,
    ) -> None:
        self._conn = conn
        self.method: str = head.method.decode("ascii")
        self.target: str = head.target.decode("latin-1")
        self.http_version: str = head.http_version.decode("ascii")
        self.headers: list[tuple[bytes, bytes]] = head.headers
        self.client = conn.client
        self.server = conn.server
        self.scheme = conn.scheme
        self.start_time = trio.current_time()
        #: The request's id (see trioweb.server.observe), or None if the server's
        #: ``request_id`` setting is off.
        self.request_id: str | None = (
            observe.request_id(self.headers) if conn.config.request_id else None
        )
        #: The body limit for this request. Starts at the server's
        #: ``max_body_size``; the application may change it before the first
        #: body read (the web layer applies the handler's ``max_body_size``).
        self.max_body_size: int = conn.config.max_body_size
        #: ``Content-Length`` of the request, or None if absent.
        self.content_length = content_length
        #: Whether the request has a body at all (a non-zero length or chunked).
        self.has_body: bool = chunked or bool(content_length)
        #: False when the response must end the connection: the client asked
        #: (``Connection: close``, HTTP/1.0), it is the connection's last
        #: request, or the server is shutting down.
        self.keep_alive = keep_alive
        #: The client sent ``Expect: 100-continue`` and has not been answered.
        self.expects_continue = expects_continue
        #: The connection ends after this response (decided when it is sent).
        self.close_after = False
        self.head_sent = False
        self.finished = False
        self.disconnected = False
        self.status = 0
        self.bytes_sent = 0
        self._framing = writer.NO_BODY
        self._remaining = -1
        self._received = 0
        self._body_started = False
        self._body_start = 0.0  # when the body was first read
        self._body_waited = 0.0  # seconds spent waiting for body bytes
        self._body_done = not self.has_body
        self._callbacks: list[Callable[[], object]] | None = None
        self._cancels_connection = False
        #: A disconnect cancelled the connection's scope, which the
        #: application runs in (see :meth:`cancel_connection_on_disconnect`).
        self.connection_cancelled = False
        #: True once the server began a graceful shutdown (see on_shutdown).
        self.shutting_down = False
        self._shutdown_callbacks: list[Callable[[], object]] | None = None
        # See on_stop.
        self._stopped = False
        self._stop_callbacks: list[Callable[[], object]] | None = None
        #: A word for the access log, shown in brackets after the request's
        #: line: why it ended as it did (``timeout``, ``shed``).
        self.note: str | None = None
        # The last bytes of the response are being sent (see _send_final).
        self._ending = False
        # A HEAD response ended at its head while the app meant to stream.
        self._head_only = False

    @property
    def config(self) -> ServerConfig:
        """The server's settings (read-only)."""
        return self._conn.config

    @property
    def transport(self) -> trio.abc.Stream:
        """The connection's stream: a :class:`trio.SSLStream` under TLS (its
        peer certificate, cipher, ...). Read from it, or write to it, and
        the connection breaks: use the methods here."""
        return self._conn.stream

    # -- the disconnect signal ------------------------------------------------

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the peer goes away during this exchange.

        If the peer is already gone (and the response is not complete), it
        is called at once. Callbacks run synchronously in whichever task
        saw the client leave (the run's hang-up watcher, the connection's
        reader, or the connection's own task reading the body), so they must
        be quick and must not raise: ``cancel_scope.cancel`` is the intended
        one.
        """
        if self.disconnected:
            if not self.finished:
                callback()
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def _mark_disconnected(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        if self.finished:
            # The client has its whole response: it did not abandon the
            # request, so whatever the handler still does after finish()
            # (bookkeeping, on_finish) is not cancelled.
            self._callbacks = None
        elif not self._ending:
            self._client_left()
        # else: the last bytes are being sent; _send_final decides, by
        # whether they were handed to the stream, which of the two this is.

    def cancel_connection_on_disconnect(self) -> bool:
        """Have a disconnect cancel the connection's own cancel scope, which
        the application runs inside; True if this exchange can.

        The cheap way to be cancelled when the client leaves: no scope of
        your own, no callback. But the cancellation is the connection's, not
        yours to catch: it runs on up through ``handle_exchange`` and ends
        the connection (which is over anyway: the client left). Code that
        must run after it -- a hook with its own deadline -- runs in a
        ``finally`` under a shield, when :attr:`connection_cancelled` says
        the scope was cancelled. The web layer uses this for its handlers.
        """
        if not self.disconnected:
            self._cancels_connection = True
            return True
        return False

    def stop_cancelling_connection(self) -> None:
        """The run that :meth:`cancel_connection_on_disconnect` put in the
        connection's scope is over: a disconnect from now on cancels
        nothing (it still fires :meth:`on_disconnect` callbacks and sets
        :attr:`disconnected`).

        What follows the run -- hooks with deadlines of their own -- must
        not be cut short by a client that leaves meanwhile, even when the
        response is not complete (an application that failed after the head
        went out aborted it).
        """
        self._cancels_connection = False

    def _client_left(self) -> None:
        """The client left before its response was complete."""
        self._fire_callbacks()
        if self._cancels_connection:
            self.connection_cancelled = True
            self._conn.cancel()

    def _fire_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        fire(callbacks)

    # -- the shutdown signal and aborting --------------------------------------

    def on_shutdown(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the server begins a graceful shutdown.

        Called at once if it already has. Like :meth:`on_disconnect`, the
        callback runs synchronously and must be quick and not raise. The
        web layer uses it to stop waiting in a concurrency queue: a request
        that has not started when shutdown begins is answered 503 at once
        instead of holding the graceful period.
        """
        if self.shutting_down:
            callback()
        elif self._shutdown_callbacks is None:
            self._shutdown_callbacks = [callback]
        else:
            self._shutdown_callbacks.append(callback)

    def _begin_shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        callbacks, self._shutdown_callbacks = self._shutdown_callbacks, None
        fire(callbacks)

    def on_stop(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the server stops this connection for
        good: a graceful shutdown's period ran out, or a forced stop.

        The connection's scope is cancelled then, which reaches everything
        the application runs, except what it runs under a shield. Code that
        shields itself from the connection's cancellation -- the web layer's
        hooks after a disconnect, see :meth:`cancel_connection_on_disconnect`
        -- registers its shield's ``cancel`` here, so that no shield outlasts
        the server's stop. Called at once if the stop came already. Runs
        synchronously; must be quick and not raise.
        """
        if self._stopped:
            callback()
        elif self._stop_callbacks is None:
            self._stop_callbacks = [callback]
        else:
            self._stop_callbacks.append(callback)

    def _stop(self) -> None:
        self._stopped = True
        callbacks, self._stop_callbacks = self._stop_callbacks, None
        fire(callbacks)

    # -- the request body -------------------------------------------------------

    @property
    def body_complete(self) -> bool:
        """True when the whole request body has been read (or there is none)."""
        return self._body_done

    async def receive_body(self) -> bytes:
        """Return the next chunk of the request body, or ``b""`` at its end.

        Raises :exc:`HTTPInputError` with 413 when the body is larger than
        :attr:`max_body_size` (before reading anything when Content-Length
        says so, else as soon as the chunks add up past it), 408 when no body
        bytes arrive within the body timeout or the body arrives slower than
        the server's minimum rate (see :func:`body_wait_deadline`), and 400
        (or 413) for broken chunked
        framing; the connection is closed after the error response. Raises
        :exc:`StreamClosedError` if the peer closes mid-body.

        If the client sent ``Expect: 100-continue``, the first call sends the
        ``100 Continue`` it is waiting for, and only if the size check passed.
        """
        if self._body_done:
            return b""
        conn = self._conn
        if not self._body_started:
            self._body_started = True
            self._body_start = trio.current_time()
            length = self.content_length
            if length is not None and length > self.max_body_size:
                conn.must_close = True
                raise HTTPInputError(
                    413,
                    "Content-Length %d exceeds the %d-byte body limit",
                    length,
                    self.max_body_size,
                )
            conn.limit_body(self.max_body_size)
            if self.expects_continue and not self.head_sent:
                self.expects_continue = False
                await conn.send_bytes(_CONTINUE, self)
        if self.disconnected:
            raise StreamClosedError()
        try:
            # Bytes that are here already need no deadline: a body that
            # arrives as fast as it is read costs no cancel scope a piece.
            event = await conn.next_event_now()
            if event is NEED_DATA:
                event = await self._wait_for_body(conn)
        except ProtocolError as exc:
            conn.must_close = True
            if conn.peer_closed:
                self._mark_disconnected()
                raise StreamClosedError("the peer closed mid-body") from exc
            raise HTTPInputError(
                exc.status, "bad request body: %s", exc.detail
            ) from exc
        if type(event) is bytes:
            self._received += len(event)
            if self._received > self.max_body_size:
                conn.must_close = True
                raise HTTPInputError(
                    413, "request body exceeds %d bytes", self.max_body_size
                )
            return event
        # END (trailers are accepted and ignored).
        self._body_done = True
        return b""

    async def _wait_for_body(self, conn: Connection) -> Event:
        """Wait for the next body event, under the body's deadlines."""
        now = trio.current_time()
        deadline, why = body_wait_deadline(
            conn.config, now, self._received, self._body_waited, self._body_start
        )
        with trio.CancelScope(deadline=deadline) as scope:
            event = await conn.next_event()
        self._body_waited += trio.current_time() - now
        if scope.cancelled_caught:
            conn.must_close = True
            raise HTTPInputError(408, "%s", why)
        return event

    async def read_body(self) -> bytes:
        """Read and return the whole request body (see :meth:`receive_body`)."""
        if self._body_done:
            return b""
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
        """Send the status line, headers and ``body`` in one ``send_all``.

        With ``end=True`` (the default) the response is complete. With
        ``end=False`` more body follows through :meth:`send_body`. Framing
        follows the headers: with a ``Content-Length`` the body must add up
        to it; without one an HTTP/1.1 response is sent chunked and an
        HTTP/1.0 response is delimited by closing the connection.

        The engine adds ``Date`` (unless ``headers`` hold one) and, when the
        connection must end, ``Connection: close``. For HEAD requests and
        1xx/204/304 responses the body is dropped (the headers are kept, so
        HEAD can announce the length GET would send). A HEAD response is
        complete once its head is sent, even with ``end=False``: the
        :meth:`on_disconnect` callbacks are called then (the application's
        work on a body nobody will receive is cancelled, as for a
        disconnect, though the client is still there), and later
        :meth:`send_body` calls send nothing.

        Raises, before anything is sent (so the caller can still answer
        500): :exc:`ValueError` for a header name that is not a token, a
        header value or reason phrase with CR, LF, NUL or another control
        character, or a ``Content-Length`` that is not plain digits;
        :exc:`~trioweb.server.writer.FramingError` for a ``body`` longer than the
        ``Content-Length`` (or, with ``end=True``, shorter).
        """
        if self.head_sent:
            raise RuntimeError("the response head was already sent")
        writer.check_final_status(status)
        conn = self._conn
        close = (
            not self.keep_alive
            or conn.must_close
            or conn.unread_body_forces_close(self)
        )
        if reason is None:
            reason = reason_phrase(status).encode()
        config = conn.config
        if self.request_id is not None or config.server_timing:
            headers = observe.response_headers(
                headers,
                self.request_id,
                (trio.current_time() - self.start_time) * 1000
                if config.server_timing
                else None,
            )
        head, framing, length, close = writer.encode_head(
            status,
            reason,
            headers,
            head_request=self.method == "HEAD",
            http11=self.http_version == "1.1",
            close=close,
            date=http_date(),
        )
        if self.disconnected:
            raise StreamClosedError()
        self._framing = framing
        self._remaining = length
        try:
            framed = self._frame(body, end)
        except writer.FramingError:
            self._framing = writer.NO_BODY
            raise
        out: bytes | tuple[bytes, ...]
        if isinstance(framed, tuple):
            out = (head, *framed)
        elif len(framed) >= _NO_COPY:
            out = (head, framed)
        else:
            out = head + framed
        self.head_sent = True
        self.expects_continue = False
        self.status = status
        self.close_after = close
        if end:
            await self._send_final(out)
        elif framing == writer.NO_BODY and self.method == "HEAD":
            self._head_only = True
            await self._send_final(out)
            # The client has all it will get; the application's work on
            # the body is cancelled as for a disconnect (it is not one: the
            # access log says 200 and the connection is kept).
            self._fire_callbacks()
        else:
            await conn.send_bytes(out, self)
        if framing != writer.NO_BODY:
            self.bytes_sent += len(body)

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        """Send more of the response body; ``end=True`` completes it.

        Raises :exc:`~trioweb.server.writer.FramingError` if the body outgrows its
        ``Content-Length`` (or, with ``end=True``, falls short of it).
        After a HEAD response's head it sends nothing (and is still a
        checkpoint, so a streaming loop can be cancelled), and raises
        :exc:`StreamClosedError` once the client is gone.
        """
        if not self.head_sent:
            raise RuntimeError("send_response() must be called first")
        if self._head_only:
            await trio.lowlevel.checkpoint()
            if self.disconnected or self._conn.broken:
                # A handler that runs to completion (cancel_on_disconnect =
                # False) learns here that its client is gone, as on GET;
                # otherwise a streaming loop would hold the connection, its
                # slot and the shutdown forever.
                raise StreamClosedError()
            return
        if self.finished or self._ending:
            raise RuntimeError("the response is already complete")
        if self.disconnected or self._conn.broken:
            # (Broken: a send of this response was cancelled or failed, so
            # its framing is lost; it cannot be completed, not even empty.)
            raise StreamClosedError()
        out = self._frame(data, end)
        if end:
            await self._send_final(out)
        elif out:
            await self._conn.send_bytes(out, self)
        if self._framing != writer.NO_BODY:
            self.bytes_sent += len(data)

    async def _send_final(self, data: bytes | tuple[bytes, ...]) -> None:
        """Send the last bytes of the response; it is then complete.

        Complete means handed to the stream: ``send_all`` may yield after
        the last byte went out, and a client that reads the response and
        closes in that moment has not abandoned the request. So a
        disconnect seen during this send cancels nothing if the send then
        succeeds, and fires the callbacks only if it fails.
        """
        if not data and not self._conn.sending:
            self.finished = True
            return
        # (Empty data behind another task's send: complete once that is.)
        self._ending = True
        try:
            await self._conn.send_bytes(data, self)
        except BaseException:
            self._ending = False
            if self.disconnected:
                self._client_left()
            raise
        self._ending = False
        self.finished = True
        if self.disconnected and not self._head_only:
            # The client left after it had everything: nothing to cancel.
            self._callbacks = None

    def abort(self) -> None:
        """End the connection without completing the response.

        For an application that fails after the head went out: the rest of
        the body cannot be sent and an error page can no longer be, and
        ending the body normally would make a truncated response look
        complete. The connection is closed without the terminating chunk
        (or with a ``Content-Length`` body short), so the client and any
        cache see a broken response; the access log says 444. Later sends
        raise :exc:`StreamClosedError`. Does nothing once the response is
        complete.
        """
        if not self.finished:
            self._conn.abort_writes()

    async def upgrade(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[trio.abc.Stream, bytes]:
        """Answer ``101 Switching Protocols`` and hand over the connection.

        Returns ``(stream, received)``: the stream, now the caller's to read
        and write, and the bytes the client sent after this request (already
        read from the stream). The engine stops reading first, so the caller
        is the only reader; it sends nothing more, and when the application
        returns the connection ends (the engine closes the stream). The
        exchange counts as complete: the access log shows 101, the time
        until the application returned, and :attr:`note`.

        Only for a request without a body, before any response: for a
        request with a body it raises :exc:`HTTPInputError` (400, nothing
        sent). Raises :exc:`StreamClosedError` if the client is already
        gone, and :exc:`ValueError` (nothing sent) for an invalid header.
        """
        if self.head_sent:
            raise RuntimeError("upgrade(): a response was already started")
        if self.has_body:
            # The client's mistake, not the application's: a 400 (and the
            # connection closed after it, as for any malformed request).
            raise HTTPInputError(
                400,
                "upgrade(): the request has a body; refuse such a request "
                "before upgrading",
            )
        head, _, _, _ = writer.encode_head(
            101,
            b"Switching Protocols",
            headers,
            head_request=False,
            http11=True,
            close=False,
            date=http_date(),
        )
        if self.disconnected:
            raise StreamClosedError()
        conn = self._conn
        conn.must_close = True
        self.head_sent = True
        self.status = 101
        received = await conn.stop_reading()
        self._ending = True
        try:
            await conn.send_bytes(head, self)
        finally:
            self._ending = False
        self.finished = True
        self._callbacks = None
        return conn.stream, received

    def _frame(self, data: bytes, end: bool) -> bytes | tuple[bytes, ...]:
        """``data`` framed for the wire: bytes, or for a large ``data`` the
        pieces to send one after the other (see ``_NO_COPY``)."""
        framing = self._framing
        if framing == writer.LENGTH:
            self._remaining = count_down_length(self._remaining, len(data), end)
        elif framing == writer.NO_BODY:
            return b""
        if framing == writer.CHUNKED:
            if len(data) >= _NO_COPY:
                tail = b"\r\n" + writer.LAST_CHUNK if end else b"\r\n"
                return (b"%x\r\n" % len(data), data, tail)
            out = writer.chunk(data)
            return out + writer.LAST_CHUNK if end else out
        return data
