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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import h11

from .chunked import ChunkedBodyError, ChunkedReader
from .events import (
    CLOSED,
    END,
    NEED_DATA,
    PAUSED,
    Event,
    ProtocolError,
    RequestHead,
)
from .headmeter import CONNECT_REFUSED, HeadMeter

if TYPE_CHECKING:
    from .config import ServerConfig

try:
    from h11._readers import request_line_re as _h11_request_line
except ImportError:  # a later h11: _pick_head_reader uses the public API
    pass

#: A request head as h11 reads it: method, target, version, fields.
_Head = tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]

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


def _read_head_public(head: bytes) -> _Head:
    """Read a complete request head with h11's public API: a Connection."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head))
    conn.receive_data(head)
    event = conn.next_event()
    assert type(event) is h11.Request, event
    return event.method, event.target, event.http_version, list(event.headers)


def _read_head_private(head: bytes) -> _Head:
    """Read a complete request head as h11 does, with a tenth of the work
    of an ``h11.Connection``.

    Only for a head the :class:`HeadMeter` has let through: its lines all
    end in CRLF, its field lines are ``token ":" value`` with no control
    character but HTAB. h11 would match each field line with its
    field-line pattern, which matches every such line and takes the name
    and the value without its surrounding SP and HTAB: what ``partition``
    and ``strip`` give, without a regex per line. The request line is
    matched with h11's own pattern (it refuses targets the meter lets
    through: obs-text). Then h11's checks of ``h11.Request``, the same
    ones in the same order, with h11's messages: ``Content-Length`` and
    ``Transfer-Encoding`` as h11 normalizes them, then the ``Host`` count.

    So this is h11's reading without h11's objects. It is checked against
    h11's public API at import (:func:`_pick_head_reader`) and on random
    heads by ``tests/test_parsers_h11.py``, which fails if a new h11 reads
    any of them otherwise (or renames ``request_line_re``).
    """
    lines = head[:-4].split(b"\r\n")
    line = lines[0]
    match = _h11_request_line.fullmatch(line)
    if match is None:
        # h11's message, to the letter (it splits a bytearray).
        raise h11.LocalProtocolError(f"illegal request line: {bytearray(line)!r}")
    version = match["http_version"]
    headers = []
    hosts = 0
    length: bytes | None = None
    chunked = False
    for field in lines[1:]:
        name, _, value = field.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            # h11 merges agreeing values ("5, 5", or the field twice).
            lengths = {part.strip() for part in value.split(b",")}
            if len(lengths) != 1:
                raise h11.LocalProtocolError("conflicting Content-Length headers")
            value = lengths.pop()
            if not value.isdigit() or len(value) > 20:
                raise h11.LocalProtocolError("bad Content-Length")
            if length is not None:
                if length != value:
                    raise h11.LocalProtocolError("conflicting Content-Length headers")
                continue
            length = value
        elif name == b"transfer-encoding":
            if chunked:
                raise h11.LocalProtocolError(
                    "multiple Transfer-Encoding headers", error_status_hint=501
                )
            value = value.lower()
            if value != b"chunked":
                raise h11.LocalProtocolError(
                    "Only Transfer-Encoding: chunked is supported",
                    error_status_hint=501,
                )
            chunked = True
        headers.append((name, value))
    if version == b"1.1" and hosts == 0:
        raise h11.LocalProtocolError("Missing mandatory Host: header")
    if hosts > 1:
        raise h11.LocalProtocolError("Found multiple Host: headers")
    return match["method"], match["target"], version, headers


def _pick_head_reader() -> Callable[[bytes], _Head]:
    """The private reader if it reads a test head exactly as the public
    API does, else the public API."""
    probe = (
        b"POST /p?q HTTP/1.0\r\nHost: h\r\nX-A:  a b \t\r\n"
        b"Transfer-Encoding: Chunked\r\nX-B:\r\n\r\n"
    )
    try:
        if _read_head_private(probe) == _read_head_public(probe):
            return _read_head_private
    except Exception:
        pass  # any change of the private API
    return _read_head_public


#: How the h11 backend reads a head: method, target, version, fields.
_read_head = _pick_head_reader()


# The states of an H11Parser between requests (see H11Parser.next_event).
_IDLE = 0  # reading a head
_BODY = 1  # reading a body framed by Content-Length (0 without a body)
_DONE = 2  # the request is complete: waiting for next_request()
_CLOSED = 3  # the peer closed between requests
_FAILED = 4  # h11 refused the input: it refuses everything after it


class H11Parser:
    """The default parser: h11's request reader.

    h11 is a full connection state machine, responses included. trioweb
    writes responses itself (:mod:`trioweb.server.writer`) and applies the
    rules of a connection itself (keep-alive, ``Expect``, upgrades:
    :mod:`trioweb.server.headrules` and the engine), so it only asks h11 to
    read each request head: the request line and field syntax, the ``Host``
    count, the ``Content-Length`` and ``Transfer-Encoding`` checks are all
    h11's. Reading the head with h11's reader instead of an
    ``h11.Connection`` per request skips the state machine, whose answers
    trioweb computes again anyway; it costs a third of what a Connection
    did (see docs/performance.md, "h11 backend diet"). What the Connection
    still decided -- how a body is framed, what a request's end and the
    peer's EOF mean -- this class does as h11 does, down to the messages.

    The bodies are framed here: by Content-Length (bytes counted off the
    buffer), or chunked, which :class:`~trioweb.server.chunked.ChunkedReader`
    decodes (h11 accepts chunk lines RFC 9112 does not). Duplicate
    ``Content-Length`` fields, which h11 merges when they agree, are
    refused here, as llhttp does.
    """

    __slots__ = (
        "_buf",
        "_chunks",
        "_closed",
        "_headers",
        "_left",
        "_max_head",
        "_max_header_size",
        "_max_request_line",
        "_meter",
        "_state",
        "_version",
    )

    def __init__(self, max_request_line: int, max_header_size: int) -> None:
        self._max_request_line = max_request_line
        self._max_header_size = max_header_size
        # The head meter applies the head limits before h11 sees the bytes;
        # h11's own bound on an incomplete head (the largest the meter lets
        # through: both limits, the line ends, a CR) is a safety net behind.
        self._max_head = max_request_line + max_header_size + 4
        self._meter = HeadMeter()
        self._state = _IDLE
        # Received and not yet parsed: the head being read (from its first
        # byte: empty lines before it are dropped), the body, then whatever
        # the client pipelined. An idle keep-alive connection holds b"".
        self._buf = b""
        self._closed = False  # the peer's EOF is in (after _buf)
        self._left = 0  # bytes of a Content-Length body still to come
        # The chunked body being read, once its head is parsed.
        self._chunks: ChunkedReader | None = None
        # The head's fields and version: what h11 does after the request's
        # end depends on them (see _after_end). Dropped by next_request():
        # an idle connection keeps nothing of its last request.
        self._headers: Sequence[tuple[bytes, bytes]] = ()
        self._version = b""

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed (EOF).

        Raises :exc:`ProtocolError` (414, 431) as soon as the request head
        outgrows a limit, complete or not.
        """
        if self._chunks is not None:
            self._chunks.feed(data)
            return
        if not data:
            self._closed = True
            return
        meter = self._meter
        if meter.fields < 0:
            if meter.size == 0:
                # Empty lines before a request line are skipped (RFC 9112
                # 2.2); h11 would call them a malformed request.
                data = data.lstrip(b"\r\n")
                if not data:
                    return
            meter.feed(data)
            meter.check(self._max_request_line, self._max_header_size)
        self._buf = self._buf + data if self._buf else data

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA` (see the module docs)."""
        if self._chunks is not None:
            return _chunk_event(self._chunks)
        state = self._state
        if state == _BODY:
            left = self._left
            if left == 0:
                self._state = _DONE
                return END
            buf = self._buf
            if buf:
                if len(buf) <= left:
                    self._buf = b""
                    self._left = left - len(buf)
                    return buf
                self._buf = buf[left:]
                self._left = 0
                return buf[:left]
            if self._closed:
                self._fail(
                    "peer closed connection without sending complete message "
                    f"body (received {self._body_size() - left} bytes, "
                    f"expected {self._body_size()})"
                )
            return NEED_DATA
        if state == _IDLE:
            if self._meter.fields >= 0:
                return self._head()
            return self._incomplete_head()
        return self._after_end()

    def _incomplete_head(self) -> Event:
        # What h11 says of a head it has not all of (the meter has passed
        # every byte of it).
        buf = self._buf
        if buf[:1] and buf[0] < 0x21:
            # A space (the only such byte the meter lets through): h11
            # refuses it without waiting for the line.
            self._fail("illegal request line")
        if not buf:
            if self._closed:
                self._state = _CLOSED
                return CLOSED
            return NEED_DATA
        if len(buf) > self._max_head:
            self._fail("Receive buffer too long", 431)
        if self._closed:
            self._fail("peer unexpectedly closed connection")
        return NEED_DATA

    def _head(self) -> RequestHead:
        # The meter has found the head's end: its fields and the blank line
        # (a CRLF: the meter refuses bare LFs).
        meter = self._meter
        end = meter.lf + 1 + meter.fields + 2
        buf = self._buf
        head = buf[:end]
        self._buf = buf[end:]
        try:
            method, target, version, headers = _read_head(head)
        except h11.ProtocolError as exc:
            self._state = _FAILED
            raise ProtocolError(exc.error_status_hint, str(exc)) from None
        self._headers = headers
        self._version = version
        self._state = _BODY
        self._left = 0
        for name, value in headers:
            if name == b"content-length":
                # h11 has checked the digits (at most 20 of them).
                self._left = int(value)
                _check_content_length(head)
            elif name == b"transfer-encoding":
                # h11 has refused every coding but chunked. The body is ours.
                chunks = self._chunks = ChunkedReader(
                    self._buf, max_trailer_size=self._max_header_size
                )
                self._buf = b""
                if self._closed:
                    chunks.feed(b"")
        return RequestHead(method, target, version, headers)

    def _body_size(self) -> int:
        for name, value in self._headers:
            if name == b"content-length":
                return int(value)
        return 0  # (unreachable: a body without a length never waits)

    def _after_end(self) -> Event:
        # As h11's state machine answers once the request is complete, until
        # next_request(): the engine reads nothing more, but may ask.
        state = self._state
        if state == _FAILED:
            self._fail("Can't receive data when peer state is ERROR")
        if state == _DONE:
            if _comma_values(self._headers, b"upgrade"):
                return PAUSED  # a protocol switch was proposed
            if self._buf:
                if self._version < b"1.1" or b"close" in _comma_values(
                    self._headers, b"connection"
                ):
                    self._fail("Got data when expecting EOF")
                return PAUSED
        if self._closed:
            self._state = _CLOSED
            return CLOSED
        return NEED_DATA

    def _fail(self, detail: str, status: int = 400) -> NoReturn:
        self._state = _FAILED
        raise ProtocolError(status, detail)

    def buffered(self) -> bytes:
        """The bytes received and not yet parsed (a copy)."""
        if self._chunks is not None:
            return self._chunks.leftover or b"-"
        return self._buf

    def leftover(self) -> bytes:
        """The bytes after a complete request without a body: another
        protocol's, once the connection switches to it (a websocket)."""
        return b"" if self._chunks is not None else self._buf

    def limit_body(self, limit: int) -> None:
        """Refuse (413) a chunked body as soon as it declares more than
        ``limit`` bytes (the exchange's body limit)."""
        if self._chunks is not None:
            self._chunks.limit = limit

    def next_request(self) -> bytes:
        """Get ready for the next request; return the bytes already buffered.

        Raises :exc:`ProtocolError` if those bytes already break a limit.
        """
        meter = self._meter = HeadMeter()
        self._state = _IDLE
        self._headers = ()
        chunks = self._chunks
        if chunks is not None:
            self._chunks = None
            data = chunks.leftover
            self._closed = chunks.closed
        else:
            data = self._buf
        data = data.lstrip(b"\r\n")
        self._buf = data
        if data:
            meter.feed(data)
            meter.check(self._max_request_line, self._max_header_size)
        return data


def _check_content_length(head: bytes) -> None:
    # h11 merges Content-Length fields that agree ("5" twice, or "5, 5")
    # into one; llhttp refuses them. Look at the raw head to refuse them
    # here too: the backends must frame every request alike.
    head = head.lower()
    end = len(head) - 4
    first = head.find(b"\ncontent-length:", 0, end)
    if head.find(b"\ncontent-length:", first + 1, end) >= 0:
        raise ProtocolError(400, "more than one Content-Length")
    if head.find(b",", first, head.find(b"\r", first)) >= 0:
        raise ProtocolError(400, "a list in Content-Length")


def _comma_values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """The values of the fields ``name``, split at commas, as h11 reads a
    list field."""
    return [
        item
        for field, value in headers
        if field == name
        for item in (part.strip() for part in value.lower().split(b","))
        if item
    ]


def _chunk_event(chunks: ChunkedReader) -> Event:
    if chunks.done:
        return PAUSED
    try:
        piece = chunks.read()
    except ChunkedBodyError as exc:
        raise ProtocolError(exc.status, exc.detail) from None
    if piece is None:
        return END
    return piece or NEED_DATA


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
