"""``trioweb serve --workers N``: worker processes under a supervisor.

Each test starts ``python -m trioweb serve tests.apps.worker_apps:... --workers
N`` as a subprocess, learns the address from its stderr, and talks to it
over real sockets, one fresh connection per request. The app answers with
the PID of the worker that served it. The workers share the supervisor's
stderr, so reading it to its end waits for every one of them to exit. Every
wait is under a hard deadline.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from processes import ServerProcess, trioweb_process

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="worker processes need os.fork()"
)

STARTUP = "tests.apps.startup_apps"
APP = "tests.apps.worker_apps"


@asynccontextmanager
async def trioweb(
    *args: str, python: tuple[str, ...] = ()
) -> AsyncIterator[ServerProcess]:
    """Start ``python -m trioweb ARGS``; kill it if the test leaves it running
    (its workers notice their supervisor is gone and stop)."""
    async with trioweb_process(*args, python=python) as supervisor:
        yield supervisor


@asynccontextmanager
async def serving(
    *args: str, python: tuple[str, ...] = ()
) -> AsyncIterator[ServerProcess]:
    """``trioweb serve ARGS --port 0``, once it announces its address."""
    async with trioweb("serve", *args, "--port", "0", python=python) as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r"http://127\.0\.0\.1:(\d+)$", line)
        assert match, line
        server.port = int(match.group(1))
        yield server


Connect = Callable[[], Awaitable[trio.abc.Stream]]


def tcp(port: int) -> Connect:
    return functools.partial(trio.open_tcp_stream, "127.0.0.1", port)


async def send(connect: Connect, target: str) -> trio.abc.Stream:
    stream = await connect()
    request = f"GET {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    await stream.send_all(request.encode())
    return stream


async def reply(stream: trio.abc.Stream) -> tuple[int, int]:
    """Read a response to its end: (status, the PID in its body)."""
    data = b""
    async with stream:
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), int(body)


async def pid_of(connect: Connect) -> int:
    status, pid = await reply(await send(connect, "/pid"))
    assert status == 200
    return pid


async def pids_until(connect: Connect, wanted: set[int], tries: int = 200) -> set[int]:
    """Make requests on fresh connections until ``wanted`` have all
    answered (or ``tries`` are used up); return every PID that answered."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(await pid_of(connect))
        if wanted <= seen:
            break
    return seen


async def stop(server: ServerProcess, signum: int = signal.SIGTERM) -> None:
    server.process.send_signal(signum)
    assert await server.finish() == 0, server.stderr
    server.assert_clean()


def patched(statement: str) -> tuple[str, ...]:
    """``python`` arguments for the command line with ``statement`` run
    first (to change one of trioweb.server.workers' constants)."""
    return (
        "-c",
        f"import trioweb.server.workers, trioweb.cli; {statement}; trioweb.cli.main()",
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- serving -------------------------------------------------------------------------


async def test_two_workers_share_one_port() -> None:
    async with serving(f"{APP}:app", "--workers", "2") as server:
        workers = server.workers()
        assert sorted(workers) == [1, 2], server.stderr
        pids = set(workers.values())
        assert server.process.pid not in pids
        # The kernel spreads connections over both (SO_REUSEPORT on Linux).
        assert await pids_until(tcp(server.port), pids) == pids
        await stop(server)
    assert server.stderr.count("serving on") == 1
    assert all(gone(pid) for pid in pids)


async def test_a_killed_worker_is_restarted() -> None:
    async with serving(f"{APP}:app", "--workers", "2", "--no-access-log") as server:
        old = server.workers()
        os.kill(old[1], signal.SIGKILL)
        line = await server.wait_for(f"worker 1 (pid {old[1]}) was killed by SIGKILL")
        assert "E trioweb.error" in line and "restarting it in 0.1 s" in line
        await server.wait_for("worker 1 started (pid")
        new = server.workers()
        assert new[1] != old[1] and new[2] == old[2]
        assert await pids_until(tcp(server.port), set(new.values())) == {new[1], new[2]}
        # Dying again soon after its start: the back-off doubles.
        os.kill(new[1], signal.SIGKILL)
        line = await server.wait_for(f"worker 1 (pid {new[1]}) was killed by SIGKILL")
        assert "restarting it in 0.2 s" in line
        await server.wait_for("worker 1 started (pid")
        await stop(server)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
async def test_sigterm_lets_the_request_in_flight_finish(
    signum: signal.Signals,
) -> None:
    async with serving(f"{APP}:app", "--workers", "2") as server:
        pids = set(server.workers().values())
        slow = await send(tcp(server.port), "/slow")
        await server.wait_for("app: started GET /slow")
        server.process.send_signal(signum)
        await server.wait_for(
            f"{signum.name}: stopping 2 worker(s) gracefully (up to 10 s)"
        )
        status, pid = await reply(slow)
        assert status == 200 and pid in pids
        assert await server.finish() == 0
    server.assert_clean()
    assert f"app: finished GET /slow in {pid}" in server.stderr
    assert all(gone(pid) for pid in pids)


async def test_a_second_signal_skips_the_graceful_period() -> None:
    async with serving(
        f"{APP}:app", "--workers", "2", "--graceful-timeout", "30"
    ) as server:
        slow = await send(tcp(server.port), "/slow?60")
        await server.wait_for("app: started GET /slow?60")
        server.process.send_signal(signal.SIGINT)
        await server.wait_for("SIGINT: stopping 2 worker(s) gracefully (up to 30 s)")
        # Once both have it: trio reports a signal that comes again before
        # it was read only once.
        for _ in range(2):
            await server.wait_for("SIGTERM: shutting down gracefully (up to 30 s)")
        server.process.send_signal(signal.SIGINT)
        await server.wait_for("second SIGINT: stopping the workers now")
        with trio.fail_after(3):
            assert await server.finish() == 0
            assert await slow.receive_some(65536) == b""  # cancelled: closed
        server.assert_clean()
    assert "second SIGTERM: stopping now" in server.stderr  # the busy worker


async def test_a_worker_that_does_not_stop_is_killed() -> None:
    async with serving(
        f"{APP}:app",
        "--workers",
        "2",
        "--graceful-timeout",
        "0.2",
        python=patched("trioweb.server.workers.KILL_MARGIN = 0.3"),
    ) as server:
        stuck = server.workers()[1]
        os.kill(stuck, signal.SIGSTOP)  # it cannot act on SIGTERM
        start = trio.current_time()
        await stop(server)
        elapsed = trio.current_time() - start
    assert 0.5 <= elapsed < 2.5, elapsed
    assert "1 worker(s) still running 0.5 s after the signal: killing them" in (
        server.stderr
    )
    assert f"W trioweb.error: worker 1 (pid {stuck}) was killed by SIGKILL" in (
        server.stderr
    )


async def test_the_kill_deadline_covers_the_shutdown_hooks() -> None:
    # Regression: workers were killed graceful_timeout + 5 s after the
    # signal, though their shutdown hooks may take shutdown_timeout (10 s):
    # here 0.2 + 0.3 s, against a hook of 1 s (shutdown_timeout: 5 s).
    async with serving(
        f"{APP}:slow_shutdown",
        "--workers",
        "2",
        "--graceful-timeout",
        "0.2",
        python=patched("trioweb.server.workers.KILL_MARGIN = 0.3"),
    ) as server:
        pids = set(server.workers().values())
        await stop(server)
    for pid in pids:
        assert f"shutdown hook finished in {pid}" in server.stderr
    assert "killing them" not in server.stderr
    assert "killed by SIGKILL" not in server.stderr


async def test_workers_0_is_one_per_cpu() -> None:
    async with serving(f"{APP}:app", "--workers", "0") as server:
        assert len(server.workers()) == os.cpu_count()
        assert len(set(server.workers().values())) == os.cpu_count()
        await stop(server)


async def test_workers_1_serves_from_the_process_itself() -> None:
    async with serving(f"{APP}:app", "--workers", "1") as server:
        assert await pid_of(tcp(server.port)) == server.process.pid
        await stop(server)
    assert "worker" not in server.stderr


async def test_workers_stop_when_the_supervisor_is_killed() -> None:
    async with serving(f"{APP}:app", "--workers", "2") as server:
        pids = set(server.workers().values())
        server.process.send_signal(signal.SIGKILL)
        assert await server.finish() == -signal.SIGKILL
    assert server.stderr.count("the supervisor is gone: shutting down") == 2
    server.assert_clean()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.port)
    del pids


async def test_uds_workers_inherit_the_socket(tmp_path: Path) -> None:
    path = f"/tmp/trioweb-workers-{os.getpid()}.sock"
    async with trioweb(
        "serve", f"{APP}:app", "--workers", "2", "--uds", path
    ) as server:
        await server.wait_for(f"trioweb: serving on unix:{path}")
        pids = set(server.workers().values())
        assert await pid_of(functools.partial(trio.open_unix_socket, path)) in pids
        await stop(server)
    assert not await trio.Path(path).exists()


async def test_without_reuseport_the_workers_inherit_the_socket() -> None:
    # What macOS and the BSDs get: one listening socket, accepted from by all.
    async with serving(
        f"{APP}:app",
        "--workers",
        "2",
        python=patched("trioweb.server.workers.REUSEPORT = False"),
    ) as server:
        pids = set(server.workers().values())
        assert await pid_of(tcp(server.port)) in pids
        await stop(server)


# -- failures ------------------------------------------------------------------------


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(("trioweb: error: ", "trioweb serve: error: "))
    return lines[0]


async def test_an_app_that_cannot_be_imported_starts_no_worker() -> None:
    async with trioweb("serve", "tests.apps.broken_import:app", "--workers", "2") as p:
        assert await p.finish() == 1
    line = one_line_error(p.stderr)
    assert "importing 'tests.apps.broken_import' raised RuntimeError" in line


async def test_a_bad_worker_count_is_a_one_line_error() -> None:
    async with trioweb("serve", f"{APP}:app", "--workers", "-1") as process:
        assert await process.finish() == 2
    assert "--workers: expected 0 or more, got -1" in one_line_error(process.stderr)


async def test_too_many_workers_is_a_one_line_error() -> None:
    # Regression: --workers 100000 forked without bound.
    limit = 16 * (os.cpu_count() or 1)
    async with trioweb("serve", f"{APP}:app", "--workers", str(limit + 1)) as p:
        assert await p.finish() == 2
    line = one_line_error(p.stderr)
    assert f"--workers: expected at most {limit} (16 per CPU" in line
    assert "worker 1 started" not in p.stderr


def test_worker_count_refuses_too_many() -> None:
    from trioweb.server.workers import max_workers, worker_count

    assert worker_count(max_workers()) == max_workers()
    with pytest.raises(ValueError, match=f"workers must be at most {max_workers()}"):
        worker_count(max_workers() + 1)


async def test_port_in_use_is_found_by_the_supervisor() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        async with trioweb(
            "serve", f"{APP}:app", "--workers", "2", "--port", str(port)
        ) as process:
            assert await process.finish() == 1
    finally:
        holder.close()
    line = one_line_error(process.stderr)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line


async def test_a_worker_failing_to_start_stops_the_server() -> None:
    async with trioweb(
        "serve", f"{APP}:broken_start", "--workers", "2", "--port", "0"
    ) as process:
        assert await process.finish() == 1
    last = process.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"trioweb: error: worker \d \(pid \d+\) exited with status 1 before it "
        r"was ready; stopped the server",
        last,
    ), process.stderr
    assert "RuntimeError: cannot reach the database" in process.stderr
    assert "serving on" not in process.stderr
    assert "restarting" not in process.stderr


async def test_an_app_whose_startup_hook_fails_is_one_line_and_no_restart() -> None:
    async with trioweb(
        "serve", f"{STARTUP}:failing_hook", "--workers", "2", "--port", "0"
    ) as process:
        assert await process.finish() == 1
    assert "Traceback" not in process.stderr
    assert "restarting" not in process.stderr
    assert "serving on" not in process.stderr
    errors = [
        line for line in process.stderr.splitlines() if line.startswith("trioweb:")
    ]
    assert errors == [
        f"trioweb: error: startup hook {STARTUP}.open_db failed: "
        "ConnectionRefusedError: no database at db:5432; stopped the server "
        "(--log-level debug shows the traceback)"
    ], process.stderr


async def test_workers_stopped_during_start_up_do_not_blame_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: they said "SIGTERM during start-up: stopping", a signal
    # the operator never sent.
    monkeypatch.setenv("TRIOWEB_TEST_FIRST", str(tmp_path / "first"))
    async with trioweb(
        "serve", f"{STARTUP}:one_fails", "--workers", "2", "--port", "0"
    ) as process:
        await process.wait_for("app: waiting in start-up")
        assert await process.finish() == 1
    assert "SIGTERM" not in process.stderr, process.stderr
    assert "the supervisor is stopping the server: stopping during start-up" in (
        process.stderr
    )
    assert (
        process.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"trioweb: error: startup hook {STARTUP}.first_fails_others_wait failed"
        )
    )


async def test_a_restarted_worker_that_cannot_start_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "database-gone"
    monkeypatch.setenv("TRIOWEB_TEST_FAIL_FLAG", str(flag))
    async with serving(
        f"{STARTUP}:fails_on_restart", "--workers", "2", "--no-access-log"
    ) as server:
        flag.touch()
        os.kill(server.workers()[1], signal.SIGKILL)
        assert await server.finish() == 1
    last = server.stderr.strip().splitlines()[-1]
    assert last == (
        f"trioweb: error: startup hook {STARTUP}.fail_when_flagged failed: "
        "RuntimeError: the database went away; stopped the server "
        "(--log-level debug shows the traceback)"
    ), server.stderr
    # Restarted once (after the kill), not again after the start-up failure.
    assert server.stderr.count("restarting it") == 1, server.stderr
    assert "Traceback" not in server.stderr


async def test_a_failing_background_task_stops_the_server_without_restarts() -> None:
    async with serving(
        "tests.apps.lifespan_apps:failing_task", "--workers", "2"
    ) as server:
        status, _ = await reply_status(await send(tcp(server.port), "/fail"))
        assert status == 200
        assert await server.finish() == 1
    assert "restarting" not in server.stderr, server.stderr
    assert len(re.findall(r"worker \d started", server.stderr)) == 2
    assert "application task failed: RuntimeError: background task died" in (
        server.stderr
    )
    assert "raise sole" not in server.stderr
    assert re.search(
        r"trioweb: error: worker \d \(pid \d+\): an application task failed "
        r"\(logged above\); stopped the server\n$",
        server.stderr,
    ), server.stderr


async def reply_status(stream: trio.abc.Stream) -> tuple[int, bytes]:
    """Read a response to its end: (status, body)."""
    data = b""
    async with stream:
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
