"""The kernel's view of a peer that hung up behind unread bytes
(trioweb.server._hangup), which the engine's reader uses when its buffer is full."""

from __future__ import annotations

import select

import pytest
import trio
import trio.testing

from trioweb.server._hangup import can_watch, wait_for_hangup

needs_epoll = pytest.mark.skipif(
    not hasattr(select, "EPOLLRDHUP"), reason="the hang-up watch needs Linux epoll"
)


def _socket_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


@needs_epoll
async def test_a_hang_up_behind_unread_bytes_is_seen() -> None:
    ours, theirs = _socket_stream_pair()
    assert can_watch(ours)
    async with ours:
        await theirs.send_all(b"x" * 10000)
        with trio.move_on_after(0.05) as scope:
            await wait_for_hangup(ours)
        assert scope.cancelled_caught, "unread bytes alone are not a hang-up"
        await theirs.aclose()
        with trio.fail_after(5):
            await wait_for_hangup(ours)
        # Nothing was read: the bytes are all still there.
        received = b""
        while data := await ours.receive_some():
            received += data
        assert received == b"x" * 10000


async def test_streams_that_are_not_sockets_are_not_watched(
    autojump_clock: trio.abc.Clock,
) -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    assert not can_watch(ours)
    await theirs.aclose()
    with trio.move_on_after(3600) as scope:
        await wait_for_hangup(ours)
    assert scope.cancelled_caught
