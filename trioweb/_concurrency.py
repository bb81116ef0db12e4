"""Small structured-concurrency tools shared by the application and the
test client."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio

__all__ = [
    "COROUTINE",
    "INHERITED",
    "OTHER",
    "SideNursery",
    "hook_kind",
    "maybe_await",
    "open_closable_side_nursery",
    "open_side_nursery",
    "run_hook",
]


@attrs.define(eq=False)
class SideNursery:
    """What :func:`open_side_nursery` yields when asked to be closable."""

    #: The nursery whose tasks run beside the body.
    nursery: trio.Nursery
    _holder: trio.CancelScope
    _done: trio.Event

    async def aclose(self) -> None:
        """Cancel the nursery's tasks now and wait until they have ended,
        before the ``async with`` body does (which then goes on without it).
        """
        self._holder.cancel()
        await self._done.wait()


@contextlib.asynccontextmanager
async def open_side_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose tasks run beside the ``async with`` body.

    Leaving the body cancels the tasks and waits for them. Unlike a plain
    nursery, this one can be cancelled without cancelling the body (it lives
    in a task of its own), and an exception raised by the body comes out as
    itself -- a test's ``AssertionError``, a server's ``OSError``,
    ``KeyboardInterrupt`` -- not wrapped in an exception group of one. An
    exception from a task started in the nursery still comes out as a group,
    as trio's strict exception groups would have it.
    """
    async with open_closable_side_nursery() as side:
        yield side.nursery


@contextlib.asynccontextmanager
async def open_closable_side_nursery(
    on_error: Callable[[Exception], None] | None = None,
) -> AsyncIterator[SideNursery]:
    """:func:`open_side_nursery`, which the body may also close early
    (:meth:`SideNursery.aclose`): a nursery opened before something and
    drained before that something is torn down.

    With ``on_error``, an exception from a task in the nursery does not
    cancel the body: the nursery ends (its other tasks are cancelled, as in
    any trio nursery), ``on_error`` is called with what it raised (an
    exception group), and the body goes on -- it is the caller's to decide
    what happens next (the server shuts down gracefully)."""
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as outer:
            holder = trio.CancelScope()
            done = trio.Event()
            nursery: trio.Nursery = await outer.start(
                _hold_nursery, holder, done, on_error
            )
            try:
                yield SideNursery(nursery, holder, done)
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                holder.cancel()
    except BaseExceptionGroup as group:
        if (
            body_error is None
            or len(group.exceptions) != 1
            or group.exceptions[0] is not body_error
        ):
            raise
    else:
        return
    # Raised outside the except clause, so that the body's exception keeps
    # its own __cause__ and __context__ (not the group's).
    raise body_error


async def _hold_nursery(
    scope: trio.CancelScope,
    done: trio.Event,
    on_error: Callable[[Exception], None] | None,
    task_status: trio.TaskStatus[trio.Nursery],
) -> None:
    try:
        with scope:
            async with trio.open_nursery() as nursery:
                task_status.started(nursery)
                await trio.sleep_forever()
    except Exception as exc:
        # An ExceptionGroup of the tasks' errors (a group holding a
        # Cancelled is a BaseExceptionGroup and goes on as it is).
        if on_error is None:
            raise
        on_error(exc)
    finally:
        done.set()


async def run_hook(
    hook: Callable[[], object],
    *,
    seconds: float,
    what: str,
    log: logging.Logger,
    setting: str,
) -> None:
    """Call ``hook()`` -- a plain function or a coroutine function -- with a
    deadline ``seconds`` from now.

    An exception it raises is logged (ERROR, with its traceback) and goes no
    further: ``what`` names the hook in the message. If the deadline cuts it
    short, it is cancelled and one WARNING line says so, naming ``setting``
    (the knob that sets the deadline). Cancellation from outside still
    propagates, as it should.
    """
    with trio.move_on_after(seconds) as scope:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.error("uncaught exception in %s", what, exc_info=True)
    if scope.cancelled_caught:
        log.warning(
            "%s did not finish within %g s: cancelled (raise the %s setting "
            "if it needs longer)",
            what,
            seconds,
            setting,
        )


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable; return it (or its result).

    Lets the hooks users write (``prepare()``, the HTTP methods,
    ``write_error()``, ...) be plain functions or coroutines, as they prefer.
    """
    if inspect.isawaitable(value):
        return await value
    return value


#: :func:`hook_kind`'s answers.
INHERITED = 0
COROUTINE = 1
OTHER = 2

# (class, method name, base) -> kind. Classes are few and live as long as
# the application; a dict lookup is what each request pays.
_kinds: dict[tuple[type, str, type], int] = {}


def hook_kind(obj: object, name: str, base: type) -> int:
    """How ``obj.<name>()`` must be called, decided once per class.

    :data:`INHERITED` when ``obj``'s class does not override ``base``'s
    method (a no-op default need not be called at all); :data:`COROUTINE`
    for an ``async def`` (await its call, no check needed); :data:`OTHER`
    for anything else (a plain function, or one returning an awaitable:
    call it and :func:`maybe_await` the result). A method set on the
    instance itself is always :data:`OTHER`.

    The per-request hot path of a handler calls several such hooks; the
    inspection (``inspect.isawaitable`` on each result) was a measurable
    share of a hello-world request's CPU (docs/performance.md).
    """
    cls = type(obj)
    key = (cls, name, base)
    kind = _kinds.get(key)
    if kind is None:
        method = getattr(cls, name, None)
        if method is getattr(base, name, None):
            kind = INHERITED
        elif inspect.iscoroutinefunction(method):
            kind = COROUTINE
        else:
            kind = OTHER
        _kinds[key] = kind
    instance_dict = getattr(obj, "__dict__", None)
    if instance_dict is not None and name in instance_dict:
        return OTHER
    return kind
