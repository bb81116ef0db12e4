"""Pure HTTP helpers: strings, headers, query strings, hosts, etags.

Everything here is a plain function or a plain data structure. Nothing does
I/O, nothing imports trio, nothing logs, so every piece can be unit-tested on
its own and called from any layer (the connection engine, the handler, the
test client).

Several of these run on every request (:meth:`HTTPHeaders.from_raw`,
:func:`is_valid_host`), so they are written for speed:
they avoid regular expressions and the general-purpose :mod:`urllib.parse`
machinery where a plain ``split`` does the job, and they cache what repeats.

A note on text and bytes. HTTP is bytes on the wire. trioweb turns header
fields and the request target into :class:`str` by decoding them as
**latin-1**, which maps each byte to the code point of the same value and
back, so no byte is ever lost: ``s.encode("latin-1")`` gives the wire bytes
again. Decoding as UTF-8 (the real meaning of most non-ASCII bytes in a URL)
is left to the layers that know what to do when it fails, such as the
handler's ``decode_argument()``.
"""

from __future__ import annotations

import collections.abc
import http.client
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

__all__ = [
    "SERVER_SOFTWARE",
    "HTTPHeaders",
    "etag_matches",
    "is_valid_header_name",
    "is_valid_header_value",
    "is_valid_host",
    "qs_to_qsl",
    "reason_phrase",
    "split_host_and_port",
    "split_target",
    "to_unicode",
    "url_concat",
    "url_unescape",
    "utf8",
]

_T = TypeVar("_T")

#: The ``Server`` header of the responses trioweb makes itself (a handler's
#: default, the load-shedding 503).
SERVER_SOFTWARE = "trioweb/0.1"


# --------------------------------------------------------------------------
# str and bytes
# --------------------------------------------------------------------------


@overload
def utf8(value: str | bytes) -> bytes: ...
@overload
def utf8(value: None) -> None: ...
def utf8(value: str | bytes | None) -> bytes | None:
    """Return *value* as bytes, encoding a :class:`str` as UTF-8.

    Bytes and ``None`` come back unchanged, so you can call it on a value
    without first checking which kind it is. Anything else is a
    :class:`TypeError`: silently calling ``str()`` on, say, a dict would hide
    the bug that put it there.
    """
    if isinstance(value, bytes) or value is None:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"expected str, bytes or None, got {type(value).__name__}")


@overload
def to_unicode(value: str | bytes) -> str: ...
@overload
def to_unicode(value: None) -> None: ...
def to_unicode(value: str | bytes | None) -> str | None:
    """Return *value* as :class:`str`, decoding bytes as UTF-8.

    The decode is strict: invalid UTF-8 raises :class:`UnicodeDecodeError`,
    which the caller turns into the right answer (usually a 400).
    :class:`str` and ``None`` come back unchanged; other types are a
    :class:`TypeError`.
    """
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(f"expected str, bytes or None, got {type(value).__name__}")


@overload
def url_unescape(value: str | bytes, encoding: None, plus: bool = True) -> bytes: ...
@overload
def url_unescape(
    value: str | bytes, encoding: str = "utf-8", plus: bool = True
) -> str: ...
def url_unescape(
    value: str | bytes, encoding: str | None = "utf-8", plus: bool = True
) -> str | bytes:
    """Decode the ``%XX`` escapes of a URL component.

    Args:
      value: The escaped component.
      encoding: The charset the escaped bytes are decoded with. Bytes that
        do not decode become U+FFFD. ``None`` returns the raw bytes instead,
        which is what you want when the caller decides how to decode (and
        how to fail).
      plus: Turn ``+`` into a space. That is right for query strings and
        form bodies (``application/x-www-form-urlencoded``) and wrong for
        paths, where ``+`` is a literal plus: pass ``plus=False`` there.

    >>> url_unescape("a+b%20c%2B")
    'a b c+'
    >>> url_unescape("a+b%2B", plus=False)
    'a+b+'
    >>> url_unescape("%C3%A9", encoding=None)
    b'\\xc3\\xa9'
    """
    if encoding is None:
        if plus:
            if isinstance(value, bytes):
                value = value.replace(b"+", b" ")
            else:
                value = value.replace("+", " ")
        return urllib.parse.unquote_to_bytes(value)
    if isinstance(value, bytes):
        if plus:
            value = value.replace(b"+", b" ")
        return urllib.parse.unquote_to_bytes(value).decode(encoding, "replace")
    if plus:
        return urllib.parse.unquote_plus(value, encoding=encoding)
    return urllib.parse.unquote(value, encoding=encoding)


# --------------------------------------------------------------------------
# Header fields
# --------------------------------------------------------------------------

# Header names repeat endlessly (every request has Host, User-Agent,
# Accept...), so their normalized form is cached. The caches are bounded
# because a client chooses the names: a flood of unique names must not grow
# memory. Past the limit, names are still normalized, just not remembered.
_NAME_CACHE_LIMIT = 1000
_normalized_names: dict[str, str] = {}
_normalized_raw_names: dict[bytes, str] = {}


# Names whose conventional spelling (the RFCs') is not Http-Header-Case. The
# form stored is the form sent: a response carries ``ETag``, not ``Etag``.
_CONVENTIONAL_NAMES = {
    name.lower(): name
    for name in (
        "ETag",
        "WWW-Authenticate",
        "TE",
        "DNT",
        "Content-MD5",
        "X-XSS-Protection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Version",
    )
}


def _normalize_name(name: str) -> str:
    """Map a header name to ``Http-Header-Case`` (``coNtent-TYPE`` ->
    ``Content-Type``), the form :class:`HTTPHeaders` stores and shows; the
    few names spelled otherwise by convention keep that spelling
    (``etag`` -> ``ETag``)."""
    normalized = _normalized_names.get(name)
    if normalized is None:
        normalized = _CONVENTIONAL_NAMES.get(name.lower()) or "-".join(
            [part.capitalize() for part in name.split("-")]
        )
        if len(_normalized_names) < _NAME_CACHE_LIMIT:
            _normalized_names[name] = normalized
    return normalized


def _normalize_raw_name(name: bytes) -> str:
    normalized = _normalized_raw_names.get(name)
    if normalized is None:
        normalized = _normalize_name(name.decode("latin-1"))
        if len(_normalized_raw_names) < _NAME_CACHE_LIMIT:
            _normalized_raw_names[name] = normalized
    return normalized


class HTTPHeaders(collections.abc.MutableMapping[str, str]):
    """The header fields of a request or response: a case-insensitive
    multi-dict.

    A field name may occur more than once (``Set-Cookie``, ``Accept``...),
    so each name maps to a list of values. The plain mapping interface sees
    one value per name, Tornado style:

    - ``headers["Accept"]`` is every value joined with ``","``, which is what
      RFC 9110 says repeated fields mean (except ``Set-Cookie``: use
      :meth:`get_list` for that one).
    - ``headers["Accept"] = "text/html"`` replaces every value.
    - :meth:`add` appends a value, :meth:`get_list` returns all of them,
      :meth:`get_all` walks every ``(name, value)`` pair.

    Names are case-insensitive and are stored in ``Http-Header-Case``, so
    ``"content-type" in headers`` and ``headers["CONTENT-TYPE"]`` work, and
    iterating yields ``"Content-Type"``.

    The constructor takes what :class:`dict` takes, with one difference that
    matters for a multi-dict: an iterable of ``(name, value)`` pairs keeps
    every pair (``HTTPHeaders([("A", "1"), ("A", "2")])`` has two values for
    ``A``), so ``eval(repr(headers))`` rebuilds the same headers. Passing
    another :class:`HTTPHeaders` copies all its values.

    Values are not validated here: the connection engine (via h11) checks
    what it receives and what it sends; use :func:`is_valid_header_value` to
    check a value early, where the mistake is made.
    """

    __slots__ = ("_as_list",)

    _as_list: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: str) -> None:
        self._as_list = {}
        if len(args) > 1:
            raise TypeError(
                f"HTTPHeaders expected at most 1 positional argument, got {len(args)}"
            )
        if args:
            source = args[0]
            if isinstance(source, HTTPHeaders):
                for name, values in source._as_list.items():
                    self._as_list[name] = list(values)
            elif isinstance(source, Mapping):
                for name in source:
                    self[name] = source[name]
            else:
                for name, value in source:
                    self.add(name, value)
        for name, value in kwargs.items():
            self[name] = value

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> HTTPHeaders:
        """Build headers from ``(name, value)`` byte pairs, as h11 gives them.

        This is the per-request fast path: h11 has already checked the
        syntax (names are tokens, values have no CR/LF and no surrounding
        whitespace), so the pairs are only decoded (latin-1, lossless) and
        grouped. Names may arrive in any case; h11 lowercases them.
        """
        headers = cls()
        as_list = headers._as_list
        normalize = _normalize_raw_name
        for raw_name, raw_value in raw:
            name = normalize(raw_name)
            value = raw_value.decode("latin-1")
            values = as_list.get(name)
            if values is None:
                as_list[name] = [value]
            else:
                values.append(value)
        return headers

    def add(self, name: str, value: str) -> None:
        """Add a value for *name*, keeping the values already there."""
        normalized = _normalize_name(name)
        values = self._as_list.get(normalized)
        if values is None:
            self._as_list[normalized] = [value]
        else:
            values.append(value)

    def get_list(self, name: str) -> list[str]:
        """Return every value of *name*, in the order received; ``[]`` when
        absent. The list is a copy: changing it does not change the headers.
        """
        return list(self._as_list.get(_normalize_name(name), ()))

    def get_all(self) -> Iterator[tuple[str, str]]:
        """Yield every ``(name, value)`` pair.

        Names come in the order they first appeared, and the values of one
        name in the order they were added. (Pairs of different names are not
        interleaved as they were on the wire; their relative order carries
        no meaning in HTTP, while the order of one name's values does.)
        """
        for name, values in self._as_list.items():
            for value in values:
                yield name, value

    def encoded_fields(self) -> list[tuple[bytes, bytes]]:
        """Every ``(name, value)`` pair (as :meth:`get_all`), encoded as
        latin-1 bytes for the response writer.

        A response's pairs are mostly the same from one response to the
        next (Server, Content-Type, ...): each distinct pair is encoded once
        and the same bytes objects come back (a bounded cache), which also
        lets the writer recognise a line it has validated before.
        Raises :exc:`UnicodeEncodeError` for text beyond latin-1.
        """
        cache = _ENCODED_FIELDS
        fields = []
        for name, values in self._as_list.items():
            for value in values:
                key = (name, value)
                pair = cache.get(key)
                if pair is None:
                    pair = (name.encode("latin-1"), value.encode("latin-1"))
                    if len(cache) >= _ENCODED_FIELDS_LIMIT:
                        cache.clear()
                    cache[key] = pair
                fields.append(pair)
        return fields

    def copy(self) -> HTTPHeaders:
        """Return an independent copy, with every value of every name."""
        cls = type(self)
        # Every response starts as a copy of a template: skip __init__'s
        # argument handling when there is no subclass __init__ to run.
        new = cls.__new__(cls) if cls is HTTPHeaders else cls()
        new._as_list = {name: list(values) for name, values in self._as_list.items()}
        return new

    __copy__ = copy

    def __getitem__(self, name: str) -> str:
        values = self._as_list[_normalize_name(name)]
        # Nearly every field occurs once: skip the join then.
        if len(values) == 1:
            return values[0]
        return ",".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        self._as_list[_normalize_name(name)] = [value]

    def __delitem__(self, name: str) -> None:
        del self._as_list[_normalize_name(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize_name(name) in self._as_list

    def __len__(self) -> int:
        return len(self._as_list)

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_list)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.get_all())!r})"


# HTTPHeaders.encoded_fields()'s cache: emptied when full, so that values
# that differ per response (an ETag) cannot grow it.
_ENCODED_FIELDS: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_ENCODED_FIELDS_LIMIT = 1024


def is_valid_header_name(name: str | bytes) -> bool:
    """Whether *name* is a valid field name: an RFC 9110 token.

    A token is one or more of the letters, digits and ``!#$%&'*+-.^_`|~``;
    no spaces, no colon, no control characters, nothing outside ASCII.
    """
    if isinstance(name, bytes):
        return _TOKEN_BYTES_RE.fullmatch(name) is not None
    return _TOKEN_RE.fullmatch(name) is not None


def is_valid_header_value(value: str | bytes) -> bool:
    """Whether *value* can be sent as a field value.

    False when it contains a control character (CR, LF, NUL and the other C0
    controls, or DEL), where tab is the one allowed, and for a :class:`str`
    also when a character does not fit in latin-1 (the encoding trioweb sends
    header text in). CR and LF are the dangerous ones: a value that can carry
    them lets whoever controls it write extra header fields, or a whole extra
    response ("response splitting").

    False too when the value starts or ends with a space or tab: such
    padding is not part of a field value (RFC 9110, section 5.5), and h11
    refuses to send it. Strip the value first. The empty value is valid.
    """
    if isinstance(value, bytes):
        return _VALID_VALUE_BYTES_RE.fullmatch(value) is not None
    return _VALID_VALUE_RE.fullmatch(value) is not None


_TOKEN_CHARS = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_RE = re.compile(f"[{_TOKEN_CHARS}]+")
_TOKEN_BYTES_RE = re.compile(f"[{_TOKEN_CHARS}]+".encode("ascii"))
# Visible characters (printable ASCII and the latin-1 range above DEL), with
# single spaces or tabs allowed only between them.
_FIELD_CHAR = r"[\x21-\x7e\x80-\xff]"
_FIELD_VALUE = rf"(?:{_FIELD_CHAR}+(?:[ \t]+{_FIELD_CHAR}+)*)?"
_VALID_VALUE_RE = re.compile(_FIELD_VALUE)
_VALID_VALUE_BYTES_RE = re.compile(_FIELD_VALUE.encode("ascii"))


# --------------------------------------------------------------------------
# Request targets, hosts and status lines
# --------------------------------------------------------------------------


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into its path and its query string.

    >>> split_target("/search?q=trio&page=2")
    ('/search', 'q=trio&page=2')
    >>> split_target("/")
    ('/', '')

    The query is everything after the first ``?``, without the ``?``.
    """
    path, _, query = target.partition("?")
    return path, query


def split_host_and_port(netloc: str) -> tuple[str, int | None]:
    """Split a ``Host`` header (or any ``host[:port]``) into host and port.

    >>> split_host_and_port("example.com:8080")
    ('example.com', 8080)
    >>> split_host_and_port("example.com")
    ('example.com', None)
    >>> split_host_and_port("[::1]:80")
    ('[::1]', 80)

    An IPv6 address keeps its brackets, as in a URL, so that
    ``f"{host}:{port}"`` is valid again; ``host.strip("[]")`` gives the bare
    address for socket calls. An unbracketed IPv6 address such as ``::1``
    has no port. A port that is not a TCP port (ASCII digits, 0 to 65535)
    is not a port: the whole string is the host, with port ``None``. This
    never raises, whatever the client sent; :func:`is_valid_host` tells
    whether a ``Host`` value is well-formed at all.
    """
    if netloc.startswith("["):
        end = netloc.find("]")
        if end != -1:
            host, rest = netloc[: end + 1], netloc[end + 1 :]
            port = _port(rest[1:]) if rest.startswith(":") else None
            if port is not None:
                return host, port
        return netloc, None
    host, sep, port_text = netloc.rpartition(":")
    if sep and host and ":" not in host:
        port = _port(port_text)
        if port is not None:
            return host, port
    return netloc, None


def _port(text: str) -> int | None:
    # str.isdigit() also accepts digits of other scripts, which int() would
    # then happily convert; and the length check comes before int(), which
    # refuses (ValueError) strings of more than 4,300 digits.
    if 0 < len(text) <= 5 and text.isascii() and text.isdigit():
        port = int(text)
        if port <= 65535:
            return port
    return None


# RFC 9110 7.2: Host = uri-host [ ":" port ], uri-host from RFC 3986: an IP
# literal in brackets, or a reg-name (IPv4 addresses are reg-names too, as
# far as the characters go). A port has at most five digits here.
_HOST_RE = re.compile(
    r"(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?"
)


def is_valid_host(value: str) -> bool:
    """Whether ``value`` is a well-formed ``Host`` header: ``host[:port]``.

    ``host`` is a name or an IPv4 address (RFC 3986's reg-name characters),
    or an IPv6 address in brackets; ``port``, if present, is a TCP port (at
    most 65535). A server answers 400 to a request whose ``Host`` is not
    (RFC 9112 3.2).

    >>> is_valid_host("example.com:8080"), is_valid_host("[::1]")
    (True, True)
    >>> is_valid_host("a b"), is_valid_host("a:99999")
    (False, False)
    """
    if not _HOST_RE.fullmatch(value):
        return False
    if value.startswith("["):
        port = value.rpartition("]")[2][1:]
    else:
        port = value.partition(":")[2]  # a reg-name has no ":"
    return not port or _port(port) is not None


# RFC 9110 section 15 renamed a few phrases of RFC 7231 (413 "Payload Too
# Large", 422 "Unprocessable Entity", ...) and Python's table lags behind
# (3.11 still says "Request Entity Too Large"). The RFC's names win; codes
# defined elsewhere (429, 431, 451, WebDAV's) keep their own RFCs' names,
# which is what http.client has.
_RFC9110_PHRASES = {
    100: "Continue",
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    426: "Upgrade Required",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
_REASON_PHRASES = {**http.client.responses, **_RFC9110_PHRASES}


def reason_phrase(code: int) -> str:
    """The standard reason phrase of a status code (``404`` -> ``"Not
    Found"``), or ``"Unknown"`` for a code that has none.

    The phrases are RFC 9110's (``413`` -> ``"Content Too Large"``); codes
    it does not define (``429``, ``431``, WebDAV's) have their own RFCs'.
    """
    return _REASON_PHRASES.get(code, "Unknown")


# --------------------------------------------------------------------------
# Query strings (parsing them, capped, is trioweb.forms's)
# --------------------------------------------------------------------------


def _query_bytes(qs: str | bytes) -> bytes:
    if isinstance(qs, bytes):
        return qs
    try:
        return qs.encode("latin-1")
    except UnicodeEncodeError:
        # Not text that came off the wire: a str built in code, with
        # characters beyond latin-1. UTF-8 is what a browser would send.
        return qs.encode("utf-8")


def qs_to_qsl(qs: Mapping[str, Iterable[_T]]) -> Iterator[tuple[str, _T]]:
    """Turn a dict of lists (as :func:`trioweb.forms.parse_urlencoded`
    returns) back into
    ``(name, value)`` pairs, one pair per value."""
    for name, values in qs.items():
        for value in values:
            yield name, value


def url_concat(
    url: str,
    args: dict[str, Any] | list[tuple[str, Any]] | tuple[tuple[str, Any], ...] | None,
) -> str:
    """Append query arguments to *url*, after any it already has.

    >>> url_concat("http://example.com/foo", {"c": "d"})
    'http://example.com/foo?c=d'
    >>> url_concat("http://example.com/foo?a=b", [("c", "d"), ("c", "d2")])
    'http://example.com/foo?a=b&c=d&c=d2'

    A list or tuple of pairs can repeat a name; a dict cannot. Values go
    through :func:`str` and are escaped. The query already in the URL is
    parsed and re-encoded, so its escaping may change form (``%20`` becomes
    ``+``) without changing meaning. ``args=None`` returns *url* unchanged.
    """
    if args is None:
        return url
    if isinstance(args, dict):
        extra: Iterable[tuple[str, Any]] = args.items()
    elif isinstance(args, list | tuple):
        extra = args
    else:
        raise TypeError(
            "url_concat() args must be a dict, a list or tuple of pairs, or None;"
            f" got {type(args).__name__}"
        )
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.extend(extra)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


# A Location header is latin-1 on the wire and read as UTF-8 by browsers:
# percent-encoding is the one form both agree on.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _percent_encode(match: re.Match[str]) -> str:
    return urllib.parse.quote(match.group(), safe="")


def location_value(url: str) -> str:
    """*url* as a ``Location`` header carries it: non-ASCII characters
    percent-encoded as UTF-8, as browsers do, the rest unchanged.

    >>> location_value("/caf\u00e9?q=1")
    '/caf%C3%A9?q=1'
    """
    return _NON_ASCII.sub(_percent_encode, url)


# --------------------------------------------------------------------------
# Entity tags
# --------------------------------------------------------------------------

_ETAG_RE = re.compile(r'\*|(?:W/)?"[^"]*"')


def _opaque_tag(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches the resource's *etag*.

    Uses the weak comparison RFC 9110 prescribes for ``If-None-Match``: the
    ``W/`` prefix is ignored on both sides, so ``W/"abc"`` matches
    ``"abc"``. The header is ``*`` (matches any etag) or a comma-separated
    list of entity tags; anything in it that is not an entity tag is
    skipped.

    *etag* is the tag as it goes in the ``Etag`` header, in double quotes
    (``'"abc"'`` or ``'W/"abc"'``); a bare ``abc`` is taken to mean
    ``"abc"``. An empty *etag* (the resource has none) never matches, as in
    Tornado.

    >>> etag_matches('"x", W/"abc"', '"abc"')
    True
    """
    if not etag:
        return False
    wanted = _opaque_tag(etag)
    if not wanted.startswith('"'):
        wanted = f'"{wanted}"'
    for tag in _ETAG_RE.findall(if_none_match):
        if tag == "*" or _opaque_tag(tag) == wanted:
            return True
    return False


# Cookies and dates have modules of their own (trioweb.cookies,
# trioweb.dates); their names stay importable from here, as in Tornado's
# httputil, loaded on first use so that neither module imports this one's
# importer back.
_MOVED = {
    "format_set_cookie": "cookies",
    "parse_cookie": "cookies",
    "format_timestamp": "dates",
    "http_date": "dates",
    "parse_http_date": "dates",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
