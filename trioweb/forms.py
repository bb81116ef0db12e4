"""Pure parsers for request input: urlencoded forms, header parameters, JSON.

Each parser here reads bytes a client chose, so each has a cap and runs in
time linear in its input, whatever the input: a field count for forms
(``max_form_fields``), a nesting depth for JSON (``max_json_depth``), and no
regular expression that can backtrack. Bad input raises :exc:`HTTPError`
with the status the client should get (400, 413, 415) and a reason phrase
that names the limit or the fault, so the default error page tells the
client what to fix. Nothing here does I/O or imports trio.
"""

from __future__ import annotations

import binascii
import json
import re
import urllib.parse
from array import array
from itertools import accumulate
from typing import Any

from .errors import HTTPError

__all__ = [
    "DEFAULT_MAX_FORM_FIELDS",
    "DEFAULT_MAX_JSON_DEPTH",
    "is_json_type",
    "media_type",
    "parse_header_parameters",
    "parse_json",
    "parse_urlencoded",
]

DEFAULT_MAX_FORM_FIELDS = 1000
DEFAULT_MAX_JSON_DEPTH = 64

# A field is a run of bytes without "&". The regular expression engine skips
# runs of empty fields ("&&&&") in C, so a hostile body of separators costs
# nothing per separator in Python.
_FIELD = re.compile(rb"[^&]+")


def parse_urlencoded(
    data: bytes, max_fields: int = DEFAULT_MAX_FORM_FIELDS, *, what: str = "form"
) -> dict[str, list[bytes]]:
    """Parse a query string or an ``application/x-www-form-urlencoded`` body.

    Names are latin-1 :class:`str` (so any byte survives:
    ``name.encode("latin-1")`` gives it back), values :class:`bytes`, blank
    values kept, ``+`` and ``%XX`` decoded, as in Tornado. It is capped: a
    body with more than ``max_fields`` non-empty fields raises
    ``HTTPError(400)`` as soon as the one over the limit is seen, without
    parsing the rest. ``what`` names the input in the error
    ("query string", "form body").

    >>> parse_urlencoded(b"a=1&a=2&b=x+y")
    {'a': [b'1', b'2'], 'b': [b'x y']}
    """
    result: dict[str, list[bytes]] = {}
    if not data:
        return result
    # The common case, a small form, skips the per-field count.
    fields: Any = (
        data.split(b"&")
        if data.count(b"&") < max_fields
        else (m.group() for m in _FIELD.finditer(data))
    )
    unquote = _unquote
    count = 0
    for field in fields:
        if not field:
            continue
        count += 1
        if count > max_fields:
            raise HTTPError(
                400,
                "%s has more than %d fields",
                what,
                max_fields,
                reason=f"Too many fields in the {what} (max_form_fields={max_fields})",
            )
        name, _, value = field.partition(b"=")
        if b"+" in name:
            name = name.replace(b"+", b" ")
        if b"%" in name:
            name = unquote(name)
        if b"+" in value:
            value = value.replace(b"+", b" ")
        if b"%" in value:
            value = unquote(value)
        result.setdefault(name.decode("latin-1"), []).append(value)
    return result


# Percent-decoding, in C passes. Each %XX becomes quoted-printable's =XX,
# which binascii.a2b_qp decodes, and which leaves a "=" not followed by two
# hex digits as it is -- the leniency a stray "%" needs. Where the escapes
# are is found on a copy with every byte classified: hex digit "h", "%"
# itself, anything else "x"; "%hh" there is an escape. A literal "=" is
# first written =3D, so that a2b_qp decodes it back to itself.
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_CLASSES = bytes(
    ord("h") if byte in _HEX_DIGITS else byte if byte == ord("%") else ord("x")
    for byte in range(256)
)
# In the classified copy an escape's "%" is turned to "="; mapping "=" to
# ord("%") ^ ord("=") and the rest to 0 gives what to XOR the data with.
_PERCENT_TO_EQUALS = bytes(
    ord("%") ^ ord("=") if byte == ord("=") else 0 for byte in range(256)
)
#: How much is decoded at a time: memory stays at the input and the output.
_UNQUOTE_CHUNK = 64 * 1024


def _unquote(data: bytes) -> bytes:
    """``urllib.parse.unquote_to_bytes``, in C passes over the bytes.

    The standard library's loop runs Python code for every ``%`` and keeps
    a list entry for each: a 10 MiB form body of bare ``%`` signs cost
    43 s of CPU (7 s without tracing) and 2 GB of memory, one of
    ``%41%41...`` 7 s and 780 MB. Here every step is a translation, a
    replacement or a big-integer XOR over a 64 KiB chunk (cut where no
    escape straddles the cut), whatever the bytes: about 0.15 s for either
    body, and memory for the output and one chunk.
    """
    if b"%" not in data:
        return data
    pieces = []
    size = len(data)
    start = 0
    while start < size:
        end = start + _UNQUOTE_CHUNK
        if end >= size:
            end = size
        else:
            # An escape must not straddle the cut: cut before a "%" in
            # the two bytes before it (a cut before a "%" is always safe).
            found = data.find(b"%", end - 2, end)
            if found >= 0:
                end = found
        pieces.append(_unquote_chunk(data[start:end]))
        start = end
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _unquote_chunk(data: bytes) -> bytes:
    if b"%" not in data:
        return data
    if b"=" in data:
        data = data.replace(b"=", b"=3D")
    marked = data.translate(_CLASSES).replace(b"%hh", b"=hh")
    flips = int.from_bytes(marked.translate(_PERCENT_TO_EQUALS), "big")
    encoded = (int.from_bytes(data, "big") ^ flips).to_bytes(len(data), "big")
    return binascii.a2b_qp(encoded)


# -- header parameters: Content-Type, Content-Disposition ---------------------

# One parameter, anchored where the previous one ended: "; name=value" or
# "; name="quoted \" value"". The alternatives of the quoted string are
# disjoint (a plain character or an escape), so matching never backtracks
# more than one character, and the scan is one pass over the value.
_PARAM = re.compile(
    r'[ \t]*;[ \t]*([^\s;=]+)[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|[^;]*))?',
    re.DOTALL,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def parse_header_parameters(value: str) -> tuple[str, dict[str, str]]:
    """Split a header like ``Content-Type`` into its value and parameters.

    ``'form-data; name="f"; filename="a.txt"'`` gives ``("form-data",
    {"name": "f", "filename": "a.txt"})``. The value and parameter names are
    lowercased; quoted values are unquoted. An RFC 5987 extended parameter
    (``filename*=UTF-8''na%C3%AFve.txt``) is decoded and replaces the plain
    one of the same name. Malformed pieces are skipped, never an error:
    what a parameter is missing is for the caller to judge. Linear in the
    length of ``value`` (Tornado's parser was quadratic, CVE-2025-67726).
    """
    main, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    pos = 0
    rest = sep + rest
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None:
            # Garbage up to the next ";": skip it.
            nxt = rest.find(";", pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        pos = match.end()
        name = match.group(1).lower()
        raw = (match.group(2) or "").strip(" \t")
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        if name.endswith("*"):
            decoded = _decode_rfc5987(raw)
            if decoded is not None:
                extended[name[:-1]] = decoded
        else:
            params[name] = raw
    params.update(extended)
    return main.strip(" \t").lower(), params


def _decode_rfc5987(value: str) -> str | None:
    # charset'language'percent-encoded-value (RFC 8187 3.2.1).
    charset, sep1, rest = value.partition("'")
    _language, sep2, encoded = rest.partition("'")
    if not (sep1 and sep2):
        return None
    # Only the two charsets RFC 8187 names: the client must not pick any
    # Python codec (unicode_escape, utf-7, ... would decode what it likes).
    codec = _RFC8187_CHARSETS.get(charset.strip().lower() or "utf-8")
    if codec is None:
        return None
    try:
        return urllib.parse.unquote_to_bytes(encoded).decode(codec)
    except (UnicodeDecodeError, ValueError):
        return None


_RFC8187_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1"}


def media_type(content_type: str) -> str:
    """The lowercased media type of a ``Content-Type`` value, parameters
    dropped: ``"Text/HTML; charset=utf-8"`` -> ``"text/html"``."""
    return content_type.partition(";")[0].strip(" \t").lower()


# -- JSON -----------------------------------------------------------------------


def is_json_type(content_type: str) -> bool:
    """Whether ``content_type`` is JSON: ``application/json`` or any
    ``+json`` type (``application/problem+json``)."""
    kind = media_type(content_type)
    return kind == "application/json" or (kind.endswith("+json") and "/" in kind)


def parse_json(
    body: bytes, content_type: str, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> Any:
    """Parse a JSON request body.

    Raises ``HTTPError(415)`` when ``content_type`` is not JSON (see
    :func:`is_json_type`), and ``HTTPError(400)`` for a body that is not
    UTF-8, not JSON, or nested deeper than ``max_depth`` arrays and objects.
    """
    if not is_json_type(content_type):
        raise HTTPError(
            415,
            "expected a JSON body, got Content-Type %r",
            content_type[:100],
            reason="Send JSON with Content-Type: application/json",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(
            400, "JSON body is not UTF-8", reason="Invalid UTF-8 in the JSON body"
        ) from None
    # Measured on the bytes, before json.loads builds anything: a body
    # nested too deeply is refused without its objects, and the C decoder
    # (which recurses per level) never goes deep. A bracket count under the
    # limit proves the depth is fine without measuring it.
    brackets = body.count(b"[") + body.count(b"{")
    if brackets > max_depth and _nesting(body, max_depth) > max_depth:
        raise _too_deep(max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # a defence: _nesting bounds the recursion
        raise _too_deep(max_depth) from None
    except ValueError as exc:
        raise HTTPError(
            400, "invalid JSON body: %s", exc, reason="Invalid JSON in the body"
        ) from None


def _too_deep(max_depth: int) -> HTTPError:
    return HTTPError(
        400,
        "JSON body nested deeper than %d",
        max_depth,
        reason=f"JSON nested too deeply (max_json_depth={max_depth})",
    )


# +1 for an opening bracket, -1 (0xff, a signed char) for a closing one;
# every other byte is deleted.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_NESTING_WINDOW = 16 * 1024


def _nesting(body: bytes, limit: int) -> int:
    """The deepest nesting of arrays and objects in a JSON document, or
    more than ``limit`` once that is certain.

    Exact for valid JSON (and never an error for invalid JSON), in a few
    passes of C over the bytes and no Python code per byte or per
    container: walking the parsed value instead cost several times the
    parse itself, about a microsecond per container, so ten megabytes of
    ``[],[],...`` took over ten seconds.
    """
    # Brackets inside strings do not count. In valid JSON a backslash
    # always starts an escape, so scanning left to right finds exactly
    # the escaped backslashes, then the escaped quotes; without them,
    # every '"' opens or closes a string, and the pieces between quotes
    # are in turn outside and inside strings. UTF-8 never puts an ASCII
    # byte inside a multi-byte character, so this works on the raw bytes.
    # A window at a time: the pieces of a whole body of '"ab"ab"ab...'
    # were millions of objects (200 MB for a 10 MiB body).
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    windows = []
    in_string = False
    for start in range(0, len(unescaped), _NESTING_WINDOW):
        pieces = unescaped[start : start + _NESTING_WINDOW].split(b'"')
        outside = b"".join(pieces[1::2] if in_string else pieces[::2])
        windows.append(outside.translate(_BRACKET_STEPS, _NOT_BRACKETS))
        in_string ^= len(pieces) % 2 == 0  # an odd number of quotes
    steps = b"".join(windows)
    # The usual attack, openers with no closer between them, is one
    # substring search away; the sum below costs more per bracket.
    if b"\x01" * (limit + 1) in steps:
        return limit + 1
    return max(accumulate(array("b", steps)), default=0)
