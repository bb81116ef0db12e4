"""``trioweb serve --reload``: restart the server when a source file changes.

For development. The ``trioweb`` process becomes a small supervisor that
never imports the application: it starts the server as a child process
(the same command line, run with ``TRIOWEB_RELOAD_CHILD=1`` in its
environment, which makes the child ignore ``--reload``), watches files with
`watchfiles <https://watchfiles.helpmanual.io>`_, and on a change stops the
child gracefully (SIGTERM, then SIGKILL after ``graceful_timeout`` + 5 s)
and starts a new one.

Because the supervisor never imports the application, a change that breaks
it -- a syntax error, a failing import -- does not end the session: the
child prints its one-line error and exits, the supervisor says it is
waiting, and the next change (the fix) starts the server again.

What is watched:

* ``--reload-dir DIR`` (repeatable), default: the ``--app-dir``;
* files whose name matches ``*.py`` or a ``--reload-include`` glob;
* except names or paths matching a ``--reload-exclude`` glob, and what
  watchfiles always ignores (``.git``, ``__pycache__``, ``.venv``,
  editors' swap files, ...).

``--reload`` and ``--workers`` do not go together: reload restarts one
server process, while workers are a supervisor of their own. Needs the
``reload`` extra: ``pip install watchfiles``.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["RELOAD_CHILD", "ReloadError", "run_reloader"]

#: Set in the child's environment: "you are the server, do not reload".
RELOAD_CHILD = "TRIOWEB_RELOAD_CHILD"

#: How long the supervisor waits for the watcher before starting the first
#: child, and between checks of whether the child is still alive (ms).
_TICK_MS = 250
#: A child still running this long after SIGTERM (beyond its graceful
#: period) is killed.
_KILL_MARGIN = 5.0
DEFAULT_INCLUDE = ("*.py",)


class ReloadError(RuntimeError):
    """``--reload`` cannot run (watchfiles is missing, a directory does not
    exist); the message says what to do."""


def _say(message: str) -> None:
    print(f"trioweb: {message}", file=sys.stderr, flush=True)


class _Filter:
    """watchfiles' default ignores, then the include and exclude globs."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        import watchfiles

        self._default = watchfiles.DefaultFilter()
        self.include = tuple(DEFAULT_INCLUDE) + tuple(include)
        self.exclude = tuple(exclude)

    def __call__(self, change: Any, path: str) -> bool:
        if not self._default(change, path):
            return False
        name = os.path.basename(path)
        if any(
            fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(path, glob)
            for glob in self.exclude
        ):
            return False
        return any(fnmatch.fnmatch(name, glob) for glob in self.include)


class _Child:
    """The server process of the moment."""

    def __init__(self, argv: Sequence[str], pass_fds: Sequence[int]) -> None:
        self.argv = [sys.executable, "-m", "trioweb", *argv]
        self.pass_fds = tuple(pass_fds)
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False
        self.reported = False

    def start(self) -> None:
        env = {**os.environ, RELOAD_CHILD: "1"}
        self.process = subprocess.Popen(self.argv, env=env, pass_fds=self.pass_fds)
        self.started = True
        self.reported = False

    def check(self) -> None:
        """Say so, once, if the server has exited by itself."""
        if self.process is None or self.reported:
            return
        status = self.process.poll()
        if status is not None:
            self.reported = True
            _say(
                f"the server exited with status {status}; "
                "waiting for a file to change to start it again"
            )

    def stop(self, grace: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace + _KILL_MARGIN)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        except KeyboardInterrupt:
            # Another Ctrl-C while waiting: the user wants out now; the
            # server must not outlive the supervisor.
            process.kill()
            process.wait()
            raise


def _describe(changes: set[tuple[Any, str]]) -> str:
    paths = sorted({os.path.relpath(path) for _, path in changes})
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def run_reloader(
    argv: Sequence[str],
    *,
    dirs: Sequence[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    graceful_timeout: float = 10.0,
    pass_fds: Sequence[int] = (),
) -> None:
    """Run ``python -m trioweb ARGV`` as a child, restarted whenever a
    watched file in ``dirs`` changes, until SIGINT or SIGTERM (which stop
    the child and return).

    Raises :exc:`ReloadError` if watchfiles is not installed or a
    directory does not exist.
    """
    try:
        import watchfiles
    except ImportError:
        raise ReloadError(
            "--reload needs watchfiles: pip install watchfiles (the [reload] "
            "extra of trioweb)"
        ) from None
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        raise ReloadError(f"--reload-dir {missing[0]!r} is not a directory")
    watch_filter = _Filter(include, exclude)
    child = _Child(argv, pass_fds)
    shown = ", ".join(os.path.relpath(d) for d in dirs)
    try:
        for changes in watchfiles.watch(
            *dirs,
            watch_filter=watch_filter,
            rust_timeout=_TICK_MS,
            yield_on_timeout=True,
        ):
            if changes:
                _say(f"{_describe(changes)} changed; restarting the server")
                child.stop(graceful_timeout)
                child.start()
            elif not child.started:
                # The first tick: the watcher is in place, so no change made
                # while the server starts can be missed.
                _say(f"watching {shown} for changes (reload)")
                child.start()
            else:
                child.check()
    except KeyboardInterrupt:
        pass
    finally:
        child.stop(graceful_timeout)
