"""examples/site through the TestClient (the browser test drives it for real:
tests/test_browser.py)."""

from __future__ import annotations

import re

import pytest
import trio

from examples.site.app import make_app
from trioweb.testing import TestClient


async def test_home_page_links_versioned_assets() -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/")
        assert r.status == 200
        css = re.search(r'href="(/static/site\.css\?v=[0-9a-f]+)"', r.text)
        js = re.search(r'src="(/static/counter\.js\?v=[0-9a-f]+)"', r.text)
        assert css and js
        for url in (css.group(1), js.group(1)):
            asset = await client.get(url)
            assert asset.status == 200
            assert asset.headers["Cache-Control"] == "max-age=31536000, immutable"
        assert 'id="login-link"' in r.text


async def _login_form(client: TestClient) -> tuple[str, str]:
    """The XSRF cookie and the form's token, as a browser would have them."""
    r = await client.get("/login")
    cookie = r.headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="_xsrf" value="([^"]+)"', r.text)
    assert cookie.startswith("_xsrf=") and token
    return cookie, token.group(1)


async def test_login_sets_a_signed_cookie_and_greets() -> None:
    async with TestClient(make_app()) as client:
        xsrf_cookie, token = await _login_form(client)
        r = await client.post(
            "/login",
            data={"name": "Ann <admin>", "_xsrf": token},
            headers={"Cookie": xsrf_cookie},
        )
        assert (r.status, r.headers["Location"]) == (302, "/")
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith(("user=2|", 'user="2|')) and "HttpOnly" in cookie
        value = cookie.split(";")[0]
        r = await client.get("/", headers={"Cookie": value})
        # The name is escaped by the template's autoescape.
        assert "Hello, Ann &lt;admin&gt;!" in r.text
        assert "<admin>" not in r.text


async def test_a_forged_user_cookie_is_not_a_login() -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/", headers={"Cookie": "user=Ann"})
        assert "Hello, Ann" not in r.text
        assert 'id="login-link"' in r.text


async def test_login_without_the_xsrf_token_is_403() -> None:
    async with TestClient(make_app()) as client:
        r = await client.post("/login", data={"name": "Ann"})
        assert r.status == 403
        assert "Set-Cookie" not in r.headers or "user=" not in r.headers["Set-Cookie"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 41])
async def test_login_refuses_bad_names(name: str) -> None:
    async with TestClient(make_app()) as client:
        xsrf_cookie, token = await _login_form(client)
        r = await client.post(
            "/login",
            data={"name": name, "_xsrf": token},
            headers={"Cookie": xsrf_cookie},
        )
        assert r.status == 400
        assert 'id="error"' in r.text
        assert all(not c.startswith("user=") for c in r.headers.get_list("Set-Cookie"))


async def test_counter_ticks_resumes_and_is_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = make_app(counter_interval=1.0)
    async with TestClient(app) as client:
        sent = await client.abort("GET", "/events", after=2.5)
        assert b"event: count\nid: 2\ndata: 2\n\n" in sent
        assert b"data: 3" not in sent
        sent = await client.abort(
            "GET", "/events", after=0.5, headers={"Last-Event-ID": "41"}
        )
        assert b"id: 42\ndata: 42" in sent
        stats = (await client.get("/stats")).json()
    assert stats == {"started": 2, "active": 0, "cancelled": 2}
