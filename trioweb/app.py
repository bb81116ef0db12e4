"""Application: the routes, the settings, the lifespan -- and the bridge from
the connection engine's exchanges to handler runs.

::

    app = trioweb.Application(
        [
            (r"/", Home),
            trioweb.url(r"/items/(?P<item_id>\\d+)", Item, {"db": db}, name="item"),
        ],
        on_startup=[open_db],
        on_shutdown=[close_db],
        cookie_secret="...",
    )

The server (and the test client) call :meth:`Application.handle_exchange`
once per request and enter :meth:`Application.running` around the whole
serving period.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from ._concurrency import SideNursery, open_closable_side_nursery
from .asgi import ASGIAdapter
from .errors import ApplicationTaskError, StartupError, describe_error
from .handler import RequestHandler
from .handler_builtins import ErrorHandler
from .httputil import HTTPHeaders
from .overload import check_settings
from .request import HTTPServerRequest
from .routing import Router, Rule
from .security import security_headers_from_setting
from .server.config import ServerConfig
from .server.proxy import TrustedProxies, resolve_client
from .static import StaticFileHandler

if TYPE_CHECKING:
    from .server.exchange import Exchange

__all__ = ["Application"]

log = logging.getLogger("trioweb.error")

Hook = Callable[[], Awaitable[Any]] | Callable[["Application"], Awaitable[Any]]
Lifespan = Callable[["Application"], contextlib.AbstractAsyncContextManager[Any]]


class Application:
    """A collection of request handlers that make up a web application.

    Args:
      handlers: URL rules: ``(pattern, HandlerClass)``,
        ``(pattern, HandlerClass, kwargs)``, or :func:`trioweb.url` specs.
        The first rule whose pattern matches the whole path wins.
      on_startup: Async callables run, in order, before the server accepts
        connections.
      on_shutdown: Async callables run, in order, after the last connection
        has ended and :attr:`nursery` has been cancelled.
      lifespan: A function taking the application and returning an async
        context manager, entered before ``on_startup`` and exited after
        ``on_shutdown``: set-up before ``yield``, tear-down after.
      **settings: Available as :attr:`settings` (and ``handler.settings``).
        Known ones: ``debug`` (turns on ``serve_traceback``),
        ``serve_traceback`` (tracebacks in 500 pages),
        ``default_handler_class`` and ``default_handler_args`` (what
        answers when no rule matches; 404 otherwise), ``shutdown_timeout``
        (the deadline for the tear-down: the shutdown hooks and the
        lifespan's exit together, 10 s), ``cleanup_timeout`` (the deadline
        of each handler's ``on_connection_close()`` and ``on_finish()``,
        10 s), ``request_timeout`` (seconds each request may run before it
        is answered 503; default none; see :mod:`trioweb.overload`),
        ``static_path`` (a directory served under ``static_url_prefix``,
        default ``/static/``, plus ``/favicon.ico`` and ``/robots.txt`` from
        it; ``static_handler_class`` / ``static_handler_args`` replace the
        handler), ``template_path`` / ``template_loader`` /
        ``template_environment`` (see :mod:`trioweb.templates`),
        ``compress_response`` (see :mod:`trioweb.compression`). The
        security settings (``cookie_secret``, ``xsrf_cookies``,
        ``cross_origin_protection``, ``login_url``, ``security_headers``,
        ...) are in ``docs/security.md``. Request input (see
        ``docs/request-input.md``): ``max_form_fields`` (1000),
        ``max_multipart_parts`` (100), ``max_part_header_size`` (10 KiB),
        ``multipart_spool_size`` (1 MiB), ``max_json_depth`` (64),
        ``decompress_request`` (False), ``xheaders`` (False: believe proxy
        headers from the server's ``forwarded_allow_ips``, as
        ``--proxy-headers`` does).
    """

    def __init__(
        self,
        handlers: Iterable[Rule] | None = None,
        *,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
        lifespan: Lifespan | None = None,
        **settings: Any,
    ) -> None:
        check_settings(settings)
        if settings.get("debug"):
            settings.setdefault("serve_traceback", True)
        # A bad security_headers setting fails here, not on every request.
        security_headers_from_setting(settings.get("security_headers"))
        self.settings: dict[str, Any] = settings
        self.on_startup: list[Hook] = list(on_startup)
        self.on_shutdown: list[Hook] = list(on_shutdown)
        self.lifespan = lifespan
        self.router = Router()
        handlers = list(handlers or ())
        static_path = settings.get("static_path")
        if static_path is not None:
            handlers[:0] = self._static_rules(settings, static_path)
        if handlers:
            self.router.add_rules(".*$", handlers)
        self._nursery: trio.Nursery | None = None
        self._running = False
        # The tear-down (shutdown hooks, then the lifespan's exit) runs in
        # shielded scopes under one deadline; cancel_teardown() ends them.
        self._teardown_deadline: float | None = None
        self._teardown_scopes: set[trio.CancelScope] = set()
        self._teardown_cancelled = False

    @staticmethod
    def _static_rules(settings: dict[str, Any], static_path: Any) -> list[Rule]:
        # As in Tornado: before the application's own rules, so that they
        # cannot shadow the files by accident.
        prefix = settings.get("static_url_prefix", "/static/")
        handler_class = settings.get("static_handler_class", StaticFileHandler)
        kwargs = {"path": static_path, **settings.get("static_handler_args", {})}
        return [
            (re.escape(prefix) + r"(.*)", handler_class, kwargs),
            (r"/(favicon\.ico)", handler_class, kwargs),
            (r"/(robots\.txt)", handler_class, kwargs),
        ]

    def add_handlers(self, host_pattern: str, host_handlers: Iterable[Rule]) -> None:
        """Add rules that apply only to hosts matching ``host_pattern``.

        Host patterns are regular expressions matched against the request's
        host name (without port). Rules added here are checked before the
        ones given to the constructor, which apply to every host.
        """
        self.router.add_rules(host_pattern, host_handlers)

    def reverse_url(self, name: str, *args: Any) -> str:
        """The path for the rule named ``name``, with ``args`` filled in."""
        return self.router.reverse_url(name, *args)

    # -- the lifespan ---------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """A nursery for background work that outlives a request.

        It exists while the application runs (between startup and
        shutdown). Shutdown cancels it after the server's graceful period,
        before the ``on_shutdown`` hooks run. An exception escaping a task
        started here ends the application: under the server it is logged and
        the server shuts down gracefully, then exits with an error (see
        :meth:`running`). Catch what your background tasks can survive.
        """
        if self._nursery is None:
            raise RuntimeError(
                "Application.nursery exists only while the application runs "
                "(under trioweb.serve(), `trioweb serve` or a TestClient), "
                "from the on_startup hooks until shutdown -- not yet during a "
                "lifespan function's set-up; start background tasks from an "
                "on_startup hook or a handler"
            )
        return self._nursery

    @contextlib.asynccontextmanager
    async def running(
        self, *, on_task_failure: Callable[[], None] | None = None
    ) -> AsyncIterator[None]:
        """Run the application's lifespan around the ``async with`` body.

        The server and :class:`~trioweb.testing.TestClient` do this for you.
        Leaving it tears the application down: :attr:`nursery` is cancelled,
        then the shutdown hooks run, then the lifespan's exit (its code after
        ``yield``). Those two are shielded -- a body that was cancelled still
        gets its clean-up -- and bounded together by one deadline, the
        ``shutdown_timeout`` setting; :meth:`cancel_teardown` ends them at
        once.

        A task in :attr:`nursery` that raises cancels the body, as in any
        trio nursery -- unless ``on_task_failure`` is given (the server
        gives it): then the failure is logged on ``trioweb.error`` with its
        traceback, ``on_task_failure()`` is called (the server begins a
        graceful shutdown), the body goes on until it ends, and leaving
        raises :exc:`~trioweb.ApplicationTaskError` after the tear-down.
        """
        if self._running:
            raise RuntimeError("this Application is already running")
        self._running = True
        self._teardown_deadline = None
        self._teardown_cancelled = False
        failures: list[Exception] = []

        def task_failed(exc: Exception) -> None:
            log.error(
                "application task failed: %s; shutting down",
                describe_error(exc),
                exc_info=exc,
            )
            failures.append(exc)
            if on_task_failure is not None:
                on_task_failure()

        try:
            async with open_closable_side_nursery(
                None if on_task_failure is None else task_failed
            ) as side:
                self._nursery = side.nursery
                try:
                    async with contextlib.AsyncExitStack() as stack:
                        if self.lifespan is not None:
                            lifespan = self.lifespan(self)
                            try:
                                await lifespan.__aenter__()
                            except Exception as exc:
                                raise StartupError(
                                    "lifespan", _describe(self.lifespan), exc
                                ) from exc
                            stack.push_async_exit(
                                functools.partial(self._leave, lifespan)
                            )
                        stack.push_async_callback(self._run_shutdown_hooks)
                        stack.push_async_callback(self._drain_nursery, side)
                        for hook in self.on_startup:
                            try:
                                await _call_hook(hook, self)
                            except Exception as exc:
                                raise StartupError(
                                    "startup hook", _describe(hook), exc
                                ) from exc
                        yield
                finally:
                    self._nursery = None
        finally:
            self._running = False
        if failures:
            raise ApplicationTaskError(failures[0]) from failures[0]

    async def _drain_nursery(self, side: SideNursery) -> None:
        self._nursery = None
        await side.aclose()

    def cancel_teardown(self) -> None:
        """Cut the application's tear-down short: cancel the shutdown hooks
        and the lifespan's exit, running or still to come.

        The server calls this on a second SIGINT/SIGTERM ("stopping now").
        What is cancelled sees :exc:`trio.Cancelled` in what it awaits; its
        ``finally`` blocks run. The next :meth:`running` starts afresh.
        """
        self._teardown_cancelled = True
        for scope in self._teardown_scopes:
            scope.cancel()

    @property
    def shutdown_timeout(self) -> float:
        """The ``shutdown_timeout`` setting (10 s): the deadline of the whole
        tear-down, the shutdown hooks and the lifespan's exit together."""
        return float(self.settings.get("shutdown_timeout", 10.0))

    @contextlib.contextmanager
    def _teardown_scope(self) -> Iterator[trio.CancelScope]:
        # Shielded so that a server being cancelled still tears down, and
        # bounded -- one deadline from the start of the tear-down -- so that
        # a hook or a lifespan exit that hangs cannot hold the exit.
        if self._teardown_deadline is None:
            self._teardown_deadline = trio.current_time() + self.shutdown_timeout
        with trio.CancelScope(shield=True, deadline=self._teardown_deadline) as scope:
            if self._teardown_cancelled:
                scope.cancel()
            self._teardown_scopes.add(scope)
            try:
                yield scope
            finally:
                self._teardown_scopes.discard(scope)

    def _log_cut_short(self, what: str, detail: str) -> None:
        # Asked for (a second signal) is a WARNING; a deadline that had to
        # cut the tear-down is an ERROR: something in it hangs.
        if self._teardown_cancelled:
            log.warning("%s cut short (stopping now): %s", what, detail)
        else:
            log.error(
                "%s did not finish within %g s (the shutdown_timeout setting): %s",
                what,
                self.shutdown_timeout,
                detail,
            )

    async def _run_shutdown_hooks(self) -> None:
        pending = list(self.on_shutdown)
        with self._teardown_scope() as scope:
            while pending:
                try:
                    await _call_hook(pending[0], self)
                except Exception:
                    log.exception("error in shutdown hook %r", pending[0])
                del pending[0]
        if scope.cancelled_caught:
            self._log_cut_short(
                "shutdown hooks",
                f"{pending[0] if pending else None!r} was cancelled"
                + (f"; not run: {pending[1:]!r}" if len(pending) > 1 else ""),
            )

    async def _leave(
        self,
        lifespan: contextlib.AbstractAsyncContextManager[Any],
        *exc_info: Any,
    ) -> bool:
        """Exit the lifespan (its code after ``yield``) under the tear-down's
        deadline. If it is cut short, whatever ended the body goes on."""
        with self._teardown_scope():
            return bool(await lifespan.__aexit__(*exc_info))
        self._log_cut_short("the lifespan's exit", "cancelled")
        return False

    # -- serving --------------------------------------------------------------

    def asgi(self, config: ServerConfig | None = None) -> ASGIAdapter:
        """This application as an ASGI 3 application, for an ASGI server
        running on trio (``hypercorn --worker-class trio``); ``config``
        holds the limits the adapter applies. See :mod:`trioweb.asgi`."""
        return ASGIAdapter(self, config)

    async def handle_exchange(self, exchange: Exchange) -> None:
        """Serve one request: route it, create the handler, run it."""
        config = exchange.config
        if config.proxy_headers or self.settings.get("xheaders"):
            _apply_proxy_headers(exchange, _trusted(config.forwarded_allow_ips))
        request = HTTPServerRequest.from_exchange(exchange, self.settings)
        router = self.router
        # request.host_name is worked out on first use: only virtual hosts
        # need it here.
        match = router.find(request.host_name if router.uses_host else "", request.path)
        handler_class: type[RequestHandler]
        if match is not None:
            handler_class = match.spec.handler_class
            kwargs = match.spec.kwargs
            path_args, path_kwargs = match.path_args, match.path_kwargs
        else:
            default = self.settings.get("default_handler_class")
            if default is not None:
                handler_class = default
                kwargs = self.settings.get("default_handler_args", {})
            else:
                handler_class = ErrorHandler
                kwargs = {"status_code": 404}
            path_args, path_kwargs = [], {}
        handler = handler_class(self, request, exchange, **kwargs)
        await handler._execute(path_args, path_kwargs)


@functools.lru_cache(maxsize=8)
def _trusted(spec: str) -> TrustedProxies:
    return TrustedProxies(spec)


def _apply_proxy_headers(exchange: Exchange, trusted: TrustedProxies) -> None:
    # The exchange itself is updated, so the access log shows the client
    # too, not the proxy.
    peer = exchange.client
    client, scheme = resolve_client(
        peer[0] if peer is not None else None,
        HTTPHeaders.from_raw(exchange.headers),
        trusted,
    )
    if client is not None:
        exchange.client = (client, 0)
    if scheme is not None:
        exchange.scheme = scheme


def _describe(func: Any) -> str:
    """``module.qualname`` of a hook, for messages."""
    name = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if name is None:
        return repr(func)
    return f"{module}.{name}" if module else name


async def _call_hook(hook: Hook, app: Application) -> None:
    # A hook that names a parameter gets the application; one that takes
    # none (the older form) is called without it.
    params: Iterable[inspect.Parameter]
    try:
        params = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no signature
        params = ()
    required = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
    ]
    if len(required) > 1:
        raise TypeError(
            f"{_describe(hook)} must take no argument or one (the application), "
            f"not {len(required)}"
        )
    if required:
        await hook(app)  # type: ignore[call-arg]
    else:
        await hook()  # type: ignore[call-arg]
