"""One HTTP/1.1 connection: a request parser and the response writer over a
trio stream.

This is the connection engine. It knows nothing about handlers: for each
request it hands the application one :class:`Exchange` -- the parsed request
head, a body reader, a way to send the response, and the disconnect signal --
and awaits ``app.handle_exchange(exchange)``. Anything that can speak that
small interface can be served: :class:`trioweb.Application`, an ASGI adapter,
or a ten-line function in a test.

Two tasks serve a connection, both in the connection's own nursery
(docs/design.md, the contract, rule 1):

* the **reader** owns ``stream.receive_some``. It appends what arrives to a
  bounded buffer and wakes whoever waits for bytes. Because it keeps reading
  while a handler runs, it notices at once when the peer closes or resets the
  connection, and fires the active exchange's disconnect signal. When the
  buffer is full (a client pipelining faster than we answer) it stops reading
  until the buffer drains: memory stays bounded. It still watches for the
  peer hanging up then, through the kernel (:mod:`trioweb._hangup`; Linux
  sockets), since the FIN is queued behind bytes it will not read yet.
* the **main task** feeds the buffer to the request parser
  (:mod:`trioweb.parsers`), enforces the limits, runs the application for
  each request, one at a time and in order (pipelining), and writes the
  responses (:mod:`trioweb.writer`).

Every wait has a deadline (contract 4): the idle wait between requests
(``keep_alive_timeout``), reading a request head (``header_timeout``), each
wait for body bytes (``body_timeout``), and each ``send_all``
(``write_timeout``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

import trio

from . import logs, observe, writer
from ._hangup import wait_for_hangup
from .config import ServerConfig
from .dates import http_date
from .errors import HTTPError, HTTPInputError, StreamClosedError
from .headrules import check_head
from .httputil import reason_phrase
from .parsers import (
    CLOSED,
    END,
    NEED_DATA,
    Event,
    ProtocolError,
    RequestHead,
    make_parser,
)

__all__ = ["Exchange", "ExchangeApp", "HTTP1Connection"]

access_log = logging.getLogger("trioweb.access")
error_log = logging.getLogger("trioweb.error")

#: How much one ``receive_some`` asks for.
RECEIVE_SIZE = 64 * 1024
#: The reader stops reading when this much is buffered and not yet parsed.
READ_AHEAD_LIMIT = 64 * 1024

# The exceptions a trio stream raises when the peer is gone or the stream is
# already closed. They all mean the same thing to a handler: StreamClosedError.
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        #: The refused request was a HEAD: its answer carries no body.
        self.head = False


# What a connection is doing; the timer's expiry means different things.
_IDLE = "idle"  # waiting, with nothing received, for the next request
_HEAD = "head"  # reading a request head
_APP = "app"  # running the application (the timer is off)
_DONE = "done"


class ExchangeApp(Protocol):
    """What the connection engine serves: anything with ``handle_exchange``.

    ``handle_exchange`` is awaited once per request. It should send a
    complete response through the exchange; if it returns without doing so
    the engine answers 500 (nothing sent yet) or ends the response it began.
    """

    async def handle_exchange(self, exchange: Exchange) -> None: ...


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
    request's line), :attr:`request_id` (see :mod:`trioweb.observe`) and
    :attr:`transport` (the connection's stream: TLS details).
    """

    __slots__ = (
        "_body_done",
        "_body_start",
        "_body_started",
        "_body_waited",
        "_callbacks",
        "_conn",
        "_ending",
        "_framing",
        "_head_only",
        "_received",
        "_remaining",
        "_shutdown_callbacks",
        "bytes_sent",
        "client",
        "close_after",
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
        conn: HTTP1Connection,
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
        #: The request's id (see trioweb.observe), or None if the server's
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
        #: True once the server began a graceful shutdown (see on_shutdown).
        self.shutting_down = False
        self._shutdown_callbacks: list[Callable[[], object]] | None = None
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
        is called at once. Callbacks run
        synchronously inside the connection's reader task, so they must be
        quick and must not raise: ``cancel_scope.cancel`` is the intended
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
            self._fire_callbacks()
        # else: the last bytes are being sent; _send_final decides, by
        # whether they were handed to the stream, which of the two this is.

    def _fire_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                error_log.exception("disconnect callback %r raised", callback)

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
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                error_log.exception("shutdown callback %r raised", callback)

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
        the server's minimum rate (see :meth:`_body_wait_deadline`), and 400
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
            conn.parser.limit_body(self.max_body_size)
            if self.expects_continue and not self.head_sent:
                self.expects_continue = False
                await conn.send_bytes(_CONTINUE, self)
        if self.disconnected:
            raise StreamClosedError()
        now = trio.current_time()
        deadline, why = self._body_wait_deadline(now)
        with trio.CancelScope(deadline=deadline) as scope:
            try:
                event = await conn.next_event()
            except ProtocolError as exc:
                conn.must_close = True
                if conn.peer_closed:
                    self._mark_disconnected()
                    raise StreamClosedError("the peer closed mid-body") from exc
                raise HTTPInputError(
                    exc.status, "bad request body: %s", exc.detail
                ) from exc
        self._body_waited += trio.current_time() - now
        if scope.cancelled_caught:
            conn.must_close = True
            raise HTTPInputError(408, "%s", why)
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

    def _body_wait_deadline(self, now: float) -> tuple[float, str]:
        """When the wait for more body bytes that starts ``now`` must end,
        and what the 408 then says.

        Three bounds, the earliest wins: ``body_timeout`` for this wait;
        ``min_body_rate`` (Kestrel's rule: after ``min_body_rate_grace``
        seconds, the body must have arrived at that many bytes a second on
        average, counting only the time spent waiting for it, so a slow
        application does not count against its client); ``body_deadline``
        for the whole body. Without the rate, a client dripping a byte every
        few seconds holds a connection slot for as long as it likes.
        """
        config = self._conn.config
        deadline = now + config.body_timeout
        why = f"no body bytes for {config.body_timeout:g} s"
        rate = config.min_body_rate
        if rate:
            grace = config.min_body_rate_grace
            by = now + max(grace, self._received / rate) - self._body_waited
            if by < deadline:
                deadline = by
                why = f"request body slower than {rate:g} bytes/s"
        if config.body_deadline is not None:
            by = self._body_start + config.body_deadline
            if by < deadline:
                deadline = by
                why = f"request body not complete in {config.body_deadline:g} s"
        return deadline, why

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
        :exc:`~trioweb.writer.FramingError` for a ``body`` longer than the
        ``Content-Length`` (or, with ``end=True``, shorter).
        """
        if self.head_sent:
            raise RuntimeError("the response head was already sent")
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
            out = head + self._frame(body, end)
        except writer.FramingError:
            self._framing = writer.NO_BODY
            raise
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

        Raises :exc:`~trioweb.writer.FramingError` if the body outgrows its
        ``Content-Length`` (or, with ``end=True``, falls short of it).
        After a HEAD response's head it sends nothing (and is still a
        checkpoint, so a streaming loop can be cancelled), and raises
        :exc:`StreamClosedError` once the client is gone.
        """
        if not self.head_sent:
            raise RuntimeError("send_response() must be called first")
        if self._head_only:
            await trio.lowlevel.checkpoint()
            if self.disconnected or self._conn._broken:
                # A handler that runs to completion (cancel_on_disconnect =
                # False) learns here that its client is gone, as on GET;
                # otherwise a streaming loop would hold the connection, its
                # slot and the shutdown forever.
                raise StreamClosedError()
            return
        if self.finished or self._ending:
            raise RuntimeError("the response is already complete")
        if self.disconnected:
            raise StreamClosedError()
        out = self._frame(data, end)
        if end:
            await self._send_final(out)
        elif out:
            await self._conn.send_bytes(out, self)
        if self._framing != writer.NO_BODY:
            self.bytes_sent += len(data)

    async def _send_final(self, data: bytes) -> None:
        """Send the last bytes of the response; it is then complete.

        Complete means handed to the stream: ``send_all`` may yield after
        the last byte went out, and a client that reads the response and
        closes in that moment has not abandoned the request. So a
        disconnect seen during this send cancels nothing if the send then
        succeeds, and fires the callbacks only if it fails.
        """
        if not data and not self._conn._send_lock.locked():
            self.finished = True
            return
        # (Empty data behind another task's send: complete once that is.)
        self._ending = True
        try:
            await self._conn.send_bytes(data, self)
        except BaseException:
            self._ending = False
            if self.disconnected:
                self._fire_callbacks()
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
            self._conn._abort_writes(None)

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

        Only for a request without a body, before any response. Raises
        :exc:`StreamClosedError` if the client is already gone, and
        :exc:`ValueError` (nothing sent) for an invalid header.
        """
        if self.head_sent:
            raise RuntimeError("upgrade(): a response was already started")
        if self.has_body:
            raise RuntimeError("upgrade(): the request has a body")
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

    def _frame(self, data: bytes, end: bool) -> bytes:
        framing = self._framing
        if framing == writer.LENGTH:
            remaining = self._remaining - len(data)
            if remaining < 0 or (end and remaining):
                raise writer.FramingError(
                    f"response body of {self._remaining - remaining} more bytes, "
                    f"Content-Length allows {self._remaining}"
                    if remaining < 0
                    else f"response ended {remaining} bytes short of its Content-Length"
                )
            self._remaining = remaining
        elif framing == writer.NO_BODY:
            return b""
        if framing == writer.CHUNKED:
            out = writer.chunk(data)
            return out + writer.LAST_CHUNK if end else out
        return data


class HTTP1Connection:
    """Serve HTTP/1.1 requests on one stream until the connection ends.

    ``await HTTP1Connection(stream, app, config).run()`` returns when the
    peer closes, a timeout or limit ends the connection, the last request of
    a keep-alive connection is answered, or :meth:`shutdown` asked it to
    stop. It closes the stream before returning. It raises nothing but
    :exc:`trio.Cancelled`: protocol errors become 4xx responses, application
    errors 500s, and unexpected faults are logged here, so nothing from one
    connection reaches the listener or another connection (contract 5).
    """

    # Slotted: a server holds one per open connection, mostly idle.
    __slots__ = (
        "_active",
        "_broken",
        "_closing",
        "_data_lot",
        "_eof_fed",
        "_hung_up",
        "_phase",
        "_rbuf",
        "_reader_done",
        "_reader_scope",
        "_requests",
        "_send_lock",
        "_space",
        "_timer",
        "app",
        "client",
        "config",
        "must_close",
        "parser",
        "peer_closed",
        "scheme",
        "server",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: ExchangeApp,
        config: ServerConfig,
        *,
        client: tuple[str, int] | None = None,
        server: tuple[str, int] | None = None,
        scheme: str = "http",
    ) -> None:
        self.stream = stream
        self.app = app
        self.config = config
        self.client = client
        self.server = server
        self.scheme = scheme
        self.parser = make_parser(config)
        #: The response being written must be the last on this connection.
        self.must_close = False
        #: The peer sent EOF (or reset the connection).
        self.peer_closed = False
        self._closing = False
        self._broken = False
        self._rbuf = bytearray()
        self._send_lock = trio.Lock()
        self._eof_fed = False
        self._data_lot = trio.lowlevel.ParkingLot()
        # Made only while the reader waits for the read-ahead to drain.
        self._space: trio.CancelScope | None = None
        # The peer hung up, seen while unread bytes were still before the
        # FIN (the reader will read them, and the EOF, in time).
        self._hung_up = False
        self._active: Exchange | None = None
        # One long-lived cancel scope times the waits between requests: its
        # deadline moves (keep-alive idle, then the header timeout) instead
        # of a new scope per wait, and is infinite while the app runs.
        self._timer = trio.CancelScope()
        self._phase = _DONE
        self._requests = 0
        # The reader's own scope, so that upgrade() can stop it.
        self._reader_scope = trio.CancelScope()
        self._reader_done = trio.Event()

    # -- public control -------------------------------------------------------

    def shutdown(self) -> None:
        """Ask the connection to end gracefully.

        An idle keep-alive connection closes at once; a request in progress
        completes, its response carries ``Connection: close``, and the
        connection ends after it. Idempotent.
        """
        self._closing = True
        if self._active is not None:
            self._active.keep_alive = False
            self._active._begin_shutdown()
        if self._phase is _IDLE:
            self._timer.cancel()

    @property
    def idle(self) -> bool:
        """True while waiting, with nothing received, for the next request."""
        return self._phase is _IDLE

    async def run(self) -> None:
        """Serve the connection; return when it is over (see the class doc)."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader)
                try:
                    await self._serve()
                finally:
                    nursery.cancel_scope.cancel()
        except Exception:
            # Bugs in the engine itself: never let them reach the listener.
            error_log.exception("internal error serving %s", self._peer_name())
        finally:
            await trio.aclose_forcefully(self.stream)

    # -- the reader task ------------------------------------------------------

    async def _reader(self) -> None:
        try:
            with self._reader_scope:
                await self._read()
        finally:
            self._reader_done.set()

    async def stop_reading(self) -> bytes:
        """Stop the reader task for good (a protocol switch); return the
        bytes received and not parsed, in order."""
        self._reader_scope.cancel()
        await self._reader_done.wait()
        if self._space is not None:
            self._space = None
        received = self.parser.leftover() + bytes(self._rbuf)
        self._rbuf.clear()
        return received

    async def _read(self) -> None:
        stream = self.stream
        rbuf = self._rbuf
        while True:
            if len(rbuf) >= READ_AHEAD_LIMIT:
                await self._wait_for_space()
                continue
            try:
                data = await stream.receive_some(RECEIVE_SIZE)
            except _STREAM_ERRORS:
                data = b""
            if not data:
                self.peer_closed = True
                self._data_lot.unpark_all()
                if self._active is not None:
                    self._active._mark_disconnected()
                return
            rbuf += data
            self._data_lot.unpark_all()

    async def _wait_for_space(self) -> None:
        """Wait until the main task takes the buffered bytes (:meth:`_feed`).

        Meanwhile the bytes the client sends stay in the kernel (bounded
        backpressure), and a FIN behind them cannot be read. It can still
        be seen (:mod:`trioweb._hangup`): a client that pipelined past the
        read-ahead limit and left is a disconnect like any other.
        """
        with trio.CancelScope() as self._space:
            if not self._hung_up:
                await wait_for_hangup(self.stream)
                self._hung_up = True
                if self._active is not None:
                    self._active._mark_disconnected()
            await trio.sleep_forever()
        self._space = None

    async def next_event(self) -> Event:
        """The next request event, waiting for bytes as needed (no deadline
        here: the caller owns the deadline)."""
        parser = self.parser
        while True:
            event = parser.next_event()
            if event is not NEED_DATA:
                return event
            if not self._rbuf:
                if not self.peer_closed:
                    await self._data_lot.park()
                elif self._eof_fed:
                    # Nothing more will come, and the parser still wants
                    # bytes: going round again would spin without a
                    # checkpoint and hang every connection of the process.
                    raise ProtocolError(400, "peer closed the connection mid-request")
            self._feed()

    def _feed(self) -> None:
        """Give the parser what the reader buffered (or the EOF).

        Raises :exc:`ProtocolError` when the bytes break a limit or the
        protocol (a head too large is refused before it is complete).
        """
        if self._rbuf:
            data = bytes(self._rbuf)
            self._rbuf.clear()
            if self._space is not None:
                self._space.cancel()
                self._space = None
            self.parser.feed(data)
        elif self.peer_closed and not self._eof_fed:
            self._eof_fed = True
            self.parser.feed(b"")

    # -- writing --------------------------------------------------------------

    async def send_bytes(self, data: bytes, exchange: Exchange | None) -> None:
        """``send_all`` under the write timeout; StreamClosedError if it fails.

        On failure or timeout the connection is broken: nothing more can be
        sent, the exchange's disconnect signal fires, and the connection ends
        after the current request.

        Sends are serialized: an application may send from several tasks
        (a handler flushing from its own nursery, an adapter answering
        ``100 Continue`` while another task sends), and each ``data`` goes
        out whole, in the order the calls came. A trio stream allows one
        ``send_all`` at a time.
        """
        lock = self._send_lock
        if lock.locked():
            # FIFO: the framing of each piece was computed in call order.
            # The holder's send has its own deadline, so this wait is bounded.
            await lock.acquire()
        else:
            # Free, as it nearly always is: no checkpoint to pay for.
            lock.acquire_nowait()
        try:
            await self._send_locked(data, exchange)
        finally:
            lock.release()

    async def _send_locked(self, data: bytes, exchange: Exchange | None) -> None:
        if self._broken:
            raise StreamClosedError()
        failure: BaseException | None = None
        try:
            with trio.move_on_after(self.config.write_timeout) as scope:
                try:
                    await self.stream.send_all(data)
                except _STREAM_ERRORS as exc:
                    failure = exc
        except trio.Cancelled:
            # Cancelled from outside (the app's own deadline, a disconnect,
            # shutdown): some of ``data`` may have gone out, so the framing
            # on this stream is lost. Writing more would send the client
            # garbage; the connection can only be aborted. The client did
            # not leave, though: no disconnect signal (the log says 444).
            self._abort_writes(None)
            raise
        if failure is None and not scope.cancelled_caught:
            return
        self._abort_writes(exchange)
        if scope.cancelled_caught:
            raise StreamClosedError(
                f"write timed out after {self.config.write_timeout} s; "
                "connection aborted"
            )
        raise StreamClosedError() from failure

    def _abort_writes(self, exchange: Exchange | None) -> None:
        self._broken = True
        self.must_close = True
        if exchange is not None:
            exchange._mark_disconnected()

    def unread_body_forces_close(self, exchange: Exchange) -> bool:
        """Whether answering now, with the body unread, must end the connection.

        The body can be drained after the response only if the client is
        sending it: a client still waiting for ``100 Continue`` may never
        send it, and a body larger than the limit is not worth reading.
        """
        if exchange._body_done:
            return False
        if exchange.expects_continue:
            return True
        length = exchange.content_length
        return length is not None and length > exchange.max_body_size

    # -- the request loop -----------------------------------------------------

    async def _serve(self) -> None:
        timer = self._timer
        # For the first request the header timeout runs from the accept: a
        # client that connects and says nothing is held no longer than one
        # that says something slowly.
        timer.deadline = trio.current_time() + self.config.header_timeout
        rejection: _Rejected | None = None
        with timer:
            rejection = await self._request_loop()
        phase, self._phase = self._phase, _DONE
        if (
            timer.cancelled_caught
            and phase is _HEAD
            and self._received_partial_request()
        ):
            rejection = _Rejected(408, "request head timed out")
        # Sent outside the timer scope, which may be cancelled by now.
        if rejection is not None:
            await self._reject(rejection.status, rejection.detail, head=rejection.head)

    async def _request_loop(self) -> _Rejected | None:
        """Serve requests until the connection should end.

        Returns the rejection to send, if the last request is refused. The
        timer ending a wait (idle or head) cancels this whole call; the
        phase it was in then says what that means.
        """
        config = self.config
        parser = self.parser
        timer = self._timer
        first = True
        while True:
            try:
                if not first:
                    # Bytes after the previous request are this one's start
                    # (the parser measures them against the head limits).
                    parser.next_request()
                # Parse what is buffered already. Inside the ``try``: garbage
                # pipelined after a good request is a 400, not an engine fault.
                event = parser.next_event()
                if event is NEED_DATA:
                    if (
                        not self._rbuf
                        and not self.peer_closed
                        and not parser.buffered()
                    ):
                        # Wait, idle, for the first byte of the next request.
                        if self._closing:
                            return None
                        self._phase = _IDLE
                        if not first:
                            timer.deadline = (
                                trio.current_time() + config.keep_alive_timeout
                            )
                        await self._data_lot.park()
                    self._phase = _HEAD
                    # Most requests arrive whole: parse before arming the
                    # header timer, which then costs nothing.
                    self._feed()
                    event = parser.next_event()
                    if event is NEED_DATA:
                        if not first:
                            # A later request's timer starts at its first
                            # byte -- or now, if that came while the previous
                            # request was served. Never an older deadline.
                            timer.deadline = trio.current_time() + config.header_timeout
                        event = await self.next_event()
            except ProtocolError as exc:
                refusal = _Rejected(exc.status, exc.detail)
                refusal.head = exc.head
                return refusal
            if event is CLOSED:
                return None
            assert type(event) is RequestHead, event
            first = False
            try:
                exchange = self._new_exchange(event)
            except _Rejected as rejected:
                rejected.head = event.method == b"HEAD"
                return rejected
            except ProtocolError as exc:
                refusal = _Rejected(exc.status, exc.detail)
                refusal.head = event.method == b"HEAD"
                return refusal
            if timer.cancel_called:
                # Shutdown or the header deadline came in the same tick as
                # the head's last bytes. The app must not run inside a
                # cancelled scope: close quietly (the client may retry).
                return None
            self._phase = _APP
            timer.deadline = math.inf
            self._active = exchange
            if self.peer_closed:
                # The reader saw the EOF while no exchange was active (it
                # came with, or right after, this request's bytes), so it
                # fired no signal. The peer is gone all the same: say so now,
                # or a handler waiting on the signal would wait forever.
                exchange._mark_disconnected()
            try:
                await self._run_app(exchange)
            finally:
                self._active = None
                # Also when the request is cancelled (graceful shutdown ran
                # out): every request gets its line in the access log.
                self._log_access(exchange)
            if (
                self._broken
                or self.must_close
                or exchange.disconnected
                or not exchange.finished
                or exchange.close_after
            ):
                return None
            if not exchange._body_done and not await self._drain(exchange):
                return None
            if self._closing:
                return None

    def _new_exchange(self, head: RequestHead) -> Exchange:
        """Apply the rules the parser leaves to us; make the request's exchange.

        Raises :exc:`_Rejected` for a request to refuse.
        """
        config = self.config
        rules = check_head(head)
        # The request line and header block sizes are the parser's job.
        if len(head.headers) > config.max_headers:
            raise _Rejected(431, "too many header fields")
        content_length = rules.content_length
        chunked = rules.chunked
        has_body = chunked or bool(content_length)
        if not has_body:
            # No body: the parser yields END without needing bytes. Taking
            # it now completes the request, so the connection can be reused
            # without a drain step.
            end = self.parser.next_event()
            assert end is END, end
        self._requests += 1
        keep_alive = rules.keep_alive
        if self._closing or self._requests >= config.max_requests_per_connection:
            keep_alive = False
        exchange = Exchange(
            self,
            head,
            content_length=content_length,
            chunked=chunked,
            keep_alive=keep_alive,
            expects_continue=rules.expects_continue and has_body,
        )
        exchange.shutting_down = self._closing
        return exchange

    def _received_partial_request(self) -> bool:
        return bool(self.parser.buffered().strip() or self._rbuf.strip())

    async def _run_app(self, exchange: Exchange) -> None:
        if self._hung_up:
            # A request read from the buffer after the peer was seen to
            # leave: nobody is waiting for its answer.
            exchange._mark_disconnected()
        try:
            await self.app.handle_exchange(exchange)
        except StreamClosedError:
            return
        except HTTPError as exc:
            # An application that let the body reader's error escape.
            if not exchange.head_sent:
                await self._send_simple(exchange, exc.status_code)
            return
        except Exception:
            error_log.exception(
                "unhandled error in %s %s", exchange.method, exchange.target
            )
            if not exchange.head_sent:
                self.must_close = True
                await self._send_simple(exchange, 500)
            else:
                self._broken = True
            return
        if exchange.disconnected or self._broken:
            return
        if not exchange.head_sent:
            error_log.error(
                "%r returned without responding to %s %s",
                self.app,
                exchange.method,
                exchange.target,
            )
            self.must_close = True
            await self._send_simple(exchange, 500)
        elif not exchange.finished:
            try:
                await exchange.send_body(b"", end=True)
            except writer.FramingError:
                # Less body than its Content-Length promised: the only honest
                # end is closing the connection.
                self._broken = True
            except StreamClosedError:
                pass

    async def _send_simple(self, exchange: Exchange, status: int) -> None:
        body = f"{status} {reason_phrase(status)}\n".encode()
        try:
            await exchange.send_response(
                status,
                [
                    (b"Content-Type", b"text/plain; charset=utf-8"),
                    (b"Content-Length", str(len(body)).encode()),
                ],
                body,
            )
        except StreamClosedError:
            pass

    async def _drain(self, exchange: Exchange) -> bool:
        """Read and discard an unread request body; False if we must close."""
        try:
            while await exchange.receive_body():
                pass
        except (HTTPError, StreamClosedError):
            return False
        return True

    async def _reject(self, status: int, detail: str, *, head: bool = False) -> None:
        """Answer a request we refuse to parse further, then end the connection.

        Written by hand: the parser may be in no state to go on, and this
        response is always the same shape. ``head``: the request was a
        parsed HEAD, whose response must not carry the body (RFC 9110 9.3.2).
        """
        reason = reason_phrase(status)
        body = f"{status} {reason}: {detail}\n".encode()
        head_bytes = (
            (
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n"
            ).encode()
            + b"Date: "
            + http_date()
            + b"\r\n\r\n"
        )
        if access_log.isEnabledFor(logging.INFO) and self.config.access_log:
            access_log.info(
                "%s",
                logs.rejection_line(
                    self.client,
                    status,
                    len(body),
                    detail,
                    self.config.access_log_format,
                ),
            )
        try:
            await self.send_bytes(head_bytes if head else head_bytes + body, None)
        except StreamClosedError:
            pass

    # -- logging --------------------------------------------------------------

    def _peer_name(self) -> str:
        if self.client is None:
            return "-"
        return f"{self.client[0]}:{self.client[1]}"

    def _log_access(self, exchange: Exchange) -> None:
        if not self.config.access_log or not access_log.isEnabledFor(logging.INFO):
            return
        status = exchange.status
        if not exchange.finished:
            # 499: the client left first. 444: the server closed without
            # completing the response (cancelled at the end of a graceful
            # shutdown, or the app failed mid-response). nginx's codes.
            status = 499 if exchange.disconnected else 444
        duration = (trio.current_time() - exchange.start_time) * 1000
        access_log.info(
            "%s",
            logs.access_line(exchange, status, duration, self.config.access_log_format),
        )
