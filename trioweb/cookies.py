"""Cookies: the ``Cookie`` request header parsed, ``Set-Cookie`` formatted.
Pure: no I/O, no trio.

Parsing is lenient, as browsers and Tornado are, and linear in the header's
length; formatting is strict: a name, value or attribute that could inject
another attribute or header is refused with :exc:`ValueError` (the
application's bug, never bytes on the wire).
"""

from __future__ import annotations

import datetime
import re

from .dates import format_timestamp

__all__ = ["format_set_cookie", "parse_cookie"]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_cookie(cookie: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header into a dict of names to values.

    Lenient, the way browsers are and the way Tornado is: fields are split
    on ``;``, a field without ``=`` is a value with the empty name (some
    browsers send that), surrounding whitespace is dropped, and a value in
    double quotes is unquoted the way :mod:`http.cookies` quoted it
    (``\\"``, ``\\\\`` and ``\\ooo`` octal escapes). When a name occurs
    twice the last value wins. Nothing here raises: a malformed cookie
    header is the client's problem, not a reason to fail the request.

    >>> parse_cookie('a=1; b="x y"; c')
    {'a': '1', 'b': 'x y', '': 'c'}
    """
    cookies: dict[str, str] = {}
    for field in cookie.split(";"):
        name, eq, value = field.partition("=")
        if not eq:
            name, value = "", name
        name = name.strip()
        value = value.strip()
        if name or value:
            cookies[name] = _unquote_cookie(value)
    return cookies


# One pass, left to right, so the work is linear in the length of the value
# (a hostile cookie cannot make it quadratic).
_COOKIE_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))", re.DOTALL)


def _cookie_unescape(match: re.Match[str]) -> str:
    octal = match.group(1)
    if octal is not None:
        return chr(int(octal, 8))
    return match.group(2)


def _unquote_cookie(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    value = value[1:-1]
    if "\\" not in value:
        return value
    return _COOKIE_ESCAPE_RE.sub(_cookie_unescape, value)


# The characters a cookie value may hold without quotes, as http.cookies
# defines them; any other character makes the value quoted.
_COOKIE_LEGAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~:"
)
# Never valid in a value, quoted or not: controls and space, because they
# break the header; ';' and ',' because browsers split cookies on them
# whatever the quotes say; and anything beyond latin-1, which cannot be sent.
_COOKIE_VALUE_INVALID_RE = re.compile(r"[\x00-\x20\x7f;,]|[^\x00-\xff]")
_COOKIE_ATTR_INVALID_RE = re.compile(r"[\x00-\x1f\x7f;]|[^\x00-\x7f]")
_SAMESITE_VALUES = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _quote_cookie_value(value: str) -> str:
    if _COOKIE_LEGAL_CHARS.issuperset(value):
        return value
    escaped = []
    for char in value:
        if char == '"' or char == "\\":
            escaped.append("\\" + char)
        elif char >= "\x80":
            escaped.append(f"\\{ord(char):03o}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def format_set_cookie(
    name: str,
    value: str,
    *,
    domain: str | None = None,
    expires: float | datetime.datetime | None = None,
    path: str | None = "/",
    max_age: int | None = None,
    httponly: bool = False,
    secure: bool = False,
    samesite: str | None = None,
) -> str:
    """Build the value of a ``Set-Cookie`` response header.

    >>> format_set_cookie("session", "abc123", httponly=True)
    'session=abc123; Path=/; HttpOnly'

    Args:
      name: The cookie name: an RFC 9110 token (letters, digits and
        ``!#$%&'*+-.^_`|~``).
      value: The cookie value. It is put in double quotes, with ``"`` and
        ``\\`` escaped, when it holds a character that is not safe bare
        (``=`` or ``/`` for example), exactly as :mod:`http.cookies` does, so
        :func:`parse_cookie` reads it back unchanged. Characters from
        U+0080 to U+00FF become octal escapes.
      domain: The ``Domain`` attribute; omitted when ``None``.
      expires: When the cookie expires, as a Unix timestamp or a
        :class:`~datetime.datetime` (naive means UTC). ``0`` is a valid time
        (1970), which is how a cookie is deleted.
      path: The ``Path`` attribute, ``/`` by default; ``None`` omits it.
      max_age: Seconds until the cookie expires (``Max-Age``). ``0`` deletes
        the cookie now.
      httponly: Hide the cookie from JavaScript.
      secure: Send the cookie over HTTPS only.
      samesite: ``"Strict"``, ``"Lax"`` or ``"None"``, in any case.
        ``"None"`` requires ``secure=True``, since browsers drop the cookie
        otherwise.

    Raises:
      ValueError: When the name or value cannot be sent as a cookie (a
        control character, a space, ``;`` or ``,`` in either, a name that is
        not a token), when the domain or path holds ``;``, a control
        character or non-ASCII text, or when ``samesite`` is invalid.
    """
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(
            f"invalid cookie name {name!r}: a name is one or more letters, digits"
            " or !#$%&'*+-.^_`|~ (no spaces, '=', ';', ',' or control characters)"
        )
    if _COOKIE_VALUE_INVALID_RE.search(value):
        raise ValueError(
            f"invalid value for cookie {name!r}: {value!r} holds a space, ';', ',',"
            " a control character or a character beyond U+00FF; encode the value"
            " first (for example with base64 or percent-encoding)"
        )
    parts = [f"{name}={_quote_cookie_value(value)}"]
    if expires is not None:
        parts.append(f"expires={format_timestamp(expires)}")
    if path:
        _check_cookie_attribute("path", path)
        parts.append(f"Path={path}")
    if domain:
        _check_cookie_attribute("domain", domain)
        parts.append(f"Domain={domain}")
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        canonical = _SAMESITE_VALUES.get(samesite.lower())
        if canonical is None:
            raise ValueError(
                f"invalid samesite {samesite!r}: use 'Strict', 'Lax' or 'None'"
            )
        if canonical == "None" and not secure:
            raise ValueError(
                "samesite='None' requires secure=True: browsers reject a"
                " SameSite=None cookie that is not Secure"
            )
        parts.append(f"SameSite={canonical}")
    return "; ".join(parts)


def _check_cookie_attribute(attribute: str, value: str) -> None:
    if _COOKIE_ATTR_INVALID_RE.search(value):
        raise ValueError(
            f"invalid cookie {attribute} {value!r}: it must not hold ';', control"
            " characters or non-ASCII text (percent-encode a path, IDNA-encode a"
            " domain)"
        )
