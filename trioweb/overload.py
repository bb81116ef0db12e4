"""Deadlines and overload: shed load instead of queueing it.

When a service is asked for more than it can do, queueing makes every
request slow; shedding the excess keeps the accepted ones fast. Three
controls, each one line, all built from trio's own parts (cancel scopes and
:class:`trio.CapacityLimiter`):

**A deadline per request.** ``request_timeout`` (an Application setting, or
a handler class attribute that overrides it) bounds the handler's run: the
body read, ``prepare()``, the method and the automatic ``finish()``. Past
it, the handler is cancelled as if the client had left (its ``finally``
blocks run, then ``on_finish()``), and

* if nothing was sent yet, the client gets **503** through
  :meth:`~trioweb.RequestHandler.write_error` (``exc_info`` holds a
  :exc:`DeadlineExceeded`), and one WARNING line is logged;
* if the response had started, the connection is closed, so that the client
  sees the body cut short rather than a short body that looks whole.

Either way the access log line ends with ``(timeout)``. A handler reads
its deadline from ``self.deadline`` (a :func:`trio.current_time` value) to
pass the remaining budget on: ``with trio.fail_at(self.deadline): ...``.

**A concurrency budget per route.** ``max_concurrency = N`` on a handler
class lets at most N requests of that class run at once. One more waits up
to ``max_queue_time`` seconds (default 0: not at all) for a slot, and is
otherwise answered **503 with** ``Retry-After`` -- without running
``prepare()`` or the method and without reading its body. A queued client
that leaves is dropped from the queue, and a request still queued when a
graceful shutdown begins is answered 503 at once.

**A limit per server.** ``ServerConfig(limit_concurrency=N)`` (``trioweb
serve --limit-concurrency N``) answers 503 with ``Retry-After`` at once to
any request beyond N in flight, before the application sees it.

A shed response keeps the connection open when that is safe: the engine
drains an unread body within ``max_body_size`` afterwards, and closes the
connection when it cannot (a client waiting for ``100 Continue``).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .errors import HTTPError, StreamClosedError

if TYPE_CHECKING:
    from .handler import RequestHandler
    from .server.exchange import Exchange

__all__ = [
    "DeadlineExceeded",
    "HandlerLimits",
    "Overloaded",
    "check_handler_class",
    "check_settings",
    "run_handler",
]

log = logging.getLogger("trioweb.error")


class Overloaded(HTTPError):
    """A 503 Service Unavailable with ``Retry-After: retry_after``.

    trioweb raises it for a request shed by ``max_concurrency``; raise it
    yourself to shed load your own way (a full downstream pool, say)::

        if pool.busy():
            raise trioweb.Overloaded(retry_after=5)

    The error page comes from :meth:`~trioweb.RequestHandler.write_error`,
    as for any :exc:`HTTPError`.
    """

    def __init__(
        self, retry_after: int = 1, log_message: str | None = None, *args: Any
    ) -> None:
        super().__init__(503, log_message, *args)
        if isinstance(retry_after, bool) or not isinstance(retry_after, int):
            raise TypeError(
                f"retry_after must be a whole number of seconds, got {retry_after!r}"
            )
        if retry_after < 0:
            raise ValueError(f"retry_after must be 0 or more, got {retry_after!r}")
        self.retry_after = retry_after


class DeadlineExceeded(HTTPError):
    """The handler ran past its ``request_timeout``: a 503.

    ``write_error`` receives it in ``exc_info`` when the 503 page is sent,
    so an application can tell a timeout from other errors.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(503, "request_timeout of %g s expired", timeout)
        self.timeout = timeout


# -- checking the knobs --------------------------------------------------------


def _check_timeout(where: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a number of seconds or None, got {value!r}")
    if not value > 0:
        raise ValueError(
            f"{where} must be greater than 0 (math.inf or None for no "
            f"deadline), got {value!r}"
        )


def check_handler_class(cls: type[HandlerLimits]) -> None:
    """Refuse impossible limits when a handler class is defined, not at its
    first request: raises :exc:`TypeError` or :exc:`ValueError`."""
    name = cls.__qualname__
    _check_timeout(f"{name}.request_timeout", cls.request_timeout)
    limit = cls.max_concurrency
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
    ):
        raise ValueError(
            f"{name}.max_concurrency must be a whole number of 1 or more "
            f"(or None for no limit), got {limit!r}"
        )
    queue_time = cls.max_queue_time
    if (
        isinstance(queue_time, bool)
        or not isinstance(queue_time, (int, float))
        or not queue_time >= 0
    ):
        raise ValueError(
            f"{name}.max_queue_time must be a number of seconds, 0 or more, "
            f"got {queue_time!r}"
        )
    retry_after = cls.retry_after
    if isinstance(retry_after, bool) or not isinstance(retry_after, int):
        raise ValueError(
            f"{name}.retry_after must be a whole number of seconds, got {retry_after!r}"
        )
    if retry_after < 0:
        raise ValueError(f"{name}.retry_after must be 0 or more, got {retry_after!r}")


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse an impossible ``request_timeout`` Application setting."""
    _check_timeout("the request_timeout setting", settings.get("request_timeout"))


# -- RequestHandler's limits ------------------------------------------------


class HandlerLimits:
    """The deadline and concurrency knobs of :class:`~trioweb.RequestHandler`.

    Class attributes a handler class may set; each is checked when the class
    is defined (:func:`check_handler_class`), so an impossible value fails
    at import, not at the first request.
    """

    #: Seconds the request may run (body read, prepare, method, finish);
    #: past it the handler is cancelled and the client gets 503. None: the
    #: Application's ``request_timeout`` setting (default: no deadline);
    #: ``math.inf``: no deadline whatever the setting says.
    request_timeout: float | None = None
    #: At most this many requests of this class run at once (None: no limit).
    max_concurrency: int | None = None
    #: Seconds a request over ``max_concurrency`` may wait for a slot before
    #: it is answered 503; 0 sheds it at once.
    max_queue_time: float = 0.0
    #: The ``Retry-After`` (seconds) sent with a shed request's 503.
    retry_after: int = 1
    _deadline: float = math.inf

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_handler_class(cls)

    @property
    def deadline(self) -> float:
        """The :func:`trio.current_time` by which this request must be done.

        ``math.inf`` when it has no ``request_timeout``. Pass what is left on
        to your own calls so they give up in time::

            with trio.move_on_at(self.deadline - 0.1):
                rows = await db.query(...)
        """
        return self._deadline


# -- a handler's run ---------------------------------------------------------

# One limiter per (application, handler class): two applications in one
# process (two test clients, say) do not share a budget, and nothing stays
# alive after its application is gone.
_limiters: weakref.WeakKeyDictionary[Any, dict[type[Any], trio.CapacityLimiter]] = (
    weakref.WeakKeyDictionary()
)


def _limiter(handler: RequestHandler, limit: int) -> trio.CapacityLimiter:
    per_app = _limiters.setdefault(handler.application, {})
    cls = type(handler)
    limiter = per_app.get(cls)
    if limiter is None:
        limiter = per_app[cls] = trio.CapacityLimiter(limit)
    elif limiter.total_tokens != limit:
        # The class attribute was changed at run time: follow it (requests
        # running already finish; the new limit applies to the next ones).
        limiter.total_tokens = limit
    return limiter


async def _admit(
    handler: RequestHandler,
    exchange: Exchange,
    limiter: trio.CapacityLimiter,
    borrower: object,
) -> None:
    """Take a slot for ``handler``, waiting up to ``max_queue_time``;
    raise :exc:`Overloaded` if there is none, StreamClosedError if the
    client left while waiting."""
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
        return
    except trio.WouldBlock:
        pass
    queue_time = handler.max_queue_time
    if queue_time > 0 and not exchange.shutting_down:
        # The handler's own scope is cancelled by a disconnect only when the
        # class asks for it; a client that left has no business in the
        # queue whatever the class says. Shutdown empties the queue too.
        with trio.move_on_after(queue_time) as wait:
            exchange.on_disconnect(wait.cancel)
            exchange.on_shutdown(wait.cancel)
            await limiter.acquire_on_behalf_of(borrower)
            return
        if exchange.disconnected:
            raise StreamClosedError("the client left while its request was queued")
    exchange.note = "shed"
    raise Overloaded(handler.retry_after)


def _request_timeout(handler: RequestHandler) -> float | None:
    timeout = handler.request_timeout
    if timeout is None:
        timeout = handler.settings.get("request_timeout")
    if timeout is None or timeout == math.inf:
        return None
    return float(timeout)


async def run_handler(
    handler: RequestHandler, exchange: Exchange, run: Callable[[], Awaitable[None]]
) -> None:
    """Run ``run()`` (the handler's body read, prepare and method) within the
    class's concurrency budget and the request's deadline.

    Raises :exc:`Overloaded` when the request is shed and
    :exc:`DeadlineExceeded` when the deadline passed before anything was
    sent; the caller answers both like any :exc:`HTTPError`. When the
    deadline passes after the response started, the connection is aborted
    here and the call returns normally.
    """
    limit = handler.max_concurrency
    limiter = None if limit is None else _limiter(handler, limit)
    # The slot's owner: a token of its own, not the handler, which a
    # subclass might have made unhashable.
    borrower = object()
    if limiter is not None:
        await _admit(handler, exchange, limiter, borrower)
    try:
        timeout = _request_timeout(handler)
        if timeout is None:
            await run()
            return
        with trio.move_on_after(timeout) as scope:
            handler._deadline = scope.deadline
            await run()
        if scope.cancelled_caught:
            _timed_out(handler, exchange, timeout)
    finally:
        if limiter is not None:
            limiter.release_on_behalf_of(borrower)


def _timed_out(handler: RequestHandler, exchange: Exchange, timeout: float) -> None:
    if exchange.finished or exchange.disconnected:
        # Complete already, or nobody left to tell: nothing to undo.
        return
    exchange.note = "timeout"
    if not exchange.head_sent:
        raise DeadlineExceeded(timeout)
    request = handler.request
    log.warning(
        "%s %s (%s): request_timeout of %g s expired after the response "
        "started; closing the connection",
        request.method,
        request.uri,
        request.remote_ip,
        timeout,
    )
    exchange.abort()
