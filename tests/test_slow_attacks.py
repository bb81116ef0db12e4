"""Slow-client attacks by a real attack tool, over real sockets.

Debian's ``slowhttptest`` in slow-body mode (R-U-Dead-Yet): many connections,
each sending a POST head with a large ``Content-Length`` and then a few body
bytes every second -- never slow enough to trip the per-read body timeout.
Without a minimum body rate every such connection holds its slot until the
whole body timeout has passed, the connection cap fills, and fresh clients
wait in the listen backlog. The test fails then: a fresh client must be
answered within a second or two all through the attack.

The server runs with a small connection cap (100) and a short grace (0.5 s)
so that a few seconds and a couple of hundred connections on loopback show
what the defaults (10,000 connections, 5 s grace, 240 bytes/s) do at scale;
docs/server.md has the reasoning behind the defaults.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest
import trio
from processes import trioweb_process

SLOWHTTPTEST = shutil.which("slowhttptest")

pytestmark = pytest.mark.skipif(
    SLOWHTTPTEST is None,
    reason="!!! slowhttptest is not installed (Debian package slowhttptest; "
    "`make test` installs it via tests/system/packages.txt): the slow-body "
    "attack test cannot run",
)

ATTACK_SECONDS = 6


def _probe(port: int) -> float:
    """One fresh client: connect, GET, read the whole answer; the seconds it
    took (raises if it took longer than 5 s)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:100]
    return time.monotonic() - start


@pytest.mark.parametrize("http_backend", ["h11", "httptools"], indirect=True)
async def test_fresh_clients_are_served_during_a_slow_body_attack(
    http_backend: str,
) -> None:
    async with trioweb_process(
        "serve",
        "tests.apps.slow_attack_apps:app",
        "--port",
        "0",
        "--http",
        http_backend,
        "--max-connections",
        "100",
        "--min-body-rate-grace",
        "0.5",
        "--no-access-log",
    ) as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match is not None, line
        port = int(match.group(1))
        assert SLOWHTTPTEST is not None
        attack = await trio.lowlevel.open_process(
            [
                SLOWHTTPTEST,
                "-B",  # slow body
                "-c",
                "200",  # connections
                "-r",
                "50",  # new connections a second
                "-i",
                "1",  # a body piece every second
                "-x",
                "2",  # of a few bytes
                "-s",
                "100000",  # Content-Length
                "-l",
                str(ATTACK_SECONDS),
                "-u",
                f"http://127.0.0.1:{port}/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            latencies = []
            await trio.sleep(2)  # the attack is at full strength
            for _ in range(6):
                latencies.append(await trio.to_thread.run_sync(_probe, port))
                await trio.sleep(0.5)
        finally:
            attack.kill()
            await attack.wait()
        # With the minimum rate the attackers are cut within about a second;
        # without it they hold all 100 slots and a probe waits until the
        # attack ends (or fails at its 5 s timeout).
        assert max(latencies) < 1.5, latencies
        # And the server is whole afterwards.
        assert await trio.to_thread.run_sync(_probe, port) < 1.5
        server.assert_clean()
