"""XSRF protection through the TestClient: the token, the cookie, the check
matrix, and tokens minted by a live Tornado server (and the reverse)."""

from __future__ import annotations

import binascii
import logging
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from linear import python_lines
from tornado_live import SETTINGS, LiveTornado, cookie_from_set_cookie, live_tornado

from trioweb import Application, RequestHandler
from trioweb.security import SafeHTML, decode_xsrf_token, encode_xsrf_token
from trioweb.testing import Response, TestClient

__all__ = ["live_tornado"]  # the fixture, imported for its side effect

prepared: list[str] = []


class Form(RequestHandler):
    def prepare(self) -> None:
        prepared.append(self.request.method)

    def get(self) -> None:
        self.write(self.xsrf_token)

    def post(self) -> None:
        self.write("accepted")

    put = patch = delete = post

    def options(self) -> None:
        self.write("options")


def app(**settings: Any) -> Application:
    return Application([("/", Form)], **{**SETTINGS, **settings})


async def request(
    method: str,
    *,
    cookie: str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> Response:
    all_headers = dict(headers or {})
    if cookie is not None:
        all_headers["Cookie"] = cookie
    data = {"_xsrf": token} if token is not None else {"other": "1"}
    async with TestClient(app(**(settings or {}))) as client:
        if method in ("GET", "HEAD", "OPTIONS"):
            return await client.request(method, "/", headers=all_headers)
        return await client.request(method, "/", headers=all_headers, data=data)


async def mint(**settings: Any) -> tuple[str, str]:
    """A fresh ``(cookie value, form token)`` from trioweb."""
    r = await request("GET", settings=settings)
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    name, value = cookie_from_set_cookie(set_cookie)
    assert name == settings.get("xsrf_cookie_name", "_xsrf")
    return value, r.text


# -- the token and its cookie -------------------------------------------------------


async def test_get_sets_cookie_and_a_masked_token() -> None:
    cookie, token = await mint()
    assert token.startswith("2|") and cookie.startswith("2|")
    # As in Tornado, a new cookie holds the token of the page that set it;
    # later pages get other maskings of the same secret.
    assert token == cookie
    decoded_cookie, decoded_token = decode_xsrf_token(cookie), decode_xsrf_token(token)
    assert decoded_cookie is not None and decoded_token is not None
    assert decoded_cookie.token == decoded_token.token
    assert len(decoded_cookie.token) == 16


async def test_token_is_masked_anew_per_request_and_cookie_kept() -> None:
    cookie, _ = await mint()
    tokens = set()
    for _ in range(3):
        r = await request("GET", cookie=f"_xsrf={cookie}")
        assert r.headers.get_list("Set-Cookie") == []
        tokens.add(r.text)
        decoded = decode_xsrf_token(r.text)
        assert decoded is not None
        assert decoded.token == decode_xsrf_token(cookie).token  # type: ignore[union-attr]
    assert len(tokens) == 3


async def test_reading_the_token_twice_sets_one_cookie() -> None:
    class Twice(RequestHandler):
        def get(self) -> None:
            self.write(self.xsrf_token + b" " + self.xsrf_token)

    async with TestClient(Application([("/", Twice)], **SETTINGS)) as client:
        r = await client.get("/")
    first, second = r.text.split(" ")
    assert first == second
    assert len(r.headers.get_list("Set-Cookie")) == 1


async def test_cookie_name_kwargs_and_version_settings() -> None:
    r = await request(
        "GET",
        settings={
            "xsrf_cookie_name": "csrf",
            "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Strict"},
            "xsrf_cookie_version": 1,
        },
    )
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    assert set_cookie.startswith("csrf=")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    # Version 1: the token is plain hex and the cookie holds the same.
    assert binascii.a2b_hex(r.text)
    assert cookie_from_set_cookie(set_cookie)[1] == r.text
    assert "expires" not in set_cookie


async def test_cookie_lasts_30_days_for_a_logged_in_user() -> None:
    class LoggedIn(Form):
        def get_current_user(self) -> str:
            return "ann"

    async with TestClient(Application([("/", LoggedIn)], **SETTINGS)) as client:
        r = await client.get("/")
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    assert "expires=" in set_cookie


async def test_xsrf_form_html_is_markup_aware_html() -> None:
    class Page(RequestHandler):
        def get(self) -> None:
            html = self.xsrf_form_html()
            assert isinstance(html, SafeHTML) and isinstance(html, str)
            assert html.__html__() == html
            self.write(html)

    async with TestClient(Application([("/", Page)], **SETTINGS)) as client:
        r = await client.get("/")
    prefix = '<input type="hidden" name="_xsrf" value="'
    assert r.text.startswith(prefix) and r.text.endswith('"/>')
    token = r.text[len(prefix) : -3]
    assert decode_xsrf_token(token) is not None


def test_xsrf_form_html_passes_jinja2_autoescape_unchanged() -> None:
    jinja2 = pytest.importorskip("jinja2")
    html = SafeHTML('<input value="x"/>')
    env = jinja2.Environment(autoescape=True)
    assert env.from_string("{{ x }}|{{ y }}").render(x=html, y="<b>") == (
        '<input value="x"/>|&lt;b&gt;'
    )


# -- the check matrix ---------------------------------------------------------------


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trioweb.error" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_valid_token_passes_for_every_unsafe_method(method: str) -> None:
    cookie, token = await mint()
    r = await request(method, cookie=f"_xsrf={cookie}", token=token)
    assert (r.status, r.text) == (200, "accepted")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_are_never_checked(method: str) -> None:
    r = await request(method)
    assert r.status == 200


async def test_missing_argument_is_403_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prepared.clear()
    cookie, _ = await mint()
    prepared.clear()
    r = await request("POST", cookie=f"_xsrf={cookie}")
    assert r.status == 403
    assert prepared == []  # refused before prepare()
    (message,) = warnings(caplog)
    assert "'_xsrf' argument missing from POST" in message


async def test_missing_cookie_is_403_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, token = await mint()
    r = await request("POST", token=token)
    assert r.status == 403
    (message,) = warnings(caplog)
    assert "'_xsrf' cookie missing" in message


@pytest.mark.parametrize(
    "token", ["2|zz|00|1", "2|00000000|0011|x", "2|0000|0011|1", "3|a|b|c", "2|a"]
)
async def test_bad_format_is_403_and_says_so(
    token: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie, _ = await mint()
    r = await request("POST", cookie=f"_xsrf={cookie}", token=token)
    assert r.status == 403
    (message,) = warnings(caplog)
    assert "invalid format" in message


async def test_mismatch_is_403_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    cookie, _ = await mint()
    _, other_token = await mint()
    r = await request("POST", cookie=f"_xsrf={cookie}", token=other_token)
    assert r.status == 403
    (message,) = warnings(caplog)
    assert "does not match" in message


LONG_TIMESTAMP = "2|00000000|00|" + "9" * 5000


async def test_digit_run_past_int_limit_is_a_bad_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # int() raises ValueError past 4300 digits: the timestamp is bounded first.
    assert decode_xsrf_token(LONG_TIMESTAMP) is None
    cookie, _ = await mint()
    r = await request(
        "POST", cookie=f"_xsrf={cookie}", headers={"X-Xsrftoken": LONG_TIMESTAMP}
    )
    assert r.status == 403
    (message,) = warnings(caplog)
    assert "invalid format" in message


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=64))
def test_unmasking_is_the_repeated_xor(mask: bytes, token: bytes) -> None:
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
    text = b"2|" + binascii.b2a_hex(mask) + b"|" + binascii.b2a_hex(masked) + b"|1"
    decoded = decode_xsrf_token(text)
    if token:
        assert decoded is not None and decoded.token == token
    else:
        assert decoded is None  # an empty token is malformed


def test_a_huge_submitted_token_is_unmasked_with_no_python_per_byte() -> None:
    # The _xsrf form field is as long as the body limit allows: unmasking it
    # byte by byte in Python cost 0.9 s of CPU for 10 MiB.
    def token(size: int) -> bytes:
        return b"2|0a0b0c0d|" + b"ab" * size + b"|123"

    assert python_lines(decode_xsrf_token, token(100_000)) == python_lines(
        decode_xsrf_token, token(10)
    )


async def test_digit_run_past_int_limit_in_the_cookie_is_replaced() -> None:
    r = await request("GET", cookie=f"_xsrf={LONG_TIMESTAMP}")
    assert r.status == 200
    assert decode_xsrf_token(r.text) is not None
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    _, value = cookie_from_set_cookie(set_cookie)
    assert value != LONG_TIMESTAMP


async def test_malformed_cookie_counts_as_missing() -> None:
    _, token = await mint()
    r = await request("POST", cookie="_xsrf=2|not|a|token", token=token)
    assert r.status == 403


@pytest.mark.parametrize("header", ["X-Xsrftoken", "X-Csrftoken", "x-xsrftoken"])
async def test_token_in_a_header(header: str) -> None:
    cookie, token = await mint()
    r = await request("POST", cookie=f"_xsrf={cookie}", headers={header: token})
    assert (r.status, r.text) == (200, "accepted")


async def test_x_requested_with_is_no_exemption() -> None:
    cookie, _ = await mint()
    r = await request(
        "POST", cookie=f"_xsrf={cookie}", headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert r.status == 403


async def test_v1_and_v2_mix() -> None:
    raw = b"0123456789abcdef"
    v1 = encode_xsrf_token(raw, 0, version=1).decode()
    v2 = encode_xsrf_token(raw, 1700000000, version=2).decode()
    for cookie, token in [(v1, v2), (v2, v1), (v1, v1), (v2, v2)]:
        r = await request("POST", cookie=f"_xsrf={cookie}", token=token)
        assert (r.status, r.text) == (200, "accepted"), (cookie, token)
    other = encode_xsrf_token(b"fedcba9876543210", 0, version=1).decode()
    r = await request("POST", cookie=f"_xsrf={v2}", token=other)
    assert r.status == 403


async def test_v1_cookie_is_kept_and_answered_with_v2_tokens() -> None:
    v1 = encode_xsrf_token(b"0123456789abcdef", 0, version=1).decode()
    r = await request("GET", cookie=f"_xsrf={v1}")
    assert r.headers.get_list("Set-Cookie") == []
    assert r.text.startswith("2|")
    r = await request("POST", cookie=f"_xsrf={v1}", token=r.text)
    assert r.status == 200


async def test_a_token_inside_another_cookies_value_is_not_the_cookie() -> None:
    # A cookie whose value merely contains "_xsrf=<token>" is not the XSRF
    # cookie: the check must not find a token there.
    cookie, token = await mint()
    r = await request("POST", cookie=f"note=_xsrf={cookie}", token=token)
    assert r.status == 403
    r = await request("POST", cookie=f'note="a _xsrf={cookie}"', token=token)
    assert r.status == 403


async def test_a_token_cannot_be_injected_through_set_cookie() -> None:
    # An application that stores user input in a cookie cannot be made to
    # plant an attacker's XSRF cookie: the ';' is refused, nothing is sent.
    cookie, _ = await mint()

    class Note(RequestHandler):
        def get(self) -> None:
            self.set_cookie("note", self.get_argument("text"))

    async with TestClient(Application([("/", Note)], **SETTINGS)) as client:
        r = await client.get("/", params={"text": f"x; _xsrf={cookie}"})
        assert r.status == 500
        assert r.headers.get_list("Set-Cookie") == []
        r = await client.get("/", params={"text": f"x\r\nSet-Cookie: _xsrf={cookie}"})
        assert r.status == 500
        assert r.headers.get_list("Set-Cookie") == []


async def test_check_xsrf_cookie_can_be_overridden() -> None:
    class Api(Form):
        def check_xsrf_cookie(self) -> None:
            pass  # this endpoint authenticates otherwise

    async with TestClient(Application([("/", Api)], **SETTINGS)) as client:
        r = await client.post("/", data={"a": "1"})
    assert (r.status, r.text) == (200, "accepted")


# -- live Tornado, both ways ---------------------------------------------------------


async def test_tornado_minted_token_validates_in_trioweb(
    live_tornado: LiveTornado,
) -> None:
    async with httpx.AsyncClient(base_url=live_tornado.url) as tornado:
        minted = await tornado.get("/xsrf")
    (set_cookie,) = minted.headers.get_list("set-cookie")
    name, cookie = cookie_from_set_cookie(set_cookie)
    assert name == "_xsrf"
    r = await request("POST", cookie=f"_xsrf={cookie}", token=minted.text)
    assert (r.status, r.text) == (200, "accepted")
    r = await request(
        "POST", cookie=f"_xsrf={cookie}", headers={"X-Xsrftoken": minted.text}
    )
    assert (r.status, r.text) == (200, "accepted")
    # And a token trioweb masks for Tornado's cookie is accepted too.
    r = await request("GET", cookie=f"_xsrf={cookie}")
    r = await request("POST", cookie=f"_xsrf={cookie}", token=r.text)
    assert r.status == 200


async def test_trioweb_minted_token_validates_in_tornado(
    live_tornado: LiveTornado,
) -> None:
    cookie, token = await mint()
    other_cookie, _ = await mint()
    async with httpx.AsyncClient(base_url=live_tornado.url) as tornado:
        r = await tornado.post(
            "/xsrf", data={"_xsrf": token}, headers={"Cookie": f"_xsrf={cookie}"}
        )
        assert (r.status_code, r.text) == (200, "accepted")
        r = await tornado.post(
            "/xsrf", data={"_xsrf": token}, headers={"Cookie": f"_xsrf={other_cookie}"}
        )
        assert r.status_code == 403
        # Tornado masks its own token for trioweb's cookie; trioweb accepts it.
        r = await tornado.get("/xsrf", headers={"Cookie": f"_xsrf={cookie}"})
        assert r.headers.get_list("set-cookie") == []
        tornado_token = r.text
    r = await request("POST", cookie=f"_xsrf={cookie}", token=tornado_token)
    assert r.status == 200
