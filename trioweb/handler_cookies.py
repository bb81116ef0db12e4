"""RequestHandler's cookies: reading the request's, setting the response's.

:class:`~trioweb.RequestHandler` inherits these methods (Tornado's names)
from :class:`HandlerCookies`. A cookie set with
:meth:`~HandlerCookies.set_cookie` waits in the handler until the response
head goes out (one ``Set-Cookie`` line per name, the last value set
winning); :mod:`trioweb.cookies` formats and checks it. Signed cookies are
in :mod:`trioweb.auth`.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from .cookies import format_set_cookie

if TYPE_CHECKING:
    from .request import HTTPServerRequest

__all__ = ["HandlerCookies"]


class HandlerCookies:
    """The cookie methods of :class:`~trioweb.RequestHandler`."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest
        _new_cookie: dict[str, str]

        @property
        def _headers_written(self) -> bool: ...

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """The value of the request cookie ``name``, or ``default``."""
        morsel = self.request.cookies.get(name)
        return morsel.value if morsel is not None else default

    def set_cookie(
        self,
        name: str,
        value: str | bytes,
        domain: str | None = None,
        expires: float | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
    ) -> None:
        """Set a cookie on the response (sent with the headers).

        ``expires_days`` is a shortcut for ``expires`` that many days from
        now. Invalid names, values or attributes raise :exc:`ValueError`.
        A cookie set once the headers were sent (by ``flush()`` or
        ``finish()``) could no longer reach the client: that raises
        :exc:`RuntimeError`.
        """
        if self._headers_written:
            raise RuntimeError(
                f"cannot set cookie {name!r}: the headers were already sent "
                "(set cookies before the first flush() or finish())"
            )
        if isinstance(value, bytes):
            # UTF-8, as Tornado decodes it: get_cookie() then gives the text
            # back (a latin-1 decode would turn b"caf\xc3\xa9" into "cafÃ©").
            value = value.decode("utf-8")
        if expires_days is not None and expires is None:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                days=expires_days
            )
        self._new_cookie[name] = format_set_cookie(
            name,
            value,
            domain=domain,
            expires=expires,
            path=path,
            max_age=max_age,
            httponly=httponly,
            secure=secure,
            samesite=samesite,
        )

    def clear_cookie(
        self, name: str, path: str = "/", domain: str | None = None, **kwargs: Any
    ) -> None:
        """Delete cookie ``name`` in the browser (expired, Max-Age=0).

        Pass the same ``path`` and ``domain`` it was set with.
        """
        for forbidden in ("expires", "max_age", "expires_days"):
            if forbidden in kwargs:
                raise TypeError(
                    f"clear_cookie() got an unexpected argument {forbidden!r}"
                )
        expires = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365)
        self.set_cookie(
            name, "", domain=domain, path=path, expires=expires, max_age=0, **kwargs
        )
