"""Signed cookies through the handler API (and a live Tornado server), and
the checks that keep every cookie's Set-Cookie line safe."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tornado_live import (
    SHARED_SECRET,
    LiveTornado,
    cookie_from_set_cookie,
    live_tornado,
)

from trioweb import Application, RequestHandler
from trioweb.security import create_signed_value
from trioweb.testing import Response, TestClient

__all__ = ["live_tornado"]

seen: list[Any] = []


class Signed(RequestHandler):
    def get(self) -> None:
        name = self.get_argument("name", "sid")
        if "set" in self.request.arguments:
            self.set_signed_cookie(name, self.get_argument("set"))
            return
        seen.append(
            (
                self.get_signed_cookie(name),
                self.get_secure_cookie(name),
                self.get_signed_cookie_key_version(name),
            )
        )


async def call(
    params: dict[str, str],
    cookie: str | None = None,
    handler: type[RequestHandler] = Signed,
    **settings: Any,
) -> Response:
    settings.setdefault("cookie_secret", SHARED_SECRET)
    headers = {"Cookie": cookie} if cookie else {}
    async with TestClient(Application([("/", handler)], **settings)) as client:
        return await client.get("/", params=params, headers=headers)


async def set_then_read(value: str, **settings: Any) -> Any:
    r = await call({"set": value}, **settings)
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    name, cookie = cookie_from_set_cookie(set_cookie)
    seen.clear()
    await call({}, cookie=f"{name}={cookie}", **settings)
    return seen[0]


async def test_set_and_get_signed_cookie() -> None:
    r = await call({"set": "anna"})
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    name, value = cookie_from_set_cookie(set_cookie)
    assert name == "sid"
    # The base64 '=' makes the value quoted, exactly as Tornado sends it.
    assert value.startswith('"2|1:0|') and value.endswith('"')
    assert "expires=" in set_cookie and "Path=/" in set_cookie
    seen.clear()
    await call({}, cookie=f"sid={value}")
    assert seen == [(b"anna", b"anna", 0)]


async def test_missing_forged_and_renamed_cookies_read_as_none() -> None:
    good = create_signed_value(SHARED_SECRET, "sid", "ann").decode()
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    other_name = create_signed_value(SHARED_SECRET, "other", "ann").decode()
    wrong_key = create_signed_value("another key", "sid", "ann").decode()
    seen.clear()
    for cookie in (
        None,
        f'sid="{forged}"',
        f'sid="{other_name}"',
        f'sid="{wrong_key}"',
    ):
        await call({}, cookie=cookie)
    assert [entry[0] for entry in seen] == [None, None, None, None]
    seen.clear()
    await call({}, cookie=f'sid="{good}"')
    assert seen[0][0] == b"ann"


async def test_no_cookie_secret_names_the_setting() -> None:
    caught: list[str] = []

    class NoSecret(RequestHandler):
        def get(self) -> None:
            for attempt in (
                lambda: self.set_signed_cookie("sid", "ann"),
                lambda: self.get_signed_cookie("sid"),
            ):
                try:
                    attempt()
                except RuntimeError as exc:
                    caught.append(str(exc))

    async with TestClient(Application([("/", NoSecret)])) as client:
        r = await client.get("/")
    assert r.status == 200 and r.headers.get_list("Set-Cookie") == []
    assert len(caught) == 2
    assert all("cookie_secret application setting" in text for text in caught)


async def test_key_rotation_through_the_settings() -> None:
    old_keys = {1: "first key"}
    both_keys = {1: "first key", 2: "second key"}
    r = await call({"set": "ann"}, cookie_secret=old_keys, key_version=1)
    _, signed_with_1 = cookie_from_set_cookie(r.headers.get_list("Set-Cookie")[0])
    # Key 2 signs new cookies; cookies signed with key 1 still verify.
    seen.clear()
    await call(
        {}, cookie=f"sid={signed_with_1}", cookie_secret=both_keys, key_version=2
    )
    assert seen == [(b"ann", b"ann", 1)]
    assert await set_then_read("bob", cookie_secret=both_keys, key_version=2) == (
        b"bob",
        b"bob",
        2,
    )
    # Key 1 retired: its cookies read as None (the user logs in again).
    seen.clear()
    await call(
        {},
        cookie=f"sid={signed_with_1}",
        cookie_secret={2: "second key"},
        key_version=2,
    )
    assert seen == [(None, None, 1)]


async def test_key_dict_without_key_version_says_so() -> None:
    caught: list[str] = []

    class Sign(RequestHandler):
        def get(self) -> None:
            try:
                self.set_signed_cookie("sid", "ann")
            except RuntimeError as exc:
                caught.append(str(exc))

    await call({}, handler=Sign, cookie_secret={1: "k"})
    assert caught and "key_version application setting" in caught[0]


async def test_min_version_and_max_age() -> None:
    v1 = create_signed_value(SHARED_SECRET, "sid", "ann", version=1).decode()
    got: list[Any] = []

    class Reader(RequestHandler):
        def get(self) -> None:
            got.append(self.get_signed_cookie("sid"))
            got.append(self.get_signed_cookie("sid", min_version=2))
            got.append(self.get_signed_cookie("sid", max_age_days=-1))

    await call({}, cookie=f"sid={v1}", handler=Reader)
    assert got == [b"ann", None, None]


async def test_signed_cookie_with_cookie_kwargs() -> None:
    class Sign(RequestHandler):
        def get(self) -> None:
            self.set_signed_cookie(
                "sid",
                "ann",
                expires_days=None,
                httponly=True,
                secure=True,
                samesite="Lax",
            )

    r = await call({}, handler=Sign)
    (set_cookie,) = r.headers.get_list("Set-Cookie")
    assert "HttpOnly" in set_cookie and "Secure" in set_cookie
    assert "SameSite=Lax" in set_cookie and "expires" not in set_cookie


# -- live Tornado, both ways -----------------------------------------------------------


@pytest.mark.parametrize("value", ["ann", "user:42|admin", "é ☕ = ;"])
async def test_cookie_signed_by_tornado_reads_in_trioweb(
    live_tornado: LiveTornado, value: str
) -> None:
    wire = value.encode().decode("latin-1")
    async with httpx.AsyncClient(base_url=live_tornado.url) as tornado:
        r = await tornado.get("/sign", params={"name": "sid", "value": wire})
    name, cookie = cookie_from_set_cookie(r.headers.get_list("set-cookie")[0])
    seen.clear()
    await call({}, cookie=f"{name}={cookie}")
    assert seen[0][0] == value.encode()


@pytest.mark.parametrize("value", ["ann", "user:42|admin", "é ☕ = ;"])
async def test_cookie_signed_by_trioweb_reads_in_tornado(
    live_tornado: LiveTornado, value: str
) -> None:
    r = await call({"set": value})
    name, cookie = cookie_from_set_cookie(r.headers.get_list("Set-Cookie")[0])
    async with httpx.AsyncClient(base_url=live_tornado.url) as tornado:
        r2 = await tornado.get(
            "/read", params={"name": name}, headers={"Cookie": f"{name}={cookie}"}
        )
        assert r2.json() == {"value": value.encode().decode("latin-1")}
        r3 = await tornado.get(
            "/read", params={"name": "other"}, headers={"Cookie": f"other={cookie}"}
        )
        assert r3.json() == {"value": None}


# -- safe Set-Cookie lines ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a;b"}, "invalid cookie name"),
        ({"name": "a\r\nX-Evil: 1"}, "invalid cookie name"),
        ({"name": "a b"}, "invalid cookie name"),
        ({"value": "x; Domain=evil.example"}, "invalid value"),
        ({"value": "x\r\nX-Evil: 1"}, "invalid value"),
        ({"value": "x\x00"}, "invalid value"),
        ({"domain": "example.com; Secure"}, "invalid cookie domain"),
        ({"domain": "example.com\r\nX-Evil: 1"}, "invalid cookie domain"),
        ({"path": "/; Domain=evil.example"}, "invalid cookie path"),
        ({"path": "/\nX-Evil: 1"}, "invalid cookie path"),
        ({"path": "/\x7f"}, "invalid cookie path"),
        ({"samesite": "Strict; Domain=evil.example"}, "invalid samesite"),
        ({"samesite": "Sometimes"}, "invalid samesite"),
        ({"samesite": "None"}, "requires secure=True"),
    ],
)
async def test_set_cookie_refuses_injection(
    kwargs: dict[str, str], message: str
) -> None:
    caught: list[str] = []

    class Cookie(RequestHandler):
        def get(self) -> None:
            args = {"name": "c", "value": "v", **kwargs}
            for method in (self.set_cookie, self.set_signed_cookie):
                if method == self.set_signed_cookie and "value" in kwargs:
                    continue  # a signed value is base64: always safe
                try:
                    method(args.pop("name"), args.pop("value"), **args)
                except ValueError as exc:
                    caught.append(str(exc))
                args = {"name": "c", "value": "v", **kwargs}
            self.set_cookie(**{"name": "c", "value": "v", **kwargs})

    r = await call({}, handler=Cookie)
    assert caught and all(message in text for text in caught)
    assert r.status == 500
    assert r.headers.get_list("Set-Cookie") == []
    assert "X-Evil" not in r.headers


async def test_samesite_none_with_secure_is_allowed() -> None:
    class Cookie(RequestHandler):
        def get(self) -> None:
            self.set_cookie("c", "v", samesite="none", secure=True)

    r = await call({}, handler=Cookie)
    assert r.headers.get_list("Set-Cookie") == ["c=v; Path=/; Secure; SameSite=None"]
