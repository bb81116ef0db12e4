"""The raw request head, measured and checked before any parser sees it.

See :class:`HeadMeter`. Pure: no I/O, no trio.
"""

from __future__ import annotations

import re

from .events import ProtocolError

__all__ = ["CONNECT_REFUSED", "HeadMeter"]

_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://")

#: Why CONNECT is refused (501), by either backend.
CONNECT_REFUSED = "CONNECT is not supported: this server is not a proxy"

# The end of the head: a line feed, an optional CR, a line feed.
_BLANK_LINE = re.compile(b"\n\r?\n")
# The header field lines (RFC 9112 5): a token, a colon, a value of HTAB,
# SP, VCHAR and obs-text, CRLF. So no obs-fold, no whitespace before the
# colon, no control characters, no CR but before LF.
_FIELD_LINES = re.compile(
    rb"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*"
)
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_METHOD_PREFIX = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]*")
# RFC 9112 3: method SP request-target SP HTTP-version (the CR stays out).
_REQUEST_LINE = re.compile(
    rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+ [^\x00-\x20\x7f]+ HTTP/[0-9]\.[0-9]"
)


class HeadMeter:
    """Measures and checks a request head as its bytes arrive, before any
    parser sees them, so that every backend applies the same rules.

    Parsers bound only the head as a whole (if at all), so a request line or
    header block that passes its own limit without ever ending would be held
    until that larger bound or the header timeout. The meter finds the end
    of the request line and of the head incrementally (no copy of the
    buffer, no rescans), so the engine refuses with 414 or 431 the moment a
    limit is passed, and measures a complete head by the same rule, however
    the bytes were split.

    It also holds the head to RFC 9112's strict syntax where parsers differ,
    refusing with 400:

    * a request line other than ``method SP target SP HTTP/x.y`` with single
      spaces;
    * a line ending in a bare LF, or a CR not followed by LF (RFC 9112 2.2
      lets a recipient accept or refuse them);
    * obs-fold, a line starting with whitespace (RFC 9112 5.2 allows
      unfolding it; a front end that does not unfold reads ``Foo: bar\\r\\n
      Content-Length: 38`` as two fields where we would read one);
    * control characters other than HTAB anywhere in the head (RFC 9110
      5.5: BEL, DEL, NUL, ...).

    Parsers that disagree about any of these are how requests get smuggled
    past proxies. Empty lines before the request line are skipped (RFC 9112
    2.2).
    """

    __slots__ = (
        "_head",
        "_line",
        "_tail",
        "error",
        "fields",
        "lf",
        "line",
        "size",
        "status",
        "status_only",
    )

    def __init__(self) -> None:
        #: Bytes of the head seen so far (after any leading empty lines).
        self.size = 0
        #: Offset of the LF that ends the request line; -1 until it arrives.
        self.lf = -1
        #: Length of the request line without its line end; -1 until known.
        self.line = -1
        #: Bytes of the header fields, each with its line end, without the
        #: final blank line; -1 until the head is complete.
        self.fields = -1
        #: Why the head is malformed, once it is known to be.
        self.error: str | None = None
        #: The status to refuse it with.
        self.status = 400
        #: The request is a HEAD: a refusal carries no body.
        self.status_only = False
        self._tail = b""
        self._line = b""
        # The head so far, when it comes in pieces.
        self._head = b""

    def feed(self, data: bytes) -> None:
        if self.fields >= 0:
            return  # the head is complete: what follows is not part of it
        if self.size == 0:
            data = data.lstrip(b"\r\n")
            if not data:
                return
            if self._whole_head(data):
                return
        # Keep two bytes of the previous piece: an end of line or of the head
        # can be split across pieces.
        tail = self._tail
        buf = tail + data
        base = self.size - len(tail)  # offset of buf[0] in the head
        if self.lf < 0:
            lf = buf.find(b"\n")
            if lf < 0:
                self._line += data
                # Refuse garbage as soon as it shows: the method, before the
                # first space, must be a token (checked over a short prefix,
                # so a line trickling in byte by byte costs nothing much).
                prefix = self._line[:64]
                space = prefix.find(b" ")
                method = prefix if space < 0 else prefix[:space]
                if _METHOD_PREFIX.fullmatch(method) is None:
                    self.error = "malformed request line"
            else:
                self.lf = base + lf
                # The LF is in this piece's new bytes: the tail was searched
                # with the piece before.
                line = self._line + buf[len(tail) : lf]
                if not line.endswith(b"\r"):
                    self.error = "a bare LF ends the request line"
                elif _REQUEST_LINE.fullmatch(line, 0, len(line) - 1) is None:
                    self.error = "malformed request line"
                else:
                    self._request_line(line[:-1])
                self.line = self.lf - 1
                self._line = b""
        end = len(buf)
        if self.lf >= 0:
            match = _BLANK_LINE.search(buf, max(0, self.lf - base))
            if match is not None:
                self.fields = base + match.start() - self.lf
                end = match.end()
        # Every LF of the head must follow a CR. Counted over this piece's new
        # bytes only (the tail was counted with the piece before).
        segment = buf[len(tail) : end] if end > len(tail) else b""
        crlfs = segment.count(b"\r\n")
        if segment[:1] == b"\n" and tail[-1:] == b"\r":
            crlfs += 1
        if segment.count(b"\n") != crlfs and self.error is None:
            self.error = "a bare LF ends a line of the head"
        self.size += len(data)
        self._head += data  # bounded: check() refuses a head past the limits
        if self.fields >= 0 and self.error is None:
            start = self.lf + 1
            self._fields(self._head[start : start + self.fields])
            self._head = b""
        self._tail = buf[-2:]

    def _whole_head(self, data: bytes) -> bool:
        # The usual case: the whole head in the first piece, with CRLFs.
        # Measured with a few C-level searches instead of the general walk.
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        lf = data.find(b"\n")
        head_end = end + 4
        if (
            data[lf - 1 : lf] != b"\r"
            or data.count(b"\n", 0, head_end) != data.count(b"\r\n", 0, head_end)
            # A blank line with a bare LF earlier than ours ends the head
            # there: leave it to the general walk.
            or data.find(b"\n\n", 0, head_end) >= 0
        ):
            return False
        if _REQUEST_LINE.fullmatch(data, 0, lf - 1) is None:
            self.error = "malformed request line"
        elif self._request_line(data[: lf - 1]):
            pass
        elif _FIELD_LINES.fullmatch(data, lf + 1, end + 2) is None:
            self._fields(data[lf + 1 : end + 2])
        self.lf = lf
        self.line = lf - 1
        self.fields = end + 1 - lf
        self.size = len(data)
        return True

    def _fields(self, block: bytes) -> None:
        """Check the header field lines, ``block`` (each with its CRLF)."""
        if _FIELD_LINES.fullmatch(block) is not None:
            return
        # Say what is wrong: the most dangerous finding first.
        if block[:1] in (b" ", b"\t") or b"\n " in block or b"\n\t" in block:
            self.error = "obs-fold (a line starting with whitespace)"
        elif _CONTROL.search(block.replace(b"\r\n", b"")) is not None:
            self.error = "a control character in a header field"
        else:
            self.error = "malformed header field line"

    def _request_line(self, line: bytes) -> bool:
        """Apply the request line's rules (the syntax is checked already);
        return True if it is refused.

        Checked here, before either parser sees the head, so that both
        refuse alike whatever else is wrong with it.
        """
        method, target, version = line.split(b" ")
        self.status_only = method == b"HEAD"
        if method == b"CONNECT":
            # llhttp would parse what follows the head as a tunnel, h11 as a
            # body (RFC 9110 9.3.6: CONNECT has none).
            self.error, self.status = CONNECT_REFUSED, 501
        elif version[5:6] != b"1":
            # RFC 9110 6.2: another major version. (A higher minor version is
            # served as 1.1: see headrules.)
            self.error, self.status = "HTTP version not supported", 505
        elif target[:1] != b"/":
            # RFC 9112 3.2: origin-form, absolute-form, or asterisk-form for
            # OPTIONS (authority-form is CONNECT's).
            if target == b"*":
                if method != b"OPTIONS":
                    self.error = "'*' is a request target for OPTIONS only"
            elif _ABSOLUTE_FORM.match(target) is None:
                self.error = "the request target must be a /path or an absolute URI"
        return self.error is not None

    def check(self, max_request_line: int, max_header_size: int) -> None:
        """Raise :exc:`ProtocolError` if the head, complete or not, is too big
        (414, 431) or malformed (400)."""
        if self.line > max_request_line or (
            self.lf < 0 and self.size > max_request_line + 1  # + a CR
        ):
            raise ProtocolError(414, "request line too long")
        if self.lf >= 0:
            fields = self.fields
            if fields < 0:
                # Incomplete: all after the request line, less one byte that
                # may be the CR of the final blank line.
                fields = self.size - self.lf - 2
            if fields > max_header_size:
                raise ProtocolError(431, "header block too large")
        if self.error is not None:
            raise ProtocolError(self.status, self.error, head=self.status_only)
