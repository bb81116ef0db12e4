"""Worker processes: ``trioweb serve --workers N``.

One trio process uses one CPU. To use more, this process becomes a
*supervisor*: it opens the address, forks N workers that each run
:func:`~trioweb.server.serve` on it, restarts a worker that dies, and stops
them all on SIGINT/SIGTERM/SIGHUP. It serves no request itself.

How the workers share one address:

* **Linux**: ``SO_REUSEPORT``. The supervisor binds the address without
  listening on it -- without ``SO_REUSEPORT`` at first, so that another
  server already there is an error, not a silent neighbour -- which reserves
  it and, with ``--port 0``, picks the port once. Each worker then binds its
  own socket to that address with ``SO_REUSEPORT`` and listens, and the
  kernel spreads new connections over the workers' sockets. A worker that
  dies takes only its own backlog with it.
* **Elsewhere, and for a Unix socket (``--uds``)**: the supervisor binds and
  listens once, and the workers inherit that socket and all accept from it.
  (The BSDs and macOS accept ``SO_REUSEPORT`` but do not balance with it.)

Why fork: the application is imported once, in the supervisor, before any
worker exists, so an app that cannot be imported is a one-line error rather
than N workers crashing in a loop, and the workers start fast and share the
imported code's memory. The supervisor never runs trio (forking inside a
running trio loop is not safe): it is a small ``select()`` loop over a
signal wake-up pipe, each worker's "ready" pipe, and restart timers.

The rules:

* ``serving on`` is printed once, when every worker listens.
* A worker that dies before that is a start-up failure (its lifespan
  failed, say): the supervisor stops the others and fails with one line
  (:exc:`WorkerStartError`). Later, a dead worker is logged on
  ``trioweb.error`` and restarted, after 0.1 s, doubling up to 10 s while it
  keeps dying within 5 s of its start: a crash loop does not spin.
* A worker whose application cannot start (:exc:`~trioweb.StartupError`:
  a startup hook or the lifespan's set-up raised) tells the supervisor why
  over its "ready" pipe, and the supervisor stops the server with that one
  line -- also after the start, as a restart would fail the same way. The
  traceback is logged (by the worker) only at ``--log-level debug``.
* A worker whose application's background task failed
  (:exc:`~trioweb.ApplicationTaskError`) logs it, shuts down gracefully
  and exits with status 70; the supervisor stops the server (the others
  shut down gracefully too) rather than restart it in a loop.
* SIGINT, SIGTERM or SIGHUP: the supervisor stops listening and sends
  SIGTERM to every worker, which shuts down gracefully (:mod:`trioweb.server`); a
  second signal is forwarded too and stops them now. A worker still
  running ``graceful_timeout`` + the application's ``shutdown_timeout``
  (its tear-down's deadline) + 5 s after the first signal is killed, or 5 s
  after a second signal. The supervisor then returns (exit status 0).
* Workers ignore SIGINT and SIGHUP (Ctrl-C and a closed terminal reach the
  whole process group; the supervisor's forwarded SIGTERM is the one that
  counts), and shut down
  gracefully by themselves if the supervisor dies (a pipe from it closes).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

import attrs
import trio

from ..errors import ApplicationTaskError, StartupError
from .config import ServerConfig
from .exchange import ExchangeApp
from .serve import (
    STOP_SIGNALS,
    ListenError,
    announce,
    bind_unix_socket,
    listen_error,
    remove_own_socket,
    serve_until,
)
from .sockets import inherited_socket

__all__ = ["WorkerStartError", "max_workers", "run_workers", "worker_count"]

log = logging.getLogger("trioweb.error")

#: Linux balances new connections over the sockets bound with SO_REUSEPORT.
REUSEPORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

#: The first restart of a dead worker waits this long (seconds)...
RESTART_DELAY = 0.1
#: ...doubling, up to this, while the worker keeps dying...
MAX_RESTART_DELAY = 10.0
#: ...within this many seconds of its start.
STABLE_AFTER = 5.0
#: After the first signal, workers get graceful_timeout, plus the
#: application's shutdown_timeout (its tear-down), plus this much (to unwind
#: and exit) before they are killed.
KILL_MARGIN = 5.0

#: What a worker writes on its "ready" pipe: it listens, or its application
#: could not start (followed by the reason).
_READY = b"r"
_CANNOT_START = b"E"
#: A worker's exit status when a background task of its application failed
#: (logged by the worker): a restart would most likely fail the same way.
_APP_TASK_FAILED = 70

_STOP_SIGNALS = STOP_SIGNALS
_HANDLED = {*STOP_SIGNALS, signal.SIGCHLD}


class WorkerStartError(RuntimeError):
    """A worker process failed before it was serving, or its application
    could not start; the others were stopped. The message is one line, fit
    to show a user; what the worker itself printed (a traceback, say) is
    above it on stderr."""

    #: True when the application itself could not start
    #: (:exc:`~trioweb.StartupError` in a worker): its traceback is logged
    #: only at debug level.
    app_cannot_start: bool = False


def _teardown_time(app: ExchangeApp) -> float:
    # An Application's tear-down (shutdown hooks, lifespan exit) is bounded
    # by its shutdown_timeout; an app that declares no such bound gets none.
    value = getattr(app, "shutdown_timeout", None)
    return float(value) if isinstance(value, int | float) else 0.0


def max_workers() -> int:
    """The most worker processes allowed: 16 per CPU. More only slows the
    machine down (each is a whole Python process), and a typo such as
    ``--workers 100000`` must not fork without bound."""
    return 16 * (os.cpu_count() or 1)


def worker_count(workers: int) -> int:
    """How many processes ``workers`` means: 0 is one per CPU. Raises
    :exc:`ValueError` past :func:`max_workers`."""
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers!r}")
    if workers > max_workers():
        raise ValueError(
            f"workers must be at most {max_workers()} (16 per CPU, "
            f"{os.cpu_count() or 1} CPUs), got {workers!r}"
        )
    return workers or os.cpu_count() or 1


def run_workers(
    app: ExchangeApp,
    config: ServerConfig,
    workers: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve ``app`` from ``workers`` processes (0: one per CPU) until
    SIGINT, SIGTERM or SIGHUP; return once they have all exited.

    Must be called from the main thread of a process that is not running
    trio. Raises :exc:`ListenError` if the address cannot be listened on,
    :exc:`WorkerStartError` if a worker fails before serving.
    ``ssl_context``: every worker serves HTTPS with it (see
    :func:`~trioweb.serve`); the workers inherit it across fork().
    """
    count = worker_count(workers)
    if not hasattr(os, "fork"):
        raise RuntimeError(
            "worker processes need os.fork(), which this platform does not "
            "have; serve from one process (workers=1)"
        )
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_workers() must be called from the main thread")
    _Supervisor(app, config, count, ssl_context).run()


# -- the shared address ------------------------------------------------------------


def _tcp_socket(family: int, sockaddr: Any, *, reuseport: bool) -> socket.socket:
    """A TCP socket bound to ``sockaddr``, with the options trio's
    ``open_tcp_listeners`` sets (and SO_REUSEPORT if asked)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _Address:
    """The supervisor's sockets on the configured address, and the
    listening sockets a worker serves on."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # An inherited socket (--fd) is shared by inheritance like a Unix one.
        self.reuseport = REUSEPORT and config.uds is None and config.fd is None
        #: Bound (listening, unless reuseport) sockets held by the supervisor.
        self.sockets: list[socket.socket] = []
        self._uds_stat: os.stat_result | None = None

    def open(self) -> None:
        config = self.config
        try:
            if config.fd is not None:
                self.sockets.append(inherited_socket(config.fd, config.backlog))
                return
            if config.uds is not None:
                self.sockets.append(bind_unix_socket(config.uds, config.backlog))
                self._uds_stat = os.stat(config.uds)
                return
            for family, _, _, _, sockaddr in socket.getaddrinfo(
                config.host,
                config.port,
                socket.AF_UNSPEC,
                socket.SOCK_STREAM,
                0,
                socket.AI_PASSIVE,
            ):
                sock = _tcp_socket(family, sockaddr, reuseport=False)
                self.sockets.append(sock)
                if self.reuseport:
                    # Bound alone (the port is ours), now open to the
                    # workers' sockets. Not listening: the kernel hands
                    # connections only to the workers'.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                else:
                    sock.listen(config.backlog)
        except OSError as exc:
            self.close()
            raise listen_error(config, exc) from exc

    @property
    def addresses(self) -> list[Any]:
        """``(host, port)`` per TCP socket, or the Unix socket's path."""
        names = (sock.getsockname() for sock in self.sockets)
        return [tuple(n[:2]) if isinstance(n, tuple) else n for n in names]

    def for_worker(self) -> list[socket.socket]:
        """In a worker: the listening sockets it serves on."""
        if not self.reuseport:
            return self.sockets  # inherited
        bound = [(sock.family, sock.getsockname()) for sock in self.sockets]
        self.close()  # the supervisor's reservation stays with it
        sockets: list[socket.socket] = []
        try:
            for family, sockaddr in bound:
                sock = _tcp_socket(family, sockaddr, reuseport=True)
                sockets.append(sock)
                sock.listen(self.config.backlog)
        except OSError as exc:
            for sock in sockets:
                sock.close()
            raise listen_error(self.config, exc) from exc
        return sockets

    def close(self, *, remove_file: bool = False) -> None:
        for sock in self.sockets:
            sock.close()
        if remove_file and self.config.uds is not None and self._uds_stat:
            remove_own_socket(self.config.uds, self._uds_stat)
            self._uds_stat = None


# -- the supervisor ----------------------------------------------------------------


@attrs.define
class _Slot:
    """One of the N places a worker fills, across restarts."""

    number: int
    pid: int | None = None
    started: float = 0.0
    #: The read end of the worker's "ready" pipe, until it closes.
    ready_fd: int | None = None
    ready: bool = False
    #: What the worker said on its "ready" pipe: b"r", or b"E" and why its
    #: application could not start.
    said: bytes = b""
    #: Quick deaths in a row (see STABLE_AFTER), for the back-off.
    failures: int = 0
    restart_at: float | None = None


def _ignore(signum: int, frame: FrameType | None) -> None:
    # The C-level handler has written the signal number to the wake-up pipe;
    # the supervisor's loop reads it there.
    pass


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class _Supervisor:
    def __init__(
        self,
        app: ExchangeApp,
        config: ServerConfig,
        count: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.ssl_context = ssl_context
        self.address = _Address(config)
        self.slots = [_Slot(number) for number in range(1, count + 1)]
        self.selector = selectors.DefaultSelector()
        self.announced = False
        self.stopping = False
        self.kill_at: float | None = None
        self.error: str | None = None
        self.app_cannot_start = False
        #: A stop signal has arrived.
        self.signalled = False
        # Signal wake-up pipe (the supervisor reads), and the pipe whose
        # closing tells the workers that the supervisor is gone (they read).
        self._wake_r, self._wake_w = os.pipe()
        self._alive_r, self._alive_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)

    def run(self) -> None:
        try:
            self.address.open()
            with self._signals_to_pipe():
                for slot in self.slots:
                    self._start(slot)
                while not self.stopping or self._running():
                    self._step()
        finally:
            self.address.close(remove_file=True)
            self.selector.close()
            for fd in (self._wake_r, self._wake_w, self._alive_r, self._alive_w):
                os.close(fd)
            for slot in self.slots:
                if slot.ready_fd is not None:
                    os.close(slot.ready_fd)
        if self.error is not None:
            error = WorkerStartError(self.error)
            error.app_cannot_start = self.app_cannot_start
            raise error

    @contextlib.contextmanager
    def _signals_to_pipe(self) -> Iterator[None]:
        old_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        old = {signum: signal.signal(signum, _ignore) for signum in _HANDLED}
        try:
            yield
        finally:
            for signum, handler in old.items():
                if self.signalled and signum in _STOP_SIGNALS:
                    # Stopped by a signal: the process is on its way out,
                    # and one more must not kill it (-15) or raise where
                    # nothing catches it (see trioweb.server.run).
                    handler = signal.SIG_IGN
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_fd)

    def _running(self) -> list[_Slot]:
        return [slot for slot in self.slots if slot.pid is not None]

    # -- the loop ----------------------------------------------------------------

    def _step(self) -> None:
        now = time.monotonic()
        wakeups = [s.restart_at for s in self.slots if s.restart_at is not None]
        if self.kill_at is not None:
            wakeups.append(self.kill_at)
        timeout = max(0.0, min(wakeups) - now) if wakeups else None
        for key, _ in self.selector.select(timeout):
            if key.fd == self._wake_r:
                self._read_signals()
            else:
                self._read_ready(key.data)
        self._reap()
        now = time.monotonic()
        if self.stopping:
            if self.kill_at is not None and now >= self.kill_at:
                self._kill_the_rest()
            return
        for slot in self.slots:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot)
        if not self.announced and all(slot.ready for slot in self.slots):
            self.announced = True
            announce(
                self.address.addresses,
                self.config,
                scheme="http" if self.ssl_context is None else "https",
            )

    def _read_signals(self) -> None:
        try:
            data = os.read(self._wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            if signum in _STOP_SIGNALS:
                self._on_signal(signal.Signals(signum))
            # SIGCHLD: every step reaps.

    def _read_ready(self, slot: _Slot) -> None:
        """The worker wrote "ready" and closed its pipe (or died)."""
        while slot.ready_fd is not None:
            try:
                data = os.read(slot.ready_fd, 64)
            except BlockingIOError:
                return
            if data:
                slot.said += data
                slot.ready = slot.said.startswith(_READY)
            else:
                self._close_ready(slot)

    def _close_ready(self, slot: _Slot) -> None:
        if slot.ready_fd is not None:
            self.selector.unregister(slot.ready_fd)
            os.close(slot.ready_fd)
            slot.ready_fd = None

    # -- workers -----------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.restart_at = None
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        # Blocked across fork(), so that no signal reaches the child before
        # it has dropped the supervisor's handlers and wake-up pipe.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover -- the worker; never returns
                status = 1
                try:
                    os.close(ready_r)
                    status = self._worker(slot.number, ready_w, mask)
                except BaseException:
                    with contextlib.suppress(BaseException):
                        traceback.print_exc()
                finally:
                    with contextlib.suppress(BaseException):
                        sys.stdout.flush()
                        sys.stderr.flush()
                    os._exit(status)
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            slot.started = time.monotonic()
            self._failed(slot, f"worker {slot.number} could not be started ({exc})")
            return
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(ready_w)
        os.set_blocking(ready_r, False)
        self.selector.register(ready_r, selectors.EVENT_READ, slot)
        slot.pid, slot.ready_fd, slot.ready, slot.said = pid, ready_r, False, b""
        slot.started = time.monotonic()
        log.info("worker %d started (pid %d)", slot.number, pid)

    def _reap(self) -> None:
        for slot in self._running():
            assert slot.pid is not None
            try:
                pid, status = os.waitpid(slot.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                pid, status = slot.pid, 0
            if pid == 0:
                continue
            self._read_ready(slot)  # it may have said "ready" just before dying
            self._close_ready(slot)
            slot.pid = None
            what = f"worker {slot.number} (pid {pid}) {_describe(status)}"
            if slot.said.startswith(_CANNOT_START) and not self.stopping:
                # Restarting it would fail the same way, in a loop.
                reason = slot.said[len(_CANNOT_START) :].decode(errors="replace")
                self.error = f"{reason}; stopped the server"
                self.app_cannot_start = True
                self._stop()
            elif (
                os.waitstatus_to_exitcode(status) == _APP_TASK_FAILED
                and not self.stopping
            ):
                self.error = (
                    f"worker {slot.number} (pid {pid}): an application task "
                    "failed (logged above); stopped the server"
                )
                self._stop()
            elif not self.stopping:
                self._failed(
                    slot, what if slot.ready else what + " before it was ready"
                )
            elif os.waitstatus_to_exitcode(status) != 0 and self.error is None:
                # (After a start-up failure, the others' ends are noise.)
                log.warning("%s", what)

    def _failed(self, slot: _Slot, what: str) -> None:
        """A worker died or could not be started: before the server was up,
        that stops it (with ``what`` as the error); after, it is restarted."""
        if not self.announced:
            self.error = f"{what}; stopped the server"
            self._stop()
            return
        now = time.monotonic()
        quick = now - slot.started < STABLE_AFTER
        slot.failures = slot.failures + 1 if quick else 1
        delay = min(RESTART_DELAY * 2 ** (slot.failures - 1), MAX_RESTART_DELAY)
        slot.restart_at = now + delay
        log.error("%s; restarting it in %g s", what, delay)

    # -- stopping ----------------------------------------------------------------

    def _on_signal(self, signum: signal.Signals) -> None:
        self.signalled = True
        if self.stopping:
            log.warning("second %s: stopping the workers now", signum.name)
            self._signal_workers(signal.SIGTERM)
            if self.kill_at is not None:
                self.kill_at = min(self.kill_at, time.monotonic() + KILL_MARGIN)
            return
        if self.announced:
            log.info(
                "%s: stopping %d worker(s) gracefully (up to %g s)",
                signum.name,
                len(self._running()),
                self.config.graceful_timeout,
            )
        else:
            log.warning("%s during start-up: stopping", signum.name)
        self._stop()

    def _stop(self) -> None:
        self.stopping = True
        for slot in self.slots:
            slot.restart_at = None
        # Stop listening here; each worker closes its own socket as it
        # begins its graceful shutdown.
        self.address.close()
        self._signal_workers(signal.SIGTERM)
        self.kill_at = time.monotonic() + self._stop_deadline()

    def _stop_deadline(self) -> float:
        """Seconds a worker may take to stop after the first signal: its
        graceful period, then its application's tear-down, then a margin."""
        return self.config.graceful_timeout + _teardown_time(self.app) + KILL_MARGIN

    def _kill_the_rest(self) -> None:
        self.kill_at = None
        running = self._running()
        if not running:
            return
        log.warning(
            "%d worker(s) still running %g s after the signal: killing them",
            len(running),
            self._stop_deadline(),
        )
        self._signal_workers(signal.SIGKILL)

    def _signal_workers(self, signum: signal.Signals) -> None:
        for slot in self._running():
            assert slot.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signum)

    # -- in the worker -----------------------------------------------------------

    def _worker(
        self, slot_number: int, ready_fd: int, mask: set[int | signal.Signals]
    ) -> int:
        """The worker process's life, from fork() to its exit status."""
        # Drop what belongs to the supervisor. Workers ignore SIGINT and
        # SIGHUP (a closed terminal sends it to them too), and
        # keep SIGTERM blocked until serve() has its handler in place (so a
        # SIGTERM that comes early is delivered then, not lost).
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask | {signal.SIGTERM})
        self.selector.close()
        for fd in (self._wake_r, self._wake_w, self._alive_w):
            os.close(fd)
        for slot in self.slots:
            if slot.ready_fd is not None:
                os.close(slot.ready_fd)
        try:
            sockets = self.address.for_worker()
            trio.run(
                functools.partial(
                    serve_until,
                    self.app,
                    self.config,
                    sockets=sockets,
                    ssl_context=self.ssl_context,
                    stop=functools.partial(_supervisor_gone, self._alive_r),
                    signals=(signal.SIGTERM,),
                    unblock_signals=True,
                    then_ignore_signals=True,
                    signals_from="the supervisor",
                    task_status=_Ready(ready_fd),
                )
            )
        except KeyboardInterrupt:
            return 0  # stopped while starting
        except ListenError as exc:
            log.error("%s", exc.strerror or exc)
            return 1
        except ApplicationTaskError:
            return _APP_TASK_FAILED  # logged (Application.running)
        except StartupError as exc:
            log.debug("worker %d could not start", slot_number, exc_info=exc.error)
            with contextlib.suppress(OSError):
                os.write(ready_fd, _CANNOT_START + str(exc).encode())
            return 1
        return 0


async def _supervisor_gone(alive_fd: int) -> None:
    # The supervisor never writes: readable means it has closed (died).
    await trio.lowlevel.wait_readable(alive_fd)
    log.warning("the supervisor is gone: shutting down")


class _Ready:
    """serve()'s task status in a worker: tell the supervisor it listens."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def started(self, value: Any = None) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.write(fd, _READY)
            os.close(fd)
