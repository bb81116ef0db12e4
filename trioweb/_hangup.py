"""Noticing that a peer hung up while the bytes it sent before are unread.

The connection's reader learns of a close by reading: ``receive_some``
returns ``b""`` once everything before the FIN has been read. When the
engine stops reading because its read-ahead buffer is full (a client
pipelining faster than the handler answers), the FIN waits behind unread
bytes in the kernel, and reading on would mean buffering without bound.

The kernel knows, though. On Linux an ``epoll`` set asked for
``EPOLLRDHUP`` reports the peer's FIN (and ``EPOLLHUP``/``EPOLLERR`` a
reset) whatever data is queued before it. :func:`wait_for_hangup` waits on
such a set of its own, through trio's ``wait_readable`` on the set's file
descriptor: no polling, and nothing read from the socket.
"""

from __future__ import annotations

import select

import trio

__all__ = ["wait_for_hangup"]

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
