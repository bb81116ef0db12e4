"""Mount an ASGI application under a trioweb route: :class:`ASGIHandler`.

::

    from starlette.applications import Starlette

    legacy = Starlette(routes=[...])
    app = trioweb.Application([
        (r"/", Home),
        (r"/legacy/.*", trioweb.ASGIHandler, {"app": legacy}),
    ])

Each request the rule matches is handed to the ASGI application, on trio,
inside the handler's own task: the request body streams to it through
``receive()`` as it arrives, its ``send()`` messages go out through the
connection as they come (``send()`` returns when the bytes are handed to
the socket), and when the client leaves, the application's ``receive()``
returns ``http.disconnect`` and its sends raise :exc:`OSError`. The
application is cancelled only if it has not ended ``disconnect_grace``
seconds later.

``root_path`` is the mount point: ``scope["path"]`` and
``scope["raw_path"]`` are the whole path, as the ASGI spec has them, so a
framework routes on what follows ``root_path`` and builds URLs with it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import trio

from . import auth
from .asgi import ASGIApp, ClientDisconnected, Message, Scope
from .body import check_declared_length
from .errors import HTTPError, StreamClosedError
from .handler import RequestHandler

__all__ = ["ASGIHandler", "asgi_lifespan", "literal_prefix"]

log = logging.getLogger("trioweb.error")

_DISCONNECT: Message = {"type": "http.disconnect"}
_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()")
_QUANTIFIERS = frozenset("*?{")


def literal_prefix(pattern: str) -> str:
    """The text every path a URL pattern matches begins with.

    ``r"/legacy/.*"`` gives ``"/legacy/"``, ``r"/api/v1/(.*)"``
    ``"/api/v1/"``, ``r"/docs/?"`` ``"/docs"`` (the ``/`` may be absent).
    Escapes of punctuation (``\\.``) are literal; the first other special
    character ends the prefix.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt or nxt.isalnum():
                break  # \d, \w, \A...: a class or an anchor, not a character
            out.append(nxt)
            i += 2
            continue
        if char in _REGEX_SPECIAL:
            if char in _QUANTIFIERS and out:
                out.pop()  # "x?" or "x*": that x may be absent
            break
        out.append(char)
        i += 1
    return "".join(out)


class ASGIHandler(RequestHandler):
    """Serve the requests of a URL rule with an ASGI 3 application.

    Keyword arguments (the rule's dict):

    * ``app``: the ASGI application (Starlette, FastAPI, Django's ASGI
      handler, a bare ``async def app(scope, receive, send)``).
    * ``root_path``: where it is mounted. By default the literal start of
      the rule's pattern up to its last ``/`` (see :func:`literal_prefix`):
      ``r"/legacy/.*"`` mounts at ``/legacy``; a rule with no literal
      start (``default_handler_class``, say) mounts at ``""``.
    * ``disconnect_grace``: seconds the application may run on after its
      client left before it is cancelled (1 s). It is told at once:
      ``receive()`` returns ``http.disconnect`` and ``send()`` raises.
    * ``state``: the dict whose copy each request's ``scope["state"]`` is
      (what an ASGI lifespan's ``state`` holds).

    What the application gets is the request as the client sent it: every
    method, the body unread (streamed through ``receive()``, bounded by
    ``max_body_size`` and the server's body timeouts), its own headers in
    the response (no ``Server`` or security headers added; ``Date`` is).
    Of trioweb's checks only the ones on headers apply:
    ``cross_origin_protection`` (403), a ``Content-Length`` over
    ``max_body_size`` (413), and the handler-class limits
    (``request_timeout``, ``max_concurrency``). ``xsrf_cookies`` does not
    (the mounted application has its own CSRF defence, or none).
    """

    # The client leaving is forwarded to the application as ASGI says,
    # and the application cancelled only after disconnect_grace.
    cancel_on_disconnect = False

    def initialize(
        self,
        app: ASGIApp,
        root_path: str | None = None,
        disconnect_grace: float = 1.0,
        state: dict[str, Any] | None = None,
    ) -> None:
        if not callable(app):
            raise TypeError(
                f"ASGIHandler's app must be an ASGI application, got {app!r}"
            )
        if not disconnect_grace >= 0:
            raise ValueError(
                f"disconnect_grace must be 0 or more seconds, got {disconnect_grace!r}"
            )
        self.asgi_app = app
        self._root_path = root_path
        self._grace = float(disconnect_grace)
        self._state = state
        # Set while the application runs.
        self._app_scope: trio.CancelScope | None = None
        self._gone = False
        self._told_gone = False
        # Set when the client leaves or the response is complete: what a
        # receive() after the whole request body waits for.
        self._gone_event = trio.Event()
        self._input_error: HTTPError | None = None
        self._started: tuple[int, list[tuple[bytes, bytes]]] | None = None
        self._request_done = False

    # -- the scope ------------------------------------------------------------

    @property
    def root_path(self) -> str:
        """The path the application is mounted at (``scope["root_path"]``)."""
        if self._root_path is None:
            request = self.request
            match = self.application.router.find(request.host_name, request.path)
            prefix = literal_prefix(match.spec.regex.pattern) if match else ""
            self._root_path = unquote(prefix[: prefix.rfind("/") + 1].rstrip("/"))
        return self._root_path

    def asgi_scope(self) -> Scope:
        """The ASGI ``http`` scope of this request."""
        request = self.request
        exchange = self._exchange
        server = exchange.server
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": exchange.http_version,
            "method": request.method,
            "scheme": request.protocol,
            "path": unquote(request.path),
            "raw_path": request.path.encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": self.root_path,
            "headers": list(exchange.headers),
            "client": (request.remote_ip, exchange.client[1] if exchange.client else 0),
            "server": server,
            "state": dict(self._state) if self._state is not None else {},
            "extensions": {},
        }

    # -- running the application ------------------------------------------------

    async def _run(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        exchange = self._exchange
        if self.max_body_size is not None:
            exchange.max_body_size = self.max_body_size
        error = auth.cross_origin_error(
            self.request, self.settings, self.check_trusted_origin
        )
        if error is not None:
            raise HTTPError(403, "%s", error)
        check_declared_length(exchange)
        scope = self.asgi_scope()
        with trio.CancelScope() as self._app_scope:
            exchange.on_disconnect(self._client_left)
            try:
                await self.asgi_app(scope, self._asgi_receive, self._asgi_send)
            except Exception:
                if not self._gone:
                    raise
                # Whatever the application made of its client leaving
                # (Starlette raises ClientDisconnect): not a server fault.
                log.debug(
                    "%r ended after its client left", self.asgi_app, exc_info=True
                )
        if exchange.finished:
            self._finished = True
            return
        if self._input_error is not None and not exchange.head_sent:
            raise self._input_error
        if self._gone:
            return
        if not exchange.head_sent:
            raise RuntimeError(
                f"the ASGI application {self.asgi_app!r} returned without "
                "sending a response"
            )
        raise RuntimeError(
            f"the ASGI application {self.asgi_app!r} returned before completing "
            "its response (no http.response.body with more_body False)"
        )

    def _client_left(self) -> None:
        # A disconnect callback: runs in whichever task saw the client
        # leave, so quick and synchronous. The application hears of it through
        # receive() and send(), and is cancelled if it runs on too long.
        self._gone = True
        self._gone_event.set()
        scope = self._app_scope
        if scope is not None and self._grace < math.inf:
            scope.deadline = min(scope.deadline, trio.current_time() + self._grace)

    def _leave(self, error: HTTPError) -> None:
        # The request body failed (408, 413): the application is told the
        # request is over, and the client gets the error page after it.
        self._input_error = error
        self._client_left()

    async def _asgi_receive(self) -> Message:
        if self._gone or self._exchange.finished:
            if not self._told_gone:
                # Told once without a cancellation check: code that polls
                # for a disconnect from a cancelled scope (Starlette's
                # Request.is_disconnected()) still gets it.
                self._told_gone = True
                await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                await trio.lowlevel.checkpoint()
            return _DISCONNECT
        exchange = self._exchange
        if self._request_done:
            await self._gone_event.wait()
            self._told_gone = True
            return _DISCONNECT
        # No body is consumed by a cancelled call.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            chunk = await exchange.receive_body()
        except StreamClosedError:
            self._told_gone = True
            return _DISCONNECT
        except HTTPError as exc:
            self._leave(exc)
            self._told_gone = True
            return _DISCONNECT
        if not chunk:
            self._request_done = True
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    async def _asgi_send(self, message: Message) -> None:
        kind = message["type"]
        exchange = self._exchange
        if kind == "http.response.start":
            if self._started is not None:
                raise RuntimeError("http.response.start sent twice")
            self._started = (
                int(message["status"]),
                [
                    (bytes(name), bytes(value))
                    for name, value in message.get("headers", ())
                ],
            )
            await trio.lowlevel.checkpoint()
            return
        if kind == "http.response.trailers":
            # Not offered in the scope's extensions: nothing to send.
            await trio.lowlevel.checkpoint()
            return
        if kind != "http.response.body":
            raise ValueError(f"unexpected ASGI message {kind!r} for an http scope")
        if self._started is None:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self._gone:
            await trio.lowlevel.checkpoint()
            raise ClientDisconnected()
        body = bytes(message.get("body", b""))
        end = not message.get("more_body", False)
        try:
            if not exchange.head_sent:
                status, headers = self._started
                await exchange.send_response(status, headers, body, end=end)
            else:
                await exchange.send_body(body, end=end)
        except StreamClosedError as exc:
            raise ClientDisconnected(str(exc)) from exc
        if end:
            # The response is complete: as under uvicorn or hypercorn, a
            # receive() waiting for the disconnect gets it now. The engine
            # reports no disconnect after a finished response, so without
            # this an app that watches receive() would never return.
            self._gone_event.set()


@contextlib.asynccontextmanager
async def asgi_lifespan(
    app: ASGIApp,
    state: dict[str, Any] | None = None,
    *,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[dict[str, Any]]:
    """Run a mounted ASGI application's lifespan around the ``async with``.

    Sends ``lifespan.startup`` and waits for the application to complete
    it, then, when the block ends, ``lifespan.shutdown``. Yields the
    ``state`` dict (a new one if not given) that the application's
    lifespan filled in; give it to :class:`ASGIHandler` as ``state`` so
    that each request's ``scope["state"]`` is a copy of it, as under an
    ASGI server. From an :class:`~trioweb.Application`'s lifespan::

        state = {}

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with trioweb.asgi_mount.asgi_lifespan(legacy, state):
                yield

    The shutdown runs even if the block was cancelled, for at most
    ``shutdown_timeout`` seconds. Raises :exc:`RuntimeError` if the
    application reports that its startup or shutdown failed. An
    application that does not speak the lifespan protocol (it raises, or
    returns, at once) is left alone, as ASGI servers do.
    """
    state = {} if state is None else state
    to_app, app_inbox = trio.open_memory_channel[Message](1)
    replies, reply_inbox = trio.open_memory_channel[Message | None](1)

    async def send(message: Message) -> None:
        await replies.send(message)

    task_scope = trio.CancelScope()
    task_done = trio.Event()

    async def run() -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": state,
        }
        try:
            with task_scope:
                try:
                    await app(scope, app_inbox.receive, send)
                except Exception:
                    log.debug("%r does not run a lifespan", app, exc_info=True)
                # Ended: no reply will come (None says so).
                await replies.send(None)
        finally:
            task_done.set()

    async def step(message: str) -> bool:
        await to_app.send({"type": message})
        reply = await reply_inbox.receive()
        if reply is None:
            return False
        if reply["type"].endswith(".failed"):
            raise RuntimeError(
                f"the ASGI application's {message} failed: "
                f"{reply.get('message', '') or 'no reason given'}"
            )
        return True

    # The application's lifespan runs in a task of its own, which this
    # context manager starts and, on leaving, ends and waits for: nothing
    # outlives the block. It is a system task rather than a nursery's
    # because the block's end may come inside another cancel scope than
    # its start (Application's lifespan exit runs inside its tear-down
    # deadline), which a nursery spanning the block cannot survive.
    trio.lowlevel.spawn_system_task(run, name=f"lifespan of {app!r}")
    try:
        started = await step("lifespan.startup")
        try:
            yield state
        finally:
            if started:
                # Shielded, so that a cancelled block still shuts the
                # application down; bounded, so that it cannot hang there.
                with trio.move_on_after(shutdown_timeout, shield=True) as scope:
                    await step("lifespan.shutdown")
                if scope.cancelled_caught:
                    log.error(
                        "%r did not complete its lifespan shutdown in %g s",
                        app,
                        shutdown_timeout,
                    )
    finally:
        task_scope.cancel()
        with trio.move_on_after(shutdown_timeout, shield=True):
            await task_done.wait()
        if not task_done.is_set():
            log.error("%r's lifespan task ignores cancellation", app)
