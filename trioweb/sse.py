"""Server-sent events: a response that is a stream of events, for as long as
the client listens.

::

    class Ticks(trioweb.RequestHandler):
        async def get(self):
            async with self.event_stream() as events:
                for n in itertools.count():
                    await events.send(str(n), event="tick", id=str(n))
                    await trio.sleep(1)

The response is ``text/event-stream`` with ``Cache-Control: no-cache``; its
head goes out when the block is entered, each :meth:`EventStream.send` is
one event and one flush, and the response ends when the block exits. While
the block runs, a comment line goes out whenever ``ping_interval`` seconds
(15 by default) pass without an event, so that proxies and load balancers
do not close the connection as idle.

The structured-concurrency part: when the client goes away, the handler is
cancelled at once -- whatever the block awaits raises :class:`trio.Cancelled`,
its ``finally`` blocks run, and ``on_connection_close()`` is called once.
Each send has the server's write timeout, so a client that stops reading
(but keeps the connection open) cannot hold the handler forever either: the
send raises :exc:`~trioweb.StreamClosedError` and the handler is cancelled.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from .errors import StreamClosedError

if TYPE_CHECKING:
    from .handler import RequestHandler

__all__ = ["EventStream", "format_event", "open_event_stream"]

#: Seconds without an event after which a keep-alive comment is sent.
PING_INTERVAL = 15.0

# The line breaks the event-stream format knows (WHATWG HTML 9.2.6): a data
# string is split on exactly these -- str.splitlines() would also split on
# form feeds and U+2028, which the browser keeps inside a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FIELD_BREAK = re.compile(r"[\r\n]")


def format_event(
    data: Any,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One event in the ``text/event-stream`` format (pure; no I/O).

    ``data`` is text (every line of it becomes a ``data:`` line, so the
    browser's ``event.data`` is the same text), bytes (UTF-8), or anything
    else JSON can encode. ``event``, ``id`` and ``retry`` (milliseconds
    the browser waits before reconnecting) are optional; a line break in
    ``event`` or ``id``, a NUL in ``id``, or a negative ``retry`` raises
    :exc:`ValueError`, since it would change the meaning of the stream.
    """
    if isinstance(data, bytes):
        text = data.decode("utf-8")
    elif isinstance(data, str):
        text = data
    else:
        text = json.dumps(data)
    lines = []
    if event is not None:
        if _FIELD_BREAK.search(event):
            raise ValueError(f"an event name cannot contain a line break: {event!r}")
        lines.append(f"event: {event}")
    if id is not None:
        if _FIELD_BREAK.search(id) or "\x00" in id:
            raise ValueError(f"an event id cannot contain CR, LF or NUL: {id!r}")
        lines.append(f"id: {id}")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"retry must be milliseconds (an int >= 0): {retry!r}")
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(text))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class EventStream:
    """The open stream of one response; made by ``handler.event_stream()``."""

    def __init__(self, handler: RequestHandler, ping_interval: float) -> None:
        self._handler = handler
        self._ping_interval = ping_interval
        self._lock = trio.Lock()
        self._last_send = trio.current_time()
        #: The ``Last-Event-ID`` header of the request (a reconnecting
        #: browser sends the id of the last event it saw), or None.
        self.last_event_id: str | None = handler.request.headers.get("Last-Event-ID")
        #: How many events have been sent.
        self.events_sent = 0

    async def send(
        self,
        data: Any,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        """Send one event and flush it (see :func:`format_event`).

        Returns when the event has been handed to the connection; raises
        :exc:`~trioweb.StreamClosedError` if the client is gone or stopped
        reading for longer than the write timeout.
        """
        frame = format_event(data, event=event, id=id, retry=retry)
        await self._send(frame)
        self.events_sent += 1

    async def comment(self, text: str = "") -> None:
        """Send a comment line (ignored by browsers; keeps proxies awake)."""
        await self._send(
            "".join(f": {line}\n" for line in _LINE_BREAK.split(text)).encode() + b"\n"
        )

    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            self._handler.write(frame)
            await self._handler.flush()
            self._last_send = trio.current_time()

    async def _keep_alive(self) -> None:
        if not math.isfinite(self._ping_interval):
            return
        while True:
            await trio.sleep_until(self._last_send + self._ping_interval)
            if trio.current_time() >= self._last_send + self._ping_interval:
                try:
                    await self._send(b": ping\n\n")
                except StreamClosedError:
                    # The client is gone: the handler hears it on its own
                    # next send (or is cancelled already).
                    return
                except Exception:
                    # The response was ended under us (the handler called
                    # finish() inside the block): nothing left to keep alive.
                    return


@contextlib.asynccontextmanager
async def open_event_stream(
    handler: RequestHandler, ping_interval: float = PING_INTERVAL
) -> AsyncIterator[EventStream]:
    """Send the event-stream head, yield the stream, end the response."""
    if ping_interval <= 0:
        raise ValueError(f"ping_interval must be > 0 seconds, got {ping_interval!r}")
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    # nginx buffers responses by default; an event must not wait for more.
    handler.set_header("X-Accel-Buffering", "no")
    await handler.flush()
    stream = EventStream(handler, ping_interval)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream._keep_alive)
            try:
                yield stream
                # A normal exit: a ping already in flush() (a slow reader) is
                # let finish -- cancelled mid-send it would cut the framing,
                # and the engine would abort the response of a client still
                # there. An error or a cancellation stops the pinger at once.
                async with stream._lock:
                    nursery.cancel_scope.cancel()
            except BaseException as exc:
                body_error = exc
                nursery.cancel_scope.cancel()
                raise
    except BaseExceptionGroup as group:
        # The block's own exception comes out as itself -- the handler's
        # `except trio.Cancelled` or `except StreamClosedError` must see
        # it -- not in a group with the pinger's cancellation.
        if body_error is None or not group.subgroup(lambda e: e is body_error):
            raise
        raise body_error from None
    await handler.finish()
