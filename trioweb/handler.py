"""RequestHandler: the class you subclass, one instance per request.

The API is Tornado's ``tornado.web.RequestHandler``; the engine underneath is
structured concurrency. A request runs like this::

    initialize(**kwargs)            # from the URL rule
    405 if the method is not implemented (with an Allow header)
    the body is read (bounded by max_body_size)
    prepare()                       # sync or async; may finish()
    get()/post()/...(*path_args)    # sync or async
    finish()                        # automatic when the method returns
    on_connection_close()           # if the client left meanwhile
    on_finish()                     # always, exactly once

Everything from ``prepare()`` to the automatic ``finish()`` runs inside a
cancel scope. When the client disconnects, that scope is cancelled (unless
the class sets ``cancel_on_disconnect = False``): whatever the handler awaits
raises :class:`trio.Cancelled`, its ``finally`` blocks run, and the access
log says 499. Output methods mirror Tornado's, except that the ones that do
I/O are coroutines: ``await self.flush()``, ``await self.finish()``,
``await self.redirect(url)``, ``await self.send_error(404)``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from . import auth, compression, sse
from ._concurrency import COROUTINE, INHERITED, OTHER, hook_kind, run_hook
from ._concurrency import maybe_await as _maybe_await  # the name it had here
from .auth import HandlerSecurity
from .body import HandlerBody
from .dates import format_timestamp
from .errors import HTTPError
from .handler_arguments import HandlerArguments
from .handler_cookies import HandlerCookies
from .handler_errors import HandlerErrors
from .handler_etag import HandlerEtags
from .handler_plan import HandlerPlan, plan_for
from .httputil import (
    HTTPHeaders,
    is_valid_header_name,
    is_valid_header_value,
    location_value,
    reason_phrase,
)
from .overload import HandlerLimits, run_handler
from .security import is_offsite_redirect
from .templates import HandlerTemplates

if TYPE_CHECKING:
    from .app import Application
    from .request import HTTPServerRequest
    from .server.exchange import Exchange

__all__ = ["RequestHandler"]

app_log = logging.getLogger("trioweb.error")

# Control characters would split the status line, which is latin-1 on the
# wire: a reason with them is a bug to report. "<" is merely suspicious (it
# would be markup in the error page) and becomes "Unknown", as in Tornado.
_UNSENDABLE_REASON = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_ODD_REASON = re.compile(r"[<\t]")
_SERVER_HEADER = "trioweb/0.1"


# Header names and values already found valid: an application sets the same
# few on every response, and a set lookup is cheaper than a regex match.
# Bounded (emptied when full), so that values that differ per request
# cannot grow them.
_VALID_NAMES: set[str] = set()
_VALID_VALUES: set[str] = set()
_VALID_CACHE_SIZE = 1024

# What every response starts with (clear() copies it).
_DEFAULT_HEADERS = HTTPHeaders(
    {"Server": _SERVER_HEADER, "Content-Type": "text/html; charset=UTF-8"}
)


def _checked_header_name(name: str) -> str:
    if name in _VALID_NAMES:
        return name
    if is_valid_header_name(name):
        if len(_VALID_NAMES) >= _VALID_CACHE_SIZE:
            _VALID_NAMES.clear()
        _VALID_NAMES.add(name)
    else:
        raise ValueError(
            f"invalid header name {name!r}: a name is letters, digits and "
            "!#$%&'*+-.^_`|~ only (no spaces, colons or control characters)"
        )
    return name


def _unsupported(*args: Any, **kwargs: Any) -> NoReturn:
    raise HTTPError(405)


# Most of Tornado's methods live beside the concept they serve, each group in
# a mixin of its own module that declares (for mypy only) what it uses of
# this class: deadlines and concurrency (overload.py), the request body
# (body.py), error pages (handler_errors.py), ETags (handler_etag.py),
# arguments (handler_arguments.py), cookies (handler_cookies.py), signed cookies, XSRF
# and logins (auth.py), templates (templates.py). Here: the request's run,
# status and headers, and output.
class RequestHandler(
    HandlerLimits,
    HandlerBody,
    HandlerErrors,
    HandlerEtags,
    HandlerArguments,
    HandlerCookies,
    HandlerSecurity,
    HandlerTemplates,
):
    """Base class for request handlers: subclass it and define ``get()`` etc.

    Class attributes you may set:

    ``SUPPORTED_METHODS``
        The methods this class may answer (others get 405).
    ``cancel_on_disconnect`` (default True)
        Cancel the handler when the client goes away. Set it to False for
        work that must run to completion even then; writes then raise
        :exc:`~trioweb.StreamClosedError` once the client is gone.
    ``max_body_size`` (default None: the server's ``max_body_size``)
        The largest request body this handler accepts; larger ones get 413
        before the body is read. May be above the server's limit.
    ``stream_request_body`` (default False)
        Read the body as it arrives instead of before ``prepare()`` (see
        :func:`trioweb.stream_request_body`).
    ``security_headers`` (default None: the application's setting)
        True, False, a dict or a :class:`~trioweb.SecurityHeaders`: the
        security headers of this class's responses (``docs/security.md``).
    ``request_timeout``, ``max_concurrency``, ``max_queue_time``, ``retry_after``
        A deadline for each request and a concurrency budget for the class
        (see :mod:`trioweb.overload`).
    """

    SUPPORTED_METHODS: tuple[str, ...] = (
        "GET",
        "HEAD",
        "POST",
        "DELETE",
        "PATCH",
        "PUT",
        "OPTIONS",
    )
    cancel_on_disconnect: bool = True
    max_body_size: int | None = None
    security_headers: Any = None
    stream_request_body: bool = False

    # The defaults answer 405; a subclass defines the ones it serves. Typed
    # loosely because subclasses choose their own signatures.
    get: Callable[..., Any] = _unsupported
    head: Callable[..., Any] = _unsupported
    post: Callable[..., Any] = _unsupported
    delete: Callable[..., Any] = _unsupported
    patch: Callable[..., Any] = _unsupported
    put: Callable[..., Any] = _unsupported
    options: Callable[..., Any] = _unsupported

    path_args: list[str | None]
    path_kwargs: dict[str, str | None]

    # Per-request state whose start values are immutable: class attributes,
    # so that __init__ need not set them on every request.
    _finished: bool = False
    _prepared: bool = False
    _current_user: Any = auth.UNKNOWN_USER
    _xsrf: auth.XSRF | None = None

    def __init__(
        self,
        application: Application,
        request: HTTPServerRequest,
        exchange: Exchange,
        **kwargs: Any,
    ) -> None:
        self.application = application
        self.request = request
        self._exchange = exchange
        self._new_cookie: dict[str, str] = {}
        self.path_args = []
        self.path_kwargs = {}
        self.ui: dict[str, Any] = {}
        self.clear()
        self.initialize(**kwargs)

    # -- hooks for subclasses -------------------------------------------------

    def _initialize(self, **kwargs: Any) -> None:
        """Receive the URL rule's keyword arguments (override it).

        ``url(r"/item", Item, {"db": db})`` calls ``initialize(db=db)``.
        """

    # Typed loosely, as Tornado does, so that an override naming its own
    # arguments (``def initialize(self, db)``) passes mypy --strict.
    initialize: Callable[..., None] = _initialize

    def prepare(self) -> Awaitable[None] | None:
        """Called before ``get()``/``post()``...; may be async, may finish."""
        return None

    def on_finish(self) -> Awaitable[None] | None:
        """Called once after the request ends, however it ended (may be async).

        Runs after a normal finish, an error page, and a client that left.
        Use it for clean-up and metrics, not for output. It has a deadline,
        the ``cleanup_timeout`` setting (10 s): past it, it is cancelled
        and a WARNING says so.
        """
        return None

    def on_connection_close(self) -> Awaitable[None] | None:
        """Called when the client left before the response was complete.

        By then the handler's cancellation has unwound (its ``finally``
        blocks ran). Called before :meth:`on_finish`, with a deadline of its
        own: the ``cleanup_timeout`` setting (10 s).
        """
        return None

    def set_default_headers(self) -> None:
        """Set headers every response of this class starts with (override it).

        Called at the start of the request and again by :meth:`clear` (and so
        before an error page).
        """

    @property
    def settings(self) -> dict[str, Any]:
        """``self.application.settings``."""
        return self.application.settings

    @property
    def client_disconnected(self) -> bool:
        """True once the client has closed or reset the connection."""
        return self._exchange.disconnected

    @property
    def _headers_written(self) -> bool:
        # The engine's own flag: it turns true when the head is handed to
        # the connection, before the send's await, so a second task of the
        # handler's nursery flushing meanwhile sends body, not a second head
        # (the connection serializes the two sends).
        return self._exchange.head_sent

    # -- status and headers ---------------------------------------------------

    def clear(self) -> None:
        """Reset headers, status and the unsent body to their defaults."""
        self._headers = _DEFAULT_HEADERS.copy()
        choice = self.security_headers
        if choice is None:
            choice = self.application.settings.get("security_headers")
        # Off is the default: then there is nothing to ask auth.py for.
        if choice is not None and choice is not False:
            for name, value in auth.security_header_fields(
                choice, self.settings, self.request.protocol == "https"
            ):
                self._headers[name] = value
        if plan_for(self, RequestHandler).set_default_headers:
            self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._encoder: compression.ResponseEncoder | None = None
        self._status_code = 200
        self._reason = "OK"

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        """Set the response status.

        ``reason`` replaces the standard phrase. One with CR, LF or another
        control character (or beyond latin-1) raises :exc:`ValueError`: it
        would split the status line, so it is a bug to fix, never bytes on
        the wire. One with ``<`` or a tab becomes ``"Unknown"`` (markup has
        no place in the error page that repeats it).
        """
        if reason is not None and _UNSENDABLE_REASON.search(reason):
            raise ValueError(
                f"unsafe reason phrase {reason!r}: control characters (CR, LF, "
                "NUL, ...) and text beyond latin-1 cannot be sent; pass plain text"
            )
        self._status_code = status_code
        if reason is None:
            self._reason = reason_phrase(status_code)
        elif _ODD_REASON.search(reason):
            self._reason = "Unknown"
        else:
            self._reason = reason

    def get_status(self) -> int:
        """The response status set so far."""
        return self._status_code

    def set_header(
        self, name: str, value: str | bytes | int | datetime.datetime
    ) -> None:
        """Set a response header, replacing any earlier value.

        Values may be str, bytes, int or datetime (sent as an HTTP date).
        A value with CR, LF or another control character raises
        :exc:`ValueError`: it would split the header block. So does a name
        that is not an HTTP token (letters, digits, ``!#$%&'*+-.^_`|~``).
        """
        self._headers[_checked_header_name(name)] = self._convert_header_value(value)

    def add_header(
        self, name: str, value: str | bytes | int | datetime.datetime
    ) -> None:
        """Add a header value; unlike :meth:`set_header`, earlier ones stay."""
        self._headers.add(_checked_header_name(name), self._convert_header_value(value))

    def clear_header(self, name: str) -> None:
        """Remove a header set earlier (a no-op if there is none)."""
        if name in self._headers:
            del self._headers[name]

    def _convert_header_value(self, value: Any) -> str:
        if isinstance(value, str):
            if value in _VALID_VALUES:
                return value
            text = value
        elif isinstance(value, bytes):
            text = value.decode("latin-1")
        elif isinstance(value, bool):
            # bool is an int subclass; "True" is never what was meant.
            raise TypeError(f"unsupported header value {value!r}")
        elif isinstance(value, int):
            return str(value)
        elif isinstance(value, datetime.datetime):
            return format_timestamp(value)
        else:
            raise TypeError(f"unsupported header value {value!r}")
        # Surrounding blanks are not part of a field value (RFC 9110 5.5).
        text = text.strip(" \t")
        if not is_valid_header_value(text):
            raise ValueError(f"unsafe header value {text!r}")
        if len(_VALID_VALUES) >= _VALID_CACHE_SIZE:
            _VALID_VALUES.clear()
        _VALID_VALUES.add(text)
        return text

    # -- output ---------------------------------------------------------------

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        """Add ``chunk`` to the response body (buffered until flush/finish).

        A dict is sent as JSON with ``Content-Type: application/json``.
        Lists are refused (a JSON array at the top level was an old
        cross-site leak); wrap them in a dict.
        """
        if self._finished:
            raise RuntimeError("cannot write() after finish()")
        if not isinstance(chunk, (bytes, str, dict)):
            message = "write() only accepts bytes, str, and dict objects"
            if isinstance(chunk, list):
                message += (
                    ". Lists are not accepted for security reasons: wrap the "
                    "list in a dict"
                )
            raise TypeError(message)
        if isinstance(chunk, dict):
            # "</" is escaped so JSON can be embedded in a <script> safely.
            chunk = json.dumps(chunk).replace("</", "<\\/")
            self.set_header("Content-Type", "application/json; charset=UTF-8")
        self._write_buffer.append(
            chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        )

    def _head_for_wire(self) -> list[tuple[bytes, bytes]]:
        for cookie in self._new_cookie.values():
            self._headers.add("Set-Cookie", cookie)
        self._new_cookie = {}
        return self._headers.encoded_fields()

    async def flush(self) -> None:
        """Send the headers (if not yet sent) and the buffered body now.

        Returns when the bytes are handed to the connection. After the first
        flush the status and headers are fixed, and the body is sent chunked
        (HTTP/1.1) or until the connection closes (HTTP/1.0). Raises
        :exc:`~trioweb.StreamClosedError` if the client is gone.

        Tasks of the handler's own nursery may write and flush at once: the
        sends are serialized, each flush's bytes going out whole, in the
        order the flushes were called. Under HEAD the first flush completes
        the response (see the handlers guide).
        """
        chunk = b"".join(self._write_buffer)
        self._write_buffer = []
        if not self._headers_written:
            chunk = self._start_encoding(chunk, end=False)
            await self._send_head(self._status_code, chunk, end=False)
        elif chunk:
            if self._encoder is not None:
                chunk = self._encoder.compress(chunk, end=False)
            await self._exchange.send_body(chunk)

    async def _send_head(self, status: int, body: bytes, *, end: bool) -> None:
        # A head the engine refuses (ValueError: an invalid status, say;
        # FramingError: a body that does not match its Content-Length) is
        # not sent, so an error page can still be.
        await self._exchange.send_response(
            status,
            self._head_for_wire(),
            body,
            reason=self._reason.encode("latin-1"),
            end=end,
        )

    async def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> None:
        """Complete the response; return when its last byte has been sent.

        Computes ``ETag`` (and answers 304 when the client's copy matches)
        and ``Content-Length`` when the whole body is known. Calling it twice
        raises :exc:`RuntimeError`; so does writing after it. Raises
        :exc:`~trioweb.StreamClosedError` if the client is gone.
        """
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        if not self._headers_written:
            status = self._status_code
            # Names are stored normalized: the handler's own look-ups go to
            # the dict itself.
            fields = self._headers._as_list
            if (
                status == 200
                and self.request.method in ("GET", "HEAD")
                and "ETag" not in fields
            ):
                # Both ETag steps go through the methods if any is overridden.
                inherited = not plan_for(self, RequestHandler).etag
                self._set_etag(inherited)
                if self._etag_matches(inherited):
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
                    # The client may hold the compressed variant's tag. (An
                    # overridden check_etag_header() may answer 304 with no
                    # If-None-Match, or with no ETag: as in Tornado.)
                    etag = self._headers.get("ETag")
                    if etag is not None:
                        if_none_match = self.request.headers.get("If-None-Match", "")
                        self._headers["ETag"] = (
                            compression.matching_etag(if_none_match, etag) or etag
                        )
            body = b"".join(self._write_buffer)
            if status in (204, 304) or 100 <= status < 200:
                if body:
                    raise RuntimeError(f"cannot send a body with status {status}")
                if status == 304 and self.settings.get("compress_response"):
                    compression.vary_not_modified(self._headers)
                self._clear_representation_headers()
            else:
                # A HEAD whose body GET would stream (a static file's) is
                # decided, and framed, as that GET: no compressed length.
                streamed = compression.head_body_missing(
                    self.request.method, self._headers, body
                )
                body = self._start_encoding(body, end=not streamed)
                fields = self._headers._as_list
                if "Content-Length" not in fields and not streamed:
                    fields["Content-Length"] = [str(len(body))]
            # Finished from here on, unless the head is refused before
            # anything is sent: then the caller's error page still can be.
            self._finished = True
            try:
                await self._send_head(status, body, end=True)
            except Exception:
                if not self._headers_written:
                    self._finished = False
                raise
        else:
            self._finished = True
            body = b"".join(self._write_buffer)
            if self._encoder is not None:
                body = self._encoder.compress(body, end=True)
            await self._exchange.send_body(body, end=True)
        self._write_buffer = []

    def _clear_representation_headers(self) -> None:
        # RFC 9110 15.4.5: a 304 describes a representation the client has;
        # headers about the one we did not send would mislead caches.
        for name in (
            "Content-Encoding",
            "Content-Language",
            "Content-Type",
            "Content-Length",
        ):
            self.clear_header(name)

    async def redirect(
        self,
        url: str,
        permanent: bool = False,
        status: int | None = None,
        *,
        allow_offsite: bool = False,
    ) -> None:
        """Redirect to ``url`` (302, or 301 when ``permanent``) and finish.

        ``status`` picks another 3xx code. Non-ASCII characters in ``url``
        are sent percent-encoded as UTF-8 (what browsers do with them). A URL
        containing CR or LF raises :exc:`ValueError`. So does one starting
        with ``//`` or ``/\\`` (a browser goes to another host with it: the
        open redirect of a ``next=//evil.example`` parameter) unless
        ``allow_offsite=True``; an absolute ``https://...`` URL is allowed.
        """
        if self._headers_written:
            raise RuntimeError("cannot redirect after the headers were sent")
        if not allow_offsite and is_offsite_redirect(url):
            raise ValueError(
                f"refusing to redirect to {url!r}: a URL starting with // or /\\ "
                "leaves the site (check user-supplied targets, or pass "
                "allow_offsite=True when another host is intended)"
            )
        if status is None:
            status = 301 if permanent else 302
        elif not 300 <= status <= 399:
            raise ValueError(f"redirect status must be 3xx, got {status}")
        # The header first: an unsafe URL raises before the status changes,
        # so a caller that catches the ValueError still has its own status.
        self.set_header("Location", location_value(url))
        self.set_status(status)
        await self.finish()

    # -- server-sent events, compression -------------------------------------
    # Thin doors: the logic lives in sse.py and compression.py.

    def event_stream(
        self, ping_interval: float = sse.PING_INTERVAL
    ) -> contextlib.AbstractAsyncContextManager[sse.EventStream]:
        """Answer with server-sent events: ``async with`` it, then ``send``.

        ::

            async with self.event_stream() as events:
                await events.send("hello", event="greeting", id="1")

        See :mod:`trioweb.sse`.
        """
        return sse.open_event_stream(self, ping_interval)

    def _start_encoding(self, body: bytes, *, end: bool) -> bytes:
        # The compression door: called once, as the head goes out.
        if not self.settings.get("compress_response"):
            return body
        self._encoder = compression.start_encoding(
            method=self.request.method,
            status=self._status_code,
            request_headers=self.request.headers,
            response_headers=self._headers,
            body=body,
            end=end,
        )
        if self._encoder is None:
            return body
        return self._encoder.compress(body, end=end)

    # -- running a request ----------------------------------------------------

    def _implements(self, method: str) -> bool:
        return getattr(type(self), method.lower(), _unsupported) is not _unsupported

    def _allowed_methods(self) -> list[str]:
        allowed = [m for m in self.SUPPORTED_METHODS if self._implements(m)]
        if (
            "HEAD" not in allowed
            and "GET" in allowed
            and "HEAD" in self.SUPPORTED_METHODS
        ):
            allowed.insert(allowed.index("GET") + 1, "HEAD")
        return allowed

    async def _run(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        method = self.request.method
        if method not in self.SUPPORTED_METHODS:
            raise HTTPError(405)
        name = method.lower()
        if name == "head" and not self._implements("head"):
            # HEAD is GET without the body: the engine drops the body and
            # keeps the Content-Length GET would send.
            name = "get"
        if path_args:
            self.path_args = [
                self.decode_argument(arg) if arg is not None else None
                for arg in path_args
            ]
        if path_kwargs:
            self.path_kwargs = {
                key: self.decode_argument(arg, name=key) if arg is not None else None
                for key, arg in path_kwargs.items()
            }
        if self.max_body_size is not None:
            self._exchange.max_body_size = self.max_body_size
        settings = self.settings
        if settings.get("cross_origin_protection"):
            # Refused from the headers alone: the body is never waited for.
            error = auth.cross_origin_error(
                self.request, settings, self.check_trusted_origin
            )
            if error is not None:
                raise HTTPError(403, "%s", error)
        if not self._implements(name):
            # As in Tornado, prepare() runs first: a catch-all handler that
            # only has prepare() (to 404 or redirect) answers with it. The
            # body of a request nobody serves is never read.
            plan = plan_for(self, RequestHandler)
            await self._load_user_early(plan)
            await self._prepare(plan)
            self._prepared = True
            if not self._finished:
                raise HTTPError(405)
            return
        func = getattr(self, name)
        streaming = self.stream_request_body
        if not streaming:
            await self._read_body()
        if settings.get("xsrf_cookies") and method not in auth.SAFE_METHODS:
            # A streamed body is not read yet: its token must come in a
            # header or the query string, as with Tornado.
            self.check_xsrf_cookie()
        plan = plan_for(self, RequestHandler)
        await self._load_user_early(plan)
        await self._prepare(plan)
        self._prepared = True
        if self._finished:
            return
        if streaming:
            await self._stream_body()
        if hook_kind(self, name, RequestHandler) == COROUTINE:
            result = await func(*self.path_args, **self.path_kwargs)
        else:
            result = await _maybe_await(func(*self.path_args, **self.path_kwargs))
        if result is not None:
            # Tornado fails the same way: the response is what the method
            # writes, so a returned value would otherwise vanish unseen.
            raise TypeError(
                f"{type(self).__name__}.{name}() returned {result!r}: "
                "write the response with self.write() and return None"
            )
        if not self._finished:
            await self.finish()

    async def _load_user_early(self, plan: HandlerPlan) -> None:
        # An async get_current_user() is awaited before prepare(), so that
        # current_user is plain data from then on. Whether it is async is
        # decided once per class (inspect costs more than the request's
        # other hooks together).
        if self._current_user is not auth.UNKNOWN_USER:
            return
        kind = plan.get_current_user
        if kind == INHERITED:
            return  # the default returns None, synchronously
        if kind == COROUTINE or auth.loads_user_async(self.get_current_user):
            self._current_user = await self.get_current_user()

    async def _prepare(self, plan: HandlerPlan) -> None:
        kind = plan.prepare
        if kind == COROUTINE:
            await self.prepare()  # type: ignore[misc]
        elif kind == OTHER:
            await _maybe_await(self.prepare())

    async def _execute(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        """Run the request: the handler's whole life (called by Application)."""
        exchange = self._exchange
        try:
            if (
                self.cancel_on_disconnect
                # HEAD: a streaming handler is cancelled once the head is
                # sent, and its connection is kept: it needs a scope of its
                # own (the exchange fires the disconnect callbacks then).
                and self.request.method != "HEAD"
                and exchange.cancel_connection_on_disconnect()
            ):
                # The cheap way: a disconnect cancels the connection's own
                # scope, which this runs in (one scope per connection, none
                # per request). The cancellation goes on up and ends the
                # connection; the hooks below still run (under a shield,
                # with their own deadlines).
                try:
                    await self._run_guarded(path_args, path_kwargs)
                finally:
                    # The run is over: a client leaving during the hooks
                    # must not cancel them (an aborted response is never
                    # complete, so a disconnect would still count).
                    exchange.stop_cancelling_connection()
            else:
                with trio.CancelScope() as scope:
                    if self.cancel_on_disconnect:
                        exchange.on_disconnect(scope.cancel)
                    await self._run_guarded(path_args, path_kwargs)
        finally:
            if exchange.connection_cancelled:
                # Shielded only then, each hook under its own deadline. The
                # server's stop (a graceful shutdown's end, a forced stop)
                # cancels the shield too.
                with trio.CancelScope(shield=True) as shield:
                    exchange.on_stop(shield.cancel)
                    await self._after_run()
            else:
                await self._after_run()

    async def _after_run(self) -> None:
        """What follows the handler's run, however it ended."""
        exchange = self._exchange
        try:
            if exchange.disconnected and not exchange.finished:
                await self._run_hook(self.on_connection_close)
        finally:
            try:
                # The inherited no-op is not worth its deadline's scope.
                if plan_for(self, RequestHandler).on_finish:
                    await self._run_hook(self.on_finish)
            finally:
                # Uploaded files' temporary files go with the request,
                # however it ended.
                self.request.close_files()

    async def _run_guarded(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        """The handler's run within its budget and deadline; its errors
        answered (an error page), cancellation let through."""
        try:
            await run_handler(
                self, self._exchange, lambda: self._run(path_args, path_kwargs)
            )
        except Exception as exc:
            await self._handle_request_exception(exc)
        except BaseExceptionGroup as group:
            # A group mixing errors with cancellation (or Ctrl-C): the errors
            # are answered here; Cancelled goes on up to its scope,
            # KeyboardInterrupt to the server.
            errors, others = group.split(Exception)
            if errors is not None:
                await self._handle_request_exception(errors)
            if others is not None:
                raise others from None

    async def _run_hook(self, hook: Callable[[], object]) -> None:
        # Each gets its own deadline, so that a slow one cannot hold the
        # connection (later pipelined requests) or the server's shutdown.
        await run_hook(
            hook,
            seconds=float(self.settings.get("cleanup_timeout", 10.0)),
            what=f"{type(self).__name__}.{hook.__name__}()",
            log=app_log,
            setting="cleanup_timeout",
        )
