"""Logging: the set-up for the command line and :func:`trioweb.run`, and the
access log's two formats.

trioweb logs on two loggers: ``trioweb.access`` (one INFO record per
request) and ``trioweb.error`` (tracebacks of handler bugs, warnings,
shutdown messages). A library never configures logging behind its user's
back, so :func:`trioweb.serve` leaves it alone; the ``trioweb serve``
command and :func:`trioweb.run` call :func:`configure_logging`, which sends
both to stderr -- or applies a logging configuration file of yours
(``--log-config``).

The access log (``ServerConfig.access_log_format``):

* ``text`` (the default), one line a request::

    127.0.0.1:50312 [7f3a...] "GET /items?page=2 HTTP/1.1" 200 1534 2.1ms (note)

* ``json``, one JSON object a line, for a log shipper::

    {"time": "2026-01-05T10:31:07.214Z", "client": "127.0.0.1:50312",
     "method": "GET", "target": "/items?page=2", "http_version": "1.1",
     "status": 200, "bytes": 1534, "duration_ms": 2.1,
     "request_id": "7f3a...", "note": null}

  (on one line). The record's message *is* the object: with the default
  set-up the access log's handler prints the message alone, so each line
  on stderr parses as JSON; a formatter of your own gets the same string
  as ``record.getMessage()``.

The status is the one sent; 499 when the client left before the response
was complete, 444 when the server ended it (nginx's codes). ``note`` says
why a request ended as it did (``timeout``, ``shed``); a request refused
before it was parsed has method and target ``null`` (``"-"`` in text) and
the reason as its note.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.config
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server.exchange import Exchange

__all__ = [
    "JSONFormatter",
    "LogConfigError",
    "access_line",
    "configure_logging",
    "load_log_config",
    "rejection_line",
]

_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    """One JSON object a line for any record: for the error log when every
    line must parse as JSON (``--log-config``; see docs/deployment.md).

    The object has ``time`` (UTC, as the access log's), ``level``,
    ``logger``, ``message`` and, when the record carries one, ``traceback``
    (the formatted exception, newlines escaped). In a dictConfig::

        "formatters": {"json": {"()": "trioweb.logs.JSONFormatter"}}

    The access log's JSON lines are already objects: give ``trioweb.access``
    a ``"%(message)s"`` formatter rather than this one.
    """

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, object] = {
            "time": created.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{created.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=True)


class LogConfigError(ValueError):
    """A ``--log-config`` file that cannot be read or applied; the message
    is one line naming the file and the reason."""


def load_log_config(path: str) -> None:
    """Apply the logging configuration in the file at ``path``.

    By its extension: ``.json`` is a :func:`logging.config.dictConfig`
    dictionary in JSON; ``.yaml`` / ``.yml`` the same in YAML (needs
    PyYAML); anything else an INI file for :func:`logging.config.fileConfig`
    (existing loggers are left enabled). Raises :exc:`LogConfigError`.
    """
    extension = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        raise LogConfigError(
            f"--log-config {path} is a directory: give the logging "
            "configuration file (.json, .yaml or .ini)"
        )
    try:
        if extension in (".json", ".yaml", ".yml"):
            with open(path, encoding="utf-8") as file:
                if extension == ".json":
                    config = json.load(file)
                else:
                    try:
                        import yaml  # type: ignore[import-untyped]
                    except ImportError:
                        raise LogConfigError(
                            f"--log-config {path}: a YAML file needs PyYAML "
                            "(pip install pyyaml), or write it as JSON"
                        ) from None
                    config = yaml.safe_load(file)
            if not isinstance(config, dict):
                raise LogConfigError(
                    f"--log-config {path}: expected a dictConfig mapping "
                    f"(with a 'version': 1 key), got {type(config).__name__}"
                )
            logging.config.dictConfig(config)
        else:
            if not os.path.isfile(path):
                raise FileNotFoundError(2, "No such file or directory", path)
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except OSError as exc:
        raise LogConfigError(f"--log-config {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # json, yaml, configparser, dictConfig errors
        raise LogConfigError(f"--log-config {path}: {_explain(exc)}") from None


def _explain(exc: BaseException) -> str:
    """One line for a configuration error, with the causes dictConfig
    chains (``Unable to configure handler 'h'`` says nothing of *why*: the
    missing directory, the class that does not exist, is its cause)."""
    parts: list[str] = []
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = _one_line(error)
        said = text.partition(": ")[2] or text
        if not any(said in part for part in parts):
            parts.append(text)
        error = error.__cause__
    return ": ".join(parts)


def _one_line(exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        # A YAML error: its first line ("while parsing a flow node") says
        # neither what is wrong nor where; the problem and its mark do.
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{type(exc).__name__}: {problem} ({where})"
    if isinstance(exc, OSError) and exc.strerror:
        name = f": {exc.filename!r}" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{name}"
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def configure_logging(
    level: int | str | None = "info",
    *,
    access_log: bool = True,
    access_log_format: str = "text",
    log_config: str | None = None,
) -> None:
    """Send trioweb's logs to stderr at ``level`` (idempotent).

    The access log is written at INFO whatever ``level`` says, unless
    ``access_log`` is false: turning the error log down to WARNING should not
    silence the request log, and ``--no-access-log`` is the switch for that.
    With ``access_log_format="json"`` the access log's lines are its JSON
    objects alone (no time and level in front: the object has the time).

    With ``log_config``, that file is applied instead (see
    :func:`load_log_config`) and no handler of trioweb's is added; ``level``,
    unless None, still sets the level of the ``trioweb`` loggers, and a false
    ``access_log`` still silences ``trioweb.access``.
    """
    if isinstance(level, str):
        name = level
        level = logging.getLevelNamesMapping().get(name.upper(), -1)
        if level < 0:
            raise ValueError(
                f"unknown log level {name!r}: use debug, info, warning or error"
            )
    root = logging.getLogger("trioweb")
    access = logging.getLogger("trioweb.access")
    if log_config is not None:
        load_log_config(log_config)
        if level is not None:
            root.setLevel(level)
            logging.getLogger("trioweb.error").setLevel(level)
            access.setLevel(logging.INFO)
        if not access_log:
            access.setLevel(logging.CRITICAL + 1)
        return
    if level is None:
        level = logging.INFO
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
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    logging.getLogger("trioweb.error").setLevel(level)
    # JSON lines get a handler of their own that prints the message alone.
    for h in list(access.handlers):
        if getattr(h, "_trioweb", False):
            access.removeHandler(h)
    access.propagate = True
    if access_log_format == "json":
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter("%(message)s"))
        plain._trioweb = True  # type: ignore[attr-defined]
        access.addHandler(plain)
        access.propagate = False


# -- the access log's lines ---------------------------------------------------------


def _now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def peer_name(client: tuple[str, int] | None) -> str | None:
    """``client`` as the logs show it: ``host:port``, an IPv6 address in
    brackets (``[::1]:48570``), and the address alone when the port is
    unknown (0: a client a trusted proxy reported gives only its address)."""
    if client is None:
        return None
    host, port = client
    if not port:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def access_line(
    exchange: Exchange, status: int, duration_ms: float, fmt: str = "text"
) -> str:
    """The access log's line for a request answered with ``status``."""
    # exchange.client: the application may have replaced the peer with the
    # client a trusted proxy reported.
    client = exchange.client
    peer = peer_name(client)
    if fmt == "json":
        return json.dumps(
            {
                "time": _now(),
                "client": peer,
                "method": exchange.method,
                "target": exchange.target,
                "http_version": exchange.http_version,
                "status": status,
                "bytes": exchange.bytes_sent,
                "duration_ms": round(duration_ms, 1),
                "request_id": exchange.request_id,
                "note": exchange.note,
            },
            ensure_ascii=True,
        )
    # The target is as received: the parsers admit no control characters or
    # spaces in it, so it cannot break the line.
    return '{}{} "{} {} HTTP/{}" {} {} {:.1f}ms{}'.format(
        peer or "-",
        f" [{exchange.request_id}]" if exchange.request_id else "",
        exchange.method,
        exchange.target,
        exchange.http_version,
        status,
        exchange.bytes_sent,
        duration_ms,
        f" ({exchange.note})" if exchange.note else "",
    )


def rejection_line(
    client: tuple[str, int] | None,
    status: int,
    size: int,
    detail: str,
    fmt: str = "text",
) -> str:
    """The access log's line for a request refused before it was parsed."""
    peer = peer_name(client)
    if fmt == "json":
        return json.dumps(
            {
                "time": _now(),
                "client": peer,
                "method": None,
                "target": None,
                "http_version": None,
                "status": status,
                "bytes": size,
                "duration_ms": 0.0,
                "request_id": None,
                "note": detail,
            },
            ensure_ascii=True,
        )
    return f'{peer or "-"} "-" {status} {size} 0.0ms ({detail})'
