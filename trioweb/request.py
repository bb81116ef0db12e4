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

# "HTTP/" + the version, without a new string each request.
_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}

# Host values found well-formed: a server sees the same few on every
# request, and a set lookup is cheaper than the regex. Bounded (emptied
# when full), so that hosts that differ per request cannot grow it.
_VALID_HOSTS: set[str] = set()
_VALID_HOSTS_LIMIT = 256


def _raw_header(raw: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of field ``name`` (lowercase) in the engine's byte pairs,
    as ``HTTPHeaders.get`` would give it: latin-1, repeated fields joined
    with ``","``; None when absent."""
    found = None
    for field, value in raw:
        if field == name:
            text = value.decode("latin-1")
            found = text if found is None else found + "," + text
    return found


# An absolute-form request target: scheme, authority, and the rest.
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)


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

    Most of it is built on first use, not before: ``headers`` (the
    engine's ``(name, value)`` byte pairs become a dict when first asked
    for), ``host_name``, ``cookies``, the argument dicts and ``files``. A
    request whose handler never asks for them costs nothing to parse.
    Parsing is capped by the application's settings (``max_form_fields``,
    ``max_multipart_parts``, ...); a request over a cap is a 400, raised
    where the handler first asks.
    """

    # Slotted: one of these is made for every request, and most of what it
    # holds is filled in on first use (None until then).
    __slots__ = (
        "_arguments",
        "_body_arguments",
        "_cookies",
        "_files",
        "_headers",
        "_host",
        "_host_name",
        "_open_files",
        "_query_arguments",
        "_raw_headers",
        "_settings",
        "_start_time",
        "_stream",
        "body",
        "exchange",
        "id",
        "method",
        "path",
        "protocol",
        "query",
        "remote_ip",
        "root_path",
        "uri",
        "version",
    )

    method: str
    uri: str
    path: str
    query: str
    version: str
    remote_ip: str
    protocol: str
    body: bytes
    exchange: Exchange | None
    id: str | None
    root_path: str
    _start_time: float
    _settings: Mapping[str, Any]
    _headers: HTTPHeaders | None
    _raw_headers: list[tuple[bytes, bytes]]
    _host: str
    _host_name: str | None
    _cookies: http.cookies.SimpleCookie | None
    _query_arguments: dict[str, list[bytes]] | None
    _body_arguments: dict[str, list[bytes]] | None
    _arguments: dict[str, list[bytes]] | None
    _files: dict[str, list[UploadedFile]] | None
    _open_files: list[UploadedFile] | None
    _stream: BodyStream | None

    def __init__(
        self,
        method: str,
        uri: str,
        path: str,
        query: str,
        version: str,
        headers: HTTPHeaders,
        remote_ip: str,
        protocol: str,
        host: str,
        host_name: str | None = None,
        body: bytes = b"",
        exchange: Exchange | None = None,
        id: str | None = None,
        root_path: str = "",
        start_time: float = 0.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Build a request from its parts (tests do; the server uses
        :meth:`from_exchange`). ``host_name`` defaults to ``host``'s."""
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version
        self._headers = headers
        self._raw_headers = []
        self.remote_ip = remote_ip
        self.protocol = protocol
        self._host = host
        self._host_name = host_name
        self.body = body
        self.exchange = exchange
        self.id = id
        self.root_path = root_path
        self._start_time = start_time
        self._settings = settings if settings is not None else {}
        self._cookies = None
        self._query_arguments = None
        self._body_arguments = None
        self._arguments = None
        self._files = None
        self._open_files = None
        self._stream = None

    @classmethod
    def from_exchange(
        cls, exchange: Exchange, settings: Mapping[str, Any] | None = None
    ) -> HTTPServerRequest:
        """Build the request from what the connection engine parsed.

        Raises :exc:`~trioweb.HTTPError` (400) if the ``Host`` header (or
        the authority of an absolute-form target) is not ``host[:port]``;
        the engine answers it.
        """
        raw = exchange.headers
        uri = exchange.target
        host = _raw_header(raw, b"host")
        if uri[:1] != "/":
            absolute = _ABSOLUTE_FORM.fullmatch(uri)
            if absolute is not None:
                # RFC 9112 3.2.2: a server must accept the absolute-form
                # ("GET http://example.com/a HTTP/1.1") and take the host
                # from it, not from the Host header. The path is routed as
                # usual.
                authority = absolute.group(2).rpartition("@")[2]
                if authority:
                    host = authority
                uri = absolute.group(3)
                if not uri.startswith("/"):
                    uri = "/" + uri
        if host:
            if host not in _VALID_HOSTS:
                if not is_valid_host(host):
                    # RFC 9112 3.2: a 400, before anything (routing, a
                    # handler) takes the host -- or a port of 5,000 digits
                    # -- at its word.
                    raise HTTPError(400, "invalid Host %r", host[:100])
                if len(_VALID_HOSTS) >= _VALID_HOSTS_LIMIT:
                    _VALID_HOSTS.clear()
                _VALID_HOSTS.add(host)
        else:
            server = exchange.server
            host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
        # Not through __init__: this runs once a request, and the fields
        # below are all it needs to set.
        request = cls.__new__(cls)
        request.method = exchange.method
        request.uri = uri
        request.path, _, request.query = uri.partition("?")
        version = exchange.http_version
        request.version = _VERSIONS.get(version) or "HTTP/" + version
        request._headers = None
        request._raw_headers = raw
        client = exchange.client
        request.remote_ip = client[0] if client else ""
        request.protocol = exchange.scheme
        request._host = host
        request._host_name = None
        request.body = b""
        request.exchange = exchange
        request.id = exchange.request_id
        request.root_path = exchange.config.root_path
        request._start_time = exchange.start_time
        request._settings = settings if settings is not None else {}
        request._cookies = None
        request._query_arguments = None
        request._body_arguments = None
        request._arguments = None
        request._files = None
        request._open_files = None
        request._stream = None
        return request

    # -- headers and host, built on first use -----------------------------------

    @property
    def headers(self) -> HTTPHeaders:
        headers = self._headers
        if headers is None:
            headers = self._headers = HTTPHeaders.from_raw(self._raw_headers)
        return headers

    @headers.setter
    def headers(self, value: HTTPHeaders) -> None:
        self._headers = value

    def _header(self, raw_name: bytes, name: str) -> str | None:
        """``headers.get(name)``, without building ``headers`` if it is not
        built yet. ``raw_name`` is ``name`` lowercased, as bytes."""
        if self._headers is not None:
            return self._headers.get(name)
        return _raw_header(self._raw_headers, raw_name)

    @property
    def host(self) -> str:
        return self._host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def host_name(self) -> str:
        host_name = self._host_name
        if host_name is None:
            host_name = self._host_name = split_host_and_port(self._host.lower())[0]
        return host_name

    @host_name.setter
    def host_name(self, value: str) -> None:
        self._host_name = value

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
                if files:
                    if self._open_files is None:
                        self._open_files = []
                    for uploads in files.values():
                        self._open_files.extend(uploads)
        self._body_arguments = fields
        self._files = files

    def close_files(self) -> None:
        """Close every uploaded file of this request (their temporary files
        are deleted). The handler does it when the request ends."""
        if self._open_files:
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
