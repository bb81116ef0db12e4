"""The request a handler sees: :class:`HTTPServerRequest`, data only.

Built once per request from the connection engine's
:class:`~trioweb.http1.Exchange`. The names follow Tornado's
``tornado.httputil.HTTPServerRequest`` so handler code reads the same; the
differences are listed in ``docs/tornado-differences.md``.
"""

from __future__ import annotations

import http.cookies
import re
from typing import TYPE_CHECKING

import attrs
import trio

from .httputil import HTTPHeaders, parse_cookie, parse_qs_bytes, split_host_and_port

if TYPE_CHECKING:
    from .http1 import Exchange

__all__ = ["HTTPServerRequest"]

# An absolute-form request target: scheme, authority, and the rest.
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)


@attrs.define(eq=False, repr=False)
class HTTPServerRequest:
    """A parsed HTTP request.

    Attributes:
      method: ``"GET"``, ``"POST"``, ...
      uri: The request target: path and query string, as sent (an
        absolute-form target, ``http://host/path?q``, becomes ``/path?q``).
      path: The path part of ``uri``, still percent-encoded.
      query: The query string part of ``uri``, without the ``?``.
      version: ``"HTTP/1.1"`` or ``"HTTP/1.0"``.
      headers: A case-insensitive multi-dict (:class:`~trioweb.httputil.HTTPHeaders`).
      body: The request body, once read (empty before, and for requests
        without one).
      remote_ip: The client's IP address; ``""`` for a client without one:
        a peer on a Unix domain socket (``--uds``), which the logs show as
        ``-``.
      protocol: ``"http"`` or ``"https"``.
      host: The ``Host`` header (with port), the host of an absolute-form
        target, or else the server's address.
      host_name: ``host`` without the port, lowercased.
      arguments: Query and body arguments together, ``{name: [bytes, ...]}``.
      query_arguments: Arguments from the query string.
      body_arguments: Arguments from a form-encoded body.
      files: Uploaded files (filled by multipart support; empty for now).
    """

    method: str
    uri: str
    path: str
    query: str
    version: str
    headers: HTTPHeaders
    remote_ip: str
    protocol: str
    host: str
    host_name: str
    body: bytes = b""
    query_arguments: dict[str, list[bytes]] = attrs.Factory(dict)
    body_arguments: dict[str, list[bytes]] = attrs.Factory(dict)
    arguments: dict[str, list[bytes]] = attrs.Factory(dict)
    files: dict[str, list[object]] = attrs.Factory(dict)
    exchange: Exchange | None = None
    _start_time: float = 0.0
    _cookies: http.cookies.SimpleCookie | None = None

    @classmethod
    def from_exchange(cls, exchange: Exchange) -> HTTPServerRequest:
        """Build the request from what the connection engine parsed."""
        headers = HTTPHeaders.from_raw(exchange.headers)
        uri = exchange.target
        host = headers.get("Host")
        absolute = None if uri.startswith("/") else _ABSOLUTE_FORM.fullmatch(uri)
        if absolute is not None:
            # RFC 9112 3.2.2: a server must accept the absolute-form
            # ("GET http://example.com/a HTTP/1.1") and take the host from
            # it, not from the Host header. The path is routed as usual.
            authority = absolute.group(2).rpartition("@")[2]
            if authority:
                host = authority
            uri = absolute.group(3)
            if not uri.startswith("/"):
                uri = "/" + uri
        path, _, query = uri.partition("?")
        if not host:
            server = exchange.server
            host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
        query_arguments = parse_qs_bytes(query) if query else {}
        return cls(
            method=exchange.method,
            uri=uri,
            path=path,
            query=query,
            version="HTTP/" + exchange.http_version,
            headers=headers,
            # A Unix-socket peer has no IP address: none is claimed (as
            # uvicorn does), rather than a loopback address it did not use.
            remote_ip=exchange.client[0] if exchange.client else "",
            protocol=exchange.scheme,
            host=host,
            host_name=split_host_and_port(host.lower())[0],
            query_arguments=query_arguments,
            # A copy: body arguments are merged in later.
            arguments={k: list(v) for k, v in query_arguments.items()},
            exchange=exchange,
            start_time=exchange.start_time,
        )

    @property
    def cookies(self) -> http.cookies.SimpleCookie:
        """The request's cookies, parsed on first use, as Tornado's
        ``{name: Morsel}`` (read a value with ``cookies[name].value``)."""
        if self._cookies is None:
            cookies: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            # Several Cookie fields (HTTP/2 sends one per cookie, and a
            # proxy may pass them on) are one list: join them with "; ",
            # not the "," that joins other repeated fields.
            header = "; ".join(self.headers.get_list("Cookie"))
            if header:
                for name, value in parse_cookie(header).items():
                    try:
                        cookies[name] = value
                    except http.cookies.CookieError:
                        # A name SimpleCookie refuses (e.g. "expires"): skip
                        # it rather than failing the request, as Tornado does.
                        pass
            self._cookies = cookies
        return self._cookies

    def full_url(self) -> str:
        """The whole URL: ``protocol://host/uri``."""
        return f"{self.protocol}://{self.host}{self.uri}"

    def request_time(self) -> float:
        """Seconds since the request's head arrived (trio's clock)."""
        return trio.current_time() - self._start_time

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(protocol={self.protocol!r}, host={self.host!r}, "
            f"method={self.method!r}, uri={self.uri!r}, version={self.version!r}, "
            f"remote_ip={self.remote_ip!r})"
        )
