"""Start ``python -m trioweb ...`` as a real subprocess in a test, and read
what it writes to stderr (shared by the CLI, worker and example tests)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
#: Every wait on a subprocess is bounded by this, so a broken server fails
#: the test instead of hanging the suite.
DEADLINE = 10

_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def _sigint_default() -> None:
    # A background job of a shell script inherits SIGINT ignored; the server
    # under test must see Ctrl-C as a terminal would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ServerProcess:
    """A ``trioweb`` subprocess and everything it has written to stderr."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stderr = ""
        self._seen = 0  # wait_for() looks past what it already matched
        self.port = 0

    async def wait_for(self, text: str) -> str:
        """Read stderr until a line containing ``text`` appears; return it."""
        assert self.process.stderr is not None
        while True:
            found = self.stderr.find(text, self._seen)
            end = self.stderr.find("\n", found)
            if found != -1 and end != -1:
                self._seen = end + 1
                start = self.stderr.rfind("\n", 0, found) + 1
                return self.stderr[start:end]
            data = await self.process.stderr.receive_some(65536)
            if not data:
                raise AssertionError(f"exited before {text!r}:\n{self.stderr}")
            self.stderr += data.decode()

    async def finish(self) -> int:
        """Read stderr to its end; return the exit status."""
        assert self.process.stderr is not None
        while data := await self.process.stderr.receive_some(65536):
            self.stderr += data.decode()
        return await self.process.wait()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def workers(self) -> dict[int, int]:
        """Worker number -> PID of its latest start, from the INFO lines."""
        return {int(n): int(pid) for n, pid in _STARTED.findall(self.stderr)}

    def assert_clean(self) -> None:
        assert "Traceback" not in self.stderr, self.stderr
        assert "ExceptionGroup" not in self.stderr, self.stderr


@asynccontextmanager
async def trioweb_process(
    *args: str, python: tuple[str, ...] = ()
) -> AsyncIterator[ServerProcess]:
    """Start ``python -m trioweb ARGS`` (or ``python PYTHON... ARGS``); kill
    it if the test leaves it running."""
    process = await trio.lowlevel.open_process(
        [sys.executable, *(python or ("-m", "trioweb")), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_sigint_default,
    )
    server = ServerProcess(process)
    try:
        with trio.fail_after(DEADLINE):
            yield server
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(DEADLINE):
            await server.finish()
        assert process.stderr is not None
        await process.stderr.aclose()
