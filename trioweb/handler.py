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
import hashlib
import inspect
import json
import logging
import math
import re
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from . import _files, auth, compression, sse, templates
from ._concurrency import run_hook
from .body import check_declared_length
from .cookies import format_set_cookie
from .dates import format_timestamp
from .errors import Finish, HTTPError, MissingArgumentError, StreamClosedError
from .httputil import (
    HTTPHeaders,
    is_valid_header_name,
    is_valid_header_value,
    qs_to_qsl,
    reason_phrase,
    url_concat,
)
from .overload import Overloaded, check_handler_class, run_handler
from .security import (
    SafeHTML,
    create_signed_value,
    decode_signed_value,
    get_signature_key_version,
    is_offsite_redirect,
    xsrf_form_html,
)

if TYPE_CHECKING:
    from .app import Application
    from .http1 import Exchange
    from .request import HTTPServerRequest

__all__ = ["ErrorHandler", "RedirectHandler", "RequestHandler"]

app_log = logging.getLogger("trioweb.error")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_ARG_DEFAULT: Any = object()
# Tornado replaces these control characters in arguments with spaces: they
# have no business in form values and confuse logs and terminals.
_REMOVE_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
# Control characters would split the status line, which is latin-1 on the
# wire: a reason with them is a bug to report. "<" is merely suspicious (it
# would be markup in the error page) and becomes "Unknown", as in Tornado.
_UNSENDABLE_REASON = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_ODD_REASON = re.compile(r"[<\t]")
# current_user before get_current_user() was called.
_UNKNOWN_USER: Any = object()
_SERVER_HEADER = "trioweb/0.1"


# A Location header is latin-1 on the wire and read as UTF-8 by browsers:
# percent-encoding is the one form both agree on.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _percent_encode(match: re.Match[str]) -> str:
    return urllib.parse.quote(match.group(), safe="")


def _checked_header_name(name: str) -> str:
    if not is_valid_header_name(name):
        raise ValueError(
            f"invalid header name {name!r}: a name is letters, digits and "
            "!#$%&'*+-.^_`|~ only (no spaces, colons or control characters)"
        )
    return name


def _unsupported(*args: Any, **kwargs: Any) -> NoReturn:
    raise HTTPError(405)


async def _maybe_await(value: Any) -> Any:
    # Lets prepare(), the HTTP methods, on_finish() and write_error() be
    # plain functions or coroutines, as users prefer.
    if inspect.isawaitable(value):
        return await value
    return value


class RequestHandler:
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

    # -- deadlines and overload (trioweb.overload) ----------------------------

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
        self._finished = False
        self._prepared = False
        self._new_cookie: dict[str, str] = {}
        self._current_user: Any = _UNKNOWN_USER
        self._xsrf: auth.XSRF | None = None
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
        self._headers = HTTPHeaders(
            {"Server": _SERVER_HEADER, "Content-Type": "text/html; charset=UTF-8"}
        )
        for name, value in auth.security_header_fields(
            self.security_headers, self.settings, self.request.protocol == "https"
        ):
            self._headers[name] = value
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
        return [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in self._headers.get_all()
        ]

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
            if (
                status == 200
                and self.request.method in ("GET", "HEAD")
                and "ETag" not in self._headers
            ):
                self.set_etag_header()
                if self.check_etag_header():
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
                    # The client may hold the compressed variant's tag.
                    self._headers["ETag"] = (
                        compression.matching_etag(
                            self.request.headers["If-None-Match"], self._headers["ETag"]
                        )
                        or self._headers["ETag"]
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
                if "Content-Length" not in self._headers and not streamed:
                    self._headers["Content-Length"] = str(len(body))
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
        self.set_header("Location", _NON_ASCII.sub(_percent_encode, url))
        self.set_status(status)
        await self.finish()

    # -- ETags ----------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The ETag for the buffered body; return None to send no ETag."""
        hasher = hashlib.sha1()
        for part in self._write_buffer:
            hasher.update(part)
        return f'"{hasher.hexdigest()}"'

    def set_etag_header(self) -> None:
        """Set ``ETag`` from :meth:`compute_etag` (unless it returns None)."""
        etag = self.compute_etag()
        if etag is not None:
            self.set_header("ETag", etag)

    def check_etag_header(self) -> bool:
        """Whether the request's ``If-None-Match`` matches our ``ETag``."""
        etag = self._headers.get("ETag")
        if_none_match = self.request.headers.get("If-None-Match")
        if not etag or not if_none_match:
            return False
        # A client may revalidate with the tag of the compressed variant.
        return compression.etag_matches_encoded(if_none_match, etag)

    # -- static files, templates, compression, server-sent events ------------
    # Thin doors: the logic lives in _files.py/static.py, templates.py,
    # compression.py and sse.py.

    def static_url(self, path: str, include_version: bool = True) -> str:
        """The URL of static file ``path`` (``static_path`` setting).

        ``/static/css/site.css?v=<content hash>``: the hash is computed once
        per version of the file, and a versioned URL is served with
        ``Cache-Control: max-age=31536000, immutable``.
        """
        return _files.static_url(self.settings, path, include_version)

    def reverse_url(self, name: str, *args: Any) -> str:
        """``self.application.reverse_url(name, *args)``."""
        return self.application.reverse_url(name, *args)

    def get_template_namespace(self) -> dict[str, Any]:
        """The names every template sees (override it to add your own).

        ``handler``, ``request``, ``settings``, ``current_user``,
        ``static_url``, ``reverse_url``, and ``xsrf_form_html`` /
        ``xsrf_token`` when the handler has them.
        """
        return templates.namespace_for(self)

    def render_string(self, template_name: str, **kwargs: Any) -> str:
        """Render template ``template_name`` with ``kwargs`` and return it."""
        return templates.render(self, template_name, None, kwargs)

    async def render(self, template_name: str, **kwargs: Any) -> None:
        """Render template ``template_name`` and finish the response with it.

        A ``write()`` after it raises :exc:`RuntimeError`: the response is
        complete. A template error is a 500 (with the template name and line
        in the traceback when ``debug`` is on).
        """
        html = self.render_string(template_name, **kwargs)
        await self.finish(html)

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

    # -- errors ---------------------------------------------------------------

    async def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Send an error page (via :meth:`write_error`) and finish.

        If the headers were already sent, the error page cannot be; the
        response is ended as it is and the error logged.
        """
        if self._headers_written:
            app_log.error("cannot send error response after headers written")
            if not self._finished:
                try:
                    await self.finish()
                except Exception:
                    app_log.error("failed to flush partial response", exc_info=True)
            return
        self.clear()
        if self._current_user is _UNKNOWN_USER and auth.loads_user_async(
            self.get_current_user
        ):
            # The request failed before the user was loaded: the error page
            # is rendered for nobody rather than failing in turn.
            self._current_user = None
        reason = kwargs.get("reason")
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            exception = exc_info[1]
            if isinstance(exception, HTTPError) and exception.reason:
                reason = exception.reason
        try:
            self.set_status(status_code, reason=reason)
        except ValueError:
            # Too late to fail differently: keep the status, drop the reason.
            app_log.error("unsafe reason for error %d", status_code, exc_info=True)
            self.set_status(status_code, reason="Unknown")
        if status_code == 405:
            # RFC 9110 15.5.6: a 405 must say which methods would work.
            self.set_header("Allow", ", ".join(self._allowed_methods()))
        if exc_info is not None and isinstance(exc_info[1], Overloaded):
            # RFC 9110 10.2.3: when the client may try again.
            self.set_header("Retry-After", str(exc_info[1].retry_after))
        try:
            await _maybe_await(self.write_error(status_code, **kwargs))
        except StreamClosedError:
            raise
        except Exception:
            app_log.error("uncaught exception in write_error", exc_info=True)
        if status_code in (204, 304) or status_code < 200:
            # HTTPError(304) is a way to answer "not modified": the page
            # write_error wrote cannot go with it.
            self._write_buffer = []
        if not self._finished:
            await self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> Awaitable[None] | None:
        """Write the error page (override it; may be sync or async).

        ``kwargs["exc_info"]`` is the exception's ``(type, value, traceback)``
        when an exception caused the error. The default writes a small HTML
        page, or the traceback as text when the ``serve_traceback`` (or
        ``debug``) setting is on. An override may write() and return, or
        ``await self.finish(...)`` itself.
        """
        exc_info = kwargs.get("exc_info")
        if self.settings.get("serve_traceback") and exc_info:
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            for line in traceback.format_exception(*exc_info):
                self.write(line)
        else:
            self.write(
                f"<html><title>{status_code}: {self._reason}</title>"
                f"<body>{status_code}: {self._reason}</body></html>"
            )
        return None

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Log an exception that ended the request (override to customise).

        An :exc:`HTTPError` is logged as one WARNING line when it has a
        ``log_message`` and not at all otherwise; anything else as an ERROR
        with its traceback.
        """
        if isinstance(value, HTTPError):
            if value.log_message:
                message = (
                    value.log_message % value.args
                    if value.args
                    else (value.log_message)
                )
                app_log.warning(
                    "%d %s: %s", value.status_code, self._request_summary(), message
                )
        else:
            app_log.error(
                "Uncaught exception %s\n%r",
                self._request_summary(),
                self.request,
                exc_info=(typ, value, tb) if typ is not None else None,  # type: ignore[arg-type]
            )

    def _request_summary(self) -> str:
        request = self.request
        return f"{request.method} {request.uri} ({request.remote_ip or '-'})"

    async def _handle_request_exception(self, exc: BaseException) -> None:
        # An exception group out of the handler's own nursery that holds one
        # exception is that exception, as far as the client is concerned.
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if isinstance(exc, Finish):
            if self._finished:
                return
            try:
                await self.finish(*exc.args)
                return
            except StreamClosedError:
                return
            except Exception as error:
                # finish() refused what Finish carried (a body with a 204,
                # say): a handler bug like any other.
                exc = error
        if isinstance(exc, StreamClosedError):
            # The client left; nobody to answer and nothing to log.
            return
        exc_info: ExcInfo = (type(exc), exc, exc.__traceback__)
        self.log_exception(*exc_info)
        if self._exchange.finished:
            return
        if not self._headers_written:
            status = exc.status_code if isinstance(exc, HTTPError) else 500
            # If the client left meanwhile, there is nobody to show it to.
            with contextlib.suppress(StreamClosedError):
                await self.send_error(status, exc_info=exc_info)
            return
        # Too late for an error page, and ending the body normally would
        # make a truncated response look complete (a cache would keep it):
        # the connection is closed mid-body instead, the access log says 444.
        self._finished = True
        self._exchange.abort()

    # -- input ----------------------------------------------------------------

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Decode an argument or path segment from bytes (override it).

        The default decodes UTF-8 and answers 400 for invalid input.
        """
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(
                400, "Invalid unicode in %s: %r", name or "url", value[:40]
            ) from None

    def get_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """The last value of argument ``name`` from the query or a form body.

        Without a ``default``, a missing argument is a 400
        (:exc:`MissingArgumentError`).
        """
        return self._get_argument(name, default, self.request.arguments, strip)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Every value of argument ``name`` (an empty list if none)."""
        return self._get_arguments(name, self.request.arguments, strip)

    def get_query_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """Like :meth:`get_argument`, from the query string only."""
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Like :meth:`get_arguments`, from the query string only."""
        return self._get_arguments(name, self.request.query_arguments, strip)

    def get_body_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """Like :meth:`get_argument`, from a form-encoded body only."""
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Like :meth:`get_arguments`, from a form-encoded body only."""
        return self._get_arguments(name, self.request.body_arguments, strip)

    def _get_argument(
        self, name: str, default: Any, source: dict[str, list[bytes]], strip: bool
    ) -> Any:
        values = self._get_arguments(name, source, strip)
        if not values:
            if default is _ARG_DEFAULT:
                raise MissingArgumentError(name)
            return default
        return values[-1]

    def _get_arguments(
        self, name: str, source: dict[str, list[bytes]], strip: bool
    ) -> list[str]:
        values = []
        for raw in source.get(name, ()):
            text = self.decode_argument(raw, name=name)
            # An override may return bytes (as Tornado allows): those are
            # left as they are, bar the strip.
            if isinstance(text, str):
                text = _REMOVE_CONTROL_CHARS.sub(" ", text)
            values.append(text.strip() if strip else text)
        return values

    # -- cookies --------------------------------------------------------------

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """The value of the request cookie ``name``, or ``default``."""
        morsel = self.request.cookies.get(name)
        return morsel.value if morsel is not None else default

    def set_cookie(
        self,
        name: str,
        value: str | bytes,
        domain: str | None = None,
        expires: float | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
    ) -> None:
        """Set a cookie on the response (sent with the headers).

        ``expires_days`` is a shortcut for ``expires`` that many days from
        now. Invalid names, values or attributes raise :exc:`ValueError`.
        A cookie set once the headers were sent (by ``flush()`` or
        ``finish()``) could no longer reach the client: that raises
        :exc:`RuntimeError`.
        """
        if self._headers_written:
            raise RuntimeError(
                f"cannot set cookie {name!r}: the headers were already sent "
                "(set cookies before the first flush() or finish())"
            )
        if isinstance(value, bytes):
            # UTF-8, as Tornado decodes it: get_cookie() then gives the text
            # back (a latin-1 decode would turn b"caf\xc3\xa9" into "cafÃ©").
            value = value.decode("utf-8")
        if expires_days is not None and expires is None:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                days=expires_days
            )
        self._new_cookie[name] = format_set_cookie(
            name,
            value,
            domain=domain,
            expires=expires,
            path=path,
            max_age=max_age,
            httponly=httponly,
            secure=secure,
            samesite=samesite,
        )

    def clear_cookie(
        self, name: str, path: str = "/", domain: str | None = None, **kwargs: Any
    ) -> None:
        """Delete cookie ``name`` in the browser (expired, Max-Age=0).

        Pass the same ``path`` and ``domain`` it was set with.
        """
        for forbidden in ("expires", "max_age", "expires_days"):
            if forbidden in kwargs:
                raise TypeError(
                    f"clear_cookie() got an unexpected argument {forbidden!r}"
                )
        expires = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365)
        self.set_cookie(
            name, "", domain=domain, path=path, expires=expires, max_age=0, **kwargs
        )

    # -- security: signed cookies, XSRF, logins (trioweb.auth, .security) ------

    def create_signed_value(
        self, name: str, value: str | bytes, version: int | None = None
    ) -> bytes:
        """Sign ``value`` with the ``cookie_secret`` setting (for ``name``).

        What :meth:`set_signed_cookie` sends; use it to sign values that
        travel another way. Without ``cookie_secret`` it raises
        :exc:`RuntimeError` naming the setting to add.
        """
        secret, key_version = auth.signing_key(self.settings)
        return create_signed_value(
            secret, name, value, version=version or 2, key_version=key_version
        )

    def set_signed_cookie(
        self,
        name: str,
        value: str | bytes,
        expires_days: float | None = 30,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Set a cookie the client can read but not forge (Tornado's format).

        Signed with the ``cookie_secret`` setting (the ``key_version``
        key of a dict); ``kwargs`` are :meth:`set_cookie`'s. Read it back
        with :meth:`get_signed_cookie`. Signed is not encrypted: do not
        store secrets in it.
        """
        self.set_cookie(
            name,
            self.create_signed_value(name, value, version),
            expires_days=expires_days,
            **kwargs,
        )

    def get_signed_cookie(
        self,
        name: str,
        value: str | None = None,
        max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        """The value of signed cookie ``name`` as bytes, or None.

        None when the cookie is missing, forged, signed for another name, or
        older than ``max_age_days``; ``min_version=2`` refuses version 1
        cookies. ``value`` checks that text instead of the request's cookie.
        """
        secret, _ = auth.signing_key(self.settings)
        if value is None:
            value = self.get_cookie(name)
        return decode_signed_value(secret, name, value, max_age_days, min_version)

    def get_signed_cookie_key_version(
        self, name: str, value: str | None = None
    ) -> int | None:
        """The key version signed cookie ``name`` claims (not verified)."""
        if value is None:
            value = self.get_cookie(name)
        return get_signature_key_version(value)

    # Tornado's names before 6.3.
    set_secure_cookie = set_signed_cookie
    get_secure_cookie = get_signed_cookie
    get_secure_cookie_key_version = get_signed_cookie_key_version

    @property
    def current_user(self) -> Any:
        """The logged-in user, from :meth:`get_current_user`, once per request.

        Assign to it to log a user in for the rest of the request.
        """
        if self._current_user is _UNKNOWN_USER:
            self._current_user = auth.call_sync_user_loader(self.get_current_user)
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    def get_current_user(self) -> Any:
        """Return the logged-in user, or None (override it; may be async).

        A plain method is called the first time ``self.current_user`` is
        read. An ``async def`` one is awaited before ``prepare()``, so it
        can query a database.
        """
        return None

    def get_login_url(self) -> str:
        """Where ``@authenticated`` sends visitors: the ``login_url`` setting."""
        login_url = self.settings.get("login_url")
        if not login_url:
            raise RuntimeError(
                "@authenticated needs the login_url application setting "
                "(Application(..., login_url='/login')) or a get_login_url() "
                "override"
            )
        return str(login_url)

    def _xsrf_state(self) -> auth.XSRF:
        if self._xsrf is None:
            name = self.settings.get("xsrf_cookie_name", "_xsrf")
            self._xsrf = auth.XSRF(self.settings, self.get_cookie(name))
        return self._xsrf

    @property
    def xsrf_token(self) -> bytes:
        """This response's XSRF token; sets the XSRF cookie if needed.

        Masked anew for each response (against BREACH), it validates against
        the cookie as long as the cookie lives. Put it in forms with
        :meth:`xsrf_form_html`, or send it as an ``X-Xsrftoken`` header.
        """
        xsrf = self._xsrf_state()
        user = self._current_user
        if user is _UNKNOWN_USER:
            # An async loader not awaited yet (an error page): nobody.
            async_loader = auth.loads_user_async(self.get_current_user)
            user = None if async_loader else self.current_user
        token, cookie_kwargs = xsrf.mint(self.settings, logged_in=bool(user))
        if cookie_kwargs is not None:
            self.set_cookie(xsrf.cookie_name, token, **cookie_kwargs)
        return token

    def xsrf_form_html(self) -> SafeHTML:
        """``<input type="hidden" name="_xsrf" value="...">`` for a form.

        A ``str`` with ``__html__``: Jinja2 inserts it without escaping.
        """
        return xsrf_form_html(self.xsrf_token)

    def check_xsrf_cookie(self) -> None:
        """403 unless the request's XSRF token matches its XSRF cookie.

        Run automatically before ``prepare()`` for unsafe methods when the
        ``xsrf_cookies`` setting is on. The token is read from the ``_xsrf``
        argument or the ``X-Xsrftoken`` / ``X-Csrftoken`` header.
        """
        submitted = auth.submitted_xsrf_token(
            self.request, self.get_argument("_xsrf", None)
        )
        self._xsrf_state().check(submitted, self.request.method)

    def check_trusted_origin(self, origin: str) -> bool:
        """Whether a cross-origin request from ``origin`` is allowed.

        Called by cross-origin protection for unsafe requests that come
        from another origin. The default: ``origin`` is in the
        ``trusted_origins`` setting. Return True to accept any origin (only
        for endpoints that do not rely on cookies).
        """
        return origin in self.settings.get("trusted_origins", ())

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

    # -- the request body (trioweb/body.py) ----------------------------------

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Receive a chunk of a streamed body (Tornado style; may be async).

        Called, for a class decorated with :func:`trioweb.stream_request_body`
        that overrides it, with each chunk after ``prepare()`` and before
        the method. A streaming class that does not override it reads
        ``async for chunk in self.request.stream():`` instead.
        """
        raise NotImplementedError(
            f"{type(self).__name__} streams its body but neither overrides "
            "data_received() nor reads self.request.stream()"
        )

    async def _read_body(self) -> None:
        if self._exchange.has_body:
            self.request.body = await self.request.stream().read()

    async def _stream_body(self) -> None:
        # After prepare(), which may have changed request.max_body_size: a
        # declared length over it is a 413 before any byte (or 100 Continue).
        check_declared_length(self._exchange)
        if type(self).data_received is RequestHandler.data_received:
            return
        async for chunk in self.request.stream():
            await _maybe_await(self.data_received(chunk))

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
        self.path_args = [
            self.decode_argument(arg) if arg is not None else None for arg in path_args
        ]
        self.path_kwargs = {
            key: self.decode_argument(arg, name=key) if arg is not None else None
            for key, arg in path_kwargs.items()
        }
        if self.max_body_size is not None:
            self._exchange.max_body_size = self.max_body_size
        # Refused from the headers alone: the body is never waited for.
        error = auth.cross_origin_error(
            self.request, self.settings, self.check_trusted_origin
        )
        if error is not None:
            raise HTTPError(403, "%s", error)
        if not self._implements(name):
            # As in Tornado, prepare() runs first: a catch-all handler that
            # only has prepare() (to 404 or redirect) answers with it. The
            # body of a request nobody serves is never read.
            if self._current_user is _UNKNOWN_USER and auth.loads_user_async(
                self.get_current_user
            ):
                self._current_user = await self.get_current_user()
            await _maybe_await(self.prepare())
            self._prepared = True
            if not self._finished:
                raise HTTPError(405)
            return
        func = getattr(self, name)
        streaming = self.stream_request_body
        if not streaming:
            await self._read_body()
        if self.settings.get("xsrf_cookies") and method not in auth.SAFE_METHODS:
            # A streamed body is not read yet: its token must come in a
            # header or the query string, as with Tornado.
            self.check_xsrf_cookie()
        if self._current_user is _UNKNOWN_USER and auth.loads_user_async(
            self.get_current_user
        ):
            self._current_user = await self.get_current_user()
        await _maybe_await(self.prepare())
        self._prepared = True
        if self._finished:
            return
        if streaming:
            await self._stream_body()
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

    async def _execute(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        """Run the request: the handler's whole life (called by Application)."""
        exchange = self._exchange
        try:
            with trio.CancelScope() as scope:
                if self.cancel_on_disconnect:
                    exchange.on_disconnect(scope.cancel)
                try:
                    await run_handler(
                        self, exchange, lambda: self._run(path_args, path_kwargs)
                    )
                except Exception as exc:
                    await self._handle_request_exception(exc)
                except BaseExceptionGroup as group:
                    # A group mixing errors with cancellation (or Ctrl-C):
                    # the errors are answered here; Cancelled goes on up to
                    # its scope, KeyboardInterrupt to the server.
                    errors, others = group.split(Exception)
                    if errors is not None:
                        await self._handle_request_exception(errors)
                    if others is not None:
                        raise others from None
            if exchange.disconnected and not exchange.finished:
                await self._run_hook(self.on_connection_close)
        finally:
            try:
                await self._run_hook(self.on_finish)
            finally:
                # Uploaded files' temporary files go with the request,
                # however it ended.
                self.request.close_files()

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


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (the default 404 handler)."""

    def initialize(self, status_code: int = 404, **kwargs: Any) -> None:
        self._error_status = status_code

    async def _run(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        # Answer before anything reads the body: a request we refuse never
        # waits for (or is sent 100 Continue for) its body.
        raise HTTPError(self._error_status)


class RedirectHandler(RequestHandler):
    """Redirects every GET to ``url`` (``{0}``-style path-argument templates).

    ``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})``. A target that
    cannot be a ``Location`` (a path argument decoded to CR or LF, say), or
    that a path argument made offsite (``/old//evil.example`` with
    ``"/{0}"``), is the client's doing: a 400, logged as one WARNING line.
    """

    def initialize(self, url: str = "/", permanent: bool = True, **kwargs: Any) -> None:
        self._url = url
        self._permanent = permanent

    async def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        if self.request.query_arguments:
            to_url = url_concat(to_url, list(qs_to_qsl(self.request.query_arguments)))
        # As redirect() will encode it: only what is left unsendable is bad.
        if not is_valid_header_value(_NON_ASCII.sub(_percent_encode, to_url)):
            raise HTTPError(400, "cannot redirect to %r", to_url[:200])
        # A path argument that turns "/{0}" into "//evil.example" is the
        # client's doing too; a template that is offsite by itself is the
        # application's, and redirect() says so.
        if is_offsite_redirect(to_url) and not is_offsite_redirect(self._url):
            raise HTTPError(400, "refusing offsite redirect to %r", to_url[:200])
        await self.redirect(to_url, permanent=self._permanent)
