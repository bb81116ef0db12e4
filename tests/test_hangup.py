"""The kernel's view of a peer that hung up behind unread bytes
(trioweb.server._hangup), which the engine's reader uses when its buffer is full."""

from __future__ import annotations

import os
import select
import socket

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


# -- the run-wide watcher ----------------------------------------------------------


@needs_epoll
async def test_the_watcher_reports_each_hang_up_once() -> None:
    from trioweb.server._hangup import hangup_watcher

    watcher = hangup_watcher()
    assert watcher is not None
    assert hangup_watcher() is watcher, "one watcher per trio run"
    a, theirs_a = socket.socketpair()
    b, theirs_b = socket.socketpair()
    seen: list[str] = []
    hung_up = trio.Event()

    def on(name: str) -> None:
        seen.append(name)
        hung_up.set()

    on_a, on_b = (lambda: on("a")), (lambda: on("b"))
    assert watcher.watch(a.fileno(), on_a)
    assert watcher.watch(b.fileno(), on_b)
    with a, b:
        # Unread bytes are not a hang-up.
        theirs_a.send(b"x" * 1000)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == []
        theirs_a.close()
        with trio.fail_after(5):
            await hung_up.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert seen == ["a"]
        # Forgotten: b's peer leaving is nobody's business any more.
        watcher.forget(b.fileno(), on_b)
        theirs_b.close()
        await trio.sleep(0.05)
        assert seen == ["a"]
        watcher.forget(a.fileno(), on_a)


@needs_epoll
async def test_a_socket_that_cannot_be_watched_says_so() -> None:
    from trioweb.server._hangup import hangup_watcher

    watcher = hangup_watcher()
    assert watcher is not None
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    assert not watcher.watch(fd, lambda: None)


@needs_epoll
async def test_forgetting_a_reused_descriptor_leaves_its_new_owner_watched() -> None:
    # A socket closed early frees its number; a new connection may get it
    # and be watched before the old one's owner forgets: the new watch stays.
    from trioweb.server._hangup import hangup_watcher

    watcher = hangup_watcher()
    assert watcher is not None
    old, old_peer = socket.socketpair()
    fd = old.fileno()
    watcher.watch(fd, lambda: None)
    old.close()
    old_peer.close()
    new, new_peer = socket.socketpair()
    seen = trio.Event()
    if new.fileno() != fd:  # the number was not reused: make it so
        new_fd = os.dup2(new.fileno(), fd)
        new.close()
        new = socket.socket(fileno=new_fd)
    with new:
        assert watcher.watch(fd, seen.set)
        watcher.forget(fd, lambda: None)  # the old owner, late
        new_peer.close()
        with trio.fail_after(5):
            await seen.wait()
        watcher.forget(fd, seen.set)


@needs_epoll
async def test_a_reported_socket_kept_open_elsewhere_is_not_reported_again() -> None:
    # A socket whose hang-up was reported is forgotten, then closed, while
    # another descriptor keeps it open (a child the application forked
    # inherits every socket): its registration must be gone by then, or a
    # later change of the old socket is reported under its number, to the
    # new connection that has that number now.
    from trioweb.server._hangup import hangup_watcher

    watcher = hangup_watcher()
    assert watcher is not None
    old, old_peer = socket.socketpair()
    fd = old.fileno()
    reported = trio.Event()
    assert watcher.watch(fd, reported.set)
    old_peer.close()
    with trio.fail_after(5):
        await reported.wait()
    kept = socket.socket(fileno=os.dup(fd))  # the child's copy
    watcher.forget(fd, reported.set)
    old.close()
    new, new_peer = socket.socketpair()
    if new.fileno() != fd:  # the number was not reused: make it so
        new_fd = os.dup2(new.fileno(), fd)
        new.close()
        new = socket.socket(fileno=new_fd)
    seen: list[str] = []

    def on_new() -> None:
        seen.append("new")

    with new, new_peer, kept:
        assert watcher.watch(fd, on_new)
        # The old socket changes again (the child shuts it down).
        kept.shutdown(socket.SHUT_RDWR)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.05)
        assert seen == [], "the new connection's peer is still there"
        watcher.forget(fd, on_new)
