"""Logging set-up for the command line and :func:`trioweb.run`.

trioweb logs on two loggers: ``trioweb.access`` (one INFO line per request)
and ``trioweb.error`` (tracebacks of handler bugs, warnings, shutdown
messages). A library never configures logging behind its user's back, so
:func:`trioweb.serve` leaves it alone; the ``trioweb serve`` command and
:func:`trioweb.run` call :func:`configure_logging` to send both to stderr.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def configure_logging(level: int | str = "info", *, access_log: bool = True) -> None:
    """Send trioweb's logs to stderr at ``level`` (idempotent).

    The access log is written at INFO whatever ``level`` says, unless
    ``access_log`` is false: turning the error log down to WARNING should not
    silence the request log, and ``--no-access-log`` is the switch for that.
    """
    if isinstance(level, str):
        name = level
        level = logging.getLevelNamesMapping().get(name.upper(), -1)
        if level < 0:
            raise ValueError(
                f"unknown log level {name!r}: use debug, info, warning or error"
            )
    root = logging.getLogger("trioweb")
    if not any(getattr(h, "_trioweb", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
        handler._trioweb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)
    handler_level = min(level, logging.INFO) if access_log else level
    for h in root.handlers:
        h.setLevel(handler_level)
    access = logging.getLogger("trioweb.access")
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    logging.getLogger("trioweb.error").setLevel(level)
