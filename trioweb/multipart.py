"""multipart/form-data: uploaded files and form fields, parsed by python-multipart.

The byte-level parsing is python-multipart's (a streaming state machine,
linear in its input); this module adds what a server needs around it:

* caps on everything a client chooses: the number of parts
  (``max_multipart_parts``), the size of a part's header block
  (``max_part_header_size``) and its number of headers
  (:data:`MAX_PART_HEADERS`), and the whole body (the request's
  ``max_body_size``);
* :class:`UploadedFile`, Tornado-compatible (``f["body"]`` works), whose
  data spills from memory to an anonymous temporary file once it grows past
  ``spool_size``: memory stays bounded whatever the upload;
* clear errors: every malformed body is an ``HTTPError(400)`` whose reason
  says what is wrong, never a crash.

:class:`MultipartParser` is fed chunk by chunk, so a handler that streams
its body can parse uploads as they arrive::

    parser = MultipartParser(self.request.headers["Content-Type"])
    try:
        async for chunk in self.request.stream():
            parser.feed(chunk)
        fields, files = parser.close()
        ...  # use the files here
    finally:
        # Closes every file the parser made: on error, on cancellation
        # (the client left), and once you are done with them.
        parser.discard()

Pure: no I/O beyond the temporary files, no trio.
"""

from __future__ import annotations

import logging
import tempfile
from typing import IO, Any

import python_multipart
from python_multipart.exceptions import FormParserError

from .errors import HTTPError
from .forms import parse_header_parameters
from .httputil import HTTPHeaders

__all__ = [
    "DEFAULT_MAX_MULTIPART_PARTS",
    "DEFAULT_MAX_PART_HEADER_SIZE",
    "DEFAULT_MULTIPART_SPOOL_SIZE",
    "MAX_PART_HEADERS",
    "MultipartParser",
    "UploadedFile",
]

DEFAULT_MAX_MULTIPART_PARTS = 100
DEFAULT_MAX_PART_HEADER_SIZE = 10 * 1024
DEFAULT_MULTIPART_SPOOL_SIZE = 1024 * 1024
#: Headers in one part. A browser sends two (``Content-Disposition``,
#: ``Content-Type``); the byte cap alone would let 10 KiB hold two thousand
#: tiny ``X:y`` lines, and python-multipart's state machine spends about a
#: microsecond per header byte in Python: a body of 100 such parts (under
#: 1 MB) cost seconds of CPU with the event loop blocked.
MAX_PART_HEADERS = 16

# python-multipart logs a WARNING before raising each parse error; the error
# is reported once, by the handler, so its own line would be a second one (a
# client could fill the log with them, as Tornado's CVE-2025-47287). This
# logger is outside the logging tree and drops everything.
_SILENT = logging.Logger("trioweb.multipart.silent", logging.CRITICAL + 1)


def _bad(message: str) -> HTTPError:
    return HTTPError(400, "malformed multipart body: %s", message, reason=message)


class UploadedFile:
    """One uploaded file from a ``multipart/form-data`` body.

    Attributes:
      filename: The client's name for the file (``filename*`` decoded),
        never trusted as a path: use it for display only.
      content_type: The part's ``Content-Type`` (``application/octet-stream``
        when it has none).
      size: The length of the data in bytes.
      file: A binary file object at offset 0: the data in memory, or in an
        anonymous temporary file when larger than the spool size. Closed
        when the request ends.
      headers: The part's headers.

    ``body`` reads the whole data into memory. Item access works as in
    Tornado's ``HTTPFile``: ``f["filename"]``, ``f["body"]``,
    ``f["content_type"]``.
    """

    __slots__ = ("content_type", "file", "filename", "headers", "size")

    def __init__(
        self,
        filename: str,
        content_type: str,
        file: IO[bytes],
        size: int,
        headers: HTTPHeaders | None = None,
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.file = file
        self.size = size
        self.headers = headers if headers is not None else HTTPHeaders()

    @property
    def body(self) -> bytes:
        """The whole data, read into memory (from offset 0; the file's
        position is kept)."""
        position = self.file.tell()
        try:
            self.file.seek(0)
            return self.file.read()
        finally:
            self.file.seek(position)

    def __getitem__(self, key: str) -> Any:
        if key in ("filename", "body", "content_type"):
            return getattr(self, key)
        raise KeyError(key)

    def close(self) -> None:
        """Close the file (deleting its temporary file, if any)."""
        self.file.close()

    def __repr__(self) -> str:
        return (
            f"UploadedFile(filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={self.size})"
        )


class MultipartParser:
    """Parse a ``multipart/form-data`` body fed in chunks.

    Args:
      content_type: The request's ``Content-Type`` header; its ``boundary``
        parameter is required.
      max_parts: More parts than this is a 400.
      max_header_size: A part whose header block is larger is a 400.
      spool_size: A part's data past this many bytes goes to a temporary
        file instead of memory.

    :meth:`feed` each chunk, then :meth:`close` for the result. Any error
    raises :exc:`HTTPError` (400); :meth:`discard` then closes whatever
    temporary files were made. The size of the whole body is the caller's
    to cap (the request's ``max_body_size`` does it).
    """

    def __init__(
        self,
        content_type: str,
        *,
        max_parts: int = DEFAULT_MAX_MULTIPART_PARTS,
        max_header_size: int = DEFAULT_MAX_PART_HEADER_SIZE,
        spool_size: int = DEFAULT_MULTIPART_SPOOL_SIZE,
    ) -> None:
        kind, params = parse_header_parameters(content_type)
        if kind != "multipart/form-data":
            raise HTTPError(
                415,
                "not multipart/form-data: %r",
                content_type[:100],
                reason="Expected Content-Type: multipart/form-data",
            )
        boundary = params.get("boundary", "")
        if not boundary:
            raise _bad("no boundary in the Content-Type")
        if len(boundary) > 70 or not boundary.isascii() or boundary.endswith(" "):
            # RFC 2046 5.1.1: 1 to 70 characters, not ending in a space.
            raise _bad("invalid boundary in the Content-Type")
        self._max_parts = max_parts
        self._max_header_size = max_header_size
        self._spool_size = spool_size
        self.fields: dict[str, list[bytes]] = {}
        self.files: dict[str, list[UploadedFile]] = {}
        self._parts = 0
        self._header_bytes = 0
        self._header_count = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._data: IO[bytes] | None = None
        self._size = 0
        self._ended = False
        self._failed = False
        try:
            self._parser = python_multipart.MultipartParser(
                boundary.encode("latin-1"),
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
                # One more than ours, so that _on_header_end, which names
                # the limit, is what refuses the part.
                max_header_count=MAX_PART_HEADERS + 1,
                max_header_size=max_header_size,
            )
        except FormParserError as exc:
            raise _bad(f"invalid boundary ({exc})") from None
        self._parser.logger = _SILENT

    # -- feeding ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse the next chunk of the body."""
        if self._failed:
            raise _bad("parser already failed")
        try:
            self._parser.write(data)
        except HTTPError:
            self._failed = True
            raise
        except FormParserError as exc:
            self._failed = True
            raise _bad(str(exc).split(" (", 1)[0] or "bad framing") from None

    def close(self) -> tuple[dict[str, list[bytes]], dict[str, list[UploadedFile]]]:
        """Finish parsing; return ``(fields, files)``.

        A body that ended before its closing boundary is a 400.
        """
        if not self._ended:
            self.discard()
            raise _bad("the body ended before the closing boundary")
        return self.fields, self.files

    def discard(self) -> None:
        """Close every temporary file this parser made (idempotent)."""
        if self._data is not None:
            self._data.close()
            self._data = None
        for uploads in self.files.values():
            for upload in uploads:
                upload.close()

    # -- python-multipart's callbacks ----------------------------------------

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise HTTPError(
                400,
                "multipart body has more than %d parts",
                self._max_parts,
                reason=f"Too many parts in the multipart body "
                f"(max_multipart_parts={self._max_parts})",
            )
        self._header_bytes = 0
        self._header_count = 0
        self._headers = []
        self._size = 0

    def _count_header(self, length: int) -> None:
        self._header_bytes += length
        if self._header_bytes > self._max_header_size:
            raise HTTPError(
                400,
                "multipart part headers larger than %d bytes",
                self._max_header_size,
                reason=f"Part headers too large in the multipart body "
                f"(limit {self._max_header_size} bytes)",
            )

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._header_count += 1
        if self._header_count > MAX_PART_HEADERS:
            raise HTTPError(
                400,
                "multipart part has more than %d headers",
                MAX_PART_HEADERS,
                reason=f"Too many headers in a part of the multipart body "
                f"(limit {MAX_PART_HEADERS})",
            )
        self._headers.append((bytes(self._header_name), bytes(self._header_value)))
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        # Closed in _on_part_end or discard(): it outlives this call.
        self._data = tempfile.SpooledTemporaryFile(max_size=self._spool_size)  # noqa: SIM115

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self._data is not None
        self._data.write(data[start:end])
        self._size += end - start

    def _on_part_end(self) -> None:
        data, self._data = self._data, None
        if data is None:  # pragma: no cover (the library calls in order)
            raise _bad("part without headers")
        try:
            headers = HTTPHeaders.from_raw(
                (name.strip().lower(), value.strip()) for name, value in self._headers
            )
            disposition = headers.get("Content-Disposition")
            if disposition is None:
                raise _bad("a part has no Content-Disposition header")
            kind, params = parse_header_parameters(disposition)
            if kind != "form-data":
                raise _bad("a part's Content-Disposition is not form-data")
            name = params.get("name")
            if not name:
                raise _bad("a part has no name in its Content-Disposition")
        except BaseException:
            data.close()
            raise
        data.seek(0)
        if "filename" in params:
            upload = UploadedFile(
                filename=params["filename"],
                content_type=headers.get("Content-Type", "application/octet-stream"),
                file=data,
                size=self._size,
                headers=headers,
            )
            self.files.setdefault(name, []).append(upload)
        else:
            # A plain field: its value is needed as bytes anyway. Its size is
            # bounded by the body's.
            value = data.read()
            data.close()
            self.fields.setdefault(name, []).append(value)

    def _on_end(self) -> None:
        self._ended = True


def parse_multipart(
    body: bytes,
    content_type: str,
    *,
    max_parts: int = DEFAULT_MAX_MULTIPART_PARTS,
    max_header_size: int = DEFAULT_MAX_PART_HEADER_SIZE,
    spool_size: int = DEFAULT_MULTIPART_SPOOL_SIZE,
) -> tuple[dict[str, list[bytes]], dict[str, list[UploadedFile]]]:
    """Parse a whole ``multipart/form-data`` body: ``(fields, files)``.

    The caller owns the files (close them); on error none are left open.
    """
    parser = MultipartParser(
        content_type,
        max_parts=max_parts,
        max_header_size=max_header_size,
        spool_size=spool_size,
    )
    try:
        parser.feed(body)
        return parser.close()
    except BaseException:
        parser.discard()
        raise
