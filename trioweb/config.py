"""ServerConfig: every limit and timeout of the server, in one frozen record.

The connection engine (:mod:`trioweb.http1`), the server (:mod:`trioweb.server`),
the command line (:mod:`trioweb.cli`) and the test client all read the same
record, so a limit means the same thing everywhere. Each field is also a
``trioweb serve`` flag of the same name (``max_body_size`` is
``--max-body-size``).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ServerConfig"]

KiB = 1024
MiB = 1024 * KiB


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value!r}")


def _http_backend(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("auto", "h11", "httptools"):
        raise ValueError(f"http must be auto, h11 or httptools, got {value!r}")
    if value == "httptools":
        from .parsers import httptools_available

        if not httptools_available():
            raise ValueError(
                "http=httptools needs httptools: pip install 'trioweb[fast]' "
                "(or use http=h11)"
            )


def _port(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {value!r}")


@attrs.frozen(kw_only=True)
class ServerConfig:
    """How the server listens, and the limits every connection is held to.

    Every buffer and every wait has a bound here (docs/design.md, the
    contract, rules 4 and 7). The defaults suit a server on the open
    internet behind nothing; each can be changed per server, and
    ``max_body_size`` also per handler class.

    Each limit answers the client with a definite status and then closes the
    connection, and is never logged as a crash:

    ======================================  ===========================
    limit                                   what the client gets
    ======================================  ===========================
    ``max_request_line``                    414
    ``max_header_size``, ``max_headers``    431
    ``max_body_size``                       413 (before reading, when
                                            Content-Length says so)
    ``header_timeout``                      408 if part of a request
                                            arrived, else a quiet close
    ``body_timeout`` (between body reads)   408
    ``write_timeout`` (each send)           the connection is aborted;
                                            the handler sees
                                            StreamClosedError
    ``keep_alive_timeout``                  a quiet close
    ``max_connections``                     new connections wait in the
                                            listen backlog
    ``max_requests_per_connection``         ``Connection: close`` on
                                            the last response
    ======================================  ===========================
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000, validator=_port)
    #: Listen on this Unix domain socket path instead of host/port.
    uds: str | None = None
    backlog: int = attrs.field(default=1024, validator=_positive)

    max_request_line: int = attrs.field(default=8 * KiB, validator=_positive)
    max_header_size: int = attrs.field(default=16 * KiB, validator=_positive)
    max_headers: int = attrs.field(default=100, validator=_positive)
    max_body_size: int = attrs.field(default=10 * MiB, validator=_non_negative)

    header_timeout: float = attrs.field(default=10.0, validator=_positive)
    body_timeout: float = attrs.field(default=30.0, validator=_positive)
    write_timeout: float = attrs.field(default=30.0, validator=_positive)
    keep_alive_timeout: float = attrs.field(default=5.0, validator=_positive)

    max_connections: int = attrs.field(default=1000, validator=_positive)
    max_requests_per_connection: int = attrs.field(default=1000, validator=_positive)

    graceful_timeout: float = attrs.field(default=10.0, validator=_non_negative)
    access_log: bool = True
    #: The request parser: ``"h11"``, ``"httptools"`` (``trioweb[fast]``),
    #: or ``"auto"``: httptools when it is installed, else h11.
    http: str = attrs.field(default="auto", validator=_http_backend)
