"""What a request parser tells the connection engine: events and errors.

Events, in order, for each request:

* a :class:`RequestHead`,
* zero or more ``bytes`` pieces of body,
* :data:`END` when the body is complete;

and :data:`NEED_DATA` whenever more bytes must be fed first, :data:`CLOSED`
when the peer closed cleanly between requests, :data:`PAUSED` while a
complete request waits for the engine to move on. Malformed input raises
:exc:`ProtocolError` with the status the client should get.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CLOSED",
    "END",
    "NEED_DATA",
    "PAUSED",
    "Event",
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

    def __init__(self, status: int, detail: str, *, head: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        #: The refused request is a HEAD: the answer must carry no body.
        self.head = head
