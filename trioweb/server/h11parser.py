"""The h11 backend: request heads read by h11's rules, bodies framed here.

See :class:`H11Parser`, and :mod:`trioweb.server.parsers` for the interface
it shares with the httptools backend. Sans-I/O, no trio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

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
from .headmeter import HeadMeter

__all__ = ["H11Parser"]

try:
    from h11._readers import request_line_re as _h11_request_line
except ImportError:  # a later h11: _pick_head_reader uses the public API
    pass

#: A request head as h11 reads it: method, target, version, fields.
_Head = tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]


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
    :mod:`trioweb.server.headrules` and the engine), so what it takes of
    h11 is how a request head is read: the request line's pattern, and the
    ``Host``, ``Content-Length`` and ``Transfer-Encoding`` rules, statuses
    and messages. It applies them without h11's objects
    (:func:`_read_head_private`), a tenth of the work of an
    ``h11.Connection`` per request (see docs/performance.md, "h11 backend
    diet"); tests hold the two to the same answers. What the Connection
    also decided -- how a body is framed, what a request's end and the
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
