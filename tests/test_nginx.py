"""Behind a real nginx, several instances: the layout of docs/deployment.md
in miniature, on loopback.

Debian's nginx (tests/system/packages.txt; `make test` installs it) runs the
very config that docs/deployment.md shows, in front of the three
``trioweb serve`` lines that page shows (one of them ``--workers 2``),
serving tests/apps/nginx_app.py. See tests/nginx_cluster.py for how the doc
is turned into running processes. `make test` runs it with the rest;
`pytest -m nginx` runs it alone.

What it proves: the proxy headers give the right ``remote_ip`` and
``protocol``; nginx reuses its connections to trioweb (seen from trioweb's
side: the TCP peer of each request); server-sent events and websockets pass
through, each event on its own; a 50 MiB upload streams through with
trioweb's memory bounded; an instance killed mid-load is routed around with
no failed request beyond those in flight on it; a graceful restart of one
instance loses no request.

The suite skips -- loudly, with the reason -- only when nginx is not
installed and could not be. Every request has a timeout, every loop a bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

import trioweb
from tests import nginx_cluster
from tests.nginx_cluster import Cluster

NGINX = nginx_cluster.find_nginx()
#: Every single request's timeout: a stuck proxy fails the test, not CI.
TIMEOUT = 10.0

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.skipif(
        NGINX is None,
        reason=(
            "!!! Debian's nginx is not installed and could not be: the nginx "
            "integration suite (tests/test_nginx.py) did NOT run. Run "
            "`bash tests/system/install.sh` as root (make test does)."
        ),
    ),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert NGINX is not None
    # Not pytest's tmp_path: its parents are private to this user, and
    # nginx's worker process (`nobody` when run as root) must reach the prefix.
    with (
        tempfile.TemporaryDirectory(prefix="trioweb-nginx-") as directory,
        nginx_cluster.running_cluster(Path(directory), NGINX) as running,
    ):
        yield running


def client(
    cluster: Cluster, *, https: bool = False, source: str | None = None
) -> httpx.AsyncClient:
    """An HTTP client for nginx, optionally from another loopback address."""
    context = ssl.create_default_context()
    cluster.ca.configure_trust(context)
    port = cluster.https_port if https else cluster.http_port
    transport = httpx.AsyncHTTPTransport(verify=context, local_address=source)
    return httpx.AsyncClient(
        base_url=f"{'https' if https else 'http'}://127.0.0.1:{port}",
        transport=transport,
        timeout=TIMEOUT,
    )


# -- proxy headers ------------------------------------------------------------


async def test_proxy_headers_give_the_client_address_and_scheme(
    cluster: Cluster,
) -> None:
    # The client connects from 127.0.0.2, nginx from 127.0.0.1: trioweb must
    # report the former, and ignore the address the client forged itself.
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    seen_pids = set()
    for https in (False, True):
        async with client(cluster, https=https, source="127.0.0.2") as http:
            for _ in range(8):
                r = await http.get("/whoami", headers=forged)
                assert r.status_code == 200, r.text
                me = r.json()
                assert me["remote_ip"] == "127.0.0.2", me
                assert me["protocol"] == ("https" if https else "http"), me
                # The direct peer really is nginx, on loopback.
                assert me["peer"].startswith("127.0.0.1:"), me
                seen_pids.add(me["pid"])
    # Every instance answered the same way (round robin reached them all).
    assert len(seen_pids) >= len(cluster.instances), seen_pids


# -- keep-alive -----------------------------------------------------------------


async def test_upstream_connections_are_reused(cluster: Cluster) -> None:
    requests = 30
    peers: dict[int, set[str]] = {}
    async with client(cluster) as http:
        for _ in range(requests):
            r = await http.get("/whoami")
            assert r.status_code == 200, r.text
            me = r.json()
            peers.setdefault(me["pid"], set()).add(me["peer"])
    connections = sum(len(p) for p in peers.values())
    # One request at a time: nginx needs one connection per instance, and
    # takes it back out of its keep-alive pool for the next request. Without
    # keep-alive trioweb would see 30 connections.
    assert connections <= len(cluster.instances), peers


# -- server-sent events --------------------------------------------------------


async def test_server_sent_events_arrive_one_by_one(cluster: Cluster) -> None:
    token = "sse" + os.urandom(4).hex()
    received = []
    async with (
        client(cluster) as http,
        http.stream("GET", f"/events/{token}") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()
        for n in range(3):
            # Event n must arrive while the server is still waiting for us
            # to open gate n: had nginx buffered the stream, it would not.
            with trio.fail_after(TIMEOUT):
                data = await _next_event(lines)
            received.append(json.loads(data)["n"])
            (cluster.gate_dir / f"{token}.{n}").touch()
        with trio.fail_after(TIMEOUT):
            rest = [line async for line in lines]
    assert received == [0, 1, 2]
    assert not any(line.startswith("data:") for line in rest), rest


async def _next_event(lines: AsyncIterator[str]) -> str:
    """The data of the next event in an event stream (one-line data)."""
    data = None
    async for line in lines:
        if line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data is not None:
            return data
    raise AssertionError("the event stream ended early")


# -- a large upload ---------------------------------------------------------------


async def test_a_large_upload_streams_with_bounded_memory(cluster: Cluster) -> None:
    size = 50 * 1024 * 1024
    piece = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(size // len(piece)):
        digest.update(piece)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(piece)):
            yield piece

    pids = [pid for instance in cluster.instances for pid in instance.pids()]
    before = {pid: nginx_cluster.peak_rss(pid) for pid in pids}
    async with client(cluster) as http:
        r = await http.put(
            "/files/big.bin", content=body(), headers={"Content-Length": str(size)}
        )
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "big.bin", "size": size, "sha256": digest.hexdigest()}
    stored = cluster.upload_dir / "big.bin"
    try:
        assert stored.stat().st_size == size
    finally:
        stored.unlink(missing_ok=True)
    # The instance that took it never held the body: its peak memory grew
    # by far less than the 50 MiB that went through it.
    growth = {pid: nginx_cluster.peak_rss(pid) - before[pid] for pid in pids}
    assert max(growth.values()) < 16 * 1024 * 1024, growth


# -- websockets -------------------------------------------------------------------


@pytest.mark.skipif(
    not hasattr(trioweb, "WebSocketHandler"), reason="websockets land with issue 14"
)
async def test_websockets_pass_through(cluster: Cluster) -> None:
    wsproto = pytest.importorskip("wsproto")
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        Message,
        Request,
        TextMessage,
    )

    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(
            "127.0.0.1", cluster.http_port, local_address="127.0.0.2"
        )
        async with stream:
            await stream.send_all(ws.send(Request(host="localhost", target="/ws")))

            async def events() -> AsyncIterator[Any]:
                text = ""
                while True:
                    data = await stream.receive_some(65536)
                    ws.receive_data(data or None)
                    for event in ws.events():
                        if isinstance(event, Message):
                            text += event.data
                            if event.message_finished:
                                yield text
                                text = ""
                        else:
                            yield event
                    if not data:
                        return

            received = events()
            assert isinstance(await anext(received), AcceptConnection)
            hello = json.loads(await anext(received))
            assert hello["remote_ip"] == "127.0.0.2", hello
            for text in ("one", "two"):
                await stream.send_all(ws.send(TextMessage(data=text)))
                assert await anext(received) == text
            await stream.send_all(ws.send(CloseConnection(code=1000)))


# -- an instance dies, an instance restarts ---------------------------------------


@attrs.define
class Outcome:
    start: float
    end: float
    pid: int | None  # None: the request failed
    detail: str = ""


class Load:
    """The outcomes of a running load, and a way to wait for progress."""

    def __init__(self) -> None:
        #: In every request's query string, to find this load's requests in
        #: nginx's access log.
        self.tag = os.urandom(4).hex()
        self.outcomes: list[Outcome] = []
        self._changed = trio.lowlevel.ParkingLot()

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self._changed.unpark_all()

    async def served_by(self, pids: set[int], count: int) -> None:
        """Wait until ``count`` requests were answered by one of ``pids``."""
        with trio.fail_after(TIMEOUT):
            while sum(o.pid in pids for o in self.outcomes) < count:
                await self._changed.park()


async def run_load(
    cluster: Cluster,
    *,
    tasks: int,
    per_task: int,
    ms: int,
    during: Callable[[Load], Awaitable[None]],
) -> Load:
    """``tasks`` clients each send ``per_task`` GET /slow?ms=MS in turn, and
    ``during(load)`` runs alongside; return the load, every request's
    outcome in it."""
    load = Load()

    async def one_client() -> None:
        async with client(cluster) as http:
            for _ in range(per_task):
                start = trio.current_time()
                try:
                    r = await http.get("/slow", params={"ms": ms, "load": load.tag})
                except httpx.HTTPError as exc:
                    end = trio.current_time()
                    load.add(Outcome(start, end, None, repr(exc)))
                    continue
                end = trio.current_time()
                if r.status_code == 200:
                    load.add(Outcome(start, end, r.json()["pid"]))
                else:
                    load.add(Outcome(start, end, None, f"{r.status_code} {r.text}"))

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(one_client)
        await during(load)
    return load


async def test_graceful_restart_loses_no_request(cluster: Cluster) -> None:
    instance = cluster.instances[1]
    old = instance.pids()
    old_log = instance.log
    events: dict[str, float] = {}

    async def restart(load: Load) -> None:
        await load.served_by(old, 3)
        events["term"] = trio.current_time()
        status = await trio.to_thread.run_sync(instance.terminate)
        assert status == 0, instance.log.read_text()
        events["exited"] = trio.current_time()
        await trio.to_thread.run_sync(instance.start)

    outcomes = (
        await run_load(cluster, tasks=6, per_task=25, ms=60, during=restart)
    ).outcomes
    failed = [o for o in outcomes if o.pid is None]
    assert not failed, (failed, cluster.logs())
    # Requests were in flight on the old process when it was told to stop,
    # and it finished them (its access log says so, after the signal): the
    # restart really happened under load.
    log = old_log.read_text()
    assert "SIGTERM: shutting down gracefully" in log, log
    after_signal = log.partition("SIGTERM: shutting down gracefully")[2]
    assert re.search(r'"GET /slow\?\S+ HTTP/1.1" 200', after_signal), log
    assert not re.search(r'" (444|499) ', after_signal), log
    # The others took over while it was down.
    assert any(
        o.pid not in old and events["term"] < o.start < events["exited"]
        for o in outcomes
    )


async def test_a_killed_instance_is_routed_around(cluster: Cluster) -> None:
    instance = cluster.instances[0]
    victim = instance.pids()
    events: dict[str, float] = {}

    async def kill(load: Load) -> None:
        await load.served_by(victim, 3)
        instance.kill()
        events["kill"] = trio.current_time()

    try:
        load = await run_load(cluster, tasks=6, per_task=25, ms=60, during=kill)
    finally:
        # Bring the cluster back whole for whatever runs after this test.
        await trio.to_thread.run_sync(instance.start)
    kill_time = events["kill"]
    outcomes = load.outcomes
    failed = [o for o in outcomes if o.pid is None]
    in_flight = [o for o in outcomes if o.start < kill_time < o.end]
    # A request that failed was one on the wire when the instance died ...
    assert all(o.start < kill_time < o.end for o in failed), (failed, cluster.logs())
    assert len(failed) <= len(in_flight), (failed, in_flight)
    # ... and everything after was served, by the others.
    after = [o for o in outcomes if o.start > kill_time]
    assert after and all(o.pid is not None and o.pid not in victim for o in after)
    # nginx's side: a request failed only where the instance it was on at
    # the end was the killed one; the requests nginx had sent there and
    # could resend went on to another instance and succeeded.
    victim_address = f"127.0.0.1:{instance.port}"
    log = [entry for entry in cluster.access_log() if load.tag in entry[1]]
    assert len(log) == len(outcomes), log
    for status, _, tried in log:
        if status != 200:
            assert tried[-1] == victim_address, (status, tried)
    assert any(len(tried) > 1 and tried[0] == victim_address for _, _, tried in log)
