"""Request ids and ``Server-Timing``: following one request through logs.

**Request ids.** Every request gets an id (``ServerConfig.request_id``, on
by default). A proxy or client that already gave the request one in
``X-Request-Id`` keeps it, so the same id appears in every service's logs,
provided it is a sane token: 1 to 200 characters of letters, digits and
``-_.:+/=@`` (an id with spaces, quotes or control characters could forge
log lines, and one of 10 KiB would bloat them; such an id is replaced, not
repaired). Otherwise the server makes one: 32 random hex digits. The id is
``request.id`` in a handler, ``exchange.request_id`` in the engine, a field
of the access log line, and the response's ``X-Request-Id`` header (unless
the application set that header itself).

**Server-Timing** (``ServerConfig.server_timing``, off by default): each
response carries ``Server-Timing: app;dur=MS``, the milliseconds from the
complete request head to the response head, which browsers' developer
tools show next to the network timings. It is opt-in because it tells
every client how long the server worked, which is a timing side channel on
a public server.

Pure functions, no trio: the engine (:mod:`trioweb.server.http1`) calls them.
"""

from __future__ import annotations

import random
import re

__all__ = ["request_id", "response_headers", "valid_request_id"]

_SANE_ID = re.compile(rb"[A-Za-z0-9\-_.:+/=@]{1,200}")
_HEADER = b"x-request-id"


def valid_request_id(value: bytes) -> bool:
    """Whether ``value`` is an ``X-Request-Id`` worth keeping (see above)."""
    return _SANE_ID.fullmatch(value) is not None


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's id: its ``X-Request-Id`` if sane, else a new one.

    ``headers`` are the request's ``(lowercase name, value)`` pairs; the
    first ``X-Request-Id`` counts.
    """
    for name, value in headers:
        if name == _HEADER:
            if _SANE_ID.fullmatch(value) is not None:
                return value.decode("ascii")
            break
    # Not a secret, only a name for the request in the logs: the module's
    # generator is enough, and a tenth of a system call's cost. Python
    # reseeds it in a forked child, so workers never repeat each other.
    return f"{random.getrandbits(128):032x}"


def response_headers(
    headers: list[tuple[bytes, bytes]],
    request_id: str | None,
    app_ms: float | None,
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus ``X-Request-Id`` (if ``request_id`` and the
    application did not set one) and ``Server-Timing`` (if ``app_ms``)."""
    out = list(headers)
    if request_id is not None:
        for name, _ in headers:
            # The length first: lowering every name costs more.
            if len(name) == 12 and name.lower() == _HEADER:
                break
        else:
            out.append((b"X-Request-Id", request_id.encode("ascii")))
    if app_ms is not None:
        out.append((b"Server-Timing", f"app;dur={app_ms:.1f}".encode("ascii")))
    return out
