"""The request a handler sees: :class:`HTTPServerRequest`, data only.

Built once per request from the connection engine's
:class:`~trioweb.server.http1.Exchange`. The names follow Tornado's
``tornado.httputil.HTTPServerRequest`` so handler code reads the same; the
differences are listed in ``docs/tornado-differences.md``.
"""

from __future__ import annotations

import http.cookies
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from . import forms, multipart
from .body import BodyStream, content_decoder
from .cookies import parse_cookie
from .errors import HTTPError
from .httputil import (
    HTTPHeaders,
    _query_bytes,
    is_valid_host,
    split_host_and_port,
)
from .multipart import UploadedFile
from .server.tls import peer_certificate

if TYPE_CHECKING:
    from .server.exchange import Exchange

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
      body: The request body, once read (empty before, for requests
        without one, and for a handler that streams its body).
      remote_ip: The client's address (behind a trusted proxy, the one the
        proxy reports: see ``docs/request-input.md``).
      protocol: ``"http"`` or ``"https"`` (the same).
      host: The ``Host`` header (with port), the host of an absolute-form
        target, or else the server's address.
      host_name: ``host`` without the port, lowercased.
      arguments: Query and body arguments together, ``{name: [bytes, ...]}``.
      query_arguments: Arguments from the query string.
      body_arguments: Arguments from a form body (urlencoded or multipart).
      files: Uploaded files from a multipart body,
        ``{name: [UploadedFile, ...]}``.
      id: The request's id: its ``X-Request-Id`` when that is a sane token,
        else one the server made; also in the access log and the response's
        ``X-Request-Id`` (see :mod:`trioweb.server.observe`). None when the
        server's ``request_id`` setting is off.
      root_path: The prefix a proxy mounts the application under
        (``--root-path``, uvicorn's): ``""`` or like ``"/app"``. ``path``
        does not include it; a URL the application makes for the client
        should.

    The argument dicts and ``files`` are parsed on first use, not before:
    a request whose handler never asks for them costs nothing to parse.
    Parsing is capped by the application's settings (``max_form_fields``,
    ``max_multipart_parts``, ...); a request over a cap is a 400, raised
    where the handler first asks.
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
    exchange: Exchange | None = None
    id: str | None = None
    root_path: str = ""
    _start_time: float = 0.0
    _cookies: http.cookies.SimpleCookie | None = None
    #: The application's settings: the input caps.
    _settings: Mapping[str, Any] = attrs.field(factory=dict, alias="settings")
    _query_arguments: dict[str, list[bytes]] | None = None
    _body_arguments: dict[str, list[bytes]] | None = None
    _arguments: dict[str, list[bytes]] | None = None
    _files: dict[str, list[UploadedFile]] | None = None
    _open_files: list[UploadedFile] = attrs.Factory(list)
    _stream: BodyStream | None = None

    @classmethod
    def from_exchange(
        cls, exchange: Exchange, settings: Mapping[str, Any] | None = None
    ) -> HTTPServerRequest:
        """Build the request from what the connection engine parsed.

        Raises :exc:`~trioweb.HTTPError` (400) if the ``Host`` header (or
        the authority of an absolute-form target) is not ``host[:port]``;
        the engine answers it.
        """
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
        if host and not is_valid_host(host):
            # RFC 9112 3.2: a 400, before anything (routing, a handler)
            # takes the host -- or a port of 5,000 digits -- at its word.
            raise HTTPError(400, "invalid Host %r", host[:100])
        if not host:
            server = exchange.server
            host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
        return cls(
            method=exchange.method,
            uri=uri,
            path=path,
            query=query,
            version="HTTP/" + exchange.http_version,
            headers=headers,
            remote_ip=exchange.client[0] if exchange.client else "",
            protocol=exchange.scheme,
            host=host,
            host_name=split_host_and_port(host.lower())[0],
            exchange=exchange,
            id=exchange.request_id,
            root_path=exchange.config.root_path,
            start_time=exchange.start_time,
            settings=settings if settings is not None else {},
        )

    # -- arguments and files, parsed on first use -------------------------------

    def _setting(self, name: str, default: int) -> int:
        return int(self._settings.get(name, default))

    @property
    def query_arguments(self) -> dict[str, list[bytes]]:
        if self._query_arguments is None:
            self._query_arguments = forms.parse_urlencoded(
                _query_bytes(self.query),
                self._setting("max_form_fields", forms.DEFAULT_MAX_FORM_FIELDS),
                what="query string",
            )
        return self._query_arguments

    @query_arguments.setter
    def query_arguments(self, value: dict[str, list[bytes]]) -> None:
        self._query_arguments = value
        self._arguments = None

    @property
    def body_arguments(self) -> dict[str, list[bytes]]:
        if self._body_arguments is None:
            self._parse_body()
            assert self._body_arguments is not None
        return self._body_arguments

    @body_arguments.setter
    def body_arguments(self, value: dict[str, list[bytes]]) -> None:
        self._body_arguments = value
        self._arguments = None

    @property
    def files(self) -> dict[str, list[UploadedFile]]:
        if self._files is None:
            self._parse_body()
            assert self._files is not None
        return self._files

    @files.setter
    def files(self, value: dict[str, list[UploadedFile]]) -> None:
        self._files = value

    @property
    def arguments(self) -> dict[str, list[bytes]]:
        if self._arguments is None:
            merged = {
                name: list(values) for name, values in self.query_arguments.items()
            }
            for name, values in self.body_arguments.items():
                merged.setdefault(name, []).extend(values)
            self._arguments = merged
        return self._arguments

    @arguments.setter
    def arguments(self, value: dict[str, list[bytes]]) -> None:
        self._arguments = value

    def _parse_body(self) -> None:
        fields: dict[str, list[bytes]] = {}
        files: dict[str, list[UploadedFile]] = {}
        content_type = self.headers.get("Content-Type", "")
        kind = forms.media_type(content_type)
        # A body still encoded (gzip without decompress_request) is not
        # parsed as garbage; it stays in request.body, as Tornado does.
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if self.body and encoding in ("", "identity"):
            if kind == "application/x-www-form-urlencoded":
                fields = forms.parse_urlencoded(
                    self.body,
                    self._setting("max_form_fields", forms.DEFAULT_MAX_FORM_FIELDS),
                    what="form body",
                )
            elif kind == "multipart/form-data":
                fields, files = multipart.parse_multipart(
                    self.body,
                    content_type,
                    max_parts=self._setting(
                        "max_multipart_parts", multipart.DEFAULT_MAX_MULTIPART_PARTS
                    ),
                    max_header_size=self._setting(
                        "max_part_header_size", multipart.DEFAULT_MAX_PART_HEADER_SIZE
                    ),
                    spool_size=self._setting(
                        "multipart_spool_size", multipart.DEFAULT_MULTIPART_SPOOL_SIZE
                    ),
                )
                for uploads in files.values():
                    self._open_files.extend(uploads)
        self._body_arguments = fields
        self._files = files

    def close_files(self) -> None:
        """Close every uploaded file of this request (their temporary files
        are deleted). The handler does it when the request ends."""
        for upload in self._open_files:
            upload.close()
        self._open_files.clear()

    # -- the body -----------------------------------------------------------

    @property
    def max_body_size(self) -> int:
        """The largest body this request may have (decompressed, if the
        ``decompress_request`` setting is on).

        Starts at the server's ``max_body_size`` (or the handler class's).
        A streaming handler may raise or lower it in ``prepare()``, before
        the body is read; a body over it is a 413.
        """
        if self.exchange is None:
            return 0
        return self.exchange.max_body_size

    @max_body_size.setter
    def max_body_size(self, value: int) -> None:
        if self.exchange is None:
            raise RuntimeError("this request has no connection to read from")
        if value < 0:
            raise ValueError(f"max_body_size must be 0 or more, got {value!r}")
        if self._stream is not None:
            raise RuntimeError(
                "the body is already being read: set request.max_body_size in "
                "prepare() of a @trioweb.stream_request_body handler (a "
                "buffered handler sets the class attribute max_body_size)"
            )
        self.exchange.max_body_size = value

    def stream(self) -> BodyStream:
        """The body, chunk by chunk: ``async for chunk in request.stream():``.

        For handlers decorated with :func:`trioweb.stream_request_body`
        (others have read the whole body into :attr:`body` already). The
        first read sends ``100 Continue`` when the client waits for it.
        Chunks are decompressed when the ``decompress_request`` setting is
        on. Reading past :attr:`max_body_size` raises ``HTTPError(413)``.
        Call it once per request.
        """
        if self.exchange is None:
            raise RuntimeError("this request has no connection to read from")
        if self._stream is not None:
            raise RuntimeError(
                "the body was already read: request.stream() can be called "
                "only once, and only in a @trioweb.stream_request_body handler "
                "(a buffered handler finds the body in request.body)"
            )
        decoder = content_decoder(
            self.headers.get("Content-Encoding"),
            bool(self._settings.get("decompress_request")),
            self.exchange.max_body_size,
        )
        if decoder is not None:
            # What the handler sees is the decoded body; say so, as
            # Tornado does, so nothing decodes it a second time.
            self.headers["X-Consumed-Content-Encoding"] = self.headers.pop(
                "Content-Encoding"
            )
        self._stream = BodyStream(self.exchange, decoder)
        return self._stream

    def json(self) -> Any:
        """The body parsed as JSON.

        415 unless the Content-Type is ``application/json`` or ``...+json``;
        400 for a body that is not UTF-8 JSON or is nested deeper than the
        ``max_json_depth`` setting (64).
        """
        return forms.parse_json(
            self.body,
            self.headers.get("Content-Type", ""),
            self._setting("max_json_depth", forms.DEFAULT_MAX_JSON_DEPTH),
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

    def get_ssl_certificate(self, binary_form: bool = False) -> Any:
        """The client's TLS certificate, as Tornado's method of this name
        returns it: a dict (``binary_form=False``) or the DER bytes.

        None on a plain HTTP connection or when the client sent none.
        Without ``--cert-reqs optional`` or ``required`` the server never
        asks for one (see :mod:`trioweb.server.tls`).
        """
        if self.exchange is None:
            return None
        return peer_certificate(self.exchange.transport, binary_form=binary_form)

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
