"""The handlers trioweb ships ready to route to: errors and redirects.

``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})`` in a route table
redirects; :class:`ErrorHandler` answers every request with one status (the
application's default 404 handler is one). :class:`~trioweb.StaticFileHandler`
lives in :mod:`trioweb.static`.
"""

from __future__ import annotations

from typing import Any

from .errors import HTTPError
from .handler import RequestHandler
from .httputil import is_valid_header_value, location_value, qs_to_qsl, url_concat
from .security import is_offsite_redirect

__all__ = ["ErrorHandler", "RedirectHandler"]


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (the default 404 handler)."""

    def initialize(self, status_code: int = 404, **kwargs: Any) -> None:
        self._error_status = status_code

    async def _run(
        self, path_args: list[bytes | None], path_kwargs: dict[str, bytes | None]
    ) -> None:
        # Answer before anything reads the body: a request we refuse never
        # waits for (or is sent 100 Continue for) its body.
        raise HTTPError(self._error_status)


class RedirectHandler(RequestHandler):
    """Redirects every GET to ``url`` (``{0}``-style path-argument templates).

    ``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})``. A target that
    cannot be a ``Location`` (a path argument decoded to CR or LF, say), or
    that a path argument made offsite (``/old//evil.example`` with
    ``"/{0}"``), is the client's doing: a 400, logged as one WARNING line.
    """

    def initialize(self, url: str = "/", permanent: bool = True, **kwargs: Any) -> None:
        self._url = url
        self._permanent = permanent

    async def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        if self.request.query_arguments:
            to_url = url_concat(to_url, list(qs_to_qsl(self.request.query_arguments)))
        # As redirect() will encode it: only what is left unsendable is bad.
        if not is_valid_header_value(location_value(to_url)):
            raise HTTPError(400, "cannot redirect to %r", to_url[:200])
        # A path argument that turns "/{0}" into "//evil.example" is the
        # client's doing too; a template that is offsite by itself is the
        # application's, and redirect() says so.
        if is_offsite_redirect(to_url) and not is_offsite_redirect(self._url):
            raise HTTPError(400, "refusing offsite redirect to %r", to_url[:200])
        await self.redirect(to_url, permanent=self._permanent)
