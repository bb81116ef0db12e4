"""Request parsers: bytes in, request events out. Sans-I/O, no trio.

The connection engine (:mod:`trioweb.http1`) reads requests through this
small interface, so the parsing library is a choice the engine does not
depend on. Events, in order, for each request:

* a :class:`RequestHead`,
* zero or more ``bytes`` pieces of body,
* :data:`END` when the body is complete;

and :data:`NEED_DATA` whenever more bytes must be fed first, :data:`CLOSED`
when the peer closed cleanly between requests. Malformed input raises
:exc:`ProtocolError` with the status the client should get.

A parser reads one request at a time: after :data:`END` it returns
:data:`PAUSED` until the engine, done with the response, calls
:meth:`H11Parser.next_request`. Bytes of pipelined requests wait in the
parser's buffer meanwhile.
"""

from __future__ import annotations

from typing import Final

import h11

__all__ = [
    "CLOSED",
    "END",
    "NEED_DATA",
    "PAUSED",
    "Event",
    "H11Parser",
    "ProtocolError",
    "RequestHead",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
END: Final = _Sentinel("END")
CLOSED: Final = _Sentinel("CLOSED")
PAUSED: Final = _Sentinel("PAUSED")


class RequestHead:
    """The request line and header fields, as bytes.

    ``headers`` holds ``(name, value)`` pairs in arrival order, names in
    lower case.
    """

    __slots__ = ("headers", "http_version", "method", "target")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers

    def __repr__(self) -> str:
        return (
            f"RequestHead({self.method!r}, {self.target!r}, "
            f"{self.http_version!r}, {self.headers!r})"
        )


Event = RequestHead | bytes | _Sentinel


class ProtocolError(Exception):
    """The request is malformed; answer ``status`` and close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class H11Parser:
    """The default parser: h11's request reader.

    h11 is a full connection state machine, responses included. trioweb
    writes responses itself (:mod:`trioweb.writer`), so it uses a fresh
    ``h11.Connection`` per request, only ever reading from it: that costs
    less than a third of driving h11's response side for every request, and
    keeps the read side exactly h11's.
    """

    __slots__ = ("_conn", "_max_head")

    def __init__(self, max_head: int) -> None:
        self._max_head = max_head
        # Made when the first byte of a request arrives: an idle keep-alive
        # connection holds no h11 state (about 0.9 KiB each).
        self._conn: h11.Connection | None = None

    def _new_conn(self) -> h11.Connection:
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._max_head
        )
        return self._conn

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed (EOF)."""
        (self._conn or self._new_conn()).receive_data(data)

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA` (see the module docs)."""
        if self._conn is None:
            return NEED_DATA
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(exc.error_status_hint, str(exc)) from None
        kind = type(event)
        if kind is h11.Data:
            return bytes(event.data)  # type: ignore[union-attr]
        if kind is h11.Request:
            return RequestHead(
                event.method,  # type: ignore[union-attr]
                event.target,  # type: ignore[union-attr]
                event.http_version,  # type: ignore[union-attr]
                list(event.headers),  # type: ignore[union-attr]
            )
        if kind is h11.EndOfMessage:
            return END
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        return CLOSED  # h11.ConnectionClosed

    def buffered(self) -> bytes:
        """The bytes received and not yet parsed (a copy)."""
        return b"" if self._conn is None else self._conn.trailing_data[0]

    def next_request(self) -> bytes:
        """Get ready for the next request; return the bytes already buffered."""
        if self._conn is None:
            return b""
        data, closed = self._conn.trailing_data
        self._conn = None
        if data or closed:
            conn = self._new_conn()
            if data:
                conn.receive_data(data)
            if closed:
                conn.receive_data(b"")
        return data
