"""Chunked request bodies (RFC 9112 7.1), decoded strictly. Sans-I/O, no trio.

Both parser backends hand a chunked body to this reader instead of their
library's: h11 accepts chunk lines that RFC 9112 does not (``2;`` with an
empty extension, ``a `` with a space after the size, control characters in
an extension), and llhttp, fed past the end of a chunked body, parses the
requests pipelined after it where trioweb cannot check their heads. One
strict reader for both means both backends frame a chunked body identically
-- the property request smuggling attacks -- and the engine always knows
where the body ends and the next request begins.

The grammar accepted, with no whitespace anywhere::

    chunk      = 1*HEXDIG *( ";" token [ "=" ( token / quoted-string ) ] ) CRLF
                 chunk-data CRLF
    last-chunk = 1*"0" *( ";" ... ) CRLF
    trailers   = *( field-line CRLF ) CRLF

Trailer fields are read, checked and dropped: they never reach the request
headers, so a trailer cannot pose as ``Host``, ``Authorization`` or any other
field the application trusts.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ChunkedBodyError", "ChunkedReader"]

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]+)(?:;" + _TOKEN + rb"(?:=(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
# A trailer field line: as a header field line, without obs-fold.
_FIELD_LINE = re.compile(_TOKEN + rb":[ \t]*[\t\x20-\x7e\x80-\xff]*")

#: The longest chunk-size line accepted (size, extensions, CRLF).
MAX_CHUNK_LINE: Final = 4096

_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedBodyError(Exception):
    """The chunked body is malformed (400) or too large (413, 431)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ChunkedReader:
    """Decode one chunked body from bytes fed to it.

    :meth:`feed` adds received bytes (``b""`` for the peer's EOF);
    :meth:`read` returns the next piece of body data, ``b""`` when it needs
    more bytes first, or ``None`` once the body, trailers included, is
    complete. Bytes past the end of the body stay in :attr:`leftover` for
    the next request.

    ``limit``, when set, is the body size the request may have: a chunk
    whose declared size takes the body past it is refused with 413 as soon
    as its size line arrives, not after waiting for bytes that a well-behaved
    client would never send.
    """

    __slots__ = (
        "_buf",
        "_closed",
        "_declared",
        "_left",
        "_pos",
        "_state",
        "_trailer_bytes",
        "limit",
        "max_trailer_size",
    )

    def __init__(self, data: bytes = b"", *, max_trailer_size: int = 16 * 1024) -> None:
        self._buf = data
        self._pos = 0
        self._state = _SIZE
        self._left = 0
        self._declared = 0
        self._trailer_bytes = 0
        self._closed = False
        self.limit: int | None = None
        self.max_trailer_size = max_trailer_size

    @property
    def done(self) -> bool:
        """True once the last chunk and the trailer section were read."""
        return self._state == _DONE

    @property
    def closed(self) -> bool:
        """True once the peer's EOF was fed."""
        return self._closed

    @property
    def leftover(self) -> bytes:
        """The bytes received and not (yet) consumed by the body."""
        return self._buf[self._pos :] if self._pos else self._buf

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed (EOF)."""
        if not data:
            self._closed = True
        elif self._pos >= len(self._buf):
            self._buf, self._pos = data, 0
        else:
            self._buf = self._buf[self._pos :] + data
            self._pos = 0

    def read(self) -> bytes | None:
        """The next piece of body, ``b""`` for "feed me", ``None`` at the end.

        A piece is all the body data buffered, across chunk boundaries: a
        body sent as thousands of one-byte chunks comes out in a few pieces,
        not one per chunk (each piece costs its reader a round trip through
        the exchange and the handler's loop).

        Raises :exc:`ChunkedBodyError` when the framing is broken, a chunk
        outgrows :attr:`limit`, or the peer closed before the end.
        """
        pieces: list[bytes] = []
        while True:
            state = self._state
            if state == _DATA:
                buf, pos = self._buf, self._pos
                available = len(buf) - pos
                if not available:
                    break
                n = min(available, self._left)
                self._left -= n
                if not self._left:
                    self._state = _DATA_END
                if pos == 0 and n == len(buf):
                    self._buf, self._pos = b"", 0
                    pieces.append(buf)
                else:
                    self._pos = pos + n
                    pieces.append(buf[pos : pos + n])
                continue
            if state == _DONE:
                return None
            if state == _TRAILERS and pieces:
                # The data first; the end comes with the next read, so that
                # done is never true while a piece is still unread.
                break
            if state == _DATA_END:
                if len(self._buf) - self._pos < 2:
                    break
                if self._buf[self._pos : self._pos + 2] != b"\r\n":
                    raise ChunkedBodyError(400, "chunk data not followed by CRLF")
                self._pos += 2
                self._state = _SIZE
                continue
            line = self._line()
            if line is None:
                break
            if state == _SIZE:
                self._size_line(line)
            elif line:
                self._trailer_bytes += len(line) + 2
                if self._trailer_bytes > self.max_trailer_size:
                    raise ChunkedBodyError(431, "trailer section too large")
                if _FIELD_LINE.fullmatch(line) is None:
                    raise ChunkedBodyError(400, "malformed trailer field")
            else:
                self._state = _DONE
                return None
        if pieces:
            # What is here is returned before a missing end is reported.
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return self._need()

    def _need(self) -> bytes:
        if self._closed:
            raise ChunkedBodyError(400, "peer closed the connection mid-body")
        return b""

    def _line(self) -> bytes | None:
        """The next CRLF-terminated line (without the CRLF), or None."""
        buf, pos = self._buf, self._pos
        lf = buf.find(b"\n", pos, pos + MAX_CHUNK_LINE)
        if lf < 0:
            if len(buf) - pos >= MAX_CHUNK_LINE:
                raise ChunkedBodyError(400, "chunk line too long")
            return None
        if lf == pos or buf[lf - 1] != 0x0D:  # 0x0D: CR
            raise ChunkedBodyError(400, "a bare LF ends a chunk line")
        self._pos = lf + 1
        return buf[pos : lf - 1]

    def _size_line(self, line: bytes) -> None:
        match = _SIZE_LINE.fullmatch(line)
        if match is None:
            raise ChunkedBodyError(400, "malformed chunk size line")
        digits = match.group(1).lstrip(b"0")
        limit = self.limit
        if len(digits) > 15:  # past 2**60: no body limit is that large
            raise ChunkedBodyError(413, "chunk size larger than any body limit")
        size = int(digits or b"0", 16)
        self._declared += size
        if limit is not None and self._declared > limit:
            raise ChunkedBodyError(413, f"chunked body exceeds {limit} bytes")
        if size:
            self._left = size
            self._state = _DATA
        else:
            self._state = _TRAILERS
