"""The server: listeners, the connection limit, signals, graceful shutdown.

:func:`serve` is the structured way to run an application inside a trio
program: it returns when the server has stopped, and everything it started
has ended by then. :func:`~trioweb.server.run.run` is the one-line version
for scripts, with SIGINT/SIGTERM handling; ``trioweb serve``
(:mod:`trioweb.cli`) calls it.
This module is about one process: several worker processes, each running
:func:`serve`, are :mod:`trioweb.server.workers`' business. HTTPS wraps each
accepted connection in TLS (:mod:`trioweb.server.tls`); an inherited listening
socket (``--fd``, systemd) comes from :mod:`trioweb.server.sockets`.

Shutdown (docs/design.md, the contract, rule 6) goes in this order:

1. stop accepting and close the listening sockets;
2. close idle keep-alive connections at once; a connection with a request in
   flight answers it with ``Connection: close``;
3. wait up to ``graceful_timeout`` for those requests to finish;
4. cancel whatever is still running (no send is shielded, so a client that
   stopped reading cannot hold this step; the one shield the web layer uses,
   for a handler's hooks after its client left, is cancelled too, through
   :meth:`Exchange.on_stop <trioweb.server.exchange.Exchange.on_stop>`);
5. leave the application's lifespan: its nursery is cancelled, its
   shutdown hooks run and its lifespan's exit, all under the application's
   ``shutdown_timeout``.

A second signal stops now: whatever shutdown work remains -- the graceful
period, the shutdown hooks, the lifespan's exit -- is cancelled.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import logging
import os
import signal
import socket
import ssl
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import trio

from .config import ServerConfig
from .exchange import ExchangeApp
from .http1 import HTTP1Connection
from .limits import limit_concurrency
from .sockets import inherited_socket
from .tls import make_ssl_context, offer_http11, wrap

__all__ = ["ListenError", "Server", "announce", "serve", "serve_until"]

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


#: The signals that stop ``trioweb serve`` and :func:`run` gracefully (a
#: second one stops now). SIGHUP is among them: a closed terminal or a
#: supervisor that sends it gets a graceful shutdown, not a kill.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# Errors from accept() about the one client being accepted (it reset the
# connection, a firewall refused it, ...): skip it and accept the next.
_IGNORABLE_ACCEPT_ERRNOS = {
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "ECONNRESET",
        "EPERM",
        "EPROTO",
        "ENETDOWN",
        "ENETUNREACH",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENONET",
        "ENOPROTOOPT",
        "EOPNOTSUPP",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
}


@contextlib.contextmanager
def _accepting_socket(listening: trio.socket.SocketType) -> Iterator[socket.socket]:
    """A plain :mod:`socket` view of a trio listening socket, for accept().

    trio's ``accept()`` yields to the scheduler on every call, even when a
    connection is waiting; a plain non-blocking socket on the same file
    descriptor lets the accept loop take a whole backlog at once. The view
    never owns the descriptor: it is detached on the way out, and the trio
    socket (which the server closes) stays its owner.
    """
    raw = socket.socket(fileno=listening.fileno())
    try:
        raw.setblocking(False)
        yield raw
    finally:
        raw.detach()


class ListenError(OSError):
    """The server could not listen where it was told to.

    The address is in use, not allowed, or does not exist. ``strerror`` is a
    one-line message that names the address, fit to show a user as it is;
    ``__cause__`` is the original :exc:`OSError`.
    """


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

    def __init__(
        self,
        app: ExchangeApp,
        config: ServerConfig,
        sockets: Sequence[socket.socket] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.config = config
        #: HTTPS when set: each connection is wrapped in a trio.SSLStream.
        self.ssl_context = ssl_context
        # What the connections serve: ``app`` behind the server-wide
        # concurrency limit, if one is set.
        self._served = limit_concurrency(app, config)
        self._sockets = sockets
        self.connections: set[HTTP1Connection] = set()
        #: True from the moment the listeners accept connections.
        self.listening = False
        self._limiter = trio.Semaphore(config.max_connections)
        self._no_connections = trio.Event()
        self._no_connections.set()
        self._shutdown_requested = trio.Event()
        self._acceptors_scope: trio.CancelScope | None = None
        self._graceful_scope: trio.CancelScope | None = None
        self._forced = False
        # Covers the lifespan and the listeners: a signal that arrives before
        # the server listens has nothing to shut down gracefully, so it
        # cancels the start-up instead (see _watch_signals).
        self._startup_scope: trio.CancelScope | None = None
        self._interrupted = False
        # A signal has begun the graceful shutdown: the next one stops now.
        self._signalled = False
        #: Who sends the signals, when it is not the operator ("the
        #: supervisor", in a worker process): named in the start-up message.
        self.signals_from: str | None = None
        # True once the connections are gone and the lifespan's exit (the
        # application's tear-down) is what remains of the shutdown.
        self._serving_over = False

    def shutdown(self) -> None:
        """Begin a graceful shutdown (idempotent; returns at once).

        Stops accepting, and tells every connection at once -- not a few
        scheduling steps later, when the listeners are closed -- so that no
        response sent from now on invites the client to keep the
        connection alive.
        """
        self._shutdown_requested.set()
        if self._acceptors_scope is not None:
            self._acceptors_scope.cancel()
        for conn in self.connections:
            conn.shutdown()

    def force_stop(self) -> None:
        """Stop now: cancel the requests in flight without waiting, and the
        application's tear-down (its shutdown hooks, its lifespan's exit),
        whether it has begun or not."""
        self._forced = True
        self.shutdown()
        if self._graceful_scope is not None:
            self._graceful_scope.cancel()
        self._cancel_teardown()

    def _cancel_teardown(self) -> None:
        # An Application shields its tear-down (so that a cancelled server
        # still runs it) and cuts it short itself, whether it has begun or
        # not; any other lifespan's exit is cancelled from here, once
        # serving is over (before, that would cancel the serving too).
        cancel = getattr(self.app, "cancel_teardown", None)
        if cancel is not None:
            cancel()
        elif self._serving_over and self._startup_scope is not None:
            self._startup_scope.cancel()

    def _interrupt_startup(self) -> None:
        if self._interrupted:
            # Again: the tear-down of the interrupted start-up is what runs.
            self._cancel_teardown()
            return
        self._interrupted = True
        self.shutdown()
        if self._startup_scope is not None:
            self._startup_scope.cancel()

    async def _serve(self, task_status: trio.TaskStatus[list[Any]]) -> None:
        config = self.config
        uds_stat: os.stat_result | None = None
        if self._sockets is not None:
            # Sockets from the caller: the address and the socket file (if
            # any) are theirs; the sockets themselves are ours to close.
            listeners = [
                trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                for sock in self._sockets
            ]
        else:
            listeners = await _open_listeners(config)
        try:
            if config.uds is not None and self._sockets is None:
                uds_stat = os.stat(config.uds)
            # The connections get a nursery of their own, so that the end of
            # the graceful period can cancel them and nothing else.
            async with trio.open_nursery() as connections:
                try:
                    await self._serve_until_shutdown(
                        listeners, connections, task_status
                    )
                finally:
                    # However serving ended (its graceful period over, a
                    # forced stop, the server itself cancelled): what is
                    # left is cancelled, shields the application set up
                    # against the connection's cancellation included.
                    for conn in list(self.connections):
                        conn.stop()
                    connections.cancel_scope.cancel()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            if config.uds is not None and uds_stat is not None:
                remove_own_socket(config.uds, uds_stat)

    async def _serve_until_shutdown(
        self,
        listeners: list[trio.SocketListener],
        connections: trio.Nursery,
        task_status: trio.TaskStatus[list[Any]],
    ) -> None:
        config = self.config
        async with trio.open_nursery() as acceptors:
            self._acceptors_scope = acceptors.cancel_scope
            for listener in listeners:
                acceptors.start_soon(self._accept_loop, listener, connections)
            self.listening = True
            task_status.started(listening_addresses(listeners))
            # shutdown() cancels the acceptors and tells the
            # connections; this task carries on from here.
            await self._shutdown_requested.wait()
            acceptors.cancel_scope.cancel()
        # Close the listening sockets so that new clients are
        # refused instead of queueing in the backlog.
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        with trio.move_on_after(config.graceful_timeout) as scope:
            self._graceful_scope = scope
            if self._forced:
                scope.cancel()
            await self._no_connections.wait()
        self._graceful_scope = None
        if self.connections:
            log.warning(
                "%s: cancelling %d connection(s) still in flight",
                "forced stop"
                if self._forced
                else f"graceful timeout ({config.graceful_timeout:g} s)",
                len(self.connections),
            )

    async def _accept_loop(
        self, listener: trio.SocketListener, connections: trio.Nursery
    ) -> None:
        with _accepting_socket(listener.socket) as raw:
            while True:
                # A free slot first: while max_connections are open, excess
                # clients wait in the kernel's backlog, not in our memory.
                await self._limiter.acquire()
                self._limiter.release()
                await trio.lowlevel.wait_readable(raw)
                try:
                    self._accept_pending(raw, connections)
                except OSError as exc:
                    if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                        log.error("accept() failed, retrying in 100 ms: %s", exc)
                        await trio.sleep(0.1)
                        continue
                    raise

    def _accept_pending(self, raw: socket.socket, connections: trio.Nursery) -> None:
        """Accept every connection waiting in the backlog, up to the limit.

        One wake-up takes them all, without yielding: a connection accepted
        one per scheduler pass would wait for every other task to run as
        many times as there are clients ahead of it (the tail latency of a
        burst of new connections). Raises the :exc:`OSError` of a failed
        accept() when it could take no connection at all; after one or
        more, the error is left for the next wake-up to meet.
        """
        taken = 0
        while True:
            try:
                self._limiter.acquire_nowait()
            except trio.WouldBlock:
                return
            try:
                sock, _ = raw.accept()
            except BlockingIOError:
                self._limiter.release()
                return
            except OSError as exc:
                self._limiter.release()
                if exc.errno in _IGNORABLE_ACCEPT_ERRNOS:
                    continue  # that client is gone already; the next one
                if taken:
                    return
                raise
            except BaseException:
                self._limiter.release()
                raise
            taken += 1
            try:
                conn = self._connection(sock)
            except BaseException:
                sock.close()
                self._limiter.release()
                raise
            # The connection's own run() is its task: no wrapper coroutine
            # held by every idle connection. Its end calls _closed().
            try:
                connections.start_soon(conn.run)
            except BaseException:
                sock.close()
                self._closed(conn)
                raise

    def _connection(self, raw: socket.socket) -> HTTP1Connection:
        """The engine's connection for an accepted socket, registered."""
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
        sock = stream.socket
        try:
            local = sock.getsockname()
            server = (
                (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
            )
        except OSError:
            server = None
        # The TLS handshake happens in the connection's first read, under
        # the header timeout that runs from now (see trioweb.server.tls).
        conn = HTTP1Connection(
            stream if self.ssl_context is None else wrap(stream, self.ssl_context),
            self._served,
            self.config,
            client=_address(sock),
            server=server,
            scheme="http" if self.ssl_context is None else "https",
        )
        # HTTP1Connection.run() logs its own faults and never raises
        # anything but Cancelled (contract 5); it calls this when over.
        conn.on_close = self._closed
        if not self.connections:
            self._no_connections = trio.Event()
        self.connections.add(conn)
        if self._shutdown_requested.is_set():
            conn.shutdown()
        return conn

    def _closed(self, conn: HTTP1Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._no_connections.set()
        self._limiter.release()


@contextlib.asynccontextmanager
async def _lifespan(app: Any, server: Server) -> AsyncIterator[None]:
    running = getattr(app, "running", None)
    if running is None:
        yield
        return
    options: dict[str, Any] = {}
    if "on_task_failure" in inspect.signature(running).parameters:
        # A background task that fails shuts the server down gracefully
        # (Application.running logs it and raises ApplicationTaskError at
        # the end) instead of cancelling the requests in flight.
        options["on_task_failure"] = server.shutdown
    async with running(**options):
        yield


async def _open_listeners(config: ServerConfig) -> list[trio.SocketListener]:
    try:
        if config.fd is not None:
            sock = inherited_socket(config.fd, config.backlog)
        elif config.uds is None:
            return await trio.open_tcp_listeners(
                config.port, host=config.host, backlog=config.backlog
            )
        else:
            sock = bind_unix_socket(config.uds, config.backlog)
        return [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]
    except OSError as exc:
        raise listen_error(config, exc) from exc


def listen_error(config: ServerConfig, exc: OSError) -> ListenError:
    """A :exc:`ListenError` naming ``config``'s address, for ``exc``."""
    if config.fd is not None:
        where = f"file descriptor {config.fd}"
    elif config.uds is not None:
        where = f"unix:{config.uds}"
    elif ":" in config.host:
        where = f"[{config.host}]:{config.port}"
    else:
        where = f"{config.host}:{config.port}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        reason += " (is another server running there?)"
    return ListenError(exc.errno, f"cannot listen on {where}: {reason}")


def bind_unix_socket(path: str, backlog: int) -> socket.socket:
    """A listening Unix socket at ``path``, replacing a stale socket file.

    Raises :exc:`OSError` if a live server is on ``path`` or it is not a
    socket file. The caller removes the file when done (see
    :func:`remove_own_socket`).
    """
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a server that is gone; refuse anything else.

    bind() fails on an existing path. A socket file nobody listens on is
    what a crashed server leaves behind: remove it. A live server on it, or a
    file that is not a socket at all, is an error (and the file is kept).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, "the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


def remove_own_socket(path: str, ours: os.stat_result) -> None:
    """Remove the socket file at ``path`` if it is still ``ours`` (the
    ``os.stat()`` taken after binding): another process may have replaced
    it since."""
    with contextlib.suppress(OSError):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(path)


def listening_addresses(listeners: Sequence[trio.SocketListener]) -> list[Any]:
    """The addresses the listeners are bound to: ``(host, port)`` or a path."""
    addresses: list[Any] = []
    for listener in listeners:
        name = listener.socket.getsockname()
        addresses.append(tuple(name[:2]) if isinstance(name, tuple) else name)
    return addresses


def _sole_exception(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """The one exception inside ``group`` (nested groups included), or None."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


async def serve(
    app: ExchangeApp,
    config: ServerConfig | None = None,
    *,
    shutdown_trigger: trio.Event | None = None,
    handle_signals: bool = False,
    sockets: Sequence[socket.socket] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until shut down; return when everything has stopped.

    Start it in a nursery and get the bound addresses back::

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(trioweb.serve, app, config)
            host, port = addresses[0]

    A graceful shutdown (see the module docs) begins when
    ``shutdown_trigger`` is set, or on SIGINT/SIGTERM when
    ``handle_signals`` is true; a second signal stops now, cancelling the
    rest of the graceful period and the application's tear-down.
    Cancelling the task that runs :func:`serve` stops everything at once,
    as cancellation does in trio.

    ``sockets``, if given, are listening sockets (:mod:`socket` objects,
    for example from systemd or a process supervisor) to accept from
    instead of opening ``config``'s address; :func:`serve` takes them over
    and closes them when it returns, and leaves a Unix socket's file alone.

    HTTPS: with ``ssl_context`` (a server-side :class:`ssl.SSLContext`), or
    with ``config.certfile`` and the other TLS fields (see
    :mod:`trioweb.server.tls`), every connection speaks TLS and requests are
    ``https``. ``ssl_context`` wins over the fields.

    The application's lifespan (``app.running()``, if it has one) is entered
    before listening and left after the last connection is gone. A second
    signal cancels its exit: through ``app.cancel_teardown()`` if it has
    one (as :class:`~trioweb.Application` does, whose tear-down is shielded
    and bounded by its ``shutdown_timeout``), or else by cancelling it once
    serving is over.

    Raises:
      ListenError: if the address cannot be listened on (for example, the
        port is in use). It is an :exc:`OSError`.
      TLSConfigError: if the TLS fields cannot make a context (a file that
        cannot be read, a wrong key password). It is a :exc:`ValueError`.
      KeyboardInterrupt: with ``handle_signals``, if SIGINT or SIGTERM
        arrives before the server listens: the start-up (the lifespan's
        included) is cancelled, since there is nothing to shut down
        gracefully yet.

    Errors are raised as themselves, not wrapped in an exception group.

    """
    await serve_until(
        app,
        config,
        sockets=sockets,
        ssl_context=ssl_context,
        stop=None if shutdown_trigger is None else shutdown_trigger.wait,
        signals=(signal.SIGINT, signal.SIGTERM) if handle_signals else (),
        task_status=task_status,
    )


async def serve_until(
    app: ExchangeApp,
    config: ServerConfig | None = None,
    *,
    sockets: Sequence[socket.socket] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    stop: Callable[[], Awaitable[object]] | None = None,
    signals: Sequence[signal.Signals] = (),
    unblock_signals: bool = False,
    then_ignore_signals: bool = False,
    signals_from: str | None = None,
    task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`serve`, with its triggers spelled out (for :func:`run` and
    worker processes).

    A graceful shutdown begins when ``stop()`` returns or on one of
    ``signals``. With ``unblock_signals``, those signals are unblocked
    (``pthread_sigmask``) once their handler is installed: a process that
    blocked them at birth so that none is lost gets the pending one now.

    With ``then_ignore_signals``, once one of ``signals`` has arrived they
    are ignored (``SIG_IGN``) from the moment this stops watching them, with
    no gap in between: for a process that exits when this returns, so that
    one more signal in its last moments -- with nothing left to stop --
    cannot kill it or print a traceback.

    ``signals_from`` names who sends the signals when it is not the
    operator (a worker's supervisor), for the log line of a signal that
    arrives during start-up.
    """
    config = config or ServerConfig()
    if ssl_context is None:
        ssl_context = make_ssl_context(config)
    else:
        offer_http11(ssl_context)
    server = Server(app, config, sockets, ssl_context)
    server.signals_from = signals_from
    sole: BaseException | None = None
    try:
        async with trio.open_nursery() as watchers:
            # Watch for signals before anything else starts (start(), not
            # start_soon(): the receiver is installed when it returns), so a
            # signal during the application's start-up is handled too.
            if signals:
                await watchers.start(
                    _watch_signals,
                    server,
                    signals,
                    unblock_signals,
                    then_ignore_signals,
                )
            if stop is not None:
                watchers.start_soon(_relay, stop, server)
            try:
                with trio.CancelScope() as startup:
                    server._startup_scope = startup
                    async with _lifespan(app, server):
                        await server._serve(task_status)
                        server._serving_over = True
                        if server._forced:
                            server._cancel_teardown()
            finally:
                watchers.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Trio's nurseries wrap everything in exception groups; a caller of
        # serve() should be able to write ``except OSError``.
        sole = _sole_exception(group)
        if sole is None:
            raise
    if sole is not None:
        raise sole
    if server._interrupted:
        raise KeyboardInterrupt


async def _relay(stop: Callable[[], Awaitable[object]], server: Server) -> None:
    await stop()
    server.shutdown()


async def _watch_signals(
    server: Server,
    signals: Sequence[signal.Signals],
    unblock: bool,
    then_ignore: bool,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    stopping = False
    try:
        with trio.open_signal_receiver(*signals) as received:
            if unblock:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
            task_status.started()
            async for signum in received:
                stopping = True
                _on_signal(server, signal.Signals(signum).name)
    finally:
        # Leaving the receiver put back the handlers from before serve():
        # inside trio.run they turn a signal into KeyboardInterrupt, which
        # run() absorbs; once trio.run has returned, Python's would kill the
        # process (SIGTERM) or raise where nothing catches it (SIGINT).
        # Synchronously, before trio.run can return, ignore them instead.
        if then_ignore and stopping:
            for signum in signals:
                signal.signal(signum, signal.SIG_IGN)


def _on_signal(server: Server, name: str) -> None:
    if not server.listening and server.signals_from is not None:
        # Not the operator's signal: say whose, and why (a worker stopped
        # because another could not start, say).
        log.info(
            "%s is stopping the server: %s",
            server.signals_from,
            "stopping now" if server._interrupted else "stopping during start-up",
        )
        server._interrupt_startup()
    elif not server.listening:
        log.warning(
            "%s %s",
            name,
            "again: stopping now"
            if server._interrupted
            else "during start-up: stopping",
        )
        server._interrupt_startup()
    elif server._signalled:
        log.warning("second %s: stopping now", name)
        server.force_stop()
    else:
        # A first signal during a shutdown that began otherwise (an
        # application task failed, the supervisor is gone) is no hurry.
        server._signalled = True
        log.info(
            "%s: shutting down gracefully (up to %g s)",
            name,
            server.config.graceful_timeout,
        )
        server.shutdown()


def announce(
    addresses: Sequence[Any], config: ServerConfig, *, scheme: str = "http"
) -> None:
    """Print where the server listens, one line each, flushed at once."""
    for address in addresses:
        if isinstance(address, tuple):
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"trioweb: serving on {scheme}://{shown}:{port}", file=sys.stderr)
        else:
            print(f"trioweb: serving on unix:{address}", file=sys.stderr)
    sys.stderr.flush()
