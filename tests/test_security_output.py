"""Safe output: every header name and value, reason phrase and redirect
target is checked before it reaches the wire; the open-redirect guard; the
security headers setting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from trioweb import (
    Application,
    HTTPError,
    RedirectHandler,
    RequestHandler,
    SecurityHeaders,
)
from trioweb.security import is_offsite_redirect, security_headers_from_setting
from trioweb.testing import TestClient

INJECTIONS = [
    "a\r\nX-Evil: 1",
    "a\nX-Evil: 1",
    "a\rX-Evil: 1",
    "a\x00b",
    "a\x01b",
    "a\x1bb",
    "a\x7fb",
]


async def raw_response(handler: type[RequestHandler], path: str = "/") -> bytes:
    """The exact bytes sent for ``GET path``: nothing injected may appear."""
    async with TestClient(Application([(path, handler)])) as client:
        conn = await client.raw()
        await conn.send(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        return await conn.receive_until_closed()


def attempt(caught: list[str], action: Callable[[], Any]) -> None:
    try:
        action()
    except ValueError as exc:
        caught.append(str(exc))


# -- header names and values ----------------------------------------------------------


@pytest.mark.parametrize("value", INJECTIONS)
async def test_header_values_with_control_characters(value: str) -> None:
    caught: list[str] = []

    class H(RequestHandler):
        def get(self) -> None:
            attempt(caught, lambda: self.set_header("X-Test", value))
            attempt(caught, lambda: self.add_header("X-Test", value))
            attempt(caught, lambda: self.set_header("X-Test", value.encode()))
            self.set_header("X-Test", value)  # uncaught: the app's bug

    raw = await raw_response(H)
    assert len(caught) == 3 and all("unsafe header value" in c for c in caught)
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"X-Evil" not in raw and b"X-Test" not in raw


@pytest.mark.parametrize(
    "name", ["X Test", "X-Test\r\nX-Evil", "X:Evil", "", "X\x00", "Ünïcode", "X\t"]
)
async def test_header_names_must_be_tokens(name: str) -> None:
    caught: list[str] = []

    class H(RequestHandler):
        def get(self) -> None:
            attempt(caught, lambda: self.set_header(name, "v"))
            attempt(caught, lambda: self.add_header(name, "v"))
            self.set_header(name, "v")

    raw = await raw_response(H)
    assert len(caught) == 2 and all("invalid header name" in c for c in caught)
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"X-Evil" not in raw


# -- reason phrases -------------------------------------------------------------------


@pytest.mark.parametrize("reason", INJECTIONS)
async def test_reason_with_control_characters_is_a_500(reason: str) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(299, reason)

    raw = await raw_response(H)
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"X-Evil" not in raw


@pytest.mark.parametrize("reason", INJECTIONS)
async def test_reason_in_http_error_and_send_error_never_reaches_the_wire(
    reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Raising(RequestHandler):
        def get(self) -> None:
            raise HTTPError(418, reason=reason)

    class Sending(RequestHandler):
        async def get(self) -> None:
            await self.send_error(418, reason=reason)

    for handler in (Raising, Sending):
        caplog.clear()
        raw = await raw_response(handler)
        # Too late to fail: the status stays, the reason is dropped, and
        # the bug is logged with its traceback.
        assert raw.startswith(b"HTTP/1.1 418 Unknown\r\n")
        assert b"X-Evil" not in raw
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors and errors[0].exc_info is not None


# -- redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        " //evil.example",
        "\x00//evil.example",
    ],
)
def test_scheme_relative_urls_are_offsite(url: str) -> None:
    assert is_offsite_redirect(url)


@pytest.mark.parametrize(
    "url",
    ["/", "/a//b", "/path?next=//x", "https://other.example/", "relative", "", "."],
)
def test_local_and_absolute_urls_are_not_flagged(url: str) -> None:
    assert not is_offsite_redirect(url)


@pytest.mark.parametrize("url", ["//evil.example/", "/\\evil.example", "/\t/evil"])
async def test_redirect_refuses_offsite_targets(url: str) -> None:
    caught: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            try:
                await self.redirect(url)
            except ValueError as exc:
                caught.append(str(exc))
            await self.redirect(url)

    raw = await raw_response(H)
    assert caught and "leaves the site" in caught[0]
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"Location" not in raw


async def test_redirect_allows_offsite_when_asked_and_absolute_urls() -> None:
    class Offsite(RequestHandler):
        async def get(self) -> None:
            await self.redirect("//cdn.example/x", allow_offsite=True)

    class Absolute(RequestHandler):
        async def get(self) -> None:
            await self.redirect("https://other.example/x")

    assert b"\r\nLocation: //cdn.example/x\r\n" in await raw_response(Offsite)
    assert b"\r\nLocation: https://other.example/x\r\n" in await raw_response(Absolute)


@pytest.mark.parametrize("url", INJECTIONS)
async def test_redirect_with_control_characters_is_a_500(url: str) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.redirect("/" + url)

    raw = await raw_response(H)
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"X-Evil" not in raw and b"Location" not in raw


async def test_redirect_handler_is_not_an_open_redirect() -> None:
    app = Application([(r"/go/(.*)", RedirectHandler, {"url": "/{0}"})])
    async with TestClient(app) as client:
        ok = await client.get("/go/inside")
        evil = await client.get("/go//evil.example")
    assert (ok.status, ok.headers["Location"]) == (301, "/inside")
    assert evil.status == 400 and "Location" not in evil.headers


# -- security headers -----------------------------------------------------------------

SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
)


class Page(RequestHandler):
    def get(self) -> None:
        self.write("page")


class OverHttps(RequestHandler):
    # The request as a TLS listener (or a trusted proxy) would describe it.
    def prepare(self) -> None:
        self.request.protocol = "https"
        self.clear()

    def get(self) -> None:
        self.write("page")


async def headers_of(
    handler: type[RequestHandler], path: str = "/", **settings: Any
) -> dict[str, str]:
    async with TestClient(Application([("/", handler)], **settings)) as client:
        r = await client.get(path)
    return {name: r.headers[name] for name in SECURITY_HEADERS if name in r.headers}


async def test_security_headers_off_by_default() -> None:
    assert await headers_of(Page) == {}


async def test_security_headers_true_gives_safe_defaults() -> None:
    assert await headers_of(Page, security_headers=True) == {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
    }
    # HSTS only over https.
    headers = await headers_of(OverHttps, security_headers=True)
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


async def test_security_headers_on_error_pages_too() -> None:
    headers = await headers_of(Page, "/missing", security_headers=True)
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_security_headers_from_a_dict_and_per_handler() -> None:
    headers = await headers_of(
        Page,
        security_headers={
            "content_security_policy": "default-src 'self'",
            "frame_options": "SAMEORIGIN",
            "referrer_policy": None,
        },
    )
    assert headers == {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'self'",
    }

    class Embeddable(Page):
        security_headers = False

    class Strict(Page):
        security_headers = SecurityHeaders(
            content_security_policy="default-src 'none'; frame-ancestors 'self'"
        )

    assert await headers_of(Embeddable, security_headers=True) == {}
    strict = await headers_of(Strict)
    assert strict["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'self'"
    )


async def test_set_default_headers_can_override_a_security_header() -> None:
    class Framed(Page):
        def set_default_headers(self) -> None:
            self.clear_header("X-Frame-Options")

    headers = await headers_of(Framed, security_headers=True)
    assert "X-Frame-Options" not in headers and "X-Content-Type-Options" in headers


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("yes", TypeError),
        ({"unknown": 1}, TypeError),
        ({"frame_options": "ALLOW"}, ValueError),
        ({"content_security_policy": "a\r\nX-Evil: 1"}, ValueError),
        ({"hsts": "max-age=1\n"}, ValueError),
    ],
)
def test_bad_security_header_settings_say_what_to_give(
    setting: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="security_headers"):
        security_headers_from_setting(setting)


def test_a_bad_security_headers_setting_fails_when_the_app_is_built() -> None:
    with pytest.raises(TypeError, match="security_headers"):
        Application([("/", Page)], security_headers="yes")
    with pytest.raises(ValueError, match="frame_options"):
        Application([("/", Page)], security_headers={"frame_options": "ALLOW"})
