"""Decorators for handler methods: ``@removeslash`` and ``@addslash``.

::

    class Page(trioweb.RequestHandler):
        @trioweb.removeslash
        async def get(self):
            ...

    app = trioweb.Application([(r"/page/?", Page)])

The rule's pattern must match both spellings (``/?`` at the end); the
decorator then redirects (301) a GET or HEAD to the canonical one, keeping
the query string, and answers 404 to other methods (a redirected POST would
lose its body). As in Tornado. The redirect target is always a path on this
site: a request for ``//evil.example/`` is redirected to ``/evil.example``,
never to another host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ._concurrency import maybe_await
from .errors import HTTPError
from .handler import RequestHandler

__all__ = ["addslash", "removeslash"]

F = TypeVar("F", bound=Callable[..., Any])


def _local(path: str) -> str:
    # "//host" and "/\host" are other sites to a browser (scheme-relative);
    # one leading slash keeps the redirect on this site.
    return "/" + path.lstrip("/\\")


async def _redirect_or_404(handler: RequestHandler, path: str) -> None:
    if handler.request.method not in ("GET", "HEAD"):
        raise HTTPError(404)
    if handler.request.query:
        path += "?" + handler.request.query
    await handler.redirect(path, permanent=True)


def removeslash(method: F) -> F:
    """Redirect ``/a/`` to ``/a`` (GET/HEAD; 404 for other methods)."""

    @functools.wraps(method)
    async def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> None:
        path = self.request.path
        if path.endswith("/") and path.rstrip("/"):
            await _redirect_or_404(self, _local(path.rstrip("/")))
            return
        await maybe_await(method(self, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


def addslash(method: F) -> F:
    """Redirect ``/a`` to ``/a/`` (GET/HEAD; 404 for other methods)."""

    @functools.wraps(method)
    async def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> None:
        path = self.request.path
        if not path.endswith("/"):
            await _redirect_or_404(self, _local(path + "/"))
            return
        await maybe_await(method(self, *args, **kwargs))

    return wrapper  # type: ignore[return-value]
