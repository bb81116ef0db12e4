"""examples/login.py (the README's security example) does what it says: a
login in a signed cookie, and forms that need their XSRF token."""

from __future__ import annotations

import re

from tornado_live import cookie_from_set_cookie

from examples.login import NOTES, app
from trioweb.testing import Response, TestClient


def token_in(page: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def cookies_of(r: Response) -> dict[str, str]:
    return dict(cookie_from_set_cookie(h) for h in r.headers.get_list("Set-Cookie"))


def header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def test_login_then_post_a_note() -> None:
    NOTES.clear()
    async with TestClient(app) as client:
        r = await client.get("/")
        assert (r.status, r.headers["Location"]) == (302, "/login?next=%2F")
        assert r.headers["X-Frame-Options"] == "DENY"

        r = await client.get("/login?next=%2F")
        jar = cookies_of(r)
        token = token_in(r.text)
        form = {"_xsrf": token, "name": "ann", "password": "trio"}

        # Without the token: a forged login is refused.
        r = await client.post(
            "/login?next=%2F", data={**form, "_xsrf": ""}, headers=header(jar)
        )
        assert r.status == 403
        # A wrong password.
        r = await client.post(
            "/login?next=%2F", data={**form, "password": "nope"}, headers=header(jar)
        )
        assert r.status == 403
        r = await client.post("/login?next=%2F", data=form, headers=header(jar))
        assert (r.status, r.headers["Location"]) == (302, "/")
        jar.update(cookies_of(r))
        assert jar["user"].startswith("2|1:0|")

        r = await client.get("/", headers=header(jar))
        assert r.status == 200 and "Hello ann" in r.text
        note_token = token_in(r.text)
        r = await client.post(
            "/", data={"_xsrf": note_token, "note": "<b>hi</b>"}, headers=header(jar)
        )
        assert r.status == 302
        r = await client.post("/", data={"note": "forged"}, headers=header(jar))
        assert r.status == 403
        r = await client.get("/", headers=header(jar))
        assert "<li>&lt;b&gt;hi&lt;/b&gt;</li>" in r.text and "forged" not in r.text

        # A tampered cookie is no login.
        assert "|4:YW5u|" in jar["user"]
        jar["user"] = jar["user"].replace("YW5u", "Ym9i")  # ann -> bob
        r = await client.get("/", headers=header(jar))
        assert r.status == 302


async def test_login_never_redirects_offsite() -> None:
    async with TestClient(app) as client:
        r = await client.get("/login")
        jar = cookies_of(r)
        data = {"_xsrf": token_in(r.text), "name": "ann", "password": "trio"}
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            r = await client.post(
                "/login", params={"next": target}, data=data, headers=header(jar)
            )
            assert (r.status, r.headers["Location"]) == (302, "/")
