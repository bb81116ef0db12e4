"""Response serialization: status line, header block, body framing. Pure.

The engine writes responses itself rather than through a parser library, so
every parser backend shares one writer and one set of rules:

* the framing is chosen from the response and the request: no body for HEAD,
  1xx, 204 and 304 (RFC 9110 6.4.1); ``Content-Length`` when the application
  gave one; otherwise chunked for HTTP/1.1 and close-delimited for HTTP/1.0;
* the head is validated before a byte is written: the reason phrase and every
  header value must hold no CR, LF, NUL or other control character, and
  names must be tokens (RFC 9110 5.1, 5.5); a ``Content-Length`` is plain
  ASCII digits (RFC 9110 8.6: ``+10`` or ``1_0``, which ``int()`` would take,
  are not lengths). A bad head is the application's bug: :exc:`ValueError`,
  never bytes on the wire;
* the headers the writer adds (``Date``, ``Transfer-Encoding``,
  ``Connection``) are spelled the conventional way, as constants: HTTP names
  are case-insensitive, but some clients and proxies still compare them
  case-sensitively, and a constant costs nothing per response.
"""

from __future__ import annotations

import re

__all__ = [
    "CHUNKED",
    "CLOSE_DELIMITED",
    "LENGTH",
    "NO_BODY",
    "FramingError",
    "check_final_status",
    "chunk",
    "encode_head",
]

# Body framings (small ints: compared on every send).
NO_BODY = 0
LENGTH = 1
CHUNKED = 2
CLOSE_DELIMITED = 3

LAST_CHUNK = b"0\r\n\r\n"

_CHUNKED_FIELD = b"Transfer-Encoding: chunked\r\n"
_CLOSE_FIELD = b"Connection: close\r\n"

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
# A field value: visible characters, with spaces and tabs only inside.
_VALUE = rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
# One field line: a CR or LF inside the value cannot match.
_LINE = re.compile(_TOKEN + rb": " + _VALUE + rb"\r\n")
_REASON = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")


# Field lines already validated, by their (name, value) pair: the same few
# headers go out on every response, and a dict lookup is cheaper than a
# regex match. Only plain fields are kept (not the framing headers, not
# Connection: close, not Date, which change the framing or the head).
# Bounded: emptied when full, so values that differ per response (an ETag)
# cannot grow it.
_valid_lines: dict[tuple[bytes, bytes], bytes] = {}
_VALID_LINES_SIZE = 1024


class FramingError(Exception):
    """The application's body does not match the framing it declared (more or
    less than its ``Content-Length``)."""


def check_final_status(status: int) -> None:
    """Raise :exc:`ValueError` unless ``status`` can end an exchange.

    A 1xx response is informational: the client keeps waiting for the
    real answer, so sent as the only response it would pair this
    request's answer with the next one's. 101 is sent by
    ``Exchange.upgrade()``, which hands the connection over.
    """
    if status < 200:
        raise ValueError(
            f"status {status} cannot be a final response (1xx is "
            "informational); answer with 200-599, or switch protocols "
            "through Exchange.upgrade()"
        )


def encode_head(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    head_request: bool,
    http11: bool,
    close: bool,
    date: bytes | None = None,
) -> tuple[bytes, int, int, bool]:
    """Serialize a response head; return ``(head, framing, length, close)``.

    ``headers`` are ``(name, value)`` byte pairs; names may be in any case.
    Framing headers are fixed up to match the framing chosen: a chunked
    response gets ``Transfer-Encoding: chunked`` (and loses any
    ``Content-Length``); 204 responses lose both; ``close`` adds
    ``Connection: close``. ``length`` is -1 unless the framing is
    :data:`LENGTH`. ``close`` comes back true when the connection must end
    after this response: asked for, said by the application's own
    ``Connection: close``, or needed by a close-delimited body. ``date`` is
    sent as the ``Date`` header unless ``headers`` hold one already (the
    application's own wins: one ``Date`` per response).

    Raises :exc:`ValueError` for an invalid reason, name or value.
    """
    if _REASON.fullmatch(reason) is None:
        raise ValueError(f"invalid reason phrase {reason!r}")
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code {status!r}")
    length = -1
    chunked_requested = False
    fields = []
    lines = _valid_lines
    for pair in headers:
        try:
            line = lines.get(pair)
        except TypeError:  # unhashable: a list, or bytearrays
            line = None
        if line is not None:
            fields.append(line)
            continue
        name, value = pair
        lower = name.lower()
        if lower in _FRAMING_HEADERS:
            if lower == b"content-length":
                # bytes.isdigit() is ASCII-only: no sign, no "_", no spaces.
                if not value.isdigit():
                    raise ValueError(
                        f"invalid Content-Length {value!r}: it must be the "
                        "body's length in plain decimal digits"
                    )
                try:
                    length = int(value)
                except ValueError:  # past Python's int() digit limit
                    raise ValueError(f"invalid Content-Length {value!r}") from None
            elif value.strip().lower() == b"chunked":
                chunked_requested = True
                continue  # re-added below when the framing is chunked
            else:
                raise ValueError(
                    f"unsupported Transfer-Encoding {value!r}: trioweb frames "
                    "bodies itself (chunked, or Content-Length)"
                )
        elif lower == b"connection" and b"close" in value.lower():
            if close:
                continue  # added once below
            close = True
            continue
        else:
            line = name + b": " + value + b"\r\n"
            if _LINE.fullmatch(line) is None:
                raise ValueError(f"invalid response header {name!r}: {value!r}")
            if lower == b"date":
                date = None
            elif (
                type(pair) is tuple
                and type(name) is bytes
                and type(value) is bytes
                # Unique to each request by design: it would only evict
                # the lines that do repeat.
                and lower != b"x-request-id"
            ):
                if len(lines) >= _VALID_LINES_SIZE:
                    lines.clear()
                lines[pair] = line
            fields.append(line)
            continue
        # Content-Length: a token name and digits, checked above.
        fields.append(name + b": " + value + b"\r\n")
    if date is not None:
        fields.append(b"Date: " + date + b"\r\n")
    if status < 200 or status in (204, 304):
        framing = NO_BODY
        if status == 204 or status < 200:
            # RFC 9110 8.6: no Content-Length in a 1xx or 204 response.
            fields = [f for f in fields if not f.lower().startswith(b"content-length:")]
        length = -1
    elif head_request:
        # The headers are GET's (HEAD may announce the length), the body none.
        framing = NO_BODY
        if length < 0 and http11:
            fields.append(_CHUNKED_FIELD)
        length = -1
    elif length >= 0 and not chunked_requested:
        framing = LENGTH
    elif http11:
        framing = CHUNKED
        if length >= 0:
            fields = [f for f in fields if not f.lower().startswith(b"content-length:")]
            length = -1
        fields.append(_CHUNKED_FIELD)
    else:
        framing = CLOSE_DELIMITED
        fields = [f for f in fields if not f.lower().startswith(b"content-length:")]
        length = -1
        close = True
    if close:
        fields.append(_CLOSE_FIELD)
    status_line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    return status_line + b"".join(fields) + b"\r\n", framing, length, close


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body (empty data: nothing)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)
