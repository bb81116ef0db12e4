"""``trioweb serve --reload``: a real file change restarts the server; a
syntax error leaves the supervisor waiting for the fix.

Each test writes a small app into a temporary directory, starts
``python -m trioweb serve ... --reload`` on it as a real subprocess, edits
the files and talks to the server over real sockets. Every wait is bounded.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from processes import ROOT, ServerProcess

pytest.importorskip("watchfiles")

#: Restarting is a new Python process each time: more than the usual 10 s
#: for the whole test, on a busy machine.
DEADLINE = 40

APP_SOURCE = """\
from trioweb import Application, RequestHandler

VERSION = {version!r}


class Version(RequestHandler):
    def get(self) -> None:
        self.write(VERSION)


app = Application([("/", Version)])
"""


@asynccontextmanager
async def trioweb(
    *args: str, python: tuple[str, ...] = ("-m", "trioweb")
) -> AsyncIterator[ServerProcess]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, *python, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = ServerProcess(proc)
    try:
        with trio.fail_after(DEADLINE):
            yield server
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.move_on_after(DEADLINE):
            await server.finish()
        assert proc.stderr is not None
        await proc.stderr.aclose()


async def serving_port(server: ServerProcess) -> int:
    line = await server.wait_for("trioweb: serving on http://")
    match = re.search(r":(\d+)$", line)
    assert match, line
    return int(match.group(1))


async def fetch(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/")).text


def reload_args(app_dir: Path, *more: str) -> tuple[str, ...]:
    return (
        "serve",
        "reload_app:app",
        "--app-dir",
        str(app_dir),
        "--port",
        "0",
        "--graceful-timeout",
        "1",
        "--reload",
        "--reload-dir",
        str(app_dir),
        *more,
    )


async def test_a_change_restarts_and_a_syntax_error_waits_for_the_fix(
    tmp_path: Path,
) -> None:
    source = tmp_path / "reload_app.py"
    source.write_text(APP_SOURCE.format(version="one"))
    async with trioweb(*reload_args(tmp_path)) as server:
        await server.wait_for("watching")
        assert await fetch(await serving_port(server)) == "one"

        source.write_text(APP_SOURCE.format(version="two"))
        assert "reload_app.py" in await server.wait_for("changed; restarting")
        assert await fetch(await serving_port(server)) == "two"

        # A syntax error: the new server cannot start; the supervisor says
        # so and keeps watching.
        source.write_text("def broken(:\n")
        await server.wait_for("changed; restarting")
        error = await server.wait_for("trioweb: error:")
        assert "SyntaxError" in error
        await server.wait_for("the server exited with status 1; waiting")
        assert server.process.returncode is None

        # The fix starts it again.
        source.write_text(APP_SOURCE.format(version="three"))
        await server.wait_for("changed; restarting")
        assert await fetch(await serving_port(server)) == "three"

        server.signal(signal.SIGINT)
        assert await server.finish() == 0
    server.assert_clean()


async def test_include_and_exclude(tmp_path: Path) -> None:
    (tmp_path / "reload_app.py").write_text(APP_SOURCE.format(version="one"))
    args = reload_args(
        tmp_path, "--reload-include", "*.txt", "--reload-exclude", "skip_*"
    )
    async with trioweb(*args) as server:
        await serving_port(server)
        # Neither excluded nor unlisted files restart the server...
        (tmp_path / "skip_me.py").write_text("x = 1\n")
        (tmp_path / "notes.md").write_text("hello\n")
        # ...a file matching --reload-include does.
        (tmp_path / "data.txt").write_text("hello\n")
        line = await server.wait_for("changed; restarting")
        assert "data.txt" in line
        assert "skip_me" not in line
        assert "notes.md" not in line
        await serving_port(server)
        server.signal(signal.SIGTERM)
        assert await server.finish() == 0
    server.assert_clean()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--reload", "--workers", "2"),
            "--reload and --workers cannot be combined",
        ),
        (("--reload-dir", "."), "--reload-dir needs --reload"),
        (("--reload", "--reload-dir", "/nonexistent"), "is not a directory"),
    ],
)
async def test_refused_combinations(flags: tuple[str, ...], message: str) -> None:
    async with trioweb("serve", "examples.hello:app", *flags) as server:
        assert await server.finish() == 2
    assert message in server.stderr
    server.assert_clean()


async def test_without_watchfiles_the_error_says_what_to_install() -> None:
    hide = (
        "import sys; sys.modules['watchfiles'] = None; "
        "from trioweb.cli import main; main()"
    )
    async with trioweb(
        "serve", "examples.hello:app", "--reload", python=("-c", hide)
    ) as server:
        assert await server.finish() == 2
    assert (
        "--reload needs watchfiles: pip install watchfiles (the [reload] extra"
        in server.stderr
    )
    server.assert_clean()
