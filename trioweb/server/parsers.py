"""Request parsers: bytes in, request events out. Sans-I/O, no trio.

The connection engine (:mod:`trioweb.server.http1`) reads requests through this
small interface, so the parsing library is a choice the engine does not
depend on. The events and errors are in :mod:`trioweb.server.events` (re-exported
here). Every backend is fronted by the same checks, so they refuse alike:
:class:`~trioweb.server.headmeter.HeadMeter` on the raw head, and
:mod:`trioweb.server.chunked` for chunked bodies; the engine then applies
:mod:`trioweb.server.headrules` to the parsed head.

A parser reads one request at a time: after :data:`END` it returns
:data:`PAUSED` until the engine, done with the response, calls
:meth:`H11Parser.next_request`. Bytes of pipelined requests wait in the
parser's buffer meanwhile.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .chunked import ChunkedReader
from .events import (
    CLOSED,
    END,
    NEED_DATA,
    PAUSED,
    Event,
    ProtocolError,
    RequestHead,
)
from .h11parser import H11Parser, _chunk_event
from .headmeter import CONNECT_REFUSED, HeadMeter

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = [
    "BACKENDS",
    "CLOSED",
    "CONNECT_REFUSED",
    "END",
    "NEED_DATA",
    "PAUSED",
    "Event",
    "H11Parser",
    "HeadMeter",
    "HttptoolsParser",
    "ProtocolError",
    "RequestHead",
    "httptools_available",
    "make_parser",
    "resolve_backend",
]


def _httptools_status(message: str) -> int:
    # llhttp refuses some requests that h11 parses and trioweb then refuses
    # itself; answer them with the status the h11 backend gives. (The head
    # meter has already refused malformed request lines.)
    if "Transfer-Encoding" in message and "Content-Length" not in message:
        return 501  # h11: "Only Transfer-Encoding: chunked is supported"
    return 400


# Methods llhttp parses as trioweb means them. Any other token is handed to
# llhttp as GET (which frames a request exactly as any method but CONNECT
# does) and reported as sent: llhttp refuses methods it does not know (501),
# and treats some it knows (PRI, SOURCE) as other protocols'.
_LLHTTP_AS_IS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
)
# llhttp skips the body of a request with ``Upgrade`` and ``Connection:
# upgrade`` and hands back the bytes after the head as another protocol's: a
# body that then posed as the next request. trioweb answers an upgrade
# request as HTTP/1.1 unless the app accepts it, so llhttp never sees the
# field under its own name.
_UPGRADE_NAME = re.compile(rb"\nupgrade:", re.IGNORECASE)
_UPGRADE_ALIAS = b"x-trioweb-upgrade"


class HttptoolsParser:
    """The fast parser: llhttp (the parser of Node.js) through httptools.

    Install it with ``pip install httptools`` (the ``fast`` extra of
    trioweb). It gives the same events, limits and statuses as
    :class:`H11Parser` -- the engine's protocol tests run against both,
    and a differential test feeds both the same random bytes -- at a
    fraction of the cost per request.

    llhttp parses everything it is fed, pipelined requests included, and
    reports no byte offsets. To apply the same rules as the h11 backend, it
    is fed one head at a time, whole: the :class:`HeadMeter` finds (and
    checks) each head in the raw bytes before llhttp sees it. A body framed
    by Content-Length is fed exactly; a chunked body is decoded by
    :class:`~trioweb.server.chunked.ChunkedReader`, never by llhttp, so the engine
    always knows where the next request starts.
    """

    # Slotted, as the engine keeps one per open connection.
    __slots__ = (
        "_body_left",
        "_buffer",
        "_chunks",
        "_closed",
        "_error",
        "_events",
        "_field_bytes",
        "_head",
        "_headers",
        "_httptools",
        "_in_message",
        "_max_header_size",
        "_max_request_line",
        "_meter",
        "_method",
        "_parser",
        "_paused",
        "_renamed",
        "_renew",
        "_url",
    )

    def __init__(self, max_request_line: int, max_header_size: int) -> None:
        import httptools

        self._max_request_line = max_request_line
        self._max_header_size = max_header_size
        self._httptools = httptools
        self._parser = self._new_llhttp()
        # A list, not a deque: it holds a few events at most, and an empty
        # deque costs 700 bytes on every idle connection.
        self._events: list[Event | ProtocolError] = []
        self._buffer = b""  # received, not yet fed to llhttp
        self._head = b""  # the start of a head still incomplete
        self._meter: HeadMeter | None = None  # measuring the head being read
        self._body_left = 0  # bytes of a Content-Length body still to feed
        self._chunks: ChunkedReader | None = None  # the chunked body being read
        self._method: bytes | None = None  # the method, if llhttp saw GET
        # The places of the Upgrade fields renamed for llhttp (see
        # _UPGRADE_NAME).
        self._renamed: tuple[int, ...] = ()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._field_bytes = 0
        self._in_message = False
        self._paused = False
        self._renew = False  # the next request needs a new llhttp
        self._closed = False
        self._error: ProtocolError | None = None

    def _new_llhttp(self) -> Any:
        parser = self._httptools.HttpRequestParser(self)
        # A version other than 1.0 and 1.1 is the engine's to judge: 1.x is
        # served as 1.1 (RFC 9110 2.5), other majors get 505.
        parser.set_dangerous_leniencies(lenient_version=True)
        return parser

    # -- llhttp's callbacks ---------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._url = b""
        self._headers = []
        self._field_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_request_line:
            raise ProtocolError(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        # Sized as the meter sizes a field line: "name: value" and CRLF.
        self._field_bytes += len(name) + len(value) + 4
        if self._field_bytes > self._max_header_size:
            raise ProtocolError(431, "header block too large")
        name = name.lower()
        if self._renamed and len(self._headers) in self._renamed:
            name = b"upgrade"
        # llhttp drops the whitespace before a value, not after (RFC 9112
        # 5: neither is part of it).
        self._headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        method = self._method or parser.get_method()
        if len(method) + len(self._url) + 10 > self._max_request_line:
            raise ProtocolError(414, "request line too long")
        length = 0
        chunked = False
        for name, value in self._headers:
            if name == b"content-length":
                # llhttp has checked the digits and refused duplicates; a
                # long zero-padded value must not reach int()'s digit limit.
                if len(value) > 19:
                    raise ProtocolError(400, "bad Content-Length")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True  # llhttp has refused codings without chunked
        if chunked:
            chunks = self._chunks = ChunkedReader(
                max_trailer_size=self._max_header_size
            )
            if self._closed:
                chunks.feed(b"")
        self._body_left = length
        self._events.append(
            RequestHead(
                method,
                self._url,
                parser.get_http_version().encode("ascii"),
                self._headers,
            )
        )

    def on_body(self, body: bytes) -> None:
        self._body_left -= len(body)
        self._events.append(bytes(body))

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            # llhttp refuses whatever follows a message that ends its
            # connection (HTTP/1.0, Connection: close). Whether the
            # connection goes on is the engine's to decide: a new llhttp
            # parses what follows, as h11 would.
            self._renew = True
        self._in_message = False
        self._body_left = 0
        # One request at a time: the bytes of pipelined ones wait, unparsed,
        # in the buffer (bounded by the engine's read-ahead).
        self._paused = True
        self._events.append(END)

    # -- the parser interface -------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed (EOF).

        Errors are queued behind the events that came before them, so the
        requests before a malformed one are still served, in order, as with
        the h11 backend.
        """
        if not data:
            self._closed = True  # acted on once the buffer is parsed
            if self._chunks is not None:
                self._chunks.feed(b"")
            return
        if self._error is not None:
            return
        if self._chunks is not None:
            self._chunks.feed(data)
            return
        self._buffer += data
        try:
            self._pump()
        except ProtocolError as exc:
            self._fail(exc)

    def _pump(self) -> None:
        """Feed llhttp from the buffer, one message part at a time, until a
        message is complete (then wait for :meth:`next_request`)."""
        while self._buffer and not self._paused:
            if self._chunks is not None:
                self._chunks.feed(self._buffer)
                self._buffer = b""
                return
            if self._in_message:
                # A body framed by Content-Length (llhttp ends the message
                # itself after its last byte; on_body counts it down).
                size = self._body_left
                if len(self._buffer) <= size:
                    data, self._buffer = self._buffer, b""  # no copy
                else:
                    data, self._buffer = self._buffer[:size], self._buffer[size:]
                self._execute(data)
                continue
            # A head: find its end before llhttp sees any of it.
            meter = self._meter
            if meter is None or meter.size == 0:
                # Empty lines before a request line are skipped (RFC 9112
                # 2.2), here as in the meter, so offsets agree.
                self._buffer = self._buffer.lstrip(b"\r\n")
                if not self._buffer:
                    return
                if meter is None:
                    meter = self._meter = HeadMeter()
            before = meter.size
            meter.feed(self._buffer)
            meter.check(self._max_request_line, self._max_header_size)
            if meter.fields < 0:
                # Incomplete (and within the limits the meter checked): llhttp
                # gets the head whole, as h11 does.
                self._head += self._buffer
                self._buffer = b""
                return
            # The head ends after its fields and the blank line (a CRLF:
            # the meter refuses bare LFs).
            end = meter.lf + 1 + meter.fields + 2 - before
            head = self._head + self._buffer[:end] if self._head else self._buffer[:end]
            self._buffer = self._buffer[end:]
            self._head = b""
            self._meter = None
            self._execute(self._for_llhttp(head))

    def _for_llhttp(self, head: bytes) -> bytes:
        """The head as llhttp must see it (see ``_LLHTTP_AS_IS`` and
        ``_UPGRADE_NAME``)."""
        space = head.find(b" ")
        method = head[:space]
        if method in _LLHTTP_AS_IS:
            self._method = None
        else:
            self._method = method  # (CONNECT never gets here: see HeadMeter)
            head = b"GET" + head[space:]
        self._renamed = ()
        if head.lower().find(b"\nupgrade:") >= 0:
            # Which field lines were renamed, by their place among the
            # fields: only those are named back (a client may send a field
            # called like the alias itself, which must stay as sent).
            self._renamed = tuple(
                head.count(b"\n", 0, match.start() + 1) - 1
                for match in _UPGRADE_NAME.finditer(head)
            )
            head = _UPGRADE_NAME.sub(b"\n" + _UPGRADE_ALIAS + b":", head)
        return head

    def _execute(self, data: bytes) -> None:
        httptools = self._httptools
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                raise cause from None
            raise
        except httptools.HttpParserError as exc:
            status = _httptools_status(str(exc))
            if status == 400 and any(
                name == b"transfer-encoding" and value.strip().lower() != b"chunked"
                for name, value in self._headers
            ):
                status = 501  # an unknown coding wins, as with h11 and headrules
            raise ProtocolError(status, str(exc)) from None

    def _fail(self, error: ProtocolError) -> None:
        # A failed parser keeps failing: the error is raised again on every
        # later call, so no loop can mistake it for "waiting for data".
        self._error = error
        self._buffer = b""
        self._head = b""
        self._events.append(error)

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA` (see the module docs)."""
        if self._events:
            event = self._events.pop(0)
            if isinstance(event, ProtocolError):
                raise event
            return event
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        if chunks is not None:
            try:
                event = _chunk_event(chunks)
            except ProtocolError as exc:
                self._error = exc
                raise
            if event is END:
                # The bytes after the body are the next request's, for a
                # new llhttp (this one still expects chunks).
                self._buffer = chunks.leftover
                self._chunks = None
                self._parser = self._new_llhttp()
                self._in_message = False
                self._paused = True
            return event
        if not self._closed:
            return NEED_DATA
        if self._in_message or self._head or self._buffer.strip(b"\r\n"):
            self._error = ProtocolError(400, "peer closed the connection mid-request")
            raise self._error
        return CLOSED

    def buffered(self) -> bytes:
        """Received bytes of a request not yet complete (or a marker)."""
        if self._chunks is not None:
            return self._chunks.leftover or b"-"
        if self._buffer or self._head:
            return self._head + self._buffer
        return b"-" if self._meter is not None or self._events else b""

    def leftover(self) -> bytes:
        """The bytes after a complete request without a body (see
        :meth:`H11Parser.leftover`): llhttp was paused at its end."""
        return self._head + self._buffer

    def limit_body(self, limit: int) -> None:
        """Refuse (413) a chunked body as soon as it declares more than
        ``limit`` bytes (the exchange's body limit)."""
        if self._chunks is not None:
            self._chunks.limit = limit

    def next_request(self) -> bytes:
        """Go on to the next request: parse the bytes waiting for it."""
        self._paused = False
        if self._renew:
            self._renew = False
            self._parser = self._new_llhttp()
        if self._error is None:
            try:
                self._pump()
            except ProtocolError as exc:
                self._fail(exc)
        return b""


#: The parser backends by name, for ``ServerConfig.http`` (``--http``).
BACKENDS: dict[str, Callable[[int, int], H11Parser | HttptoolsParser]] = {
    "h11": H11Parser,
    "httptools": HttptoolsParser,
}


@functools.cache
def httptools_available() -> bool:
    """Whether the httptools backend can be used (``pip install httptools``,
    the ``fast`` extra)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(name: str) -> str:
    """``"auto"`` -> ``"httptools"`` when installed, else ``"h11"``."""
    if name == "auto":
        return "httptools" if httptools_available() else "h11"
    if name == "httptools" and not httptools_available():
        raise RuntimeError(
            "the httptools parser is not installed: pip install httptools (the "
            "[fast] extra of trioweb), or use --http h11"
        )
    return name


def make_parser(config: ServerConfig) -> H11Parser | HttptoolsParser:
    """A new parser of the backend ``config.http`` names."""
    return BACKENDS[resolve_backend(config.http)](
        config.max_request_line, config.max_header_size
    )
