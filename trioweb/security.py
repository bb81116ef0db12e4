"""The security rules, as pure functions: signed values, XSRF tokens, origin
checks, redirect targets, security headers.

Nothing here does I/O or knows about trio or handlers, so every rule is
tested on its own; :mod:`trioweb.auth` applies them to requests, and
:class:`~trioweb.RequestHandler` exposes them under Tornado's names.

Wire compatibility with Tornado is a promise, not an accident: a value
signed by :func:`create_signed_value` is the byte string Tornado's
``tornado.web.create_signed_value`` produces for the same inputs, and each
side verifies the other's values and XSRF tokens. An application can move
from Tornado to trioweb (or run both behind one proxy) without logging
anyone out.

Signed values, version 2 (the default)::

    2|1:<key version>|<n>:<timestamp>|<n>:<name>|<n>:<base64 value>|<hex HMAC-SHA256>

Every field but the first and the last carries its length (``<n>:``), and
the signature covers everything before it, the final ``|`` included, so the
cookie's name is bound into the signature: a value signed for one cookie is
refused under another name. Version 1 (``<base64 value>|<timestamp>|<hex
HMAC-SHA1 of name, value and timestamp>``) is still read, unless a caller
asks for ``min_version=2``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "DEFAULT_SECURITY_HEADERS",
    "SafeHTML",
    "SecurityHeaders",
    "XSRFToken",
    "check_cross_origin",
    "create_signed_value",
    "decode_signed_value",
    "decode_xsrf_token",
    "encode_xsrf_token",
    "get_signature_key_version",
    "is_offsite_redirect",
    "origin_matches_host",
    "security_headers_from_setting",
    "xsrf_form_html",
]

#: What ``cookie_secret`` may be: one key, or ``{key_version: key}`` for
#: rotation.
Secret = str | bytes | Mapping[int, str | bytes]

# A version prefix: a decimal number without leading zeros, then "|". A v1
# value (base64 first) can look like one only when its base64 is all digits,
# which base64's 4-character groups make at least 1000: so 1..999 is a
# version, anything else is v1 -- the rule Tornado reads values by.
_VERSION_PREFIX = re.compile(rb"([1-9][0-9]{0,2})\|")
# The numbers a client sends (lengths, key versions, timestamps) are bounded
# before int(): past 4300 digits int() raises ValueError, and no real length
# or Unix time needs more than 20 -- a longer run is a malformed value.
_DIGITS = re.compile(rb"[0-9]{1,20}")
_INTEGER = re.compile(rb"-?[0-9]{1,20}")
_SECONDS_PER_DAY = 86400


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _key_for(secret: Secret, key_version: int | None) -> bytes:
    if isinstance(secret, Mapping):
        if key_version is None:
            raise ValueError(
                "cookie_secret is a {version: key} dict: pass key_version (the "
                "application's key_version setting) to say which key signs"
            )
        if key_version not in secret:
            raise ValueError(
                f"key_version {key_version!r} is not a key of the cookie_secret "
                f"dict (it has {sorted(secret)!r}): add the key or fix key_version"
            )
        return _utf8(secret[key_version])
    return _utf8(secret)


def _signature_v1(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha1)
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode("ascii")


def _signature_v2(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, digestmod=hashlib.sha256).hexdigest().encode("ascii")


def _field(value: bytes) -> bytes:
    return b"%d:%s" % (len(value), value)


def create_signed_value(
    secret: Secret,
    name: str,
    value: str | bytes,
    version: int = 2,
    key_version: int | None = None,
    clock: Callable[[], float] | None = None,
) -> bytes:
    """Sign ``value`` for the cookie (or other use) called ``name``.

    The result holds the value (base64, not encrypted: anyone can read it),
    the time it was signed, and an HMAC that only a holder of ``secret`` can
    produce. :func:`decode_signed_value` gives the value back if nothing was
    changed, the name matches and it is not too old.

    Args:
      secret: The key, or ``{key_version: key}`` when keys are rotated (then
        ``key_version`` picks the signing key; version 2 only).
      name: What the value is for, usually the cookie name. It is signed
        with the value, so the value cannot be replayed under another name.
      value: The data to sign (text is encoded as UTF-8).
      version: 2 (HMAC-SHA256, the default) or 1 (HMAC-SHA1, for systems
        that cannot read version 2 yet).
      key_version: Which key of a ``secret`` dict signs; recorded in the
        value so that the verifier picks the same one.
      clock: Returns the current Unix time (``time.time`` by default).

    Raises:
      ValueError: For an unknown ``version``, or a ``secret`` dict without
        (or without the given) ``key_version``.
    """
    now = (clock or time.time)()
    timestamp = str(int(now)).encode("ascii")
    encoded = base64.b64encode(_utf8(value))
    if version == 1:
        if isinstance(secret, Mapping):
            raise ValueError(
                "version 1 signed values have no key version: use version=2 "
                "with a cookie_secret dict"
            )
        signature = _signature_v1(_utf8(secret), _utf8(name), encoded, timestamp)
        return b"|".join([encoded, timestamp, signature])
    if version == 2:
        signed = b"|".join(
            [
                b"2",
                _field(str(key_version or 0).encode("ascii")),
                _field(timestamp),
                _field(_utf8(name)),
                _field(encoded),
                b"",
            ]
        )
        return signed + _signature_v2(_key_for(secret, key_version), signed)
    raise ValueError(f"unsupported signed value version {version!r}: use 1 or 2")


def _version_of(value: bytes) -> int:
    match = _VERSION_PREFIX.match(value)
    return int(match.group(1)) if match is not None else 1


def _split_v2(value: bytes) -> tuple[int, bytes, bytes, bytes, bytes] | None:
    """The fields of a version 2 value, or None if it is not well formed."""
    rest = value[2:]
    fields = []
    for _ in range(4):
        length, colon, rest = rest.partition(b":")
        if not colon or _DIGITS.fullmatch(length) is None:
            return None
        size = int(length)
        if rest[size : size + 1] != b"|":
            return None
        fields.append(rest[:size])
        rest = rest[size + 1 :]
    key_version, timestamp = fields[0], fields[1]
    if _INTEGER.fullmatch(key_version) is None or _INTEGER.fullmatch(timestamp) is None:
        return None
    return int(key_version), timestamp, fields[2], fields[3], rest


def _b64decode(value: bytes) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_signed_value(
    secret: Secret,
    name: str,
    value: str | bytes | None,
    max_age_days: float = 31,
    min_version: int | None = None,
    clock: Callable[[], float] | None = None,
) -> bytes | None:
    """The value :func:`create_signed_value` signed, or None.

    None whenever the value cannot be trusted: malformed, a signature that
    does not match (any field changed, or another key), signed for another
    ``name``, older than ``max_age_days``, a version below ``min_version``,
    or a key version no longer in a ``secret`` dict. It never raises on
    what a client sends, so it can be fed cookies directly.

    Args:
      secret: The key, or ``{key_version: key}``: a value verifies while
        the key it was signed with is still in the dict.
      name: The name the value must have been signed for.
      value: The signed value (a cookie's text, typically); None and the
        empty string give None.
      max_age_days: How old the signature may be.
      min_version: 2 to refuse version 1 values (the default accepts both).
      clock: Returns the current Unix time (``time.time`` by default).

    Raises:
      ValueError: Only for a ``min_version`` other than None, 1 or 2 (a
        programming error, not bad input).
    """
    if min_version not in (None, 1, 2):
        raise ValueError(f"unsupported min_version {min_version!r}: use 1 or 2")
    if not value:
        return None
    try:
        raw = _utf8(value)
        name_bytes = _utf8(name)
    except UnicodeEncodeError:
        # Lone surrogates cannot be signed text: nobody signed this.
        return None
    now = (clock or time.time)()
    version = _version_of(raw)
    if version < (min_version or 1):
        return None
    if version == 1:
        if isinstance(secret, Mapping):
            return None
        return _decode_v1(_utf8(secret), name_bytes, raw, max_age_days, now)
    if version == 2:
        return _decode_v2(secret, name_bytes, raw, max_age_days, now)
    return None


def _decode_v1(
    key: bytes, name: bytes, value: bytes, max_age_days: float, now: float
) -> bytes | None:
    parts = value.split(b"|")
    if len(parts) != 3:
        return None
    encoded, timestamp, signature = parts
    expected = _signature_v1(key, name, encoded, timestamp)
    if not hmac.compare_digest(signature, expected):
        return None
    # v1 signs the parts without a separator, so digits could move from the
    # end of the value to the front of the timestamp unnoticed: a timestamp
    # with a leading zero, or far in the future, betrays such a shift.
    if _DIGITS.fullmatch(timestamp) is None or timestamp.startswith(b"0"):
        return None
    signed_at = int(timestamp)
    if signed_at < now - max_age_days * _SECONDS_PER_DAY:
        return None
    if signed_at > now + 31 * _SECONDS_PER_DAY:
        return None
    return _b64decode(encoded)


def _decode_v2(
    secret: Secret, name: bytes, value: bytes, max_age_days: float, now: float
) -> bytes | None:
    fields = _split_v2(value)
    if fields is None:
        return None
    key_version, timestamp, signed_name, encoded, signature = fields
    signed = value[: len(value) - len(signature)]
    if isinstance(secret, Mapping):
        if key_version not in secret:
            return None
        key = _utf8(secret[key_version])
    else:
        key = _utf8(secret)
    if not hmac.compare_digest(signature, _signature_v2(key, signed)):
        return None
    if not hmac.compare_digest(signed_name, name):
        return None
    if int(timestamp) < now - max_age_days * _SECONDS_PER_DAY:
        return None
    return _b64decode(encoded)


def get_signature_key_version(value: str | bytes | None) -> int | None:
    """The key version a version 2 signed value names (not verified).

    None for a version 1 value or a malformed one. Use it to re-sign values
    made with an old key: see "Key rotation" in ``docs/security.md``.
    """
    if not value:
        return None
    try:
        raw = _utf8(value)
    except UnicodeEncodeError:
        return None
    if _version_of(raw) != 2:
        return None
    fields = _split_v2(raw)
    return fields[0] if fields is not None else None


# -- XSRF tokens ----------------------------------------------------------------


@attrs.frozen
class XSRFToken:
    """A decoded XSRF token: the secret bytes and when they were made.

    ``version`` is the format it was read from (1 or 2). A version 1 token
    has no timestamp of its own; ``timestamp`` is then the time of reading.
    """

    version: int
    token: bytes
    timestamp: int


def _mask(mask: bytes, data: bytes) -> bytes:
    # XOR with the 4-byte mask repeated (websocket masking): the masked
    # token differs on every page, so compression cannot leak it (BREACH).
    # Done on two big integers, in C: the token to unmask is the client's
    # (a form field up to the body limit), and a Python loop per byte cost
    # 0.9 s of CPU for a 10 MiB _xsrf field.
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    xored = int.from_bytes(data, "big") ^ int.from_bytes(key, "big")
    return xored.to_bytes(size, "big")


def new_xsrf_token() -> bytes:
    """16 random bytes: a fresh, unmasked XSRF token."""
    return os.urandom(16)


def encode_xsrf_token(
    token: bytes, timestamp: float, version: int = 2, mask: bytes | None = None
) -> bytes:
    """The text form of an XSRF token (for the cookie and the forms).

    Version 2, ``2|<mask hex>|<masked token hex>|<timestamp>``, uses a new
    random 4-byte ``mask`` on each call (against BREACH, CVE-2014-9720);
    version 1 is the token in hex. Both are what Tornado writes.
    """
    if version == 1:
        return binascii.b2a_hex(token)
    if version == 2:
        if mask is None:
            mask = os.urandom(4)
        if len(mask) != 4:
            raise ValueError("an XSRF mask is 4 bytes")
        return b"|".join(
            [
                b"2",
                binascii.b2a_hex(mask),
                binascii.b2a_hex(_mask(mask, token)),
                str(int(timestamp)).encode("ascii"),
            ]
        )
    raise ValueError(f"unknown XSRF token version {version!r}: use 1 or 2")


def decode_xsrf_token(
    text: str | bytes | None, clock: Callable[[], float] | None = None
) -> XSRFToken | None:
    """Read an XSRF token of either version, or None if it is malformed.

    A version 2 token must have exactly its four fields, hex mask and
    token, and a decimal timestamp. Anything that does not start like a
    version is read as version 1: hex if it is hex, else its bytes as they
    are (old Tornado versions wrote such tokens). Never raises.
    """
    if not text:
        return None
    try:
        raw = _utf8(text)
    except UnicodeEncodeError:
        return None
    if _VERSION_PREFIX.match(raw) is None:
        try:
            token = binascii.a2b_hex(raw)
        except (binascii.Error, ValueError):
            token = raw
        return XSRFToken(1, token, int((clock or time.time)()))
    parts = raw.split(b"|")
    if parts[0] != b"2" or len(parts) != 4:
        return None
    _, mask_hex, masked_hex, timestamp = parts
    if _DIGITS.fullmatch(timestamp) is None:
        return None
    try:
        mask = binascii.a2b_hex(mask_hex)
        masked = binascii.a2b_hex(masked_hex)
    except (binascii.Error, ValueError):
        return None
    if len(mask) != 4 or not masked:
        return None
    return XSRFToken(2, _mask(mask, masked), int(timestamp))


def xsrf_tokens_match(a: XSRFToken, b: XSRFToken) -> bool:
    """Whether two decoded tokens hold the same secret (in constant time)."""
    return hmac.compare_digest(a.token, b.token)


class SafeHTML(str):
    """Text that is already HTML: template engines insert it unescaped.

    It has the ``__html__`` method Jinja2's (and MarkupSafe's) autoescaping
    honours, without trioweb importing either.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def xsrf_form_html(token: bytes | str, field: str = "_xsrf") -> SafeHTML:
    """The hidden ``<input>`` that carries an XSRF token in a form."""
    text = token.decode("ascii") if isinstance(token, bytes) else token
    return SafeHTML(
        f'<input type="hidden" name="{html.escape(field)}" '
        f'value="{html.escape(text)}"/>'
    )


# -- cross-origin protection ----------------------------------------------------


def origin_matches_host(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names the host a request was sent to.

    Host and port are compared (case-insensitively); the scheme is not, as
    in Tornado: behind a TLS-terminating proxy the server may not know it.
    An origin without a host (``null``) matches nothing.
    """
    try:
        netloc = urllib.parse.urlsplit(origin).netloc.lower()
    except ValueError:  # "http://[" and other unparsable authorities
        return False
    # Tornado compares even an empty netloc; a request without a Host
    # header (HTTP/1.0) must not thereby match "Origin: null".
    return bool(netloc) and netloc == host.lower()


def check_cross_origin(
    sec_fetch_site: str | None,
    origin: str | None,
    host: str,
    is_trusted: Callable[[str], bool],
) -> str | None:
    """Tornado 6.6's cross-origin decision for an unsafe-method request.

    Returns None to allow the request, or the reason to refuse it (for the
    log). The caller skips GET, HEAD and OPTIONS. The table:

    ==================================  ===========================================
    ``Sec-Fetch-Site``                  decision
    ==================================  ===========================================
    ``same-origin`` or ``none``         allow
    absent, no ``Origin``               allow (not a browser)
    absent, ``Origin`` is ``host``      allow
    absent, ``Origin`` trusted          allow
    absent, any other ``Origin``        refuse
    ``same-site``, ``cross-site``, ...  allow only if ``Origin`` is trusted
    ==================================  ===========================================

    ``is_trusted`` is the handler's ``check_trusted_origin`` (by default:
    the origin is in the ``trusted_origins`` setting).
    """
    if sec_fetch_site in ("same-origin", "none"):
        return None
    if sec_fetch_site is None:
        if origin is None:
            return None
        if origin_matches_host(origin, host) or is_trusted(origin):
            return None
        return f"Origin {origin!r} not allowed"
    if origin and is_trusted(origin):
        return None
    return f"Sec-Fetch-Site {sec_fetch_site} & origin {origin!r} not allowed"


# -- redirects --------------------------------------------------------------------

# What browsers remove from a URL before reading it: tabs and line breaks
# anywhere, C0 controls and spaces at the ends.
_URL_IGNORED = re.compile(r"[\t\n\r]")


def is_offsite_redirect(url: str) -> bool:
    """Whether ``url`` is a scheme-relative URL, which leaves the site.

    ``//evil.example/`` (and ``/\\evil.example``, ``\\\\evil.example``: a
    browser reads ``\\`` as ``/``) look like local paths to a careless check
    but send the user to another host. An absolute ``https://...`` URL is
    not flagged: writing one is a deliberate choice.
    """
    cleaned = _URL_IGNORED.sub("", url).lstrip("".join(map(chr, range(33))))
    return len(cleaned) >= 2 and cleaned[0] in "/\\" and cleaned[1] in "/\\"


# -- security headers -------------------------------------------------------------

_FRAME_ANCESTORS = {"DENY": "'none'", "SAMEORIGIN": "'self'"}
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def _check_header_text(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and (
        not isinstance(value, str) or _HEADER_VALUE.fullmatch(value) is None
    ):
        raise ValueError(
            f"security_headers {attribute.name}={value!r}: give printable ASCII "
            "text (no line breaks), or None to leave the header out"
        )


def _check_frame_options(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and value not in _FRAME_ANCESTORS:
        raise ValueError(
            f"security_headers frame_options={value!r}: use 'DENY', 'SAMEORIGIN' "
            "or None"
        )


@attrs.frozen(kw_only=True)
class SecurityHeaders:
    """Response headers that tell browsers to defend the page.

    Turn them on with the ``security_headers=True`` application setting
    (these defaults), a dict of the fields to change
    (``security_headers={"content_security_policy": "default-src 'self'"}``),
    or an instance; a handler class may set its own ``security_headers``
    attribute (False turns them off for it). Give None to leave a header out.

    Attributes:
      hsts: ``Strict-Transport-Security``, sent over https only (over http
        browsers ignore it, and it would pin a site that has no TLS yet).
      nosniff: ``X-Content-Type-Options: nosniff``: no guessing a script
        out of an upload.
      referrer_policy: ``Referrer-Policy``.
      frame_options: ``DENY`` or ``SAMEORIGIN``: sent as ``X-Frame-Options``
        and as the CSP ``frame-ancestors`` directive (``'none'`` /
        ``'self'``), the old and the new way to forbid framing
        (clickjacking).
      content_security_policy: The rest of the ``Content-Security-Policy``;
        ``frame-ancestors`` is added unless it names one itself.
    """

    hsts: str | None = attrs.field(
        default="max-age=31536000; includeSubDomains", validator=_check_header_text
    )
    nosniff: bool = True
    referrer_policy: str | None = attrs.field(
        default="strict-origin-when-cross-origin", validator=_check_header_text
    )
    frame_options: str | None = attrs.field(
        default="DENY", validator=_check_frame_options
    )
    content_security_policy: str | None = attrs.field(
        default=None, validator=_check_header_text
    )

    def headers(self, https: bool) -> list[tuple[str, str]]:
        """The header fields for a response (``https``: sent over TLS)."""
        fields = []
        if https and self.hsts:
            fields.append(("Strict-Transport-Security", self.hsts))
        if self.nosniff:
            fields.append(("X-Content-Type-Options", "nosniff"))
        if self.referrer_policy:
            fields.append(("Referrer-Policy", self.referrer_policy))
        policy = self.content_security_policy or ""
        if self.frame_options:
            fields.append(("X-Frame-Options", self.frame_options))
            if "frame-ancestors" not in policy:
                directive = f"frame-ancestors {_FRAME_ANCESTORS[self.frame_options]}"
                policy = f"{policy.rstrip('; ')}; {directive}" if policy else directive
        if policy:
            fields.append(("Content-Security-Policy", policy))
        return fields


DEFAULT_SECURITY_HEADERS = SecurityHeaders()


def security_headers_from_setting(setting: object) -> SecurityHeaders | None:
    """Read a ``security_headers`` setting: True, a dict, an instance, or off.

    Raises:
      TypeError: For anything else (or a dict with unknown fields), saying
        what to give instead.
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        return DEFAULT_SECURITY_HEADERS
    if isinstance(setting, SecurityHeaders):
        return setting
    if isinstance(setting, Mapping):
        try:
            return SecurityHeaders(**setting)
        except TypeError as exc:
            raise TypeError(
                f"security_headers: {exc}; the fields are hsts, nosniff, "
                "referrer_policy, frame_options and content_security_policy"
            ) from None
    raise TypeError(
        f"security_headers={setting!r}: use True (safe defaults), False, a dict "
        "of SecurityHeaders fields, or a trioweb.SecurityHeaders"
    )
