"""Noticing that a peer hung up while the bytes it sent before are unread.

A connection learns of a close by reading: ``receive_some`` returns ``b""``
once everything before the FIN has been read. But the engine does not
always read: on the plain-TCP fast path (:mod:`trioweb.server.http1`) nothing
reads while a handler runs, and on the Stream path the reader stops when its
read-ahead buffer is full. Then the FIN waits behind unread bytes in the
kernel, and reading on would mean buffering without bound.

The kernel knows, though. On Linux an ``epoll`` set asked for
``EPOLLRDHUP`` reports the peer's FIN (and ``EPOLLHUP``/``EPOLLERR`` a
reset) whatever data is queued before it. Two tools use that, both through
trio's ``wait_readable`` on the set's file descriptor, so nothing polls and
nothing is read from the socket:

* :class:`HangupWatcher`, one per trio run (:func:`hangup_watcher`): every
  plain-TCP connection registers its socket once, and one task reports
  hang-ups to them all. Nothing happens per request.
* :func:`wait_for_hangup`, one stream at a time, for the Stream path's
  reader (TLS over TCP).

Elsewhere (no ``epoll``: macOS, Windows) the engine serves every connection
on the Stream path, whose reader sees the close by reading.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable

import trio

__all__ = ["HangupWatcher", "hangup_watcher", "wait_for_hangup"]

_log = logging.getLogger("trioweb.error")

_EPOLL_HANGUP = (
    getattr(select, "EPOLLRDHUP", 0)
    | getattr(select, "EPOLLHUP", 0)
    | getattr(select, "EPOLLERR", 0)
)


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    if isinstance(stream, trio.SocketStream):
        return stream.socket
    # trio.SSLStream and other wrappers: the TCP connection underneath.
    inner = getattr(stream, "transport_stream", None)
    if isinstance(inner, trio.abc.Stream):
        return _socket_of(inner)
    return None


def can_watch(stream: trio.abc.Stream) -> bool:
    """Whether :func:`wait_for_hangup` can see a hang-up on ``stream``."""
    return (
        hasattr(select, "epoll")
        and hasattr(select, "EPOLLRDHUP")
        and _socket_of(stream) is not None
    )


async def wait_for_hangup(stream: trio.abc.Stream) -> None:
    """Return when the peer of ``stream`` has closed or reset the connection,
    even if bytes it sent before are still unread.

    Sleeps forever where that cannot be known without reading: streams
    that are not sockets (memory streams) and systems without ``epoll``.
    Cancel it to stop watching.
    """
    sock = _socket_of(stream)
    if sock is None or not can_watch(stream):
        await trio.sleep_forever()
        return
    with select.epoll() as watcher:
        try:
            # Level-triggered and without EPOLLIN: the set is ready only
            # once the peer hung up, and stays ready after.
            watcher.register(sock.fileno(), _EPOLL_HANGUP)
        except OSError:
            # A socket closed under us, or one epoll refuses: no watch, as
            # on a system without epoll (the reader sees the close later).
            await trio.sleep_forever()
        while True:
            await trio.lowlevel.wait_readable(watcher.fileno())
            if watcher.poll(0):
                return


# -- the server-wide watcher -------------------------------------------------------
#
# The plain-socket connection (trioweb.server.http1) has one task, and it does not
# read while the application runs: pipelined bytes stay in the kernel. So
# something else must notice a client that leaves mid-request. One epoll set
# for every such connection of the trio run does it, in one system task:
# a socket joins it once, when its connection starts (edge-triggered, so a
# hang-up is reported once and the set never stays ready), and leaves it
# when the connection ends. Waking the task costs nothing per request.


class HangupWatcher:
    """One epoll set, watched by one task, that reports peers hanging up.

    Use :func:`hangup_watcher` to get the trio run's watcher (None where
    there is no ``epoll``). :meth:`watch` a socket's file descriptor with a
    callback; the callback is called once, from the watcher's task, when the
    peer closes or resets the connection (whatever unread bytes are queued
    before the FIN). :meth:`forget` it before closing the socket.
    """

    __slots__ = ("_callbacks", "_epoll")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], object]] = {}

    def watch(self, fd: int, callback: Callable[[], object]) -> bool:
        """Call ``callback()`` once the peer of socket ``fd`` hangs up.

        Returns False if the socket cannot be watched (closed already); the
        caller must then learn of a close some other way.
        """
        try:
            self._epoll.register(fd, _EPOLL_HANGUP | select.EPOLLET)
        except FileExistsError:
            # The descriptor was closed and reused while another reference
            # to its old socket kept the registration alive: re-aim it.
            self._epoll.modify(fd, _EPOLL_HANGUP | select.EPOLLET)
        except OSError:
            return False
        self._callbacks[fd] = callback
        return True

    def forget(self, fd: int, callback: Callable[[], object]) -> None:
        """Stop watching ``fd`` for ``callback`` (call it before closing the
        socket).

        Nothing happens if ``fd`` is watched for another callback by now:
        a socket closed early (a websocket handler may close its stream)
        frees its number, and a new connection may have it already.

        A socket whose hang-up was reported (its callback is gone) leaves
        the set too: closing it would not remove it while another
        descriptor keeps the socket open (a child the application forked
        inherits every socket), and the set would go on reporting it under
        a number that a new connection will get.
        """
        current = self._callbacks.get(fd)
        if current is not None:
            if current != callback:
                return
            del self._callbacks[fd]
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            # Not there (closed early, or another socket's now), or the
            # watcher is closed (the run is ending).
            pass

    async def _run(self) -> None:
        epoll = self._epoll
        callbacks = self._callbacks
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                for fd, _ in epoll.poll(0, 256):
                    callback = callbacks.pop(fd, None)
                    if callback is None:
                        continue
                    try:
                        callback()
                    except Exception:
                        # A system task must not raise: that would crash
                        # the whole trio run. Callbacks are the engine's,
                        # and set flags; one failing is an engine bug.
                        _log.exception("hang-up callback %r raised", callback)
        finally:
            callbacks.clear()
            epoll.close()


_WATCHER: trio.lowlevel.RunVar[HangupWatcher | None] = trio.lowlevel.RunVar(
    "trioweb_hangup_watcher"
)


def hangup_watcher() -> HangupWatcher | None:
    """The watcher of this trio run, started on first use; None where the
    system has no ``epoll`` (the engine then reads to learn of a close)."""
    try:
        return _WATCHER.get()
    except LookupError:
        pass
    watcher: HangupWatcher | None = None
    if hasattr(select, "epoll") and _EPOLL_HANGUP & getattr(select, "EPOLLRDHUP", 0):
        watcher = HangupWatcher()
        trio.lowlevel.spawn_system_task(watcher._run, name="trioweb hang-up watcher")
    _WATCHER.set(watcher)
    return watcher
