"""The accept loop takes every waiting connection in one wake-up.

Clients connect over a Unix socket with blocking ``connect()`` calls made
without yielding to trio: a Unix stream connection is queued in the
listener's backlog by the time ``connect()`` returns, so when the server's
accept loop next runs, all of them are waiting -- deterministically, with
no timing. A trio instrument records in which task step each connection's
task was spawned: one step for all of them is one wake-up. The limits
hold through a burst: ``max_connections``, and running out of file
descriptors (``EMFILE``: logged, retried after 100 ms).
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from trioweb import Exchange, ServerConfig, serve

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]


class SpawnSteps(trio.abc.Instrument):
    """Numbers the task steps; notes the step in which each connection's
    task was spawned."""

    def __init__(self) -> None:
        self.step = 0
        self.spawned_in: list[int] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("HTTP1Connection.run"):
            self.spawned_in.append(self.step)


async def ok(exchange: Exchange) -> None:
    await exchange.send_response(200, [(b"content-length", b"2")], b"ok")


class OkApp:
    async def handle_exchange(self, exchange: Exchange) -> None:
        await ok(exchange)


@pytest.fixture
def uds_path() -> Iterator[str]:
    # Not tmp_path: a Unix socket path must stay under ~100 bytes.
    directory = tempfile.mkdtemp(prefix="trioweb-test-", dir="/tmp")
    try:
        yield os.path.join(directory, "server.sock")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def serving(path: str, **options: Any) -> AsyncIterator[SpawnSteps]:
    config = ServerConfig(uds=path, graceful_timeout=0.2, **options)
    trigger = trio.Event()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(serve, OkApp(), config, shutdown_trigger=trigger)
            )
            # The accept loop is parked, waiting for a client.
            await trio.testing.wait_all_tasks_blocked()
            steps = SpawnSteps()
            trio.lowlevel.add_instrument(steps)
            try:
                yield steps
            finally:
                trio.lowlevel.remove_instrument(steps)
                trigger.set()


def connect_now(path: str, count: int) -> list[socket.socket]:
    """``count`` connections, each waiting in the backlog on return."""
    clients = []
    for _ in range(count):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        clients.append(client)
    return clients


async def get(client: socket.socket) -> bytes:
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(client))
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := await stream.receive_some():
        reply += chunk
    await stream.aclose()
    return reply


async def test_waiting_connections_are_all_accepted_in_one_wakeup(
    uds_path: str,
) -> None:
    async with serving(uds_path) as steps:
        clients = connect_now(uds_path, 8)
        await trio.testing.wait_all_tasks_blocked()
        assert len(steps.spawned_in) == 8
        # One task step spawned all eight: not one accept per scheduler pass.
        assert len(set(steps.spawned_in)) == 1
        for client in clients:
            assert (await get(client)).endswith(b"\r\n\r\nok")


async def test_a_burst_stops_at_the_connection_limit(uds_path: str) -> None:
    async with serving(uds_path, max_connections=3) as steps:
        clients = connect_now(uds_path, 5)
        await trio.testing.wait_all_tasks_blocked()
        # Three taken at once; two left in the backlog, not in our memory.
        assert len(steps.spawned_in) == 3
        assert len(set(steps.spawned_in)) == 1
        # Each finished connection frees a slot for one that waited.
        for client in clients[:3]:
            assert (await get(client)).endswith(b"ok")
        await trio.testing.wait_all_tasks_blocked()
        assert len(steps.spawned_in) == 5
        for client in clients[3:]:
            assert (await get(client)).endswith(b"ok")


@pytest.mark.skipif(resource is None, reason="needs the resource module (Unix)")
async def test_out_of_file_descriptors_backs_off_then_accepts(
    uds_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert resource is not None
    async with serving(uds_path) as steps:
        clients = connect_now(uds_path, 3)
        # From now on the process cannot open a file descriptor: the
        # lowest free one is at the limit. (Before anything yields, so the
        # accept loop has not run yet.)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            await trio.sleep(0.05)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        # accept() failed, was logged, and the loop backs off (100 ms)
        # instead of spinning or dying; the clients wait in the backlog.
        assert "accept() failed, retrying in 100 ms" in caplog.text
        assert steps.spawned_in == []
        await trio.sleep(0.15)
        await trio.testing.wait_all_tasks_blocked()
        assert len(steps.spawned_in) == 3
        for client in clients:
            assert (await get(client)).endswith(b"ok")
