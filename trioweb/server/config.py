"""ServerConfig: every limit and timeout of the server, in one frozen record.

The connection engine (:mod:`trioweb.server.http1`), the server (:mod:`trioweb.server`),
the command line (:mod:`trioweb.cli`) and the test client all read the same
record, so a limit means the same thing everywhere. Each field is also a
``trioweb serve`` flag of the same name (``max_body_size`` is
``--max-body-size``).
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import attrs

__all__ = ["ServerConfig"]

KiB = 1024
MiB = 1024 * KiB


# Every limit and every wait is finite (docs/design.md, the contract, rule
# 4): an infinite timeout is a wait without a deadline, so it is refused
# along with NaN.


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ValueError(
            f"{attribute.name} must be a finite number greater than 0, got {value!r}"
        )


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(
            f"{attribute.name} must be a finite number, 0 or more, got {value!r}"
        )


def _positive_seconds_or_none(
    instance: Any, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)


def _http_backend(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("auto", "h11", "httptools"):
        raise ValueError(f"http must be auto, h11 or httptools, got {value!r}")
    # Looked up, not imported: the parsers (which import this module for
    # their types) stay above the configuration.
    if value == "httptools" and importlib.util.find_spec("httptools") is None:
        raise ValueError(
            "http=httptools needs httptools: pip install httptools (the [fast] "
            "extra of trioweb), or use http=h11"
        )


def _positive_or_none(
    instance: Any, attribute: attrs.Attribute[Any], value: int | None
) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise ValueError(
            f"{attribute.name} must be 1 or more (or None for no limit), got {value!r}"
        )


def _allow_ips(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    from .proxy import TrustedProxies

    try:
        TrustedProxies(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name} must list trusted proxies: {exc}") from None


def _one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(choices)}, got {value!r}"
            )

    return check


def _fd(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value < 0):
        raise ValueError(
            f"fd must be a file descriptor number (0 or more), got {value!r}"
        )


def _root_path(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError(
            f"root_path must be empty or a path like /app (a leading slash, "
            f"no trailing one), got {value!r}"
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
    ``min_body_rate`` after its grace,      408
    ``body_deadline`` (whole body)
    ``write_timeout`` (each send)           the connection is aborted;
                                            the handler sees
                                            StreamClosedError
    ``keep_alive_timeout``                  a quiet close
    ``max_connections``                     new connections wait in the
                                            listen backlog
    ``max_requests_per_connection``         ``Connection: close`` on
                                            the last response
    ``limit_concurrency`` (off by default)  503 with ``Retry-After`` at
                                            once, without running the
                                            application
    ======================================  ===========================
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000, validator=_port)
    #: Listen on this Unix domain socket path instead of host/port.
    uds: str | None = None
    #: Serve on this inherited listening socket (a file descriptor number)
    #: instead of host/port: systemd socket activation, or a supervisor
    #: that opened the socket (see docs/server.md, "Sockets").
    fd: int | None = attrs.field(default=None, validator=_fd)
    backlog: int = attrs.field(default=1024, validator=_positive)

    max_request_line: int = attrs.field(default=8 * KiB, validator=_positive)
    max_header_size: int = attrs.field(default=16 * KiB, validator=_positive)
    max_headers: int = attrs.field(default=100, validator=_positive)
    max_body_size: int = attrs.field(default=10 * MiB, validator=_non_negative)

    header_timeout: float = attrs.field(default=10.0, validator=_positive)
    body_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: The slowest a request body may arrive, in bytes a second averaged
    #: over the time spent waiting for it, once ``min_body_rate_grace``
    #: seconds have passed (0: no minimum). A client below it gets 408.
    min_body_rate: float = attrs.field(default=240.0, validator=_non_negative)
    min_body_rate_grace: float = attrs.field(default=5.0, validator=_non_negative)
    #: The longest a whole request body may take to arrive (None: no bound
    #: but the two above).
    body_deadline: float | None = attrs.field(
        default=None, validator=_positive_seconds_or_none
    )
    write_timeout: float = attrs.field(default=30.0, validator=_positive)
    keep_alive_timeout: float = attrs.field(default=5.0, validator=_positive)

    #: Connections served at once; more wait in the listen backlog. An idle
    #: keep-alive connection costs about 12 KiB: 10,000 cost about 120 MiB.
    #: Sized so that slow-client attacks that the timeouts and the minimum
    #: body rate cut short cannot fill it (see docs/server.md).
    max_connections: int = attrs.field(default=10_000, validator=_positive)
    max_requests_per_connection: int = attrs.field(default=1000, validator=_positive)
    #: At most this many requests in flight in this process (across all
    #: connections); more are answered 503 with ``Retry-After`` at once,
    #: without reaching the application (uvicorn's ``--limit-concurrency``).
    #: None: no limit. See :mod:`trioweb.overload`.
    limit_concurrency: int | None = attrs.field(
        default=None, validator=_positive_or_none
    )

    graceful_timeout: float = attrs.field(default=10.0, validator=_non_negative)
    access_log: bool = True
    #: The request parser: ``"h11"``, ``"httptools"`` (the ``fast`` extra),
    #: or ``"auto"``: httptools when it is installed, else h11.
    http: str = attrs.field(default="auto", validator=_http_backend)

    #: Take the client's address and scheme from ``X-Forwarded-For``,
    #: ``X-Forwarded-Proto``, ``X-Real-Ip`` and ``Forwarded`` when the peer
    #: is one of ``forwarded_allow_ips`` (see :mod:`trioweb.server.proxy`).
    proxy_headers: bool = False
    #: The trusted proxies: comma-separated IPs and CIDR ranges, or ``*``.
    #: ``trioweb serve`` also reads ``$FORWARDED_ALLOW_IPS``.
    forwarded_allow_ips: str = attrs.field(
        default="127.0.0.1,::1", validator=_allow_ips
    )
    #: The path prefix under which a proxy mounts the application (uvicorn's
    #: ``--root-path``): ``request.root_path``; the proxy strips it from the
    #: paths it forwards, the application adds it to the URLs it makes.
    root_path: str = attrs.field(default="", validator=_root_path)

    # -- TLS (see trioweb.server.tls): HTTPS when certfile is set -----------------
    #: The server's certificate chain (PEM), and its private key (PEM; in
    #: ``certfile`` too if not given), encrypted with ``keyfile_password``.
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = attrs.field(default=None, repr=False)
    #: The CAs whose client certificates are accepted (PEM), for mutual TLS
    #: with ``cert_reqs`` ``"optional"`` or ``"required"``.
    ca_certs: str | None = None
    cert_reqs: str = attrs.field(
        default="none", validator=_one_of("none", "optional", "required")
    )
    ssl_min_version: str = attrs.field(
        default="TLSv1.2", validator=_one_of("TLSv1.2", "TLSv1.3")
    )
    #: An OpenSSL cipher list for TLS 1.2 (None: Python's defaults).
    ssl_ciphers: str | None = None

    # -- logs and observability (see trioweb.logs, trioweb.server.observe) ---------
    #: ``"text"``: one line per request; ``"json"``: one JSON object a line.
    access_log_format: str = attrs.field(
        default="text", validator=_one_of("text", "json")
    )
    #: Take the request's id from ``X-Request-Id`` when it is a sane token,
    #: else make one; show it as ``request.id``, in the access log, and in
    #: the response's ``X-Request-Id``.
    request_id: bool = True
    #: Add ``Server-Timing: app;dur=MS`` (the time from the request head to
    #: the response head) to every response.
    server_timing: bool = False

    def __attrs_post_init__(self) -> None:
        if self.fd is not None and self.uds is not None:
            raise ValueError(
                "fd and uds cannot both be given: serve on one socket, "
                "the inherited one (fd) or a new Unix socket (uds)"
            )
