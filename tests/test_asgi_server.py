"""A trioweb application under a real ASGI server: hypercorn's trio worker,
in a subprocess, on a loopback socket (HTTP/1.1 and HTTP/2)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
import trio
from processes import DEADLINE, ROOT, ServerProcess

pytest.importorskip("hypercorn")


@asynccontextmanager
async def hypercorn(
    app: str = "tests.apps.asgi_apps:asgi_app", *, workers: int = 0
) -> AsyncIterator[tuple[ServerProcess, str]]:
    """Run ``hypercorn --worker-class trio APP`` on a listening socket it
    inherits (no port race); yield the process and its base URL once the
    application's startup hook has run.

    ``workers=0`` serves in the hypercorn process itself (which then has
    no signal handling); with 1 a supervisor process runs one worker
    process, and SIGTERM shuts it down gracefully.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    try:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "--worker-class",
                "trio",
                "--bind",
                f"fd://{fd}",
                "--workers",
                str(workers),
                "--graceful-timeout",
                "5",
                app,
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(fd,),
        )
    finally:
        listener.close()
    server = ServerProcess(process)
    try:
        with trio.fail_after(DEADLINE):
            await server.wait_for("app: started up")
            yield server, f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            # SIGTERM first: a supervisor killed outright would leave its
            # worker process behind.
            process.terminate()
            with trio.move_on_after(DEADLINE):
                await process.wait()
            if process.returncode is None:
                process.kill()
        with trio.move_on_after(DEADLINE):
            await server.finish()
        assert process.stderr is not None
        await process.stderr.aclose()


async def test_http1_request_and_lifespan_startup() -> None:
    async with (
        hypercorn() as (server, url),
        httpx.AsyncClient(base_url=url) as client,
    ):
        r = await client.get("/info", params={"q": "é x"})
    assert r.status_code == 200
    assert r.http_version == "HTTP/1.1"
    # The server's Server field only, not trioweb's as well.
    assert len(r.headers.get_list("server")) == 1
    assert "trioweb" not in r.headers["server"]
    assert r.json() == {
        "version": "HTTP/1.1",
        "protocol": "http",
        "host": url.removeprefix("http://"),
        "path": "/info",
        "query": "é x",
        # Set by the on_startup hook, which the lifespan protocol ran.
        "started": True,
    }
    server.assert_clean()


async def test_http2_request() -> None:
    # HTTP/2 with prior knowledge over cleartext (h2c), as hypercorn offers.
    async with (
        hypercorn() as (server, url),
        httpx.AsyncClient(base_url=url, http1=False, http2=True) as client,
    ):
        r = await client.get("/info")
        async with client.stream("GET", "/stream", params={"n": "4"}) as streamed:
            parts = [line async for line in streamed.aiter_lines()]
    assert r.http_version == "HTTP/2"
    assert r.json()["version"] == "HTTP/2"
    assert r.json()["host"] == url.removeprefix("http://")
    assert streamed.http_version == "HTTP/2"
    assert parts == ["part 0", "part 1", "part 2", "part 3"]
    server.assert_clean()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_streamed_upload(http2: bool) -> None:
    size = 1_000_000
    data = os.urandom(size)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, size, 100_000):
            yield data[start : start + 100_000]

    async with (
        hypercorn() as (server, url),
        httpx.AsyncClient(base_url=url, http1=not http2, http2=http2) as client,
    ):
        r = await client.post("/upload", content=body())
    assert r.status_code == 200
    result = r.json()
    assert result["size"] == size
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    # Handed to the handler as it arrived, not as one piece.
    assert result["chunks"] > 1
    server.assert_clean()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_disconnect_cancels_the_handler(http2: bool) -> None:
    async with hypercorn() as (server, url):
        client = httpx.AsyncClient(base_url=url, http1=not http2, http2=http2)
        async with client, client.stream("GET", "/hang") as r:
            # flush() returned: the head and the first part arrived.
            assert await r.aiter_raw().__anext__() == b"waiting\n"
            await server.wait_for("app: hanging /hang")
        # The client closed its connection mid-body. Hypercorn says
        # http.disconnect, and the adapter cancels the handler.
        await server.wait_for("app: cancelled /hang")
        await server.wait_for("app: connection closed /hang")
        # The server serves on.
        client = httpx.AsyncClient(base_url=url, http1=not http2, http2=http2)
        async with client:
            assert (await client.get("/info")).status_code == 200
    server.assert_clean()


async def test_lifespan_shutdown_runs_the_shutdown_hooks() -> None:
    async with hypercorn(workers=1) as (server, url):
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/info")).status_code == 200
        server.signal(signal.SIGTERM)
        await server.wait_for("app: shut down")
        assert await server.finish() == 0
    server.assert_clean()


async def test_an_http2_stream_reset_cancels_its_handler_only() -> None:
    # HTTP/2's own way to leave: the client resets one stream and keeps the
    # connection. That stream's handler is cancelled; the connection serves
    # the next stream.
    async with hypercorn() as (server, url):
        authority = url.removeprefix("http://")
        host, port = authority.rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        conn.initiate_connection()

        def request(path: str) -> int:
            stream_id: int = conn.get_next_available_stream_id()
            conn.send_headers(
                stream_id,
                [
                    (":method", "GET"),
                    (":path", path),
                    (":scheme", "http"),
                    (":authority", authority),
                ],
                end_stream=True,
            )
            return stream_id

        async def read_until(stream_id: int, *, ended: bool) -> bytes:
            body = b""
            while True:
                await stream.send_all(conn.data_to_send())
                data = await stream.receive_some(65536)
                assert data, "hypercorn closed the connection"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                        if event.stream_id == stream_id:
                            body += event.data
                            if not ended:
                                return body
                    elif (
                        isinstance(event, h2.events.StreamEnded)
                        and event.stream_id == stream_id
                    ):
                        return body

        async with stream:
            hang = request("/hang")
            assert await read_until(hang, ended=False) == b"waiting\n"
            await server.wait_for("app: hanging /hang")
            conn.reset_stream(hang, error_code=h2.errors.ErrorCodes.CANCEL)
            await stream.send_all(conn.data_to_send())
            await server.wait_for("app: cancelled /hang")
            await server.wait_for("app: connection closed /hang")
            info = await read_until(request("/info"), ended=True)
            assert b'"version": "HTTP/2"' in info
    server.assert_clean()
