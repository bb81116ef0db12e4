"""RequestHandler: the class you subclass, one instance per request.

The API is Tornado's ``tornado.web.RequestHandler``; the engine underneath is
structured concurrency. A request runs like this::

    initialize(**kwargs)            # from the URL rule
    405 if the method is not in SUPPORTED_METHODS
    the body is read (bounded by max_body_size) -- only if the method is
                                    # implemented
    prepare()                       # sync or async; may finish()
    405 if the method is not implemented (with an Allow header)
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
import re
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from .errors import Finish, HTTPError, MissingArgumentError, StreamClosedError
from .httputil import (
    HTTPHeaders,
    etag_matches,
    format_set_cookie,
    format_timestamp,
    is_valid_header_value,
    parse_body_arguments,
    qs_to_qsl,
    reason_phrase,
    url_concat,
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
# Control characters could split the status line, "<" would inject markup
# into the error page, and the line is latin-1 on the wire.
_BAD_REASON = re.compile(r"[\x00-\x1f\x7f<]|[^\x00-\xff]")
_SERVER_HEADER = "trioweb/0.1"


# A Location header is latin-1 on the wire and read as UTF-8 by browsers:
# percent-encoding is the one form both agree on.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _percent_encode(match: re.Match[str]) -> str:
    return urllib.parse.quote(match.group(), safe="")


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
        before the body is read.
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
        self._headers_written = False
        self._finished = False
        self._prepared = False
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
        Use it for clean-up and metrics, not for output.
        """
        return None

    def on_connection_close(self) -> Awaitable[None] | None:
        """Called when the client left before the response was complete.

        By then the handler's cancellation has unwound (its ``finally``
        blocks ran). Called before :meth:`on_finish`.
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

    def reverse_url(self, name: str, *args: Any) -> str:
        """``self.application.reverse_url(name, *args)``: the path of the
        URL rule named ``name``."""
        return self.application.reverse_url(name, *args)

    # -- status and headers ---------------------------------------------------

    def clear(self) -> None:
        """Reset headers, status and the unsent body to their defaults."""
        self._headers = HTTPHeaders(
            {"Server": _SERVER_HEADER, "Content-Type": "text/html; charset=UTF-8"}
        )
        self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._status_code = 200
        self._reason = "OK"

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        """Set the response status.

        ``reason`` replaces the standard phrase; one containing control
        characters or ``<`` becomes ``"Unknown"`` (it would otherwise be a
        way to inject into the status line or the error page).
        """
        self._status_code = status_code
        if reason is None:
            self._reason = reason_phrase(status_code)
        elif _BAD_REASON.search(reason):
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
        :exc:`ValueError`: it would split the header block.
        """
        self._headers[name] = self._convert_header_value(value)

    def add_header(
        self, name: str, value: str | bytes | int | datetime.datetime
    ) -> None:
        """Add a header value; unlike :meth:`set_header`, earlier ones stay."""
        self._headers.add(name, self._convert_header_value(value))

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
        """
        chunk = b"".join(self._write_buffer)
        self._write_buffer = []
        if not self._headers_written:
            await self._send_head(self._status_code, chunk, end=False)
        elif chunk:
            await self._exchange.send_body(chunk)

    async def _send_head(self, status: int, body: bytes, *, end: bool) -> None:
        try:
            await self._exchange.send_response(
                status,
                self._head_for_wire(),
                body,
                reason=self._reason.encode("latin-1"),
                end=end,
            )
        finally:
            # Written once the engine took the head, even if the peer is
            # gone. A head it refused (ValueError: an invalid status, say)
            # was not sent, so an error page can still be.
            self._headers_written = self._exchange.head_sent

    async def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> None:
        """Complete the response; return when its last byte has been sent.

        Computes ``Etag`` (and answers 304 when the client's copy matches)
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
                and "Etag" not in self._headers
            ):
                self.set_etag_header()
                if self.check_etag_header():
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
            if status in (204, 304) or 100 <= status < 200:
                if any(self._write_buffer):
                    raise RuntimeError(f"cannot send a body with status {status}")
                self._write_buffer = []
                self._clear_representation_headers()
            elif "Content-Length" not in self._headers:
                self._headers["Content-Length"] = str(
                    sum(len(part) for part in self._write_buffer)
                )
            # Finished from here on, unless the head is refused before
            # anything is sent: then the caller's error page still can be.
            self._finished = True
            try:
                await self._send_head(status, b"".join(self._write_buffer), end=True)
            except ValueError:
                self._finished = False
                raise
        else:
            self._finished = True
            await self._exchange.send_body(b"".join(self._write_buffer), end=True)
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
        self, url: str, permanent: bool = False, status: int | None = None
    ) -> None:
        """Redirect to ``url`` (302, or 301 when ``permanent``) and finish.

        ``status`` picks another 3xx code. Non-ASCII characters in ``url``
        are sent percent-encoded as UTF-8 (what browsers do with them). A URL
        containing CR or LF raises :exc:`ValueError`.
        """
        if self._headers_written:
            raise RuntimeError("cannot redirect after the headers were sent")
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
        """The Etag for the buffered body; return None to send no Etag."""
        hasher = hashlib.sha1()
        for part in self._write_buffer:
            hasher.update(part)
        return f'"{hasher.hexdigest()}"'

    def set_etag_header(self) -> None:
        """Set ``Etag`` from :meth:`compute_etag` (unless it returns None)."""
        etag = self.compute_etag()
        if etag is not None:
            self.set_header("Etag", etag)

    def check_etag_header(self) -> bool:
        """Whether the request's ``If-None-Match`` matches our ``Etag``."""
        etag = self._headers.get("Etag")
        if_none_match = self.request.headers.get("If-None-Match")
        if not etag or not if_none_match:
            return False
        return etag_matches(if_none_match, etag)

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
        reason = kwargs.get("reason")
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            exception = exc_info[1]
            if isinstance(exception, HTTPError) and exception.reason:
                reason = exception.reason
        self.set_status(status_code, reason=reason)
        if status_code == 405:
            # RFC 9110 15.5.6: a 405 must say which methods would work.
            self.set_header("Allow", ", ".join(self._allowed_methods()))
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
        # "-" for no client address, as in the access log.
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
        if self._finished:
            return
        if not self._headers_written:
            status = exc.status_code if isinstance(exc, HTTPError) else 500
            # If the client left meanwhile, there is nobody to show it to.
            with contextlib.suppress(StreamClosedError):
                await self.send_error(status, exc_info=exc_info)
            return
        # Too late for an error page: end the response as it is (the
        # exception was logged just above, once). If even that fails -- the
        # client is gone, or less body was sent than a Content-Length
        # promised -- the engine closes the connection: the honest ending.
        with contextlib.suppress(Exception):
            await self.finish()

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

    async def _read_body(self) -> None:
        exchange = self._exchange
        if not exchange.has_body:
            return
        if self.max_body_size is not None:
            exchange.max_body_size = self.max_body_size
        request = self.request
        request.body = await exchange.read_body()
        content_type = request.headers.get("Content-Type", "")
        if content_type:
            parse_body_arguments(
                content_type, request.body, request.body_arguments, request.headers
            )
            for name, values in request.body_arguments.items():
                request.arguments.setdefault(name, []).extend(values)

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
        if not self._implements(name):
            # As in Tornado, prepare() runs first: a catch-all handler that
            # only has prepare() (to 404 or redirect) answers with it. The
            # body of a request nobody serves is never read.
            await _maybe_await(self.prepare())
            self._prepared = True
            if not self._finished:
                raise HTTPError(405)
            return
        func = getattr(self, name)
        await self._read_body()
        await _maybe_await(self.prepare())
        self._prepared = True
        if self._finished:
            return
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
                    await self._run(path_args, path_kwargs)
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
                try:
                    await _maybe_await(self.on_connection_close())
                except Exception:
                    app_log.error(
                        "uncaught exception in on_connection_close()", exc_info=True
                    )
        finally:
            try:
                await _maybe_await(self.on_finish())
            except Exception:
                app_log.error("uncaught exception in on_finish()", exc_info=True)


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

    ``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})``.
    """

    def initialize(self, url: str = "/", permanent: bool = True, **kwargs: Any) -> None:
        self._url = url
        self._permanent = permanent

    async def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        if self.request.query_arguments:
            to_url = url_concat(to_url, list(qs_to_qsl(self.request.query_arguments)))
        await self.redirect(to_url, permanent=self._permanent)
