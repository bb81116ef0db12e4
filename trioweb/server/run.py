"""Running a server as a program: :func:`run`, what ``trioweb serve`` calls.

:func:`trioweb.serve` (:mod:`trioweb.server.serve`) is the structured call for
a trio program that owns its run loop. :func:`run` owns the process: it
configures logging, tunes the allocator and the garbage collector for a long
life, starts trio, turns SIGINT/SIGTERM/SIGHUP into a graceful shutdown (a
second one stops now), prints where it listens, and, with ``workers``, forks
worker processes under a supervisor (:mod:`trioweb.server.workers`).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import ssl
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import attrs
import trio

from .config import ServerConfig
from .exchange import ExchangeApp
from .serve import STOP_SIGNALS, announce, serve_until
from .tls import make_ssl_context

__all__ = ["interrupt_on_sigterm", "run"]


class _Announcer:
    """A task status for :func:`serve` that prints the addresses (see run)."""

    def __init__(self, config: ServerConfig, scheme: str) -> None:
        self.config = config
        self.scheme = scheme

    def started(self, value: Any = None) -> None:
        from ._gc import freeze_startup_objects

        # Up and listening: what start-up built is here to stay.
        freeze_startup_objects()
        announce(value, self.config, scheme=self.scheme)


def run(
    app: ExchangeApp,
    config: ServerConfig | None = None,
    *,
    log_level: str | None = "info",
    workers: int = 1,
    ssl_context: ssl.SSLContext | None = None,
    log_config: str | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` from a script until SIGINT, SIGTERM or SIGHUP; then exit
    cleanly.

    ``options`` are :class:`ServerConfig` fields (applied over ``config``
    when both are given)::

        if __name__ == "__main__":
            trioweb.run(app, port=8000)

    Logs go to stderr at ``log_level`` (see :mod:`trioweb.logs`), and one
    ``trioweb: serving on ...`` line announces each address once listening.
    Ctrl-C, SIGTERM or SIGHUP starts a graceful shutdown (a second one stops
    now)
    and :func:`run` returns normally: no traceback, no exception
    group. Raises :exc:`ListenError` if the address cannot be listened on.

    The process is on its way out then: :func:`run` returns with SIGINT,
    SIGTERM and SIGHUP ignored, so that one more Ctrl-C while Python exits cannot turn
    a clean exit (status 0) into a traceback or a kill. A script that goes
    on after :func:`run` and wants them back calls :func:`signal.signal`.

    ``workers`` other than 1 serves from that many worker processes (0: one
    per CPU) under a supervisor, this process: see :mod:`trioweb.server.workers`.

    ``ssl_context`` serves HTTPS with that context (else with the
    config's TLS fields, if ``certfile`` is set): see :func:`serve`.
    ``log_config`` is a logging configuration file (JSON, YAML or INI) to
    apply instead of trioweb's stderr set-up; ``log_level``, unless None,
    still sets the level of trioweb's loggers (see
    :func:`trioweb.logs.configure_logging`).
    """
    if config is None:
        config = ServerConfig(**options)
    elif options:
        config = attrs.evolve(config, **options)
    from ..logs import configure_logging
    from ._gc import freeze_startup_objects, raise_gen0_threshold
    from ._malloc import tune_allocator

    configure_logging(
        log_level,
        access_log=config.access_log,
        access_log_format=config.access_log_format,
        log_config=log_config,
    )
    if ssl_context is None:
        # Before any worker exists: a bad setting is one error, not N.
        ssl_context = make_ssl_context(config)
    # This process is a server from here on (see trioweb.server._malloc, _gc).
    tune_allocator()
    raise_gen0_threshold()
    if workers != 1:
        # Before the workers are forked: they inherit the frozen objects
        # (and share their pages longer, as nothing writes to them).
        freeze_startup_objects()
        from .workers import run_workers

        with interrupt_on_sigterm():
            try:
                run_workers(app, config, workers, ssl_context=ssl_context)
            except KeyboardInterrupt:
                pass  # a signal before the supervisor took over signals
        return
    announcer = _Announcer(config, "http" if ssl_context is None else "https")
    with interrupt_on_sigterm():
        try:
            trio.run(
                functools.partial(
                    serve_until,
                    app,
                    config,
                    ssl_context=ssl_context,
                    signals=STOP_SIGNALS,
                    then_ignore_signals=True,
                    task_status=announcer,
                )
            )
        except KeyboardInterrupt:
            # A signal before the server was listening (or before serve()
            # installed its signal handling): nothing was served, nothing
            # to shut down. Exit as quietly as a graceful shutdown does.
            pass


def _sigterm_as_sigint(signum: int, frame: FrameType | None) -> None:
    # Hand it to the SIGINT handler: inside trio.run that is trio's, which
    # delivers KeyboardInterrupt safely (at a checkpoint); outside it is
    # Python's own. If SIGINT is ignored (as in a background job of a
    # shell script), SIGTERM must still stop the program.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within this block, SIGTERM and SIGHUP interrupt the program as Ctrl-C
    does.

    Python's default for SIGTERM and SIGHUP kills the process on the spot,
    exit status -15 (-1), no clean-up. :func:`run` handles them itself once
    the server runs; this covers the moments before (importing the application, starting
    trio), so that a supervisor stopping a server that is still starting
    gets the same clean exit as one stopping a running server. Does nothing
    outside the main thread; leaves a signal that already has a handler
    (or is ignored) alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = [
        signum
        for signum in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(signum) is signal.SIG_DFL
    ]
    for signum in ours:
        signal.signal(signum, _sigterm_as_sigint)
    try:
        yield
    finally:
        for signum in ours:
            # Only if still ours: run() may have left it ignored (see there).
            if signal.getsignal(signum) is _sigterm_as_sigint:
                signal.signal(signum, signal.SIG_DFL)
