"""The exceptions trioweb raises and the ones handlers raise to end a request.

This module sits at the bottom of the package: the connection engine, the web
layer and user code all import from here, and it imports nothing of trioweb.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApplicationTaskError",
    "Finish",
    "HTTPError",
    "HTTPInputError",
    "MissingArgumentError",
    "StartupError",
    "StreamClosedError",
]


class StreamClosedError(Exception):
    """The peer is gone: the bytes you asked to send were not sent.

    Raised by :meth:`RequestHandler.flush`, :meth:`RequestHandler.finish` and
    the exchange's send methods when the client closed or reset the
    connection, or when a send did not complete within the server's write
    timeout (the connection is aborted then). It is the one error type for
    :class:`trio.BrokenResourceError`, :class:`trio.ClosedResourceError` and
    ``ConnectionResetError`` from the stream underneath.

    A client leaving is normal, not a server fault: trioweb never logs this as
    an error. Catch it when you need to know that a response did not arrive
    (for example to roll back a "message delivered" mark); otherwise let it
    propagate and the request ends quietly with status 499 in the access log.
    """

    def __init__(self, message: str = "the peer closed the connection") -> None:
        super().__init__(message)


class HTTPError(Exception):
    """Raise this to end a request with an HTTP error response.

    ``raise HTTPError(404)`` anywhere in a handler (``prepare()``, the method,
    a helper it awaits) stops the handler and sends the error page produced
    by :meth:`RequestHandler.write_error`.

    Args:
      status_code: The HTTP status to answer with.
      log_message: A message for the server log (not shown to the client).
        When given, the error is logged once at WARNING level, without a
        traceback. It is ``%``-formatted with ``args``, as Tornado does, so a
        literal ``%`` must be doubled when args are given.
      *args: Arguments for ``log_message``.
      reason: The reason phrase to send instead of the standard one (for
        status codes that have none).

    """

    def __init__(
        self,
        status_code: int = 500,
        log_message: str | None = None,
        *args: Any,
        reason: str | None = None,
    ) -> None:
        super().__init__(status_code, log_message, *args)
        self.status_code = status_code
        self.log_message = log_message
        # Tornado keeps the format arguments in ``args``; code that inspects
        # them (tests, error pages) expects that, so we do the same.
        self.args = args
        self.reason = reason

    def __str__(self) -> str:
        # Imported here so this module stays free of intra-package imports at
        # import time (httputil is pure, but errors must load first).
        from .httputil import reason_phrase

        message = f"HTTP {self.status_code}: " + (
            self.reason or reason_phrase(self.status_code)
        )
        if self.log_message:
            text = self.log_message % self.args if self.args else self.log_message
            return f"{message} ({text})"
        return message

    __repr__ = __str__


class HTTPInputError(HTTPError):
    """The request itself is malformed (bad framing, body too large, a timeout
    while reading it).

    The connection engine raises it from the body reader with the status the
    client should get (400, 408, 413). The connection is closed after the
    error response, because the rest of the stream can no longer be trusted.
    """


class MissingArgumentError(HTTPError):
    """A required argument was not in the request: a 400 Bad Request.

    Raised by :meth:`RequestHandler.get_argument` and friends when no default
    was given.
    """

    def __init__(self, arg_name: str) -> None:
        super().__init__(400, "Missing argument %s", arg_name)
        self.arg_name = arg_name


class Finish(Exception):
    """Raise this to end the request successfully, without an error page.

    ``raise Finish()`` finishes the response with what has been written so
    far; ``raise Finish("done")`` writes one more chunk first. Unlike
    :exc:`HTTPError`, the status and headers set so far are kept, which makes
    it the way to stop early with a custom status::

        if not authorized:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="x"')
            raise Finish()
    """


class StartupError(Exception):
    """The application could not start: its ``lifespan`` set-up or one of its
    ``on_startup`` hooks raised.

    The message is one line naming the function and its exception, like
    ``startup hook myapp.open_db failed: ConnectionRefusedError: [Errno
    111] Connection refused``; the exception itself is ``__cause__`` (and
    :attr:`error`). ``trioweb serve`` prints it as one error line (the
    traceback with ``--log-level debug``) and exits with status 1; with
    ``--workers`` the supervisor stops rather than restart a worker that
    cannot start.
    """

    def __init__(self, what: str, name: str, error: BaseException) -> None:
        detail = str(error).splitlines()[0] if str(error) else ""
        super().__init__(
            f"{what} {name} failed: {type(error).__name__}"
            + (f": {detail}" if detail else "")
        )
        #: "startup hook" or "lifespan".
        self.what = what
        #: The failing function's dotted name.
        self.name = name
        #: What it raised.
        self.error = error


class ApplicationTaskError(Exception):
    """A background task of the running application (one started in
    :attr:`Application.nursery <trioweb.Application.nursery>`) raised.

    Under the server that is not a crash: the failure is logged once on
    ``trioweb.error`` with its traceback, the server shuts down gracefully
    (requests in flight get the graceful period, then the application's
    tear-down runs), and :func:`~trioweb.serve` raises this at the end.
    ``trioweb serve`` exits with status 1; with ``--workers`` the supervisor
    stops the server rather than restart the worker. The task's exception is
    ``__cause__`` (and :attr:`error`).
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"application task failed: {describe_error(error)}")
        #: What the task raised (an exception group if several failed).
        self.error = error


def describe_error(error: BaseException) -> str:
    """``Type: message`` (its first line) for ``error``, or for the one
    exception inside an exception group of one (nested groups included)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    detail = str(error).splitlines()[0] if str(error) else ""
    return type(error).__name__ + (f": {detail}" if detail else "")
