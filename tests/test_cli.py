"""``trioweb serve`` as a real process: signals, graceful shutdown, errors.

Each test starts ``python -m trioweb serve tests.apps...`` as a subprocess,
learns the port from the ``serving on`` line on its stderr, talks to it over
real sockets and signals it. The apps (tests/apps/exchange_apps.py) print a
marker to stderr when a handler starts, so the tests know when a request is
in flight. Every wait is under a hard deadline, so a broken server fails the
test instead of hanging the suite.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import h11
import pytest
import trio
from processes import ServerProcess, trioweb_process

STARTUP = "tests.apps.startup_apps"
APP = "tests.apps.exchange_apps"


@asynccontextmanager
async def trioweb(*args: str) -> AsyncIterator[ServerProcess]:
    """Start ``python -m trioweb ARGS``; kill it if the test leaves it running."""
    async with trioweb_process(*args) as server:
        yield server


@asynccontextmanager
async def serving(*args: str) -> AsyncIterator[ServerProcess]:
    """``trioweb serve ARGS --port 0``, once it listens."""
    async with trioweb("serve", *args, "--port", "0") as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r"http://127\.0\.0\.1:(\d+)$", line)
        assert match, line
        server.port = int(match.group(1))
        yield server


async def run_trioweb(*args: str) -> tuple[int, str]:
    """Run a ``trioweb`` command that should end by itself: (status, stderr)."""
    async with trioweb(*args) as process:
        code = await process.finish()
        return code, process.stderr


# -- a minimal HTTP/1.1 client ------------------------------------------------------


@attrs.define
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One connection, spoken to through h11, body parts sent on demand."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, port: int, *, rcvbuf: int | None = None) -> Client:
        sock = trio.socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect(("127.0.0.1", port))
        return cls(trio.SocketStream(sock))

    async def start(
        self, method: str, target: str, *, length: int | None = None
    ) -> None:
        headers = [("host", "test")]
        if length is not None:
            headers.append(("content-length", str(length)))
        await self._send(h11.Request(method=method, target=target, headers=headers))
        if length is None:
            await self._send(h11.EndOfMessage())

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        await self._send(h11.Data(data=data))
        if end:
            await self._send(h11.EndOfMessage())

    async def _send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        assert data is not None
        await self.stream.send_all(data)

    async def reply(self) -> Reply:
        status, headers, chunks = 0, {}, []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                if self.h11.our_state is self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()  # keep-alive: ready for more
                return Reply(status, headers, b"".join(chunks))
            else:
                raise AssertionError(f"closed before a response: {event}")

    async def get(self, target: str) -> Reply:
        await self.start("GET", target)
        return await self.reply()

    async def closed_by_server(self) -> bool:
        try:
            return await self.stream.receive_some(65536) == b""
        except trio.BrokenResourceError:
            return True


# -- serving and shutting down -------------------------------------------------------


async def test_sigint_finishes_in_flight_then_a_second_sigint_stops_now() -> None:
    async with serving(f"{APP}:app") as server:
        # A request whose body is still arriving when the signal comes...
        echo = await Client.connect(server.port)
        await echo.start("POST", "/echo?x=1", length=5)
        await echo.send_body(b"he")
        await server.wait_for("app: started POST /echo?x=1")
        # ...and one that would never end by itself.
        hang = await Client.connect(server.port)
        await hang.start("GET", "/hang")
        await server.wait_for("app: started GET /hang")

        server.signal(signal.SIGINT)
        await server.wait_for("SIGINT: shutting down gracefully (up to 10 s)")
        await echo.send_body(b"llo", end=True)
        reply = await echo.reply()
        assert (reply.status, reply.body) == (200, b"hello")
        assert reply.headers.get("connection") == "close", (reply, server.stderr)
        assert await echo.closed_by_server()
        await server.wait_for("app: finished POST /echo?x=1")

        # The graceful period (10 s) would wait for /hang; a second signal
        # does not.
        server.signal(signal.SIGINT)
        with trio.fail_after(3):
            await server.wait_for("second SIGINT: stopping now")
            await server.wait_for("app: cancelled GET /hang")
            assert await hang.closed_by_server()
            assert await server.finish() == 0
    server.assert_clean()
    # The access log is on by default: method, path with query, status.
    assert re.search(r'"POST /echo\?x=1 HTTP/1\.1" 200 5 ', server.stderr)


async def test_sighup_shuts_down_gracefully() -> None:
    async with serving(f"{APP}:app") as server:
        echo = await Client.connect(server.port)
        await echo.start("POST", "/echo", length=5)
        await echo.send_body(b"he")
        await server.wait_for("app: started POST /echo")
        server.signal(signal.SIGHUP)
        await server.wait_for("SIGHUP: shutting down gracefully (up to 10 s)")
        await echo.send_body(b"llo", end=True)
        reply = await echo.reply()
        assert (reply.status, reply.body) == (200, b"hello")
        assert reply.headers.get("connection") == "close"
        assert await server.finish() == 0
    server.assert_clean()


async def test_sigterm_with_a_client_that_does_not_read() -> None:
    graceful = 0.3
    async with serving(
        f"{APP}:app",
        "--no-access-log",
        "--graceful-timeout",
        str(graceful),
        "--max-body-size",
        "100",
    ) as server:
        client = await Client.connect(server.port)
        assert (await client.get("/?q=1")).body == b"GET /?q=1"
        # The limit flags reach the server.
        await client.start("POST", "/echo", length=101)
        assert (await client.reply()).status == 413

        stuck = await Client.connect(server.port, rcvbuf=4096)
        await stuck.start("GET", "/big")  # 16 MiB, never read
        await server.wait_for("app: started GET /big")

        start = trio.current_time()
        server.signal(signal.SIGTERM)
        assert await server.finish() == 0
        elapsed = trio.current_time() - start
    assert graceful <= elapsed < graceful + 2, elapsed
    assert "app: cancelled GET /big" in server.stderr
    assert "graceful timeout (0.3 s): cancelling 1 connection(s)" in server.stderr
    assert "trioweb.access" not in server.stderr
    assert "GET /?q=1 HTTP/1.1" not in server.stderr
    server.assert_clean()


# -- interrupted while starting ------------------------------------------------------


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"]
)
async def test_a_signal_while_importing_exits_quietly(signum: int) -> None:
    async with trioweb("serve", "tests.apps.slow_import:app", "--port", "0") as process:
        await process.wait_for("app: importing")
        process.signal(signum)
        with trio.fail_after(3):
            assert await process.finish() == 0
    process.assert_clean()


async def test_a_signal_during_lifespan_start_up_cancels_it() -> None:
    async with trioweb("serve", f"{APP}:slow_start", "--port", "0") as process:
        await process.wait_for("app: lifespan starting")
        process.signal(signal.SIGTERM)
        with trio.fail_after(3):
            assert await process.finish() == 0
    assert "app: lifespan cleaned up" in process.stderr
    assert "serving on" not in process.stderr
    process.assert_clean()


# -- one-line errors -----------------------------------------------------------------


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(("trioweb: error: ", "trioweb serve: error: "))
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "status", "fragments"),
    [
        pytest.param(
            ["tests.apps.no_such_module:app"],
            1,
            ["cannot import 'tests.apps.no_such_module'", "no module named"],
            id="missing-module",
        ),
        pytest.param(
            [f"{APP}:no_such_app"],
            1,
            [f"module '{APP}' has no attribute 'no_such_app'"],
            id="missing-attribute",
        ),
        pytest.param(
            ["tests.apps.broken_import:app"],
            1,
            [
                "importing 'tests.apps.broken_import' raised RuntimeError",
                "this module is broken on purpose",
                "broken_import.py:",
            ],
            id="import-raises",
        ),
        pytest.param(
            [f"{APP}:not_an_app"],
            1,
            ["is an int, not an application"],
            id="not-an-app",
        ),
        pytest.param(
            [f"{APP}:app", "--max-body-size", "-1"],
            2,
            ["--max-body-size must be a finite number, 0 or more, got -1"],
            id="bad-flag-value",
        ),
        pytest.param(
            [f"{APP}:app", "--port", "eighty"],
            2,
            ["--port", "expected a whole number, got 'eighty'"],
            id="flag-not-a-number",
        ),
        pytest.param(
            ["no-colon"],
            2,
            ["like examples.hello:app", "got 'no-colon'"],
            id="no-colon",
        ),
        pytest.param(
            [f"{APP}:app", "--bogus", "1"],
            2,
            [
                "trioweb serve: error: unrecognized arguments: --bogus 1 "
                "(see trioweb serve --help)"
            ],
            id="unknown-option",
        ),
        pytest.param(
            [f"{STARTUP}:failing_hook", "--port", "0"],
            1,
            [
                f"trioweb: error: startup hook {STARTUP}.open_db failed: "
                "ConnectionRefusedError: no database at db:5432 "
                "(--log-level debug shows the traceback)"
            ],
            id="startup-hook-fails",
        ),
        pytest.param(
            [f"{STARTUP}:make_app"],
            1,
            ["make_app is a function, not an application", "add --factory"],
            id="factory-without-flag",
        ),
        pytest.param(
            [f"{STARTUP}:failing_factory", "--factory"],
            1,
            [
                f"--factory: calling {STARTUP}:failing_factory() raised KeyError: "
                "'settings file missing'"
            ],
            id="factory-raises",
        ),
        pytest.param(
            [f"{STARTUP}:returns_nothing", "--factory"],
            1,
            ["returns_nothing() returned a NoneType, not an application"],
            id="factory-returns-no-app",
        ),
        pytest.param(
            [f"{STARTUP}:failing_hook", "--factory"],
            1,
            ["--factory: ", "is an Application, not a function"],
            id="factory-flag-on-an-app",
        ),
        pytest.param(
            [f"{APP}:app", "--uds", "/tmp/x.sock", "--port", "8001"],
            2,
            ["--uds and --port cannot both be given", "--port would be ignored"],
            id="uds-and-port",
        ),
        pytest.param(
            [f"{APP}:app", "--uds", "/tmp/x.sock", "--host", "0.0.0.0"],
            2,
            ["--uds and --host cannot both be given"],
            id="uds-and-host",
        ),
        pytest.param(
            [f"{APP}:app", "--fd", "3", "--port", "8001"],
            2,
            ["--fd and --port cannot both be given"],
            id="fd-and-port",
        ),
        pytest.param(
            [f"{APP}:app", "--fd", "3", "--host", "::"],
            2,
            ["--fd and --host cannot both be given"],
            id="fd-and-host",
        ),
        pytest.param(
            [f"{APP}:app", "--app-dir", "/nonexistent/dir", "--port", "0"],
            2,
            ["--app-dir '/nonexistent/dir' is not a directory"],
            id="app-dir-missing",
        ),
    ],
)
async def test_errors_are_one_line(
    args: list[str], status: int, fragments: list[str]
) -> None:
    code, stderr = await run_trioweb("serve", *args)
    assert code == status
    assert_one_line_error(stderr, *fragments)


async def test_port_in_use_is_a_one_line_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        code, stderr = await run_trioweb("serve", f"{APP}:app", "--port", str(port))
    finally:
        holder.close()
    assert code == 1
    assert_one_line_error(
        stderr, f"cannot listen on 127.0.0.1:{port}", "Address already in use"
    )


async def test_uds_flag_serves_on_a_unix_socket() -> None:
    path = f"/tmp/trioweb-cli-{os.getpid()}.sock"
    async with trioweb("serve", f"{APP}:app", "--uds", path) as server:
        await server.wait_for(f"trioweb: serving on unix:{path}")
        client = Client(await trio.open_unix_socket(path))
        assert (await client.get("/via-uds")).body == b"GET /via-uds"
        server.signal(signal.SIGINT)
        assert await server.finish() == 0
    assert not await trio.Path(path).exists()
    server.assert_clean()


# -- the tear-down ---------------------------------------------------------------


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize(
    ("app", "hangs_in"),
    [
        (f"{APP}:hanging_exit", "lifespan exiting"),
        ("tests.apps.lifespan_apps:hanging_exit", "lifespan exiting"),
        ("tests.apps.lifespan_apps:hanging_hook", "shutdown hook running"),
    ],
)
async def test_a_second_signal_ends_a_hanging_tear_down(
    app: str, hangs_in: str, second: int
) -> None:
    # Regression: a lifespan whose exit hung kept the process alive after
    # SIGINT, a second SIGINT and SIGTERM: only SIGKILL ended it.
    async with serving(app) as server:
        client = await Client.connect(server.port)
        assert (await client.get("/")).status == 200
        server.signal(signal.SIGINT)
        await server.wait_for(hangs_in)
        server.signal(second)
        with trio.fail_after(3):
            await server.wait_for(f"second {signal.Signals(second).name}: stopping now")
            assert await server.finish() == 0
    assert "lifespan exit cancelled" in server.stderr
    server.assert_clean()


async def test_a_second_signal_in_the_graceful_period_cancels_the_tear_down() -> None:
    async with serving("tests.apps.lifespan_apps:hanging_hook") as server:
        client = await Client.connect(server.port)
        await client.start("GET", "/hang")
        await server.wait_for("app: started GET /hang")
        server.signal(signal.SIGINT)
        await server.wait_for("SIGINT: shutting down gracefully (up to 10 s)")
        server.signal(signal.SIGINT)
        with trio.fail_after(3):
            assert await server.finish() == 0
    # Stopping now: the hook and the lifespan's exit were cancelled as they
    # began (their finally blocks ran), not given their 60 s.
    assert "app: shutdown hook cancelled" in server.stderr
    assert "app: lifespan exit cancelled" in server.stderr
    assert "shutdown hooks cut short (stopping now)" in server.stderr
    server.assert_clean()


@pytest.mark.parametrize("workers", ["1", "2"], ids=["1-process", "2-workers"])
@pytest.mark.parametrize(
    "second",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
    ids=["INT", "TERM", "HUP"],
)
async def test_a_second_signal_while_the_process_exits_is_ignored(
    second: int, workers: str
) -> None:
    # Regression: the signal handlers were put back before the process had
    # exited, so a second Ctrl-C in its last moments ended it by the signal
    # (status 130, or -15 for SIGTERM) instead of 0.
    async with serving("tests.apps.slow_exit:app", "--workers", workers) as server:
        server.signal(signal.SIGINT)
        await server.wait_for("app: exiting")
        server.signal(second)
        assert await server.finish() == 0
    assert "app: exited" in server.stderr
    server.assert_clean()


async def test_a_failing_startup_hook_with_log_level_debug_shows_the_traceback() -> (
    None
):
    code, stderr = await run_trioweb(
        "serve", f"{STARTUP}:failing_hook", "--port", "0", "--log-level", "debug"
    )
    assert code == 1
    assert "Traceback" in stderr
    assert 'raise ConnectionRefusedError("no database at db:5432")' in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"trioweb: error: startup hook {STARTUP}.open_db failed: "
        "ConnectionRefusedError: no database at db:5432"
    )
    assert "ExceptionGroup" not in stderr


async def test_factory_builds_the_app() -> None:
    async with serving(f"{STARTUP}:make_app", "--factory") as server:
        client = Client(await trio.open_tcp_stream("127.0.0.1", server.port))
        reply = await client.get("/")
        assert (reply.status, reply.body) == (200, str(server.process.pid).encode())
        server.signal(signal.SIGINT)
        assert await server.finish() == 0
    server.assert_clean()


async def test_a_failing_background_task_shuts_down_gracefully() -> None:
    async with serving("tests.apps.lifespan_apps:failing_task") as server:
        slow = await Client.connect(server.port)
        await slow.start("GET", "/slow")
        await server.wait_for("app: started GET /slow")
        fail = await Client.connect(server.port)
        assert (await fail.get("/fail")).status == 200
        # Logged once, with its traceback, on trioweb.error...
        await server.wait_for(
            "E trioweb.error: application task failed: RuntimeError: "
            "background task died; shutting down"
        )
        # ...and the request in flight gets the graceful period.
        reply = await slow.reply()
        assert (reply.status, reply.body) == (200, b"slept")
        assert reply.headers.get("connection") == "close"
        assert await server.finish() == 1
    assert server.stderr.count("application task failed") == 1, server.stderr
    assert 'raise RuntimeError("background task died")' in server.stderr
    assert "app: shutdown hook ran" in server.stderr
    # No second, raw traceback from the command itself.
    assert "raise sole" not in server.stderr
    assert "runpy" not in server.stderr
    assert "trioweb: error" not in server.stderr
