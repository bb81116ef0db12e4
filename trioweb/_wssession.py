"""The engine of one open websocket (see :mod:`trioweb.websocket`): wsproto,
a reader task, a pinger, the application's scope, and every deadline.

Also permessage-deflate with a bounded inflate (:class:`CappedDeflate`).
"""

from __future__ import annotations

import inspect
import io
import logging
import math
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

import trio
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import (
    CloseReason,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    RsvBits,
)

from .errors import StreamClosedError
from .server._hangup import wait_for_hangup

if TYPE_CHECKING:
    from .websocket import WebSocketHandler

__all__ = [
    "DEFAULTS",
    "CappedDeflate",
    "Session",
    "WebSocketClosedError",
    "negotiate_deflate",
]

log = logging.getLogger("trioweb.error")

#: How much one read from the socket asks for.
_RECEIVE_SIZE = 64 * 1024
#: The reader stops reading while this many messages wait for the
#: application (or more bytes than the message size limit).
_QUEUE_ITEMS = 32
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
#: The reader yields to the other tasks after this many frames of one read.
#: A read of 64 KiB holds up to 10,922 six-byte frames (empty fragments,
#: unsolicited pongs), each some 10 us of wsproto, and most of them reach
#: no checkpoint: without this one read held the event loop for 100+ ms.
_FRAMES_PER_YIELD = 64

_MESSAGE, _PING, _PONG = 0, 1, 2


def max_fragments(max_size: int) -> int:
    """How many frames one message may arrive in, for a message size limit
    of ``max_size`` bytes: one per KiB of the limit, and at least 4096.

    The size limit counts payload only; without this bound a client could
    send a message as millions of empty continuation frames, each costing
    the server work but adding nothing to the count. Past it the connection
    is closed with 1009, as for a message over the size limit.
    """
    return max(4096, max_size // 1024)


_CAN_CLOSE = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)

#: The websocket settings and their defaults (a handler class attribute of
#: the same name without ``websocket_`` overrides each).
DEFAULTS: dict[str, float] = {
    "websocket_max_message_size": 1024 * 1024,
    "websocket_ping_interval": 20.0,
    "websocket_ping_timeout": 20.0,
    "websocket_close_timeout": 5.0,
}


class WebSocketClosedError(StreamClosedError):
    """The websocket is closed: a message can no longer be sent (or received).

    Raised by :meth:`WebSocketHandler.write_message`, :meth:`~WebSocketHandler.
    ping` and :meth:`~WebSocketHandler.receive` once the connection is over:
    the client closed it, left, did not read within the write timeout, or
    the handler closed it itself. It is a :exc:`~trioweb.StreamClosedError`:
    normal, never logged as an error. ``code`` and ``reason`` are the close
    code and reason when known.
    """

    def __init__(
        self, message: str = "", code: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message or "the websocket is closed")
        self.code = code
        self.reason = reason


class CappedDeflate(PerMessageDeflate):
    """permessage-deflate that never inflates a message past ``limit`` bytes.

    wsproto inflates each frame whole, so a few kilobytes of zeros could
    allocate gigabytes before any size check saw them (the "zip bomb" of
    CVE-2018-1000518). Here every inflate is bounded by what is left of the
    limit, and a message over it fails the connection with 1009.
    """

    def __init__(self, limit: int, level: int, mem_level: int) -> None:
        super().__init__()
        self._limit = limit
        self._level = level
        self._mem_level = mem_level
        self._inflated = 0

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        assert self._decompressor is not None
        room = self._limit - self._inflated
        try:
            out = self._decompressor.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._limit or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not fin or not self._inbound_is_compressible:
            return super().frame_inbound_complete(proto, fin)
        if not self._inbound_compressed:
            self._inbound_compressed = None
            self._inflated = 0
            return None
        tail = self._inflate(b"\x00\x00\xff\xff")
        self._inflated = 0
        if isinstance(tail, CloseReason):
            return tail
        if self.client_no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return tail

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            self._compressor = zlib.compressobj(
                self._level,
                zlib.DEFLATED,
                -self.server_max_window_bits,
                self._mem_level,
            )
        return super().frame_outbound(proto, opcode, rsv, data, fin)


def negotiate_deflate(
    offers: str, options: dict[str, Any], limit: int
) -> tuple[CappedDeflate, str] | None:
    """The first permessage-deflate offer we can accept, and our answer."""
    unknown = set(options) - {"compression_level", "mem_level"}
    if unknown:
        raise ValueError(
            f"unknown compression option(s) {sorted(unknown)}: "
            "get_compression_options() may return compression_level and mem_level"
        )
    for offer in offers.split(","):
        name = offer.split(";", 1)[0].strip().lower()
        if name != PerMessageDeflate.name:
            continue
        extension = CappedDeflate(
            limit,
            options.get("compression_level", zlib.Z_DEFAULT_COMPRESSION),
            options.get("mem_level", 8),
        )
        try:
            answer = extension.accept(offer.strip())
        except ValueError:  # a parameter that is not a number
            continue
        if answer is None or answer is False:
            continue
        params = f"; {answer}" if isinstance(answer, str) and answer else ""
        return extension, PerMessageDeflate.name + params
    return None


def overrides(handler: WebSocketHandler, name: str) -> bool:
    """Whether ``handler``'s class overrides the base class's ``name``."""
    base = next(c for c in type(handler).__mro__ if c.__name__ == "WebSocketHandler")
    return getattr(type(handler), name) is not getattr(base, name)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Session:
    """One open websocket: wsproto, the reader, the pinger, the application."""

    def __init__(
        self,
        handler: WebSocketHandler,
        stream: trio.abc.Stream,
        extensions: list[CappedDeflate],
        limits: dict[str, float],
    ) -> None:
        self.handler = handler
        self.stream = stream
        self.ws = Connection(ConnectionType.SERVER, extensions=list(extensions))
        self.max_size = int(limits["max_message_size"])
        self.ping_interval = limits["ping_interval"]
        self.ping_timeout = limits["ping_timeout"]
        self.close_timeout = limits["close_timeout"]
        self.write_timeout = handler._exchange.config.write_timeout
        self.queue: deque[tuple[int, Any]] = deque()
        self.queued_bytes = 0
        self.message_lot = trio.lowlevel.ParkingLot()
        # Cancelled when the application takes messages and the paused
        # reader may read on (see _wait_for_space).
        self.space_scope: trio.CancelScope | None = None
        self.waiting = 0  # tasks waiting in receive()
        self.reader_paused = False
        self.send_lock = trio.Lock()
        # No more messages will be delivered (the close began, or the
        # connection is gone).
        self.done = False
        # The close frame went out / the connection can no longer be written.
        self.close_sent = False
        self.broken = False
        # When our close frame went out, the client has until this time to
        # answer it: fixed then, so that traffic after it (pings) cannot
        # move it.
        self.close_deadline = math.inf
        # Set when the connection is over: the close handshake is complete,
        # or it was abandoned.
        self.over = trio.Event()
        self.app_scope = trio.CancelScope()
        self.reader_scope = trio.CancelScope()
        self.receive_scope: trio.CancelScope | None = None
        self.shutdown = trio.Event()
        self.pong = trio.Event()
        #: The code the access log shows: the client's, or ours, or 1006.
        self.log_code = 1006
        # The message being received in fragments: its text, or its
        # bytes, joined as they arrive (a list of the parts would grow
        # with each empty frame); its size and how many frames so far.
        self.text = io.StringIO()
        self.data = bytearray()
        self.size = 0
        self.fragments = 0
        self.max_fragments = max_fragments(self.max_size)
        self.callbacks = (overrides(handler, "on_ping"), overrides(handler, "on_pong"))

    # -- the session's life -----------------------------------------------------

    async def run(
        self, received: bytes, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        handler = self.handler
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader, received)
                if self.ping_interval > 0:
                    nursery.start_soon(self._pinger)
                nursery.start_soon(self._watch_shutdown)
                with self.app_scope:
                    await self._run_app(args, kwargs)
                if not self.close_sent and not self.broken:
                    try:
                        await self.close(1000, "")
                    except WebSocketClosedError:
                        pass
                # The client's answer, read by the reader (bounded by its
                # close deadline; this bound is a second belt).
                with trio.move_on_after(self.close_timeout):
                    await self.over.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.done = self.close_sent = self.broken = True
            await handler._run_hook(handler.on_close)

    async def _run_app(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        handler = self.handler
        try:
            await _maybe_await(handler.open(*args, **kwargs))
            if overrides(handler, "on_message"):
                while True:
                    message = await self.receive()
                    await _maybe_await(handler.on_message(message))
        except Exception as exc:
            if _only_closed(exc):
                return
            handler.log_exception(type(exc), exc, exc.__traceback__)
            try:
                await self.close(1011, "internal error")
            except WebSocketClosedError:
                pass

    def going_away(self) -> None:
        """The server's graceful shutdown began (an Exchange callback)."""
        self.shutdown.set()

    async def _watch_shutdown(self) -> None:
        await self.shutdown.wait()
        try:
            await self.close(1001, "server shutting down", by_app=False)
        except WebSocketClosedError:
            pass

    def _end(self, *, cancel: bool = True) -> None:
        """The websocket is over for the application: wake its receivers and,
        unless one is waiting for a message, cancel it. Either way it has
        ``close_timeout`` to return."""
        self.done = True
        self.message_lot.unpark_all()
        self._make_space()
        scope = self.app_scope
        if cancel and not self.waiting:
            scope.cancel()
        deadline = self.close_deadline
        if deadline == math.inf:
            deadline = trio.current_time() + self.close_timeout
        scope.deadline = min(scope.deadline, deadline)

    def _abandon(self, code: int = 1006) -> None:
        """The connection is dead without a handshake (gone, timed out, a
        write cut short): stop everything that uses it."""
        self.log_code = code
        self.broken = self.close_sent = True
        self.reader_scope.cancel()
        self.over.set()
        self._end()

    # -- sending ------------------------------------------------------------------

    async def send(self, event: Message[Any] | Ping | Pong | CloseConnection) -> bool:
        """Send ``event``. A close frame is not sent (False) when one already
        was; anything else then raises :exc:`WebSocketClosedError`."""
        # The lock keeps wsproto's output (a compressor's state) in the
        # order it goes on the wire; each holder's send has a deadline.
        lock = self.send_lock
        if lock.locked():
            await lock.acquire()  # FIFO; the holder's send has a deadline
        else:
            lock.acquire_nowait()  # the usual case: no checkpoint to pay
        try:
            state = self.ws.state
            if type(event) is CloseConnection:
                if self.broken or state not in _CAN_CLOSE:
                    return False
            elif self.broken or self.close_sent or state is not ConnectionState.OPEN:
                raise WebSocketClosedError(
                    code=self.handler.close_code, reason=self.handler.close_reason
                )
            await self._write(self.ws.send(event))
            return True
        finally:
            lock.release()

    async def _write(self, data: bytes) -> None:
        failed = False
        try:
            with trio.move_on_after(self.write_timeout) as scope:
                try:
                    await self.stream.send_all(data)
                except _STREAM_ERRORS:
                    failed = True
        except trio.Cancelled:
            # Part of a frame may be out: the stream can carry nothing more.
            self._abandon()
            raise
        if failed:
            self._abandon()
            raise WebSocketClosedError("the client is gone")
        if scope.cancelled_caught:
            self._abandon()
            raise WebSocketClosedError(
                f"write timed out after {self.write_timeout:g} s (the client "
                "is not reading); connection aborted"
            )

    async def close(self, code: int, reason: str, *, by_app: bool = True) -> None:
        if self.close_sent or self.ws.state is not ConnectionState.OPEN:
            return
        if not await self.send(CloseConnection(code=code, reason=reason)):
            return
        self.log_code = code
        self.close_sent = True
        self._start_close_deadline()
        # Messages still queued are dropped: none is delivered after close.
        self.queue.clear()
        self.queued_bytes = 0
        if by_app:
            self.done = True
            self.message_lot.unpark_all()
            self._make_space()
        else:
            self._end()

    def _start_close_deadline(self) -> None:
        """Our close frame is out: the reader, and the application, have
        until ``close_timeout`` from now."""
        if self.close_deadline != math.inf:
            return
        deadline = self.close_deadline = trio.current_time() + self.close_timeout
        if self.receive_scope is not None:
            self.receive_scope.deadline = deadline
        self.app_scope.deadline = min(self.app_scope.deadline, deadline)

    # -- receiving -----------------------------------------------------------------

    async def receive(self) -> str | bytes:
        handler = self.handler
        while True:
            if self.queue:
                kind, data = self.queue.popleft()
                self.queued_bytes -= len(data)
                self._make_space()
                if kind == _MESSAGE:
                    return data  # type: ignore[no-any-return]
                if kind == _PING:
                    await _maybe_await(handler.on_ping(data))
                else:
                    await _maybe_await(handler.on_pong(data))
                continue
            if self.done:
                raise WebSocketClosedError(
                    code=handler.close_code, reason=handler.close_reason
                )
            self.waiting += 1
            try:
                await self.message_lot.park()
            finally:
                self.waiting -= 1

    async def _reader(self, received: bytes) -> None:
        ws = self.ws
        with self.reader_scope:
            if received:
                ws.receive_data(received)
            while True:
                handled = 0
                for event in ws.events():
                    if not await self._handle(event):
                        return
                    handled += 1
                    if handled == _FRAMES_PER_YIELD:
                        handled = 0
                        await trio.lowlevel.checkpoint()
                data: bytes | bytearray = b""
                with trio.CancelScope(
                    deadline=self.close_deadline
                ) as self.receive_scope:
                    try:
                        data = await self.stream.receive_some(_RECEIVE_SIZE)
                    except _STREAM_ERRORS:
                        data = b""
                self.receive_scope = None
                if self.close_sent and not data:
                    # Gone, or no answer to our close in time.
                    self._abandon(self.log_code)
                    return
                if not data:
                    self._abandon()
                    return
                ws.receive_data(bytes(data))

    async def _handle(self, event: Any) -> bool:
        """Act on one wsproto event; False when reading is over."""
        kind = type(event)
        if kind is TextMessage or kind is BytesMessage:
            if self.close_sent:
                return True  # after our close: dropped
            data = event.data
            text = kind is TextMessage
            # The limit is in bytes, as on the wire: text is measured in
            # UTF-8 (isascii() is a flag lookup, so ASCII costs nothing).
            if text and not data.isascii():
                self.size += len(data.encode("utf-8"))
            else:
                self.size += len(data)
            if self.size > self.max_size:
                await self._fail(1009, f"message over {self.max_size} bytes")
                return False
            if event.message_finished and not self.fragments:
                # The usual case: a message in one frame, nothing to join.
                self.size = 0
                await self._enqueue(_MESSAGE, data)
                return True
            self.fragments += 1
            if self.fragments > self.max_fragments:
                await self._fail(
                    1009, f"message in more than {self.max_fragments} frames"
                )
                return False
            if text:
                self.text.write(data)
            else:
                self.data += data
            if event.message_finished:
                message: str | bytes
                if text:
                    message = self.text.getvalue()
                    self.text = io.StringIO()
                else:
                    message = bytes(self.data)
                    self.data = bytearray()
                self.size = self.fragments = 0
                await self._enqueue(_MESSAGE, message)
            return True
        if kind is Ping:
            try:
                await self.send(event.response())
            except WebSocketClosedError:
                return True  # closing: the close answers for us
            if self.callbacks[0]:
                await self._enqueue(_PING, bytes(event.payload))
            return True
        if kind is Pong:
            self.pong.set()
            if self.callbacks[1]:
                await self._enqueue(_PONG, bytes(event.payload))
            return True
        assert kind is CloseConnection
        state = self.ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The client began the close: answer, and the websocket is over.
            self._closed_by_client(event)
            try:
                await self.send(event.response())
            except WebSocketClosedError:
                pass
            self.close_sent = True
            self.over.set()
            self._end()
            return False
        if state is ConnectionState.CLOSED:
            # The answer to our close.
            self._closed_by_client(event)
            self.over.set()
            self._end(cancel=self.shutdown.is_set())
            return False
        # A protocol error (wsproto says which code: 1002, 1007, 1009).
        await self._fail(event.code, event.reason or "protocol error")
        return False

    def _closed_by_client(self, event: CloseConnection) -> None:
        code = event.code
        if code == CloseReason.NO_STATUS_RCVD:
            self.handler.close_code = None
        else:
            self.handler.close_code = int(code)
            self.log_code = int(code)
        self.handler.close_reason = event.reason or None

    async def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): send a close frame with
        ``code`` and stop reading; the connection ends without waiting."""
        self.log_code = code
        if not self.close_sent:
            try:
                await self.send(CloseConnection(code, reason[:100]))
            except WebSocketClosedError:
                pass
        self.close_sent = True
        self._start_close_deadline()
        self.over.set()
        self._end()

    async def _enqueue(self, kind: int, data: Any) -> None:
        if self.done:
            return
        self.queue.append((kind, data))
        self.queued_bytes += len(data)
        self.message_lot.unpark()
        # Backpressure: a client sending faster than the application
        # handles messages waits in its own TCP window, not in our memory.
        while (
            len(self.queue) >= _QUEUE_ITEMS or self.queued_bytes > self.max_size
        ) and not self.done:
            self.reader_paused = True
            try:
                await self._wait_for_space()
            finally:
                self.reader_paused = False

    async def _wait_for_space(self) -> None:
        """Wait until the application takes messages (:meth:`_make_space`).

        Meanwhile nothing reads, so a close would wait unread behind the
        client's frames for as long as the application is busy. The kernel
        knows of it all the same (:func:`wait_for_hangup`: sockets, TLS over
        TCP; memory streams cannot tell): a client that leaves then is gone,
        as when the reader reads the end.
        """
        with trio.CancelScope() as self.space_scope:
            await wait_for_hangup(self.stream)
            self._abandon()
        self.space_scope = None

    def _make_space(self) -> None:
        if self.space_scope is not None:
            self.space_scope.cancel()
            self.space_scope = None

    async def _pinger(self) -> None:
        counter = 0
        while True:
            await trio.sleep(self.ping_interval)
            if self.close_sent:
                return
            counter += 1
            self.pong = trio.Event()
            try:
                await self.send(Ping(payload=counter.to_bytes(4, "big")))
            except WebSocketClosedError:
                return
            while True:
                with trio.move_on_after(self.ping_timeout):
                    await self.pong.wait()
                    break
                # While the reader waits for the application, an answer
                # may be in the socket unread: that is not the client's
                # fault.
                if not self.reader_paused:
                    log.info(
                        "websocket %s: no pong within %g s; closing",
                        self.handler.request.uri,
                        self.ping_timeout,
                    )
                    self._abandon()
                    return


def _only_closed(exc: BaseException) -> bool:
    if isinstance(exc, StreamClosedError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_closed(e) for e in exc.exceptions)
    return False
