"""StaticFileHandler: files from a directory, safely, in bounded chunks.

Two ways to use it. The ``static_path`` setting serves a directory under
``static_url_prefix`` (default ``/static/``), and ``self.static_url(name)``
(or ``static_url(name)`` in a template) links to a file with a content-hash
version, ``/static/app.css?v=3f2a...``, that browsers may cache forever::

    app = trioweb.Application(routes, static_path="static")

Or a rule of your own, with ``default_filename`` for directories::

    (r"/docs/(.*)", trioweb.StaticFileHandler,
     {"path": "site/docs", "default_filename": "index.html"})

What it answers: ``Content-Type`` from :mod:`mimetypes`, ``Last-Modified``,
a strong ``Etag``, ``Accept-Ranges: bytes``; 304 for a matching
``If-None-Match`` (or, without one, ``If-Modified-Since``); 206 for one byte
range, 416 for a range past the end, 200 for anything else. A path that
leaves the root -- ``..``, an absolute path, a backslash, NUL, an encoded
slash, or a symlink pointing outside -- is a 403 or 404, never the bytes.

The file is read in 64 KiB chunks in a worker thread (trio's async file
API), each chunk sent before the next is read: memory stays flat whatever
the file size, the event loop never blocks on the disk, every chunk's send
has the server's write timeout, and a client that leaves cancels the
download at once (the file is closed by the ``async with``).
"""

from __future__ import annotations

import datetime
import errno
import os
import stat
from typing import Any

import trio

from . import _files
from .compression import matching_etag
from .dates import parse_http_date
from .errors import HTTPError
from .handler import RequestHandler

__all__ = ["StaticFileHandler"]

# What a client's path can make stat() or open() fail with: each means
# "there is no such file to serve", a 404, not a server error. A name
# longer than the file system allows (ENAMETOOLONG: a URL segment of 256
# bytes) and a symlink loop (ELOOP) are the client's doing too.
_NO_SUCH_FILE = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)


class StaticFileHandler(RequestHandler):
    """Serve the files under ``path``; the URL's first group names the file.

    ``initialize(path, default_filename=None)``: ``path`` is the root
    directory; ``default_filename`` (``"index.html"``, say) is served for a
    directory's URL, which must end in ``/`` (without the slash it
    redirects there). Without ``default_filename`` a directory is 403.

    Override :meth:`set_extra_headers` to add headers to every file.
    """

    SUPPORTED_METHODS = ("GET", "HEAD")
    #: ``Cache-Control`` for versioned (``?v=``) URLs: their content never
    #: changes under that URL, so caches may keep it for a year.
    VERSIONED_CACHE_CONTROL = "max-age=31536000, immutable"

    root: str
    default_filename: str | None

    def initialize(
        self, path: str, default_filename: str | None = None, **kwargs: Any
    ) -> None:
        self.root = os.fspath(path)
        self.default_filename = default_filename

    def set_extra_headers(self, path: str) -> None:
        """Add headers to a file's response (override it; none by default)."""

    async def head(self, path: str) -> None:
        await self._serve(path, include_body=False)

    async def get(self, path: str) -> None:
        await self._serve(path, include_body=True)

    async def _serve(self, path: str, include_body: bool) -> None:
        abspath = self._validate_path(path)
        # stat before open: opening a FIFO would block until a writer came.
        try:
            st = await trio.to_thread.run_sync(os.stat, abspath)
        except PermissionError:
            raise HTTPError(403, "cannot stat %s", abspath) from None
        except OSError as exc:
            if exc.errno not in _NO_SUCH_FILE:
                raise
            raise HTTPError(404) from None
        if stat.S_ISDIR(st.st_mode):
            await self._serve_directory(path, include_body)
            return
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(404, "%s is not a regular file", abspath)
        try:
            file = await trio.open_file(abspath, "rb")
        except PermissionError:
            raise HTTPError(403, "cannot read %s", abspath) from None
        except OSError as exc:
            if exc.errno not in _NO_SUCH_FILE:
                raise
            raise HTTPError(404) from None  # replaced since the stat
        async with file:
            # The headers describe the file we opened, even if it was
            # replaced since the stat.
            st = await trio.to_thread.run_sync(os.fstat, file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise HTTPError(404, "%s is not a regular file", abspath)
            start, end = self._prepare_headers(path, st)
            if not include_body or self._status_code in (304, 416):
                await self.finish()
                return
            await file.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await file.read(min(_files.CHUNK_SIZE, remaining))
                if not chunk:
                    break  # the file shrank: finish() reports the short body
                remaining -= len(chunk)
                self.write(chunk)
                await self.flush()
        await self.finish()

    def _validate_path(self, path: str) -> str:
        # The router has already percent-decoded the path: an encoded slash
        # or backslash is only visible in the raw one. Either would make
        # one URL segment two path components.
        raw = self.request.path.lower()
        if "%2f" in raw or "%5c" in raw:
            raise HTTPError(404, "an encoded slash in %r", self.request.path)
        try:
            return _files.resolve_under(self.root, path)
        except _files.PathRefused as refused:
            raise HTTPError(refused.status, "%s", refused.reason) from None

    async def _serve_directory(self, path: str, include_body: bool) -> None:
        if self.default_filename is None:
            raise HTTPError(403, "%r is a directory", path)
        request_path = self.request.path
        if not request_path.endswith("/"):
            target = request_path + "/"
            # "//host/" or "/\host/" in a Location header is another site
            # to a browser (Tornado's CVE-2023-28370 open redirect).
            if target.startswith(("//", "/\\")):
                raise HTTPError(403, "refusing to redirect to %r", target)
            if self.request.query:
                target += "?" + self.request.query
            await self.redirect(target, permanent=True)
            return
        directory = path.rstrip("/")
        index = self.default_filename
        await self._serve(f"{directory}/{index}" if directory else index, include_body)

    def _prepare_headers(self, path: str, st: os.stat_result) -> tuple[int, int]:
        """Set the status and headers; return the byte range to send."""
        size = st.st_size
        etag = _files.file_etag(st)
        modified = datetime.datetime.fromtimestamp(int(st.st_mtime), datetime.UTC)
        self.set_header("ETag", etag)
        self.set_header("Last-Modified", modified)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Type", _files.content_type_for(path))
        if "v" in self.request.query_arguments:
            self.set_header("Cache-Control", self.VERSIONED_CACHE_CONTROL)
        self.set_extra_headers(path)
        if self._not_modified(etag, modified):
            self.set_status(304)
            return 0, 0
        byte_range = self._wanted_range(size, etag, modified)
        if byte_range == _files.UNSATISFIABLE:
            self.set_status(416)
            self.set_header("Content-Range", f"bytes */{size}")
            self.clear_header("Content-Type")
            return 0, 0
        if isinstance(byte_range, tuple):
            start, end = byte_range
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            start, end = 0, size
        self.set_header("Content-Length", end - start)
        return start, end

    def _not_modified(self, etag: str, modified: datetime.datetime) -> bool:
        headers = self.request.headers
        # RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only
        # counts when there is none.
        if_none_match = headers.get("If-None-Match")
        if if_none_match is not None:
            matched = matching_etag(if_none_match, etag)
            if matched is not None:
                # The tag of the variant the client has (maybe compressed).
                self.set_header("ETag", matched)
            return matched is not None
        since = headers.get("If-Modified-Since")
        if since is None:
            return False
        date = parse_http_date(since)
        return date is not None and modified <= date

    def _wanted_range(
        self, size: int, etag: str, modified: datetime.datetime
    ) -> tuple[int, int] | str | None:
        header = self.request.headers.get("Range")
        if header is None or self.request.method != "GET":
            return _files.RANGE_IGNORED
        if_range = self.request.headers.get("If-Range")
        if if_range is not None:
            # RFC 9110 13.1.5: the range only applies to the version the
            # client has (a strong tag, or exactly the date we sent).
            if if_range.startswith('"'):
                if if_range != etag:
                    return _files.RANGE_IGNORED
            elif parse_http_date(if_range) != modified:
                return _files.RANGE_IGNORED
        return _files.parse_range(header, size)
