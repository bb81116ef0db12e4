"""Response compression: gzip, and brotli when the ``brotli`` package is
installed (``pip install brotli``, the ``brotli`` extra). Pure: no trio, no handler.

Turned on by the ``compress_response=True`` application setting. The
handler asks :func:`start_encoding` once, when the response head is about
to go out; if it returns an encoder, every later piece of body goes through
:meth:`ResponseEncoder.compress`. A response is compressed when all of these
hold:

* the client accepts a coding we have (``Accept-Encoding``, with q-values:
  ``gzip;q=0`` refuses gzip, ``*`` stands for any coding not named, and
  the highest q wins, brotli before gzip on a tie);
* its type is compressible (``text/*``, JSON, JavaScript, XML, SVG) --
  ``text/event-stream`` is not: each event must reach the client alone;
* it is at least :data:`MIN_SIZE` bytes, when the size is known (a streamed
  response of unknown length is compressed, flush by flush);
* it has a body: not 1xx/204/304, not a 206 range (a range is of the
  identity bytes), and it has no ``Content-Encoding`` already.

A HEAD is decided as its GET would be (RFC 9110 9.3.2: the same header
fields), on the body the handler wrote, or on the declared
``Content-Length`` when the body is not there (see :func:`head_body_missing`).

Every compressible response gets ``Vary: Accept-Encoding``, compressed or
not, so that caches keep the variants apart; so does a 304 that stands for
such a response (:func:`vary_not_modified`). A compressed response's
``Etag`` gets the coding as a suffix (``"abc"`` -> ``"abc-gzip"``): RFC 9110
8.8.3 says different representations need different strong tags;
:func:`etag_matches_encoded` lets a revalidation with either tag get 304.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterable
from typing import Any

from .httputil import HTTPHeaders, etag_matches

_brotli: Any
try:  # the optional extra (untyped, so imported by name)
    _brotli = importlib.import_module("brotli")
except ImportError:  # pragma: no cover - exercised when brotli is absent
    _brotli = None

__all__ = [
    "MIN_SIZE",
    "ResponseEncoder",
    "available_codings",
    "encoded_etag",
    "etag_matches_encoded",
    "head_body_missing",
    "is_compressible",
    "matching_etag",
    "negotiate",
    "start_encoding",
    "vary_not_modified",
]

#: Bodies smaller than this are sent as they are: a few hundred bytes saved
#: at most, for the compressor's set-up and the header.
MIN_SIZE = 1024

#: gzip level 6 is zlib's default: most of level 9's ratio for a third of
#: its CPU time.
GZIP_LEVEL = 6
#: brotli quality 4 is in the fast range that beats gzip -6 on size and
#: speed; 11 is for files compressed once ahead of time.
BROTLI_QUALITY = 4

_COMPRESSIBLE = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "image/svg+xml",
    }
)


def available_codings() -> tuple[str, ...]:
    """The content codings this process can produce, best first."""
    return ("br", "gzip") if _brotli is not None else ("gzip",)


def is_compressible(content_type: str) -> bool:
    """Whether a response of ``content_type`` is worth compressing."""
    mime = content_type.partition(";")[0].strip().lower()
    if mime == "text/event-stream":
        return False
    return (
        mime.startswith("text/")
        or mime in _COMPRESSIBLE
        or mime.endswith(("+json", "+xml"))
    )


def _qvalue(params: Iterable[str]) -> float | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None  # an invalid q: the whole entry is ignored
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def negotiate(accept_encoding: str, codings: Iterable[str] | None = None) -> str | None:
    """The coding to use for ``Accept-Encoding``, or None for identity.

    ``codings`` is what we can produce, in order of preference (default:
    :func:`available_codings`). ``x-gzip`` counts as ``gzip`` (RFC 9110
    8.4.1.3).

    >>> negotiate("gzip;q=0.5, br;q=0.9", ["br", "gzip"])
    'br'
    >>> negotiate("gzip;q=0, *", ["gzip"]) is None
    True
    """
    offered = list(codings if codings is not None else available_codings())
    weights: dict[str, float] = {}
    star: float | None = None
    for entry in accept_encoding.split(","):
        name, *params = entry.split(";")
        name = name.strip().lower()
        if not name:
            continue
        q = _qvalue(params)
        if q is None:
            continue
        if name == "x-gzip":
            name = "gzip"
        if name == "*":
            star = q
        else:
            weights[name] = q
    best: str | None = None
    best_q = 0.0
    for coding in offered:
        q = weights.get(coding, star if star is not None else 0.0)
        if q > best_q:  # strictly: on a tie the earlier (better) coding stays
            best, best_q = coding, q
    return best


def encoded_etag(etag: str, coding: str) -> str:
    """The entity tag of the ``coding`` representation of ``etag``'s body."""
    if etag.endswith('"'):
        return f'{etag[:-1]}-{coding}"'
    return f"{etag}-{coding}"


def matching_etag(if_none_match: str, etag: str) -> str | None:
    """The tag ``If-None-Match`` matches: ``etag`` itself, the tag of one of
    its compressed variants, or None.

    A 304 must carry the tag of the representation the client has
    (RFC 9110 15.4.5), which is the compressed one when it got that.
    """
    if etag_matches(if_none_match, etag):
        return etag
    for coding in ("br", "gzip"):
        tag = encoded_etag(etag, coding)
        if etag_matches(if_none_match, tag):
            return tag
    return None


def etag_matches_encoded(if_none_match: str, etag: str) -> bool:
    """``etag_matches``, also for the tags of the compressed variants."""
    return matching_etag(if_none_match, etag) is not None


class ResponseEncoder:
    """Compresses one response body, piece by piece.

    Each :meth:`compress` call returns everything the client needs to
    decode what it was given so far (a sync flush), so a streamed response
    stays streamed; ``end=True`` ends the compressed stream.
    """

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "br":
            assert _brotli is not None
            self._br = _brotli.Compressor(quality=BROTLI_QUALITY)
        else:
            # wbits 16 + 15: the gzip wrapper around a 32 KiB-window deflate.
            self._gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def compress(self, data: bytes, *, end: bool) -> bytes:
        """The compressed bytes for ``data`` (and the stream's end if ``end``)."""
        if self.coding == "br":
            out = self._br.process(data) if data else b""
            tail: bytes = self._br.finish() if end else self._br.flush()
            return out + tail
        mode = zlib.Z_FINISH if end else zlib.Z_SYNC_FLUSH
        return self._gz.compress(data) + self._gz.flush(mode)


def _add_vary(headers: HTTPHeaders) -> None:
    current = headers.get("Vary", "")
    names = [v.strip().lower() for v in current.split(",") if v.strip()]
    if "*" in names or "accept-encoding" in names:
        return
    headers["Vary"] = f"{current}, Accept-Encoding" if current else "Accept-Encoding"


def _declared_length(headers: HTTPHeaders) -> int | None:
    declared = headers.get("Content-Length")
    # Bounded before int(): past 4300 digits int() raises.
    if declared is None or not declared.isdigit() or len(declared) > 20:
        return None
    return int(declared)


def head_body_missing(method: str, response_headers: HTTPHeaders, body: bytes) -> bool:
    """Whether a HEAD response declares a body it does not hold.

    A static file's HEAD sets the file's ``Content-Length`` and reads
    nothing: its GET would stream the file, so compression is decided on
    the declared length (``end=False`` to :func:`start_encoding`), and a
    compressed HEAD has no ``Content-Length``, as its GET has none.
    """
    if method != "HEAD":
        return False
    declared = _declared_length(response_headers)
    return declared is not None and len(body) < declared


def vary_not_modified(response_headers: HTTPHeaders) -> None:
    """Give a 304 the ``Vary`` its 200 would have (RFC 9110 15.4.5).

    Call it before the representation headers are cleared: whether the 200
    varies on ``Accept-Encoding`` depends on its ``Content-Type``.
    """
    if is_compressible(response_headers.get("Content-Type", "")):
        _add_vary(response_headers)


def start_encoding(
    *,
    method: str,
    status: int,
    request_headers: HTTPHeaders,
    response_headers: HTTPHeaders,
    body: bytes,
    end: bool,
    min_size: int = MIN_SIZE,
) -> ResponseEncoder | None:
    """Decide whether to compress this response; if so, fix its headers.

    ``body`` is the first piece of the body; ``end`` says whether it is all
    of it. Sets ``Vary`` on a compressible response. When compressing, sets
    ``Content-Encoding``, renames the ``Etag`` and drops ``Content-Length``
    (the caller sets the compressed length when it has the whole body) and
    returns the encoder; otherwise returns None and leaves the rest alone.
    """
    if status < 200 or status in (204, 206, 304):
        return None
    if not is_compressible(response_headers.get("Content-Type", "")):
        return None
    _add_vary(response_headers)
    # HEAD is not excluded: its header fields are GET's (RFC 9110 9.3.2).
    if "Content-Encoding" in response_headers:
        return None
    size = len(body) if end else _declared_length(response_headers)
    if size is not None and size < min_size:
        return None
    coding = negotiate(request_headers.get("Accept-Encoding", ""))
    if coding is None:
        return None
    response_headers["Content-Encoding"] = coding
    if "Content-Length" in response_headers:
        del response_headers["Content-Length"]
    etag = response_headers.get("ETag")
    if etag:
        response_headers["ETag"] = encoded_etag(etag, coding)
    return ResponseEncoder(coding)
