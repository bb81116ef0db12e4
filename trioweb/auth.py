"""The security rules applied to requests: signing keys, XSRF, cross-origin
protection, logins, security headers.

:mod:`trioweb.security` holds the rules as pure functions; this module reads
them from the application's settings and a request, and its
:class:`HandlerSecurity`, which :class:`~trioweb.RequestHandler` inherits,
offers them as thin methods with Tornado's names (``xsrf_token``,
``check_xsrf_cookie()``, ``current_user``, ``set_signed_cookie()``, ...).
``docs/security.md`` explains each protection and setting.

The order of the checks for a request, all before ``prepare()``:

1. cross-origin protection (``cross_origin_protection`` setting), from the
   headers alone: a refused request never waits for its body;
2. the body is read;
3. the XSRF check (``xsrf_cookies`` setting), which may need a form field;
4. an ``async def get_current_user()`` is awaited, so that
   ``self.current_user`` is plain data from ``prepare()`` on.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .errors import HTTPError
from .security import (
    SafeHTML,
    Secret,
    SecurityHeaders,
    XSRFToken,
    check_cross_origin,
    create_signed_value,
    decode_signed_value,
    decode_xsrf_token,
    encode_xsrf_token,
    get_signature_key_version,
    new_xsrf_token,
    security_headers_from_setting,
    xsrf_form_html,
    xsrf_tokens_match,
)

if TYPE_CHECKING:
    from .request import HTTPServerRequest

__all__ = ["authenticated"]

log = logging.getLogger("trioweb.error")

# Methods that must not change anything (RFC 9110 9.2.1), and so are never
# checked for XSRF or cross-origin use: Tornado's list.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class _Handler(Protocol):
    """What this module needs of a :class:`~trioweb.RequestHandler`."""

    request: HTTPServerRequest

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def current_user(self) -> Any: ...

    def get_login_url(self) -> str: ...

    async def redirect(self, url: str, permanent: bool = False) -> None: ...


def signing_key(settings: Mapping[str, Any]) -> tuple[Secret, int | None]:
    """The ``cookie_secret`` setting and the ``key_version`` to sign with.

    Raises:
      RuntimeError: Without ``cookie_secret``, or with a dict of keys but no
        ``key_version``, saying which setting to add.
    """
    secret = settings.get("cookie_secret")
    if not secret:
        raise RuntimeError(
            "signed cookies need the cookie_secret application setting: "
            "Application(..., cookie_secret=...) with a long random string, "
            "e.g. secrets.token_hex(32), kept out of the source code"
        )
    key_version = settings.get("key_version")
    if isinstance(secret, Mapping) and key_version is None:
        raise RuntimeError(
            "cookie_secret is a {version: key} dict: add the key_version "
            "application setting to say which key signs new cookies"
        )
    return secret, key_version


# -- XSRF -----------------------------------------------------------------------


class XSRF:
    """One request's XSRF state: the token its cookie holds, or a new one.

    Created on first use by the handler (``xsrf_token``,
    ``check_xsrf_cookie()``), so a request that needs neither pays nothing.
    """

    def __init__(self, settings: Mapping[str, Any], cookie: str | None) -> None:
        self.cookie_name: str = settings.get("xsrf_cookie_name", "_xsrf")
        #: The token the request's cookie holds (None: missing or malformed).
        self.from_cookie = decode_xsrf_token(cookie)
        self.raw: XSRFToken = self.from_cookie or XSRFToken(
            2, new_xsrf_token(), int(time.time())
        )
        self.masked: bytes | None = None

    def mint(
        self, settings: Mapping[str, Any], logged_in: bool
    ) -> tuple[bytes, dict[str, Any] | None]:
        """The token for this response, and the cookie to set (or None).

        The token is masked anew for each response (version 2, unless the
        ``xsrf_cookie_version`` setting says 1). The cookie is set only when
        the request did not bring a valid one; with a user logged in it
        lasts 30 days unless ``xsrf_cookie_kwargs`` says otherwise, as in
        Tornado.
        """
        if self.masked is None:
            version = settings.get("xsrf_cookie_version", 2)
            self.masked = encode_xsrf_token(self.raw.token, self.raw.timestamp, version)
        if self.from_cookie is not None:
            return self.masked, None
        kwargs = dict(settings.get("xsrf_cookie_kwargs", {}))
        if logged_in and "expires_days" not in kwargs:
            kwargs["expires_days"] = 30
        # Minted once: a second read must not set the cookie again.
        self.from_cookie = self.raw
        return self.masked, kwargs

    def check(self, submitted: str | None, method: str) -> None:
        """Compare the submitted token with the cookie's; 403 if they differ.

        Each failure names the check that failed, for the WARNING line the
        403 is logged with.
        """
        if not submitted:
            raise HTTPError(
                403,
                "'_xsrf' argument missing from %s (send it as the _xsrf form "
                "field or the X-Xsrftoken header)",
                method,
            )
        token = decode_xsrf_token(submitted)
        if token is None:
            raise HTTPError(403, "'_xsrf' argument has invalid format")
        if self.from_cookie is None:
            raise HTTPError(
                403,
                "'%s' cookie missing or malformed (the page that made the "
                "request must read xsrf_token first)",
                self.cookie_name,
            )
        if not xsrf_tokens_match(token, self.from_cookie):
            raise HTTPError(403, "XSRF cookie does not match POST argument")


def submitted_xsrf_token(
    request: HTTPServerRequest, argument: str | None
) -> str | None:
    """The token a request submits: the ``_xsrf`` argument or a header.

    ``X-Csrftoken`` is Django's name, accepted as Tornado does. There is no
    exemption for ``X-Requested-With``: that header once was thought to
    prove a same-origin request, and it does not.
    """
    return (
        argument
        or request.headers.get("X-Xsrftoken")
        or request.headers.get("X-Csrftoken")
    )


# -- cross-origin protection ------------------------------------------------------


def cross_origin_error(
    request: HTTPServerRequest,
    settings: Mapping[str, Any],
    is_trusted: Callable[[str], bool],
) -> str | None:
    """Why the request must be refused as cross-origin, or None.

    Applies :func:`trioweb.security.check_cross_origin` to unsafe methods
    when the ``cross_origin_protection`` setting is on. The origin is
    compared with the ``Host`` header, as Tornado does.
    """
    if not settings.get("cross_origin_protection"):
        return None
    if request.method in SAFE_METHODS:
        return None
    headers = request.headers
    return check_cross_origin(
        headers.get("Sec-Fetch-Site"),
        headers.get("Origin"),
        headers.get("Host", ""),
        is_trusted,
    )


# -- the current user ------------------------------------------------------------

#: ``current_user`` before ``get_current_user()`` was called.
UNKNOWN_USER: Any = object()


def loads_user_async(get_current_user: Callable[[], Any]) -> bool:
    """Whether ``get_current_user`` is a coroutine function (awaited early)."""
    return inspect.iscoroutinefunction(get_current_user)


def call_sync_user_loader(get_current_user: Callable[[], Any]) -> Any:
    """Call a plain ``get_current_user()``; refuse one that is async."""
    if loads_user_async(get_current_user):
        raise RuntimeError(
            "get_current_user() is async, so trioweb awaits it just before "
            "prepare(): self.current_user is available from prepare() on, "
            "not in initialize() or set_default_headers()"
        )
    user = get_current_user()
    if inspect.isawaitable(user):
        if inspect.iscoroutine(user):
            user.close()
        raise TypeError(
            "get_current_user() returned an awaitable: define it with "
            "`async def` so that trioweb awaits it before prepare()"
        )
    return user


def login_redirect_url(login_url: str, request: HTTPServerRequest) -> str:
    """Where ``@authenticated`` sends a visitor who is not logged in.

    ``login_url?next=<this request's URI>``, URL-encoded (the full URL when
    ``login_url`` is absolute, since the login page is on another host
    then). A ``login_url`` with a query of its own is used as it is.
    """
    if "?" in login_url:
        return login_url
    if urllib.parse.urlsplit(login_url).scheme:
        next_url = request.full_url()
    else:
        next_url = request.uri
    return login_url + "?" + urllib.parse.urlencode({"next": next_url})


def authenticated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a handler method that requires a logged-in user.

    When ``self.current_user`` is falsy, a GET or HEAD is redirected (302)
    to the ``login_url`` setting (or what ``get_login_url()`` returns) with
    ``?next=<the request's URI>``; any other method gets 403, since a form
    submission cannot be replayed after a login. The wrapped method may be
    sync or async; the wrapper is async either way::

        class Profile(trioweb.RequestHandler):
            @trioweb.authenticated
            async def get(self):
                self.write(f"hello {self.current_user}")
    """

    @functools.wraps(method)
    async def wrapper(self: _Handler, *args: Any, **kwargs: Any) -> Any:
        if not self.current_user:
            if self.request.method in ("GET", "HEAD"):
                target = login_redirect_url(self.get_login_url(), self.request)
                await self.redirect(target)
                return None
            raise HTTPError(403, "@authenticated: no user logged in")
        result = method(self, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    return wrapper


# -- security headers -------------------------------------------------------------


def security_header_fields(
    override: object, settings: Mapping[str, Any], https: bool
) -> list[tuple[str, str]]:
    """The security headers a response starts with.

    ``override`` is the handler class's ``security_headers`` attribute;
    None means "use the ``security_headers`` setting".
    """
    choice = override if override is not None else settings.get("security_headers")
    headers: SecurityHeaders | None = security_headers_from_setting(choice)
    return headers.headers(https) if headers is not None else []


# -- RequestHandler's security methods ---------------------------------------------


class HandlerSecurity:
    """The security methods of :class:`~trioweb.RequestHandler`: signed
    cookies, the current user, XSRF tokens, trusted origins."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest
        _current_user: Any
        _xsrf: XSRF | None

        @property
        def settings(self) -> dict[str, Any]: ...

        def get_cookie(self, name: str, default: str | None = None) -> str | None: ...

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
        ) -> None: ...

        def get_argument(
            self, name: str, default: Any = ..., strip: bool = True
        ) -> Any: ...

    def create_signed_value(
        self, name: str, value: str | bytes, version: int | None = None
    ) -> bytes:
        """Sign ``value`` with the ``cookie_secret`` setting (for ``name``).

        What :meth:`set_signed_cookie` sends; use it to sign values that
        travel another way. Without ``cookie_secret`` it raises
        :exc:`RuntimeError` naming the setting to add.
        """
        secret, key_version = signing_key(self.settings)
        return create_signed_value(
            secret, name, value, version=version or 2, key_version=key_version
        )

    def set_signed_cookie(
        self,
        name: str,
        value: str | bytes,
        expires_days: float | None = 30,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Set a cookie the client can read but not forge (Tornado's format).

        Signed with the ``cookie_secret`` setting (the ``key_version``
        key of a dict); ``kwargs`` are :meth:`set_cookie`'s. Read it back
        with :meth:`get_signed_cookie`. Signed is not encrypted: do not
        store secrets in it.
        """
        self.set_cookie(
            name,
            self.create_signed_value(name, value, version),
            expires_days=expires_days,
            **kwargs,
        )

    def get_signed_cookie(
        self,
        name: str,
        value: str | None = None,
        max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        """The value of signed cookie ``name`` as bytes, or None.

        None when the cookie is missing, forged, signed for another name, or
        older than ``max_age_days``; ``min_version=2`` refuses version 1
        cookies. ``value`` checks that text instead of the request's cookie.
        """
        secret, _ = signing_key(self.settings)
        if value is None:
            value = self.get_cookie(name)
        return decode_signed_value(secret, name, value, max_age_days, min_version)

    def get_signed_cookie_key_version(
        self, name: str, value: str | None = None
    ) -> int | None:
        """The key version signed cookie ``name`` claims (not verified)."""
        if value is None:
            value = self.get_cookie(name)
        return get_signature_key_version(value)

    # Tornado's names before 6.3.
    set_secure_cookie = set_signed_cookie
    get_secure_cookie = get_signed_cookie
    get_secure_cookie_key_version = get_signed_cookie_key_version

    @property
    def current_user(self) -> Any:
        """The logged-in user, from :meth:`get_current_user`, once per request.

        Assign to it to log a user in for the rest of the request.
        """
        if self._current_user is UNKNOWN_USER:
            self._current_user = call_sync_user_loader(self.get_current_user)
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    def get_current_user(self) -> Any:
        """Return the logged-in user, or None (override it; may be async).

        A plain method is called the first time ``self.current_user`` is
        read. An ``async def`` one is awaited before ``prepare()``, so it
        can query a database.
        """
        return None

    def get_login_url(self) -> str:
        """Where ``@authenticated`` sends visitors: the ``login_url`` setting."""
        login_url = self.settings.get("login_url")
        if not login_url:
            raise RuntimeError(
                "@authenticated needs the login_url application setting "
                "(Application(..., login_url='/login')) or a get_login_url() "
                "override"
            )
        return str(login_url)

    def _xsrf_state(self) -> XSRF:
        if self._xsrf is None:
            name = self.settings.get("xsrf_cookie_name", "_xsrf")
            self._xsrf = XSRF(self.settings, self.get_cookie(name))
        return self._xsrf

    @property
    def xsrf_token(self) -> bytes:
        """This response's XSRF token; sets the XSRF cookie if needed.

        Masked anew for each response (against BREACH), it validates against
        the cookie as long as the cookie lives. Put it in forms with
        :meth:`xsrf_form_html`, or send it as an ``X-Xsrftoken`` header.
        """
        xsrf = self._xsrf_state()
        user = self._current_user
        if user is UNKNOWN_USER:
            # An async loader not awaited yet (an error page): nobody.
            async_loader = loads_user_async(self.get_current_user)
            user = None if async_loader else self.current_user
        token, cookie_kwargs = xsrf.mint(self.settings, logged_in=bool(user))
        if cookie_kwargs is not None:
            self.set_cookie(xsrf.cookie_name, token, **cookie_kwargs)
        return token

    def xsrf_form_html(self) -> SafeHTML:
        """``<input type="hidden" name="_xsrf" value="...">`` for a form.

        A ``str`` with ``__html__``: Jinja2 inserts it without escaping.
        """
        return xsrf_form_html(self.xsrf_token)

    def check_xsrf_cookie(self) -> None:
        """403 unless the request's XSRF token matches its XSRF cookie.

        Run automatically before ``prepare()`` for unsafe methods when the
        ``xsrf_cookies`` setting is on. The token is read from the ``_xsrf``
        argument or the ``X-Xsrftoken`` / ``X-Csrftoken`` header.
        """
        submitted = submitted_xsrf_token(self.request, self.get_argument("_xsrf", None))
        self._xsrf_state().check(submitted, self.request.method)

    def check_trusted_origin(self, origin: str) -> bool:
        """Whether a cross-origin request from ``origin`` is allowed.

        Called by cross-origin protection for unsafe requests that come
        from another origin. The default: ``origin`` is in the
        ``trusted_origins`` setting. Return True to accept any origin (only
        for endpoints that do not rely on cookies).
        """
        return origin in self.settings.get("trusted_origins", ())
