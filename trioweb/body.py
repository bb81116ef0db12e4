"""Reading a request body: streamed, bounded, decompressed.

The connection engine hands out the body chunk by chunk
(:meth:`~trioweb.server.http1.Exchange.receive_body`: bounded by the request's
``max_body_size``, the body timeout between chunks, ``100 Continue`` sent on
the first read). This module is the web layer's side of it:

* :class:`BodyStream`, what ``async for chunk in self.request.stream():``
  iterates. The engine reads from the socket only as fast as the handler
  asks for chunks, so a slow handler slows the client down (backpressure)
  and the server never buffers more than its read-ahead;
* :class:`Decompressor`: ``Content-Encoding: gzip``/``deflate`` decoded as it
  streams (the ``decompress_request`` setting), its output capped by the
  same ``max_body_size``, so a gzip bomb is a 413 before it is inflated;
* :func:`stream_request_body`, Tornado's class decorator, and
  :class:`HandlerBody`, from which :class:`~trioweb.RequestHandler` inherits
  ``data_received()`` and the reading of the body before or after
  ``prepare()``.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, TypeVar

from ._concurrency import maybe_await
from .errors import HTTPError, HTTPInputError

if TYPE_CHECKING:
    from .request import HTTPServerRequest
    from .server.exchange import Exchange

__all__ = ["BodyStream", "Decompressor", "HandlerBody", "stream_request_body"]

_T = TypeVar("_T", bound=type)

# Each piece the decompressor hands out is at most this large, so a small
# compressed chunk never becomes a large allocation.
_PIECE = 64 * 1024


def stream_request_body(cls: _T) -> _T:
    """Class decorator: the handler reads its body as it arrives.

    Without it, trioweb reads the whole body (up to ``max_body_size``)
    before ``prepare()``. With it, ``prepare()`` runs first, and then
    either

    * the method reads the body itself, trio style::

          @trioweb.stream_request_body
          class Upload(trioweb.RequestHandler):
              async def put(self):
                  async for chunk in self.request.stream():
                      ...

    * or, Tornado style, the class defines ``data_received(chunk)`` (sync or
      async), called with each chunk before the method runs.

    The same as setting the class attribute ``stream_request_body = True``.
    """
    setattr(cls, "stream_request_body", True)  # noqa: B010 (any class)
    return cls


# The first two bytes of every gzip member (RFC 1952 2.3.1).
_GZIP_MAGIC = b"\x1f\x8b"


class Decompressor:
    """Decode a ``gzip`` or ``deflate`` body incrementally, its output capped.

    ``max_size`` bounds the decoded total: one byte more raises
    ``HTTPError(413)`` without inflating further. Corrupt data is a 400.
    A gzip body may hold several members, one after the other (RFC 1952
    2.2): each is decoded, the cap counting them all; anything after the
    last member that is not another one is a 400, as is anything after a
    deflate stream.
    """

    def __init__(self, encoding: str, max_size: int) -> None:
        # 31: a gzip header and trailer; 15: zlib's (what HTTP calls
        # "deflate").
        self._wbits = 31 if encoding == "gzip" else 15
        self._zlib = zlib.decompressobj(self._wbits)
        # Bytes after a finished member, too few yet to tell a new one.
        self._between = b""
        self.encoding = encoding
        self.max_size = max_size
        self.size = 0

    def decompress(self, data: bytes) -> list[bytes]:
        """The decoded pieces of ``data``: each 64 KiB, but the last.

        What one chunk decodes to is joined across members: a body of
        thousands of tiny gzip members (20 bytes each, one decoded byte)
        made thousands of one-byte pieces, each a round trip through the
        handler's loop (``data_received()``, ``async for``).
        """
        pieces = []
        joined = bytearray()
        pending = data
        while pending:
            if self._zlib.eof:
                pending = self._next_member(pending)
                if not pending:
                    break
            try:
                piece = self._zlib.decompress(pending, _PIECE - len(joined))
            except zlib.error as exc:
                raise HTTPError(
                    400,
                    "bad %s request body: %s",
                    self.encoding,
                    exc,
                    reason=f"Corrupt {self.encoding} request body",
                ) from None
            self._count(piece)
            joined += piece
            if len(joined) == _PIECE:
                pieces.append(bytes(joined))
                joined.clear()
            # At the end of a stream what follows it is unused_data (and
            # unconsumed_tail may still hold the same bytes: not both).
            if self._zlib.eof:
                pending = self._zlib.unused_data
            else:
                pending = self._zlib.unconsumed_tail
        if joined:
            pieces.append(bytes(joined))
        return pieces

    def _next_member(self, data: bytes) -> bytes:
        # What follows a finished stream: another gzip member (its magic
        # number first), or garbage. Returns the bytes to decode; empty
        # while the magic number is not all there yet.
        rest = self._between + data
        if self.encoding == "gzip" and len(rest) < 2 and _GZIP_MAGIC.startswith(rest):
            self._between = rest
            return b""
        if self.encoding != "gzip" or not rest.startswith(_GZIP_MAGIC):
            raise HTTPError(
                400,
                "%d bytes of garbage after the %s request body",
                len(rest),
                self.encoding,
                reason=f"Trailing garbage after the {self.encoding} request body",
            )
        self._between = b""
        self._zlib = zlib.decompressobj(self._wbits)
        return rest

    def flush(self) -> bytes:
        """Whatever is left at the end of the body."""
        if not self._zlib.eof or self._between:
            raise HTTPError(
                400,
                "%s request body is truncated",
                self.encoding,
                reason=f"Truncated {self.encoding} request body",
            )
        return b""

    def _count(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.max_size:
            raise HTTPInputError(
                413,
                "decompressed request body exceeds %d bytes",
                self.max_size,
                reason=f"Request body too large once decompressed "
                f"(limit {self.max_size} bytes)",
            )


def content_decoder(
    headers_encoding: str | None, enabled: bool, max_size: int
) -> Decompressor | None:
    """The decoder for a request's ``Content-Encoding``, or None.

    None when decoding is off or the body is not encoded. An encoding other
    than gzip or deflate (or a list of them) is a 415.
    """
    if not enabled or headers_encoding is None:
        return None
    encoding = headers_encoding.strip(" \t").lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return Decompressor("deflate" if encoding == "deflate" else "gzip", max_size)
    raise HTTPError(
        415,
        "unsupported request Content-Encoding %r",
        headers_encoding[:50],
        reason="Unsupported Content-Encoding (send gzip, deflate or identity)",
    )


def check_declared_length(exchange: Exchange) -> None:
    """413 now, before any body byte is read or ``100 Continue`` sent, when
    the request's ``Content-Length`` is over its ``max_body_size``."""
    length = exchange.content_length
    if length is not None and length > exchange.max_body_size and exchange.has_body:
        raise HTTPInputError(
            413,
            "Content-Length %d exceeds the %d-byte body limit",
            length,
            exchange.max_body_size,
        )


class BodyStream:
    """The request body as an async iterator of ``bytes`` chunks.

    Made by ``request.stream()``; iterate it once. Each ``__anext__`` reads
    from the connection (the first read sends ``100 Continue`` if the client
    asked for it). Raises ``HTTPError`` 413 past ``max_body_size``, 408 when
    the client stalls, 400 for broken framing or a corrupt compressed body.
    """

    def __init__(self, exchange: Exchange, decoder: Decompressor | None) -> None:
        self._exchange = exchange
        self._decoder = decoder
        self._pending: list[bytes] = []
        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            chunk = await self._exchange.receive_body()
            decoder = self._decoder
            if not chunk:
                self._done = True
                if decoder is not None:
                    decoder.flush()
            elif decoder is None:
                return chunk
            else:
                # Decoded pieces come out in order; the list is reversed so
                # that pop() takes the first.
                self._pending = decoder.decompress(chunk)[::-1]
        return self._pending.pop()

    async def read(self) -> bytes:
        """The rest of the body, in one piece."""
        return b"".join([chunk async for chunk in self])


# -- RequestHandler's body methods ------------------------------------------------


class HandlerBody:
    """How :class:`~trioweb.RequestHandler` reads a request body: whole
    before ``prepare()``, or streamed after it (``stream_request_body``)."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest
        _exchange: Exchange

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Receive a chunk of a streamed body (Tornado style; may be async).

        Called, for a class decorated with :func:`trioweb.stream_request_body`
        that overrides it, with each chunk after ``prepare()`` and before
        the method. A streaming class that does not override it reads
        ``async for chunk in self.request.stream():`` instead.
        """
        raise NotImplementedError(
            f"{type(self).__name__} streams its body but neither overrides "
            "data_received() nor reads self.request.stream()"
        )

    async def _read_body(self) -> None:
        if self._exchange.has_body:
            self.request.body = await self.request.stream().read()

    async def _stream_body(self) -> None:
        # After prepare(), which may have changed request.max_body_size: a
        # declared length over it is a 413 before any byte (or 100 Continue).
        check_declared_length(self._exchange)
        if type(self).data_received is HandlerBody.data_received:
            return
        async for chunk in self.request.stream():
            await maybe_await(self.data_received(chunk))
