"""RequestHandler's ETags: Tornado's ``compute_etag()``,
``set_etag_header()`` and ``check_etag_header()``.

:meth:`~trioweb.RequestHandler.finish` gives a 200 answer to GET or HEAD an
``ETag`` (unless the handler set one, or ``compute_etag()`` returns None)
and answers 304 when the request's ``If-None-Match`` matches it, as
Tornado does. When a class overrides none of the three methods, finish()
takes the inlined path here (:meth:`HandlerEtags._set_etag`,
:meth:`HandlerEtags._etag_matches`): the same tag, the SHA-1 of the body,
with fewer calls, a constant body's tag computed once, and
``If-None-Match`` read without building the request's header dict.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from . import compression

if TYPE_CHECKING:
    import datetime

    from .httputil import HTTPHeaders
    from .request import HTTPServerRequest

__all__ = ["HandlerEtags"]

# The default ETag of bodies written as one bytes object, by the object's
# id: {id: (body, tag)}. A handler that writes a constant pays for its SHA-1
# once. Bounded in entries and in the size of a body kept alive by it (at
# most 64 x 64 KiB), emptied when full.
_ETAGS: dict[int, tuple[bytes, str]] = {}
_ETAG_CACHE_SIZE = 64
_ETAG_CACHE_MAX_BODY = 64 * 1024


class HandlerEtags:
    """The ETag methods of :class:`~trioweb.RequestHandler`."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest
        _headers: HTTPHeaders
        _write_buffer: list[bytes]

        def set_header(
            self, name: str, value: str | bytes | int | datetime.datetime
        ) -> None: ...

    def _set_etag(self, inherited: bool) -> None:
        # set_etag_header(), without its calls when neither it nor
        # compute_etag() is overridden: the same tag (the SHA-1 of the
        # body), set without set_header()'s checks, which a hex digest in
        # quotes passes by construction.
        if not inherited:
            self.set_etag_header()
            return
        buffer = self._write_buffer
        if len(buffer) == 1:
            body = buffer[0]
            # A body written as one bytes object that is the same object as
            # on an earlier response (a constant: a page, a payload) has the
            # same tag: bytes cannot change. The cache holds the object, so
            # its id cannot be reused while the entry lives.
            cached = _ETAGS.get(id(body))
            if cached is not None and cached[0] is body:
                etag = cached[1]
            else:
                etag = f'"{hashlib.sha1(body).hexdigest()}"'
                if type(body) is bytes and len(body) <= _ETAG_CACHE_MAX_BODY:
                    if len(_ETAGS) >= _ETAG_CACHE_SIZE:
                        _ETAGS.clear()
                    _ETAGS[id(body)] = (body, etag)
        else:
            etag = f'"{hashlib.sha1(b"".join(buffer)).hexdigest()}"'
        self._headers._as_list["ETag"] = [etag]

    def _etag_matches(self, inherited: bool) -> bool:
        # check_etag_header(), reading If-None-Match without building the
        # request's header dict when the method is not overridden.
        if not inherited:
            return self.check_etag_header()
        if_none_match = self.request._header(b"if-none-match", "If-None-Match")
        if not if_none_match:
            return False
        etag = self._headers.get("ETag")
        if not etag:
            return False
        return compression.etag_matches_encoded(if_none_match, etag)

    def compute_etag(self) -> str | None:
        """The ETag for the buffered body; return None to send no ETag."""
        hasher = hashlib.sha1()
        for part in self._write_buffer:
            hasher.update(part)
        return f'"{hasher.hexdigest()}"'

    def set_etag_header(self) -> None:
        """Set ``ETag`` from :meth:`compute_etag` (unless it returns None)."""
        etag = self.compute_etag()
        if etag is not None:
            self.set_header("ETag", etag)

    def check_etag_header(self) -> bool:
        """Whether the request's ``If-None-Match`` matches our ``ETag``."""
        etag = self._headers.get("ETag")
        if_none_match = self.request.headers.get("If-None-Match")
        if not etag or not if_none_match:
            return False
        # A client may revalidate with the tag of the compressed variant.
        return compression.etag_matches_encoded(if_none_match, etag)
