"""The server: listeners, the connection limit, signals, graceful shutdown.

:func:`serve` is the structured way to run an application inside a trio
program: it returns when the server has stopped, and everything it started
has ended by then. :func:`run` is the one-line version for scripts, with
SIGINT/SIGTERM handling; ``trioweb serve`` (:mod:`trioweb.cli`) calls it.

Shutdown (DESIGN.md, contract 6) goes in this order:

1. stop accepting and close the listening sockets;
2. close idle keep-alive connections at once; a connection with a request in
   flight answers it with ``Connection: close``;
3. wait up to ``graceful_timeout`` for those requests to finish;
4. cancel whatever is still running (no send is shielded, so a client that
   stopped reading cannot hold this step);
5. leave the application's lifespan: its nursery is cancelled and its
   shutdown hooks run.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import trio

from .config import ServerConfig
from .http1 import ExchangeApp, HTTP1Connection

__all__ = ["Server", "run", "serve"]

log = logging.getLogger("trioweb.error")

# Errors from accept() that mean "too busy right now", not "broken listener":
# the process or system is out of file descriptors or buffers. Back off
# briefly and retry, as a well-behaved accept loop must.
_ACCEPT_CAPACITY_ERRNOS = {
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOMEM,
    errno.ENOBUFS,
}


def _address(sock: trio.socket.SocketType) -> tuple[str, int] | None:
    try:
        name = sock.getpeername()
    except OSError:
        return None
    if isinstance(name, tuple):
        return (str(name[0]), int(name[1]))
    return None


class Server:
    """The running state of one :func:`serve` call: listeners and connections.

    :func:`serve` creates one; you rarely need it directly. Its
    :meth:`shutdown` begins a graceful shutdown and :meth:`force_stop` ends
    the graceful period early.
    """

    def __init__(self, app: ExchangeApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self.connections: set[HTTP1Connection] = set()
        self._limiter = trio.Semaphore(config.max_connections)
        self._no_connections = trio.Event()
        self._no_connections.set()
        self._shutdown_requested = trio.Event()
        self._graceful_scope: trio.CancelScope | None = None
        self._forced = False

    def shutdown(self) -> None:
        """Begin a graceful shutdown (idempotent; returns at once)."""
        self._shutdown_requested.set()

    def force_stop(self) -> None:
        """Shut down, cancelling in-flight requests without waiting."""
        self._forced = True
        self._shutdown_requested.set()
        if self._graceful_scope is not None:
            self._graceful_scope.cancel()

    async def _serve(self, task_status: trio.TaskStatus[list[Any]]) -> None:
        config = self.config
        listeners = await _open_listeners(config)
        try:
            # The connections get a nursery of their own, so that the end of
            # the graceful period can cancel them and nothing else.
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptors:
                    for listener in listeners:
                        acceptors.start_soon(self._accept_loop, listener, connections)
                    task_status.started(listening_addresses(listeners))
                    await self._shutdown_requested.wait()
                    acceptors.cancel_scope.cancel()
                # Stop accepting: close the listening sockets so that new
                # clients are refused instead of queueing in the backlog.
                for listener in listeners:
                    await trio.aclose_forcefully(listener)
                for conn in list(self.connections):
                    conn.shutdown()
                with trio.move_on_after(config.graceful_timeout) as scope:
                    self._graceful_scope = scope
                    if self._forced:
                        scope.cancel()
                    await self._no_connections.wait()
                self._graceful_scope = None
                if self.connections:
                    log.warning(
                        "%s: cancelling %d request(s) still in flight",
                        "forced stop"
                        if self._forced
                        else f"graceful timeout ({config.graceful_timeout:g} s)",
                        len(self.connections),
                    )
                connections.cancel_scope.cancel()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            if config.uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(config.uds)

    async def _accept_loop(
        self, listener: trio.SocketListener, connections: trio.Nursery
    ) -> None:
        while True:
            # Holding a slot before accept() leaves excess clients in the
            # kernel's backlog rather than in our memory (max_connections).
            await self._limiter.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._limiter.release()
                if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                    log.error("accept() failed, retrying in 100 ms: %s", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            except BaseException:
                self._limiter.release()
                raise
            connections.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        sock = stream.socket
        try:
            local = sock.getsockname()
            server = (
                (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
            )
        except OSError:
            server = None
        conn = HTTP1Connection(
            stream, self.app, self.config, client=_address(sock), server=server
        )
        if not self.connections:
            self._no_connections = trio.Event()
        self.connections.add(conn)
        if self._shutdown_requested.is_set():
            conn.shutdown()
        try:
            # HTTP1Connection.run() logs its own faults and never raises
            # anything but Cancelled (contract 5).
            await conn.run()
        finally:
            self.connections.discard(conn)
            if not self.connections:
                self._no_connections.set()
            self._limiter.release()


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    running = getattr(app, "running", None)
    if running is None:
        yield
    else:
        async with running():
            yield


async def _open_listeners(config: ServerConfig) -> list[trio.SocketListener]:
    if config.uds is None:
        return await trio.open_tcp_listeners(
            config.port, host=config.host, backlog=config.backlog
        )
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            # A stale socket file from a previous run would make bind() fail;
            # a live server on it is detected by trying to connect first.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(config.uds)
            except ConnectionRefusedError:
                os.unlink(config.uds)
            else:
                raise OSError(errno.EADDRINUSE, f"{config.uds} is in use")
            finally:
                probe.close()
        await sock.bind(config.uds)
        sock.listen(config.backlog)
    except BaseException:
        sock.close()
        raise
    return [trio.SocketListener(sock)]


def listening_addresses(listeners: Sequence[trio.SocketListener]) -> list[Any]:
    """The addresses the listeners are bound to: ``(host, port)`` or a path."""
    addresses: list[Any] = []
    for listener in listeners:
        name = listener.socket.getsockname()
        addresses.append(tuple(name[:2]) if isinstance(name, tuple) else name)
    return addresses


async def serve(
    app: ExchangeApp,
    config: ServerConfig | None = None,
    *,
    shutdown_trigger: trio.Event | None = None,
    handle_signals: bool = False,
    task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until shut down; return when everything has stopped.

    Start it in a nursery and get the bound addresses back::

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(trioweb.serve, app, config)
            host, port = addresses[0]

    A graceful shutdown (see the module docs) begins when
    ``shutdown_trigger`` is set, or on SIGINT/SIGTERM when
    ``handle_signals`` is true; a second signal skips the graceful period.
    Cancelling the task that runs :func:`serve` stops everything at once,
    as cancellation does in trio.

    The application's lifespan (``app.running()``, if it has one) is entered
    before listening and left after the last connection is gone.

    Raises:
      OSError: if the address cannot be bound (for example, port in use).

    """
    config = config or ServerConfig()
    server = Server(app, config)
    async with trio.open_nursery() as watchers:
        # Watch for signals from the very start, so a Ctrl-C during the
        # application's startup also ends in an orderly shutdown.
        if handle_signals:
            watchers.start_soon(_watch_signals, server)
        if shutdown_trigger is not None:
            watchers.start_soon(_relay, shutdown_trigger, server)
        try:
            async with _lifespan(app):
                await server._serve(task_status)
        finally:
            watchers.cancel_scope.cancel()


async def _relay(trigger: trio.Event, server: Server) -> None:
    await trigger.wait()
    server.shutdown()


async def _watch_signals(server: Server) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if server._shutdown_requested.is_set():
                log.warning("second %s: stopping now", name)
                server.force_stop()
            else:
                log.info(
                    "%s: shutting down gracefully (up to %g s)",
                    name,
                    server.config.graceful_timeout,
                )
                server.shutdown()


def run(app: ExchangeApp, **options: Any) -> None:
    """Serve ``app`` from a script until SIGINT or SIGTERM; then exit cleanly.

    ``options`` are :class:`ServerConfig` fields::

        if __name__ == "__main__":
            trioweb.run(app, port=8000)

    Ctrl-C starts a graceful shutdown (a second Ctrl-C skips the wait) and
    :func:`run` returns normally: no traceback, no exception group.
    """
    config = ServerConfig(**options)
    from .logs import configure_logging

    configure_logging(access_log=config.access_log)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(
                lambda task_status: serve(
                    app, config, handle_signals=True, task_status=task_status
                )
            )
            announce(addresses, config)

    trio.run(main)


def announce(addresses: Sequence[Any], config: ServerConfig) -> None:
    """Print where the server listens, one line each, flushed at once."""
    import sys

    for address in addresses:
        if isinstance(address, tuple):
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"trioweb: serving on http://{shown}:{port}", file=sys.stderr)
        else:
            print(f"trioweb: serving on unix:{address}", file=sys.stderr)
    sys.stderr.flush()
