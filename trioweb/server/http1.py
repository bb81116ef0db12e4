"""One HTTP/1.1 connection: a request parser and the response writer over a
trio stream.

This is the connection engine. It knows nothing about handlers: for each
request it hands the application one :class:`Exchange` -- the parsed request
head, a body reader, a way to send the response, and the disconnect signal --
and awaits ``app.handle_exchange(exchange)``. Anything that can speak that
small interface can be served: :class:`trioweb.Application`, an ASGI adapter,
or a ten-line function in a test.

A connection is served on one of two paths, with the same behaviour:

* the **plain-TCP fast path**, for a plain ``trio.SocketStream`` (what
  :func:`trioweb.serve` accepts without TLS). One task serves the
  connection: it talks to the non-blocking socket itself, reading when the
  parser needs bytes and sending with one ``send()`` when the kernel takes
  the bytes at once (the write timeout's cancel scope is entered only when a
  send must wait). While a handler runs nothing reads: pipelined bytes stay
  in the kernel (bounded backpressure). A client that leaves is seen by the
  trio run's hang-up watcher (:mod:`trioweb.server._hangup`: one epoll set for all
  connections, in one task), which fires the active exchange's disconnect
  signal. A connection that never has to wait lets the others run every
  :data:`FAIR_SHARE` receives and sends.
* the **Stream path**, for any other ``trio.abc.Stream`` (TLS, the
  TestClient's memory streams; and systems without ``epoll``). Two tasks
  serve it, both in the connection's own nursery (docs/design.md, the
  contract, rule 1): the **reader** owns ``stream.receive_some``; it
  appends what arrives to a bounded buffer and wakes whoever waits for
  bytes. Because it keeps reading while a handler runs, it notices at once
  when the peer closes or resets the connection, and fires the active
  exchange's disconnect signal. When the buffer is full (a client
  pipelining faster than we answer) it stops reading until the buffer
  drains, and still watches for the peer hanging up through the kernel
  (Linux sockets). The **main task** does the rest.

On both, the main task feeds the request parser (:mod:`trioweb.server.parsers`),
enforces the limits, runs the application for each request, one at a time
and in order (pipelining), and writes the responses (:mod:`trioweb.server.writer`).
The application runs in the connection's task, inside its nursery.

Every wait has a deadline (contract 4): the idle wait between requests
(``keep_alive_timeout``), reading a request head (``header_timeout``), each
wait for body bytes (``body_timeout``), and each ``send_all``
(``write_timeout``).
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable

import trio

from .. import logs
from ..dates import http_date
from ..errors import HTTPError, StreamClosedError
from ..httputil import reason_phrase
from . import writer
from ._hangup import hangup_watcher, wait_for_hangup
from ._sending import FAIR_SHARE, STREAM_ERRORS, Sending
from .config import ServerConfig
from .exchange import Exchange, ExchangeApp
from .headrules import check_head
from .parsers import (
    CLOSED,
    END,
    NEED_DATA,
    Event,
    ProtocolError,
    RequestHead,
    make_parser,
)

__all__ = ["FAIR_SHARE", "Exchange", "ExchangeApp", "HTTP1Connection"]

access_log = logging.getLogger("trioweb.access")
error_log = logging.getLogger("trioweb.error")

#: How much one ``receive_some`` asks for.
RECEIVE_SIZE = 64 * 1024
#: The reader stops reading when this much is buffered and not yet parsed.
READ_AHEAD_LIMIT = 64 * 1024
#: How long a connection the server ends, with the client's bytes unread,
#: keeps reading (and discarding) before it closes: see
#: :meth:`HTTP1Connection._close_in_stages`.
LINGER_SECONDS = 2.0


def _plain_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The non-blocking socket under ``stream`` if the engine may talk to it
    directly (a plain TCP or Unix ``trio.SocketStream``, not TLS, not a
    memory stream); None otherwise."""
    if type(stream) is not trio.SocketStream:
        return None
    # trio keeps the standard socket it wraps as ``_sock``; should that ever
    # change, the Stream path serves the connection just the same.
    raw = getattr(stream.socket, "_sock", None)
    return raw if type(raw) is socket.socket else None


class _Reading:
    """The Stream path's reader task: what the main task waits on for bytes,
    and how :meth:`HTTP1Connection.stop_reading` stops it."""

    __slots__ = ("data", "done", "scope")

    def __init__(self) -> None:
        self.data = trio.lowlevel.ParkingLot()
        self.scope = trio.CancelScope()
        self.done = trio.Event()


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


class HTTP1Connection(Sending):
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
        "_closing",
        "_eof_fed",
        "_fd",
        "_handed_over",
        "_hung_up",
        "_phase",
        "_rbuf",
        "_reading",
        "_requests",
        "_sock",
        "_space",
        "_timer",
        "app",
        "client",
        "config",
        "on_close",
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
        # The plain-TCP fast path (see _plain_socket); None: the Stream path.
        self._sock = _plain_socket(stream)
        self._fd = -1
        # Receives and sends done without waiting since the last wait.
        self._spins = 0
        #: The response being written must be the last on this connection.
        self.must_close = False
        #: Called with this connection once :meth:`run` is over and the
        #: stream closed (the server's bookkeeping).
        self.on_close: Callable[[HTTP1Connection], object] | None = None
        #: The peer sent EOF (or reset the connection).
        self.peer_closed = False
        self._closing = False
        self._broken = False
        self._rbuf = bytearray()
        # A send in progress; senders waiting for it park in the queue
        # (made when first needed: senders rarely meet).
        self._sending = False
        self._send_queue: trio.lowlevel.ParkingLot | None = None
        self._eof_fed = False
        # Made only while the reader waits for the read-ahead to drain.
        self._space: trio.CancelScope | None = None
        # The peer hung up, seen while unread bytes were still before the
        # FIN (the reader will read them, and the EOF, in time).
        self._hung_up = False
        # The stream was handed to another protocol (stop_reading).
        self._handed_over = False
        self._active: Exchange | None = None
        # One long-lived cancel scope times the waits between requests, its
        # deadline moving (keep-alive idle, then the header timeout) instead
        # of a new scope per wait, infinite while the app runs: the
        # nursery's own scope (see run()).
        self._timer: trio.CancelScope | None = None
        self._phase = _DONE
        self._requests = 0
        # The Stream path's reader task, once started.
        self._reading: _Reading | None = None

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
        if self._phase is _IDLE and self._timer is not None:
            self._timer.cancel()

    def stop(self) -> None:
        """Stop now, for good: the server's graceful period ran out, or it
        was told to stop at once. The server cancels the connections'
        nursery; this also cancels what the application runs shielded from
        the connection's scope (see :meth:`Exchange.on_stop`)."""
        self.shutdown()
        self.cancel()
        if self._active is not None:
            self._active._stop()

    @property
    def idle(self) -> bool:
        """True while waiting, with nothing received, for the next request."""
        return self._phase is _IDLE

    @property
    def plain(self) -> bool:
        """Whether the connection takes the plain-TCP fast path (one task,
        the socket itself) rather than the ``trio.abc.Stream`` path."""
        return self._sock is not None

    async def run(self) -> None:
        """Serve the connection; return when it is over (see the class doc)."""
        rejection: _Rejected | None = None
        ended = False
        try:
            async with trio.open_nursery() as nursery:
                # The nursery's scope is the connection's timer too: one
                # scope, whose deadline moves (the header timeout from the
                # accept -- a client that connects and says nothing is held no
                # longer than one that says something slowly --, the idle
                # wait, none while the app runs) and which shutdown cancels.
                timer = self._timer = nursery.cancel_scope
                timer.deadline = trio.current_time() + self.config.header_timeout
                if self._sock is not None and self._watch():
                    try:
                        rejection = await self._request_loop()
                        ended = True
                    finally:
                        self._unwatch()
                else:
                    self._sock = None
                    self._reading = _Reading()
                    nursery.start_soon(self._reader, self._reading)
                    try:
                        rejection = await self._request_loop()
                        ended = True
                    finally:
                        timer.cancel()  # the reader
            phase, self._phase = self._phase, _DONE
            if (
                not ended
                and timer.cancelled_caught
                and phase is _HEAD
                and self._received_partial_request()
            ):
                rejection = _Rejected(408, "request head timed out")
            # Sent outside the timer's scope, which may be cancelled by now.
            if rejection is not None:
                await self._reject(
                    rejection.status, rejection.detail, head=rejection.head
                )
            await self._close_in_stages()
        except Exception:
            # Bugs in the engine itself: never let them reach the listener.
            error_log.exception("internal error serving %s", self._peer_name())
        finally:
            try:
                await trio.aclose_forcefully(self.stream)
            finally:
                if self.on_close is not None:
                    self.on_close(self)

    async def _close_in_stages(self) -> None:
        """Before the server closes a socket the client may still be
        sending on: send the FIN, and read (and discard) until the client
        closes too, for up to :data:`LINGER_SECONDS` (RFC 9112, 9.6).

        Closing a socket with received bytes unread makes the kernel reset
        the connection instead of ending it: what the client has not read
        yet of the last response, and what is still in the server's send
        buffer, is lost. That happens whenever the server ends a connection
        the client is not done with: a request pipelined behind a
        ``Connection: close`` one (or behind the last one
        ``max_requests_per_connection`` allows, or one answered during a
        graceful shutdown), a body left unread behind a 413 or a 400. On
        the plain-TCP path nothing reads while a handler runs, so any
        bytes that came then are still in the kernel.

        Only when there are unread bytes now (nginx's heuristic): a
        connection that ends with nothing unread closes at once. Not after
        a failed or aborted write (the connection is broken: a reset is
        the honest end), not after an upgrade (the protocol that took the
        stream over has its own closing, and its own deadline for it), and
        not on streams that are not plain sockets (TLS has its own closing;
        memory streams hold nothing).
        """
        if self.peer_closed or self._hung_up or self._broken or self._handed_over:
            return
        sock = self._sock or _plain_socket(self.stream)
        if sock is None:
            return
        try:
            # A peek at one byte: the common case (nothing unread) costs
            # one system call and no buffer.
            if not sock.recv(1, socket.MSG_PEEK):
                return  # the client closed too: nothing to wait for
            # The FIN goes out behind the response: the client reads it
            # whole, then the end of the connection.
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # BlockingIOError: nothing unread, close at once
            return
        with trio.move_on_after(LINGER_SECONDS):
            while True:
                await trio.lowlevel.wait_readable(sock)
                try:
                    if not sock.recv(RECEIVE_SIZE):
                        return
                except BlockingIOError:
                    pass
                except OSError:
                    return

    # -- the plain-TCP fast path ------------------------------------------------

    def _watch(self) -> bool:
        """Have the run's hang-up watcher report this peer leaving; False
        (take the Stream path) where it cannot."""
        watcher = hangup_watcher()
        assert self._sock is not None
        try:
            fd = self._sock.fileno()
        except OSError:
            return False
        if watcher is None or fd < 0 or not watcher.watch(fd, self._on_hangup):
            return False
        self._fd = fd
        return True

    def _unwatch(self) -> None:
        watcher = hangup_watcher()
        if watcher is not None:
            watcher.forget(self._fd, self._on_hangup)

    def _on_hangup(self) -> None:
        """The peer closed or reset the connection (the watcher says so,
        whatever unread bytes are before the FIN): the request in progress,
        and any read after this, has nobody waiting for its answer."""
        self._hung_up = True
        if self._active is not None:
            self._active._mark_disconnected()

    def _receive_now(self) -> bool:
        """Give the parser whatever has arrived, without waiting; False when
        nothing has (nor the EOF)."""
        if self._eof_fed:
            return True  # all there is: the parser has had it
        sock = self._sock
        if sock is None:
            if self._rbuf or self.peer_closed:
                self._feed()
                return True
            return False
        try:
            data = sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self._spins += 1
        self._take(data)
        return True

    async def _receive_wait(self) -> None:
        """Wait for bytes (or the EOF), and give them to the parser."""
        sock = self._sock
        if sock is None:
            if not self._rbuf and not self.peer_closed:
                assert self._reading is not None
                await self._reading.data.park()
            self._feed()
            return
        self._spins = 0
        while True:
            await trio.lowlevel.wait_readable(sock)
            if self._receive_now():
                return

    def _take(self, data: bytes) -> None:
        if data:
            self.parser.feed(data)
            return
        self.peer_closed = True
        self._eof_fed = True
        if self._active is not None:
            self._active._mark_disconnected()
        self.parser.feed(b"")

    # -- the reader task ------------------------------------------------------

    async def _reader(self, reading: _Reading) -> None:
        try:
            with reading.scope:
                await self._read(reading.data)
        finally:
            reading.done.set()

    async def stop_reading(self) -> bytes:
        """Stop the reader task for good (a protocol switch); return the
        bytes received and not parsed, in order."""
        self._handed_over = True
        if self._reading is not None:
            self._reading.scope.cancel()
            await self._reading.done.wait()
        if self._space is not None:
            self._space = None
        received = self.parser.leftover() + bytes(self._rbuf)
        self._rbuf.clear()
        return received

    async def _read(self, data_lot: trio.lowlevel.ParkingLot) -> None:
        stream = self.stream
        rbuf = self._rbuf
        while True:
            if len(rbuf) >= READ_AHEAD_LIMIT:
                await self._wait_for_space()
                continue
            try:
                data = await stream.receive_some(RECEIVE_SIZE)
            except STREAM_ERRORS:
                data = b""
            if not data:
                self.peer_closed = True
                data_lot.unpark_all()
                if self._active is not None:
                    self._active._mark_disconnected()
                return
            rbuf += data
            data_lot.unpark_all()

    async def _wait_for_space(self) -> None:
        """Wait until the main task takes the buffered bytes (:meth:`_feed`).

        Meanwhile the bytes the client sends stay in the kernel (bounded
        backpressure), and a FIN behind them cannot be read. It can still
        be seen (:mod:`trioweb.server._hangup`): a client that pipelined past the
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
            if self._eof_fed:
                # Nothing more will come, and the parser still wants bytes:
                # going round again would spin without a checkpoint and hang
                # every connection of the process.
                raise ProtocolError(400, "peer closed the connection mid-request")
            await self._fair_share()
            if not self._receive_now():
                await self._receive_wait()

    async def next_event_now(self) -> Event:
        """The next request event if its bytes are here -- parsed already,
        or taken from the socket without waiting -- else ``NEED_DATA``.

        No deadline is needed, nor a cancel scope. A checkpoint only every
        so often (see :data:`FAIR_SHARE`), as for a send the kernel takes.
        """
        parser = self.parser
        event = parser.next_event()
        if event is NEED_DATA and not self._eof_fed:
            await self._fair_share()
            if self._receive_now():
                event = parser.next_event()
        return event

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

    def cancel(self) -> None:
        """Cancel the connection's scope, the application with it (the
        client left: see :meth:`Exchange.cancel_connection_on_disconnect`)."""
        if self._timer is not None:
            self._timer.cancel()

    def limit_body(self, limit: int) -> None:
        """Refuse a chunked body that grows past ``limit`` bytes."""
        self.parser.limit_body(limit)

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

    async def _request_loop(self) -> _Rejected | None:
        """Serve requests until the connection should end.

        Returns the rejection to send, if the last request is refused. The
        timer ending a wait (idle or head) cancels this whole call; the
        phase it was in then says what that means.
        """
        config = self.config
        parser = self.parser
        timer = self._timer
        assert timer is not None
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
                    if not first:
                        await self._fair_share()
                    if not self._receive_now() and not parser.buffered():
                        # Wait, idle, for the first byte of the next request.
                        if self._closing:
                            return None
                        self._phase = _IDLE
                        if not first:
                            timer.deadline = (
                                trio.current_time() + config.keep_alive_timeout
                            )
                        sock = self._sock
                        if sock is None:
                            await self._receive_wait()
                        else:
                            # Waited for here, not in _receive_wait: one
                            # coroutine frame less held by every idle
                            # connection.
                            self._spins = 0
                            while True:
                                await trio.lowlevel.wait_readable(sock)
                                if self._receive_now():
                                    break
                    self._phase = _HEAD
                    # Most requests arrive whole: parse before arming the
                    # header timer, which then costs nothing.
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
            if timer.deadline != math.inf:
                # Unchanged when the request came whole with no wait: trio's
                # setter costs a context manager even then.
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
            # Done with this request: an idle connection must not keep it
            # (its head, its handler) alive until the next one comes.
            del exchange, event

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
        return logs.peer_name(self.client) or "-"

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
