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
        debug=True,
    )

The server (and the test client) call :meth:`Application.handle_exchange`
once per request and enter :meth:`Application.running` around the whole
serving period.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from ._concurrency import SideNursery, open_closable_side_nursery
from .errors import StartupError
from .handler import ErrorHandler, RequestHandler
from .request import HTTPServerRequest
from .routing import Router, Rule

if TYPE_CHECKING:
    from .http1 import Exchange

__all__ = ["Application"]

log = logging.getLogger("trioweb.error")

#: A startup or shutdown hook: an async function of no argument, or of the
#: application.
Hook = Callable[[], Awaitable[Any]] | Callable[["Application"], Awaitable[Any]]
Lifespan = Callable[["Application"], contextlib.AbstractAsyncContextManager[Any]]


class Application:
    """A collection of request handlers that make up a web application.

    Args:
      handlers: URL rules: ``(pattern, HandlerClass)``,
        ``(pattern, HandlerClass, kwargs)``, or :func:`trioweb.url` specs.
        The first rule whose pattern matches the whole path wins.
      on_startup: Async callables run, in order, before the server accepts
        connections. Each takes no argument or the application (``async
        def open_db(app): ...``). One that raises stops the start:
        :exc:`~trioweb.StartupError`, naming it.
      on_shutdown: Async callables run, in order, after the last connection
        has ended and :attr:`nursery` has been cancelled; no argument or
        the application, as ``on_startup``.
      lifespan: A function taking the application and returning an async
        context manager, entered before ``on_startup`` and exited after
        ``on_shutdown``: set-up before ``yield``, tear-down after.
        :attr:`nursery` is open during both.
      **settings: Available as :attr:`settings` (and ``handler.settings``).
        Known ones: ``debug`` (turns on ``serve_traceback``),
        ``serve_traceback`` (tracebacks in 500 pages),
        ``default_handler_class`` and ``default_handler_args`` (what
        answers when no rule matches; 404 otherwise), ``shutdown_timeout``
        (the deadline for the shutdown hooks, 10 s).
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
        if settings.get("debug"):
            settings.setdefault("serve_traceback", True)
        self.settings: dict[str, Any] = settings
        self.on_startup: list[Hook] = list(on_startup)
        self.on_shutdown: list[Hook] = list(on_shutdown)
        self.lifespan = lifespan
        self.router = Router()
        if handlers:
            self.router.add_rules(".*$", handlers)
        self._nursery: trio.Nursery | None = None
        self._running = False

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

        It exists while the application runs: from the start of the
        ``lifespan`` function's set-up (so it can start tasks here) until
        shutdown, which cancels it after the server's graceful period --
        and waits for its tasks to end -- before the ``on_shutdown`` hooks
        and the lifespan's tear-down run. As in any trio nursery, an
        exception escaping a task started here ends the application: catch
        what your background tasks can survive.
        """
        if self._nursery is None:
            raise RuntimeError(
                "Application.nursery exists only while the application runs "
                "(under trioweb.serve(), `trioweb serve` or a TestClient), "
                "from the lifespan's set-up until shutdown; start background "
                "tasks from the lifespan, an on_startup hook or a handler"
            )
        return self._nursery

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the application's lifespan around the ``async with`` body.

        The server and :class:`~trioweb.testing.TestClient` do this for you.
        """
        if self._running:
            raise RuntimeError("this Application is already running")
        self._running = True
        try:
            # The background nursery opens first, so that a lifespan's
            # set-up can start tasks; it is drained before the shutdown
            # hooks and the lifespan's tear-down, which may close what those
            # tasks use. A side nursery: shutdown cancels it without
            # cancelling the server running in the body.
            async with open_closable_side_nursery() as side:
                self._nursery = side.nursery
                try:
                    async with contextlib.AsyncExitStack() as stack:
                        if self.lifespan is not None:
                            try:
                                await stack.enter_async_context(self.lifespan(self))
                            except Exception as exc:
                                raise StartupError(
                                    "lifespan", _describe(self.lifespan), exc
                                ) from exc
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

    async def _drain_nursery(self, side: SideNursery) -> None:
        self._nursery = None
        await side.aclose()

    async def _run_shutdown_hooks(self) -> None:
        timeout = float(self.settings.get("shutdown_timeout", 10.0))
        # Shielded so that a server being cancelled still runs them, and
        # bounded so that a hook that hangs cannot hold the exit.
        pending = list(self.on_shutdown)
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + timeout
            while pending:
                try:
                    await _call_hook(pending[0], self)
                except Exception:
                    log.exception("error in shutdown hook %r", pending[0])
                del pending[0]
        if scope.cancelled_caught:
            log.error(
                "shutdown hooks did not finish within %g s: %r was cancelled%s",
                timeout,
                pending[0] if pending else None,
                f"; not run: {pending[1:]!r}" if len(pending) > 1 else "",
            )

    # -- serving --------------------------------------------------------------

    async def handle_exchange(self, exchange: Exchange) -> None:
        """Serve one request: route it, create the handler, run it."""
        request = HTTPServerRequest.from_exchange(exchange)
        match = self.router.find(request.host_name, request.path)
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
