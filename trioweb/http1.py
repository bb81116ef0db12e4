"""One HTTP/1.1 connection: h11's state machine driven over a trio stream.

This is the connection engine. It knows nothing about handlers: for each
request it hands the application one :class:`Exchange` -- the parsed request
head, a body reader, a way to send the response, and the disconnect signal --
and awaits ``app.handle_exchange(exchange)``. Anything that can speak that
small interface can be served: :class:`trioweb.Application`, an ASGI adapter,
or a ten-line function in a test.

Two tasks serve a connection, both in the connection's own nursery
(DESIGN.md, contract 1):

* the **reader** owns ``stream.receive_some``. It appends what arrives to a
  bounded buffer and wakes whoever waits for bytes. Because it keeps reading
  while a handler runs, it notices at once when the peer closes or resets the
  connection, and fires the active exchange's disconnect signal. When the
  buffer is full (a client pipelining faster than we answer) it stops reading
  until the buffer drains: memory stays bounded.
* the **main task** feeds the buffer to h11, enforces the limits, runs the
  application for each request, one at a time and in order (pipelining), and
  writes responses.

Every wait has a deadline (contract 4): the idle wait between requests
(``keep_alive_timeout``), reading a request head (``header_timeout``), each
wait for body bytes (``body_timeout``), and each ``send_all``
(``write_timeout``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

import h11
import trio

from .config import ServerConfig
from .errors import HTTPError, HTTPInputError, StreamClosedError
from .httputil import http_date, reason_phrase

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

# Statuses whose response never carries a body (RFC 9110 6.4.1). 1xx never
# reaches h11 as a Response.
_NO_BODY_STATUSES = frozenset({204, 304})


class _Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


# Bytes a reason phrase may not hold (RFC 9112 4: HTAB, SP, VCHAR, obs-text).
_BAD_REASON = re.compile(b"[^\t\x20-\x7e\x80-\xff]")

# h11's end-of-head pattern (a line feed, an optional CR, a line feed).
_BLANK_LINE = re.compile(b"\n\r?\n")


class _HeadMeter:
    """Sizes a request head as its bytes arrive, before h11 can parse it.

    h11 bounds only the head as a whole (``max_incomplete_event_size``), so
    a request line or header block that passes its own limit without ever
    ending would be held until that larger bound or the header timeout. The
    meter finds the end of the request line and of the head incrementally
    (no copy of the buffer, no rescans), so the engine refuses with 414 or
    431 the moment a limit is passed, and measures a complete head by the
    same rule, however the bytes were split.
    """

    __slots__ = ("_tail", "fields", "lf", "line", "size")

    def __init__(self) -> None:
        #: Bytes of the head seen so far.
        self.size = 0
        #: Offset of the LF that ends the request line; -1 until it arrives.
        self.lf = -1
        #: Length of the request line without its line end; -1 until known.
        self.line = -1
        #: Bytes of the header fields, each with its line end, without the
        #: final blank line; -1 until the head is complete.
        self.fields = -1
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if self.fields >= 0:
            return  # the head is complete: what follows is not part of it
        # Keep two bytes of the previous piece: an end of line or of the head
        # can be split across pieces.
        buf = self._tail + data
        base = self.size - len(self._tail)  # offset of buf[0] in the head
        if self.lf < 0 and (lf := buf.find(b"\n")) >= 0:
            self.lf = base + lf
            self.line = self.lf - (1 if lf > 0 and buf[lf - 1] == 0x0D else 0)
        if self.lf >= 0:
            match = _BLANK_LINE.search(buf, max(0, self.lf - base))
            if match is not None:
                self.fields = base + match.start() - self.lf
        self.size += len(data)
        self._tail = buf[-2:]

    def check(self, config: ServerConfig) -> None:
        """Raise :exc:`_Rejected` if the head, complete or not, is too big."""
        if self.line > config.max_request_line or (
            self.lf < 0 and self.size > config.max_request_line + 1  # + a CR
        ):
            raise _Rejected(414, "request line too long")
        if self.lf >= 0:
            fields = self.fields
            if fields < 0:
                # Incomplete: all after the request line, less one byte that
                # may be the CR of the final blank line.
                fields = self.size - self.lf - 2
            if fields > config.max_header_size:
                raise _Rejected(431, "header block too large")


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
    peer closes or resets the connection while this exchange is active. The
    web layer passes its handler's ``cancel_scope.cancel`` there.
    """

    __slots__ = (
        "_body_done",
        "_body_started",
        "_callbacks",
        "_conn",
        "_received",
        "bytes_sent",
        "client",
        "content_length",
        "disconnected",
        "finished",
        "has_body",
        "head_sent",
        "headers",
        "http_version",
        "keep_alive",
        "max_body_size",
        "method",
        "scheme",
        "server",
        "start_time",
        "status",
        "target",
    )

    def __init__(
        self,
        conn: HTTP1Connection,
        request: h11.Request,
        *,
        content_length: int | None,
        chunked: bool,
    ) -> None:
        self._conn = conn
        self.method: str = request.method.decode("ascii")
        self.target: str = request.target.decode("latin-1")
        self.http_version: str = request.http_version.decode("ascii")
        self.headers: list[tuple[bytes, bytes]] = list(request.headers)
        self.client = conn.client
        self.server = conn.server
        self.scheme = conn.scheme
        self.start_time = trio.current_time()
        #: The body limit for this request. Starts at the server's
        #: ``max_body_size``; the application may change it before the first
        #: body read (the web layer applies the handler's ``max_body_size``).
        self.max_body_size: int = conn.config.max_body_size
        #: ``Content-Length`` of the request, or None if absent.
        self.content_length = content_length
        #: Whether the request has a body at all (a non-zero length or chunked).
        self.has_body: bool = chunked or bool(content_length)
        #: False when the response must end the connection (set by the engine
        #: for the last request on a connection, and during shutdown).
        self.keep_alive = True
        self.head_sent = False
        self.finished = False
        self.disconnected = False
        self.status = 0
        self.bytes_sent = 0
        self._received = 0
        self._body_started = False
        self._body_done = not self.has_body
        self._callbacks: list[Callable[[], object]] | None = None

    # -- the disconnect signal ------------------------------------------------

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the peer goes away during this exchange.

        If the peer is already gone, it is called at once. Callbacks run
        synchronously inside the connection's reader task, so they must be
        quick and must not raise: ``cancel_scope.cancel`` is the intended
        one.
        """
        if self.disconnected:
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
            return
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                error_log.exception("disconnect callback %r raised", callback)

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
        bytes arrive within the body timeout, and 400 for broken chunked
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
            length = self.content_length
            if length is not None and length > self.max_body_size:
                conn.must_close = True
                raise HTTPInputError(
                    413,
                    "Content-Length %d exceeds the %d-byte body limit",
                    length,
                    self.max_body_size,
                )
            if conn.h11.they_are_waiting_for_100_continue:
                await conn.send_bytes(
                    conn.h11.send(
                        h11.InformationalResponse(
                            status_code=100, headers=[], reason=b"Continue"
                        )
                    ),
                    self,
                )
        if self.disconnected:
            raise StreamClosedError()
        with trio.move_on_after(conn.config.body_timeout) as scope:
            try:
                event = await conn.next_event()
            except h11.RemoteProtocolError as exc:
                conn.must_close = True
                if conn.peer_closed:
                    self._mark_disconnected()
                    raise StreamClosedError("the peer closed mid-body") from exc
                raise HTTPInputError(400, "bad request body: %s", str(exc)) from exc
        if scope.cancelled_caught:
            conn.must_close = True
            raise HTTPInputError(
                408, "no body bytes for %.1f s", conn.config.body_timeout
            )
        if type(event) is h11.Data:
            data = bytes(event.data)
            self._received += len(data)
            if self._received > self.max_body_size:
                conn.must_close = True
                raise HTTPInputError(
                    413, "request body exceeds %d bytes", self.max_body_size
                )
            return data
        # EndOfMessage (trailers are accepted and ignored).
        self._body_done = True
        return b""

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

        The engine adds ``Date`` and, when the connection must end,
        ``Connection: close``. For HEAD requests and 204/304 responses the
        body is dropped (the headers are kept, so HEAD can announce the
        length GET would send). Header values and the reason phrase must not
        contain CR, LF or NUL: :exc:`ValueError` is raised before anything
        is sent, so the caller can still answer 500.
        """
        if self.head_sent:
            raise RuntimeError("the response head was already sent")
        conn = self._conn
        headers = list(headers)
        headers.append((b"date", http_date()))
        if status == 204:
            headers = [
                (n, v)
                for n, v in headers
                if n.lower() not in (b"content-length", b"transfer-encoding")
            ]
        if (
            not self.keep_alive
            or conn.must_close
            or conn.unread_body_forces_close(self)
        ):
            headers.append((b"connection", b"close"))
        if reason is None:
            reason = reason_phrase(status).encode()
        elif _BAD_REASON.search(reason):
            # h11 validates header names and values but writes the reason as
            # given: a CR or LF there would split the response.
            raise ValueError(f"invalid reason phrase {reason!r}")
        try:
            event = h11.Response(status_code=status, headers=headers, reason=reason)
        except h11.LocalProtocolError as exc:
            raise ValueError(f"invalid response head: {exc}") from exc
        if self.disconnected:
            raise StreamClosedError()
        data = conn.h11.send(event)
        assert data is not None
        self.head_sent = True
        self.status = status
        if body and (self.method == "HEAD" or status in _NO_BODY_STATUSES):
            body = b""
        if body:
            more = conn.h11.send(h11.Data(data=body))
            assert more is not None
            data += more
            self.bytes_sent += len(body)
        if end:
            more = conn.h11.send(h11.EndOfMessage())
            assert more is not None
            data += more
        await conn.send_bytes(data, self)
        # Set only once the bytes are handed over: a final write that failed
        # or timed out did not finish the response, so the access log says
        # 499 and the web layer sees a disconnect before the finish.
        self.finished = end

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        """Send more of the response body; ``end=True`` completes it."""
        if not self.head_sent:
            raise RuntimeError("send_response() must be called first")
        if self.finished:
            raise RuntimeError("the response is already complete")
        if self.disconnected:
            raise StreamClosedError()
        h = self._conn.h11
        out = b""
        if data and self.method != "HEAD" and self.status not in _NO_BODY_STATUSES:
            more = h.send(h11.Data(data=data))
            assert more is not None
            out = more
            self.bytes_sent += len(data)
        if end:
            more = h.send(h11.EndOfMessage())
            assert more is not None
            out += more
        if out:
            await self._conn.send_bytes(out, self)
        self.finished = end  # after the send, as in send_response


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
        self.h11 = h11.Connection(
            h11.SERVER,
            # The head meter applies the head limits, before h11 parses; this
            # looser bound (the largest head the meter lets through: both
            # limits, the line ends, a CR) is only a safety net behind it.
            max_incomplete_event_size=config.max_request_line
            + config.max_header_size
            + 4,
        )
        #: The response being written must be the last on this connection.
        self.must_close = False
        #: The peer sent EOF (or reset the connection).
        self.peer_closed = False
        self._closing = False
        self._broken = False
        self._rbuf = bytearray()
        self._eof_fed = False
        self._data_lot = trio.lowlevel.ParkingLot()
        self._space_lot = trio.lowlevel.ParkingLot()
        self._active: Exchange | None = None
        self._idle_scope: trio.CancelScope | None = None
        self._requests = 0

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
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    @property
    def idle(self) -> bool:
        """True while waiting, with nothing received, for the next request."""
        return self._idle_scope is not None

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
        stream = self.stream
        rbuf = self._rbuf
        while True:
            while len(rbuf) >= READ_AHEAD_LIMIT:
                await self._space_lot.park()
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

    async def _read_head(self, meter: _HeadMeter) -> Any:
        """:meth:`next_event` for a request head, raising :exc:`_Rejected`
        as soon as the head outgrows a limit, complete or not."""
        h = self.h11
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            if not self._rbuf and not self.peer_closed:
                await self._data_lot.park()
            # Measured after feeding, before h11 parses: a head over a limit
            # is refused by our rule, whether it is complete or not.
            meter.feed(self._feed())
            meter.check(self.config)

    async def next_event(self) -> Any:
        """The next h11 event, waiting for bytes as needed (no deadline here:
        the caller owns the deadline)."""
        h = self.h11
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            if not self._rbuf and not self.peer_closed:
                await self._data_lot.park()
            self._feed()

    def _feed(self) -> bytes:
        """Give h11 what the reader buffered (or the EOF); return the bytes."""
        if self._rbuf:
            data = bytes(self._rbuf)
            self._rbuf.clear()
            self._space_lot.unpark_all()
            self.h11.receive_data(data)
            return data
        if self.peer_closed and not self._eof_fed:
            self._eof_fed = True
            self.h11.receive_data(b"")
        return b""

    # -- writing --------------------------------------------------------------

    async def send_bytes(self, data: bytes, exchange: Exchange | None) -> None:
        """``send_all`` under the write timeout; StreamClosedError if it fails.

        On failure or timeout the connection is broken: nothing more can be
        sent, the exchange's disconnect signal fires, and the connection ends
        after the current request.
        """
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
            # garbage; the connection can only be aborted.
            self._abort_writes(exchange)
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
        if self.h11.they_are_waiting_for_100_continue:
            return True
        length = exchange.content_length
        return length is not None and length > exchange.max_body_size

    # -- the request loop -----------------------------------------------------

    async def _serve(self) -> None:
        config = self.config
        h = self.h11
        # For the first request the header timeout runs from the accept: a
        # client that connects and says nothing is held no longer than one
        # that says something slowly.
        deadline = trio.current_time() + config.header_timeout
        first = True
        while True:
            meter = _HeadMeter()
            try:
                if not first:
                    # Bytes after the previous request are this one's start.
                    meter.feed(h.trailing_data[0])
                    meter.check(config)
                # Parse what is buffered already. Inside the ``try``: garbage
                # pipelined after a good request is a 400, not an engine fault.
                event = h.next_event()
                if event is h11.NEED_DATA and not self._rbuf and not self.peer_closed:
                    # Wait, idle, for the first byte of the next request.
                    if not first:
                        deadline = trio.current_time() + config.keep_alive_timeout
                    with trio.CancelScope(deadline=deadline) as idle:
                        self._idle_scope = idle
                        if self._closing:
                            idle.cancel()
                        await self._data_lot.park()
                    self._idle_scope = None
                    if idle.cancelled_caught:
                        return  # idle timeout or shutdown: close quietly
                if not first:
                    # A later request's timer starts at its first byte -- or
                    # now, if that came while the previous request was being
                    # served. Never the previous request's deadline: it may
                    # have passed while its handler ran.
                    deadline = trio.current_time() + config.header_timeout
                # Read the request head.
                with trio.CancelScope(deadline=deadline) as head_scope:
                    if event is h11.NEED_DATA:
                        event = await self._read_head(meter)
            except h11.RemoteProtocolError as exc:
                await self._reject(exc.error_status_hint, str(exc))
                return
            except _Rejected as rejected:
                await self._reject(rejected.status, rejected.detail)
                return
            if head_scope.cancelled_caught:
                if self._received_partial_request():
                    await self._reject(408, "request head timed out")
                return
            if type(event) is h11.ConnectionClosed:
                return
            assert type(event) is h11.Request
            first = False
            try:
                content_length, chunked = self._check_request(event)
            except _Rejected as rejected:
                await self._reject(
                    rejected.status, rejected.detail, head=event.method == b"HEAD"
                )
                return
            if not content_length and not chunked:
                # No body: h11 yields EndOfMessage without needing bytes.
                # Taking it now puts the client side in DONE, so the
                # connection can be reused without a drain step.
                end = h.next_event()
                assert type(end) is h11.EndOfMessage, end
            self._requests += 1
            exchange = Exchange(
                self, event, content_length=content_length, chunked=chunked
            )
            if self._closing or self._requests >= config.max_requests_per_connection:
                exchange.keep_alive = False
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
                or exchange.disconnected
                or not exchange.finished
                or h.our_state is not h11.DONE
            ):
                return
            if h.their_state is h11.SEND_BODY and not await self._drain(exchange):
                return
            if h.their_state is not h11.DONE or self._closing:
                return
            h.start_next_cycle()

    def _check_request(self, request: h11.Request) -> tuple[int | None, bool]:
        """Apply the limits and rules h11 leaves to us.

        Returns ``(content_length, chunked)`` for an acceptable request;
        raises :exc:`_Rejected` for one to refuse.
        """
        config = self.config
        if request.http_version not in (b"1.1", b"1.0"):
            raise _Rejected(505, "HTTP version not supported")
        # The request line and header block sizes are the head meter's job.
        headers = request.headers
        if len(headers) > config.max_headers:
            raise _Rejected(431, "too many header fields")
        content_length: int | None = None
        chunked = False
        for name, value in headers:
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if chunked:
            if content_length is not None:
                # RFC 9112 6.3: a request with both is a smuggling attempt
                # more often than not; h11 would let Transfer-Encoding win.
                raise _Rejected(400, "both Content-Length and Transfer-Encoding")
            if request.http_version == b"1.0":
                raise _Rejected(400, "Transfer-Encoding in an HTTP/1.0 request")
        return content_length, chunked

    def _received_partial_request(self) -> bool:
        data, _ = self.h11.trailing_data
        return bool(data.strip() or self._rbuf.strip())

    async def _run_app(self, exchange: Exchange) -> None:
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
            except h11.LocalProtocolError:
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
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
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

        Written by hand rather than through h11: after a protocol error h11
        may be in a state where it cannot frame a response, and this
        response is always the same shape. ``head``: the request was a
        parsed HEAD, whose response must not carry the body (RFC 9110 9.3.2).
        """
        reason = reason_phrase(status)
        body = f"{status} {reason}: {detail}\n".encode()
        head_bytes = (
            (
                f"HTTP/1.1 {status} {reason}\r\n"
                "content-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\n"
                "connection: close\r\n"
            ).encode()
            + b"date: "
            + http_date()
            + b"\r\n\r\n"
        )
        if access_log.isEnabledFor(logging.INFO) and self.config.access_log:
            access_log.info(
                '%s "-" %d %d 0.0ms (%s)', self._peer_name(), status, len(body), detail
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
            '%s "%s %s HTTP/%s" %d %d %.1fms',
            self._peer_name(),
            exchange.method,
            exchange.target,
            exchange.http_version,
            status,
            exchange.bytes_sent,
            duration,
        )
