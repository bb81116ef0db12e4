"""Pure helpers for serving files: path safety, byte ranges, content types,
validators and version hashes. No trio, no handler: unit-testable alone.

:class:`trioweb.StaticFileHandler` (in :mod:`trioweb.static`) is built on
these; ``RequestHandler.static_url`` uses :func:`static_url`.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import stat
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CHUNK_SIZE",
    "RANGE_IGNORED",
    "UNSATISFIABLE",
    "PathRefused",
    "content_type_for",
    "file_etag",
    "parse_range",
    "resolve_under",
    "static_url",
    "version_hash",
]

#: How much of a file one read takes (and so one chunk on the wire).
CHUNK_SIZE = 64 * 1024

#: Where a version hash is computed, how many bytes at a time.
_HASH_CHUNK = 256 * 1024

# A text type gets an explicit charset: browsers otherwise guess, and guess
# latin-1 for a UTF-8 file often enough to matter.
_TEXT_TYPES = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/xml",
        "image/svg+xml",
        "text/javascript",
    }
)


class PathRefused(Exception):
    """A requested path that must not be served (traversal, NUL, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def resolve_under(root: str, relative: str) -> str:
    """The real path of ``relative`` inside ``root``; raise :exc:`PathRefused`.

    ``relative`` is the already percent-decoded path from the URL. Refused
    (404): NUL bytes, backslashes, absolute paths and ``..`` components.
    Refused (403): whatever, once symlinks are resolved, lies outside the
    real path of ``root`` -- a symlink that points out of the root is not
    followed, unlike in Tornado. The returned path may not exist; the caller
    stats it.
    """
    if "\x00" in relative:
        raise PathRefused(404, "a NUL byte in the path")
    if "\\" in relative:
        # Windows separators: never part of a name we serve, and a way to
        # smuggle "..\" past a check that only splits on "/".
        raise PathRefused(404, "a backslash in the path")
    if relative.startswith("/") or os.path.isabs(relative):
        raise PathRefused(404, "an absolute path")
    parts = relative.split("/")
    if ".." in parts:
        raise PathRefused(404, "a '..' path component")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, relative))
    # commonpath rather than startswith: "/srv/static-private" starts with
    # "/srv/static" but is not inside it.
    if full != real_root and os.path.commonpath([real_root, full]) != real_root:
        raise PathRefused(403, f"{relative!r} resolves outside the static root")
    return full


def content_type_for(path: str) -> str:
    """The ``Content-Type`` for a file, from its name (``mimetypes``).

    Text types get ``; charset=utf-8``; a compressed file (``.gz``, ``.br``)
    is what it is, not the type of what it contains; unknown types are
    ``application/octet-stream``.
    """
    mime_type, encoding = mimetypes.guess_type(path)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None:
        return "application/octet-stream"
    if mime_type is None:
        return "application/octet-stream"
    if mime_type.startswith("text/") or mime_type in _TEXT_TYPES:
        return f"{mime_type}; charset=utf-8"
    return mime_type


def file_etag(st: os.stat_result) -> str:
    """A strong entity tag from the file's identity, size and mtime.

    Hashing the content on every request would read the whole file (a
    1 GiB download would cost a 1 GiB read before its first byte); like
    nginx, the tag comes from the metadata, which changes whenever a
    deployment replaces the file.
    """
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


# -- byte ranges -------------------------------------------------------------

#: :func:`parse_range` result: answer 416 (``Content-Range: bytes */N``).
UNSATISFIABLE = "unsatisfiable"
#: :func:`parse_range` result: ignore the header, send the whole file.
RANGE_IGNORED = None

_RANGE_SPEC = re.compile(r"(\d*)-(\d*)")
# A number longer than this is past any file's end; int() of a megabyte of
# digits would be slow (and Python refuses more than 4300 digits anyway).
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS


def _number(digits: str) -> int:
    return _HUGE if len(digits) > _MAX_DIGITS else int(digits)


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Interpret a ``Range`` header for a file of ``size`` bytes.

    Returns ``(start, end)`` (``end`` exclusive) for one satisfiable range,
    :data:`UNSATISFIABLE` when the one range lies past the end, and
    :data:`RANGE_IGNORED` (None) when the whole file should be sent: invalid
    syntax, another unit than ``bytes``, or several ranges (RFC 9110 14.2
    lets a server ignore ``Range``; multipart/byteranges is not worth its
    cost). Linear in the header's length whatever it holds: a header of
    thousands of ranges is refused by one ``","`` search, not parsed
    (Starlette's CVE-2025-62727 was quadratic work here).
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return RANGE_IGNORED
    if "," in spec:
        return RANGE_IGNORED
    match = _RANGE_SPEC.fullmatch(spec.strip())
    if match is None:
        return RANGE_IGNORED
    first, last = match.groups()
    if not first:
        if not last:
            return RANGE_IGNORED  # "bytes=-"
        suffix = _number(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(size - suffix, 0), size
    start = _number(first)
    end = _number(last) + 1 if last else size
    if last and end <= start:
        return RANGE_IGNORED  # "bytes=5-2" is invalid syntax: ignored
    if start >= size:
        return UNSATISFIABLE
    return start, min(end, size)


# -- versioned URLs ----------------------------------------------------------

# path -> ((inode, size, mtime_ns), hash). The key changes when the file
# does, so a deployment that replaces a file gets a new version without a
# restart, and an unchanged file is hashed once.
_versions: dict[str, tuple[tuple[int, int, int], str]] = {}
_versions_lock = threading.Lock()


def version_hash(abspath: str) -> str | None:
    """A short hash of the file's content (None if it cannot be read).

    Computed once per version of the file and cached. The first call for a
    file reads it (in bounded chunks) in the calling thread: static assets
    are small, and this is what makes ``?v=`` URLs cacheable forever.
    """
    try:
        st = os.stat(abspath)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _versions_lock:
        cached = _versions.get(abspath)
    if cached is not None and cached[0] == key:
        return cached[1]
    hasher = hashlib.sha256()
    try:
        with open(abspath, "rb") as file:
            while block := file.read(_HASH_CHUNK):
                hasher.update(block)
    except OSError:
        return None
    digest = hasher.hexdigest()[:20]
    with _versions_lock:
        _versions[abspath] = (key, digest)
    return digest


def static_url(settings: Mapping[str, Any], path: str, include_version: bool) -> str:
    """The URL of static file ``path`` (relative to ``static_path``).

    ``static_url_prefix`` (default ``/static/``) + ``path``, plus
    ``?v=<content hash>`` when ``include_version`` and the file exists.
    """
    root = settings.get("static_path")
    if root is None:
        raise RuntimeError(
            "static_url() needs the 'static_path' application setting: "
            "Application(..., static_path='path/to/static')"
        )
    prefix = str(settings.get("static_url_prefix", "/static/"))
    url = prefix + path.lstrip("/")
    if not include_version:
        return url
    try:
        abspath = resolve_under(str(root), path.lstrip("/"))
    except PathRefused:
        return url
    version = version_hash(abspath)
    return f"{url}?v={version}" if version else url
