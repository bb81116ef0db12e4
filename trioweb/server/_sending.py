"""Sending on a connection: one send at a time, each under the write timeout.

The half of :class:`~trioweb.server.http1.HTTP1Connection` that writes, kept
in a room of its own (a mixin). Every piece an exchange sends goes through
:meth:`Sending.send_bytes`: serialized in call order (an application may send
from several tasks), and failing as :exc:`~trioweb.StreamClosedError` when
the peer is gone or the write timeout runs out, after which the connection
is broken: nothing more can be sent on it.

On the plain-TCP fast path the socket is written directly: what the kernel
takes at once costs one ``send()`` and no cancel scope; only a send that
must wait for the client enters the write timeout's scope. On the Stream
path each ``send_all`` runs under it.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import trio

from ..errors import StreamClosedError

if TYPE_CHECKING:
    from .config import ServerConfig
    from .exchange import Exchange

__all__ = ["FAIR_SHARE", "STREAM_ERRORS", "Sending"]

#: On a plain socket, how many receives and sends may complete at once, with
#: nothing to wait for, before the connection lets other tasks run: a client
#: pipelining requests, or a handler streaming to a fast reader, must not
#: starve the rest of the server (nor keep a deadline from being noticed).
FAIR_SHARE = 16

# The exceptions a trio stream raises when the peer is gone or the stream is
# already closed. They all mean the same thing to a handler: StreamClosedError.
STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class Sending:
    """The writing half of a connection (see the module's doc)."""

    # The state of the writing half; the rest is HTTP1Connection's.
    __slots__ = ("_broken", "_send_queue", "_sending", "_spins", "must_close")

    must_close: bool
    _broken: bool
    _sending: bool
    _send_queue: trio.lowlevel.ParkingLot | None
    #: Receives and sends done without waiting since the last wait.
    _spins: int

    if TYPE_CHECKING:
        config: ServerConfig
        stream: trio.abc.Stream
        _sock: socket.socket | None

    async def send_bytes(
        self, data: bytes | tuple[bytes, ...], exchange: Exchange | None
    ) -> None:
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
        if self._sending:
            # FIFO: the framing of each piece was computed in call order.
            # The holder's send has its own deadline, so this wait is bounded.
            queue = self._send_queue
            if queue is None:
                queue = self._send_queue = trio.lowlevel.ParkingLot()
            try:
                # The sender before us hands over: _sending stays True.
                await queue.park()
            except trio.Cancelled:
                # The framing already counts these bytes (a Content-Length
                # body's remainder, a chunk): dropping them silently would
                # leave the response's framing wrong on the wire. As for a
                # send cancelled half-way, the connection can only be
                # aborted (the access log says 444).
                self._abort_writes(None)
                raise
        else:
            # Free, as it nearly always is: no checkpoint to pay for.
            self._sending = True
        try:
            await self._send_locked(data, exchange)
        finally:
            if self._send_queue:
                self._send_queue.unpark()
            else:
                self._sending = False

    @property
    def broken(self) -> bool:
        """A send failed or was cut short: nothing more can be sent."""
        return self._broken

    def abort_writes(self) -> None:
        """Give up on the response being sent: its framing on the wire is
        lost, so the connection ends after it (the access log says 444)."""
        self._abort_writes(None)

    @property
    def sending(self) -> bool:
        """Whether a send is in progress (another task's, or this one's)."""
        return self._sending

    async def _send_locked(
        self, data: bytes | tuple[bytes, ...], exchange: Exchange | None
    ) -> None:
        if self._broken:
            raise StreamClosedError()
        if self._sock is not None:
            return await self._send_plain(self._sock, data, exchange)
        failure: BaseException | None = None
        try:
            with trio.move_on_after(self.config.write_timeout) as scope:
                try:
                    if isinstance(data, tuple):
                        # Pieces of one write (a large body after its head):
                        # sent one after the other, never joined.
                        for piece in data:
                            await self.stream.send_all(piece)
                    else:
                        await self.stream.send_all(data)
                except STREAM_ERRORS as exc:
                    failure = exc
        except trio.Cancelled:
            # Cancelled from outside (the app's own deadline, a disconnect,
            # shutdown): some of ``data`` may have gone out, so the framing
            # on this stream is lost. Writing more would send the client
            # garbage; the connection can only be aborted. The client did
            # not leave, though: no disconnect signal (the log says 444).
            self._abort_writes(None)
            raise
        if scope.cancelled_caught:
            failure = trio.TooSlowError()
        if failure is not None:
            raise self._send_failed(exchange, failure)

    async def _send_plain(
        self,
        sock: socket.socket,
        data: bytes | tuple[bytes, ...],
        exchange: Exchange | None,
    ) -> None:
        """:meth:`_send_locked` on the plain socket: what the kernel takes at
        once costs one ``send()``, and only a send that would block enters
        the write timeout's cancel scope and waits."""
        try:
            # The same checkpoint as a stream's send_all begins with: a
            # cancelled caller sends nothing (and the framing is lost).
            await trio.lowlevel.checkpoint_if_cancelled()
            await self._fair_share()
        except trio.Cancelled:
            self._abort_writes(None)
            raise
        pieces = data if isinstance(data, tuple) else (data,)
        failure: BaseException | None = None
        for i, piece in enumerate(pieces):
            try:
                sent = sock.send(piece)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                failure = exc
                break
            if sent < len(piece):
                rest: tuple[bytes | memoryview, ...] = (
                    memoryview(piece)[sent:],
                    *pieces[i + 1 :],
                )
                failure = await self._send_waiting(sock, rest)
                if failure is None:
                    return
                break
        else:
            self._spins += 1
            return
        assert failure is not None
        raise self._send_failed(exchange, failure)

    def _send_failed(
        self, exchange: Exchange | None, failure: BaseException
    ) -> StreamClosedError:
        """Break the connection after a failed send; the error to raise
        (``failure`` is :exc:`trio.TooSlowError` for the write timeout)."""
        self._abort_writes(exchange)
        if isinstance(failure, trio.TooSlowError):
            return StreamClosedError(
                f"write timed out after {self.config.write_timeout} s; "
                "connection aborted"
            )
        error = StreamClosedError()
        error.__cause__ = failure
        return error

    async def _send_waiting(
        self, sock: socket.socket, pieces: tuple[bytes | memoryview, ...]
    ) -> BaseException | None:
        """Send ``pieces`` as the socket takes them, under the write timeout;
        the error that stopped it (:exc:`trio.TooSlowError` for the timeout),
        or None once all is sent."""
        self._spins = 0
        try:
            with trio.move_on_after(self.config.write_timeout) as scope:
                for piece in pieces:
                    view = memoryview(piece)
                    while view:
                        await trio.lowlevel.wait_writable(sock)
                        try:
                            view = view[sock.send(view) :]
                        except BlockingIOError:
                            pass
                        except OSError as exc:
                            return exc
        except trio.Cancelled:
            # As in _send_locked: part of the data may be out, the framing
            # is lost, the connection can only be aborted.
            self._abort_writes(None)
            raise
        return trio.TooSlowError() if scope.cancelled_caught else None

    def _abort_writes(self, exchange: Exchange | None) -> None:
        self._broken = True
        self.must_close = True
        if exchange is not None:
            exchange._mark_disconnected()

    async def _fair_share(self) -> None:
        """Let the other tasks run, if this connection has not waited for a
        while (see FAIR_SHARE). Never raises Cancelled."""
        if self._spins >= FAIR_SHARE:
            self._spins = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
