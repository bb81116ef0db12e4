"""RequestHandler's error pages: how an exception becomes a response.

:class:`~trioweb.RequestHandler` inherits these methods (Tornado's names)
from :class:`HandlerErrors`. What happens to an exception that leaves a
handler:

1. :exc:`~trioweb.Finish` finishes the response with what it carries;
   :exc:`~trioweb.StreamClosedError` (the client left) ends the request
   quietly: there is nobody to answer.
2. Anything else is logged by :meth:`~HandlerErrors.log_exception` (one
   WARNING line for an :exc:`~trioweb.HTTPError` with a ``log_message``, an
   ERROR with the traceback for a bug).
3. If the headers are not sent yet, :meth:`~HandlerErrors.send_error` sends
   an error page written by :meth:`~HandlerErrors.write_error` (which a
   subclass overrides for its own pages). If they are, the connection is
   closed mid-body, so that the truncated response cannot pass for a whole
   one.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import traceback
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import auth
from ._concurrency import maybe_await
from .errors import Finish, HTTPError, StreamClosedError
from .overload import Overloaded

if TYPE_CHECKING:
    from .request import HTTPServerRequest
    from .server.exchange import Exchange

__all__ = ["HandlerErrors"]

app_log = logging.getLogger("trioweb.error")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class HandlerErrors:
    """The error-page methods of :class:`~trioweb.RequestHandler`."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest
        _exchange: Exchange
        _finished: bool
        _reason: str
        _write_buffer: list[bytes]
        _current_user: Any

        @property
        def settings(self) -> dict[str, Any]: ...

        @property
        def _headers_written(self) -> bool: ...

        def clear(self) -> None: ...

        def set_status(self, status_code: int, reason: str | None = None) -> None: ...

        def set_header(
            self, name: str, value: str | bytes | int | datetime.datetime
        ) -> None: ...

        def write(self, chunk: str | bytes | dict[str, Any]) -> None: ...

        async def finish(
            self, chunk: str | bytes | dict[str, Any] | None = None
        ) -> None: ...

        def get_current_user(self) -> Any: ...

        def _allowed_methods(self) -> list[str]: ...

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
        if self._current_user is auth.UNKNOWN_USER and auth.loads_user_async(
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
            await maybe_await(self.write_error(status_code, **kwargs))
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
