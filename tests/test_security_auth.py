"""Authentication: current_user (sync or async get_current_user) and
@trioweb.authenticated with login_url, through the TestClient."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
import trio
import trio.lowlevel

import trioweb
from trioweb import Application, HTTPError, RequestHandler
from trioweb.testing import Response, TestClient

calls: list[str] = []


async def get(
    handler: type[RequestHandler],
    path: str = "/",
    method: str = "GET",
    cookie: str | None = None,
    **settings: Any,
) -> Response:
    headers = {"Cookie": cookie} if cookie else {}
    app = Application([(r"/.*", handler)], **settings)
    async with TestClient(app) as client:
        return await client.request(method, path, headers=headers)


# -- current_user --------------------------------------------------------------------


class SyncUser(RequestHandler):
    def get_current_user(self) -> str | None:
        calls.append("load")
        return self.get_cookie("user")

    def get(self) -> None:
        self.write(f"{self.current_user}|{self.current_user}")


async def test_sync_get_current_user_is_called_lazily_once() -> None:
    calls.clear()
    r = await get(SyncUser, cookie="user=ann")
    assert (r.text, calls) == ("ann|ann", ["load"])

    class Unused(SyncUser):
        def get(self) -> None:
            self.write("no user needed")

    calls.clear()
    await get(Unused, cookie="user=ann")
    assert calls == []


class AsyncUser(RequestHandler):
    async def get_current_user(self) -> str | None:
        calls.append("load")
        await trio.lowlevel.checkpoint()  # a database query, say
        return self.get_cookie("user")

    def prepare(self) -> None:
        calls.append(f"prepare sees {self.current_user!r}")

    def get(self) -> None:
        self.write(repr(self.current_user))


async def test_async_get_current_user_is_awaited_before_prepare() -> None:
    calls.clear()
    r = await get(AsyncUser, cookie="user=ann")
    assert r.text == "'ann'"
    assert calls == ["load", "prepare sees 'ann'"]
    calls.clear()
    r = await get(AsyncUser)
    assert r.text == "None"
    assert calls == ["load", "prepare sees None"]


async def test_current_user_can_be_assigned() -> None:
    class Login(AsyncUser):
        def get(self) -> None:
            self.current_user = "bob"
            self.write(self.current_user)

    assert (await get(Login)).text == "bob"


async def test_async_user_before_it_is_loaded_is_an_error() -> None:
    caught: list[str] = []

    class Early(AsyncUser):
        def initialize(self) -> None:
            try:
                self.current_user  # noqa: B018
            except RuntimeError as exc:
                caught.append(str(exc))

    r = await get(Early)
    assert r.status == 200
    assert caught and "available from prepare() on" in caught[0]


async def test_error_page_before_the_async_user_loaded_sees_nobody() -> None:
    pages: list[Any] = []

    class Failing(AsyncUser):
        post = AsyncUser.get

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            pages.append((status_code, self.current_user))
            self.write("refused")

    # XSRF refuses the POST before the user is loaded.
    r = await get(
        Failing, method="POST", cookie="user=ann", xsrf_cookies=True, cookie_secret="k"
    )
    assert (r.status, r.text) == (403, "refused")
    assert pages == [(403, None)]


async def test_sync_loader_returning_an_awaitable_says_use_async_def() -> None:
    async def lookup() -> str:
        return "ann"

    class Wrong(RequestHandler):
        def get_current_user(self) -> Any:
            return lookup()

        def get(self) -> None:
            try:
                self.current_user  # noqa: B018
            except TypeError as exc:
                self.write(str(exc))

    r = await get(Wrong)
    assert "define it with `async def`" in r.text


# -- @authenticated -------------------------------------------------------------------


class Profile(RequestHandler):
    def get_current_user(self) -> str | None:
        return self.get_cookie("user")

    @trioweb.authenticated
    def get(self) -> None:
        self.write(f"hello {self.current_user}")

    @trioweb.authenticated
    async def post(self) -> None:
        await trio.lowlevel.checkpoint()
        self.write(f"posted by {self.current_user}")


async def test_authenticated_lets_a_user_through() -> None:
    r = await get(Profile, cookie="user=ann", login_url="/login")
    assert (r.status, r.text) == (200, "hello ann")
    r = await get(Profile, method="POST", cookie="user=ann", login_url="/login")
    assert (r.status, r.text) == (200, "posted by ann")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_authenticated_redirects_get_and_head_with_next(method: str) -> None:
    r = await get(Profile, "/me/page?tab=a%20b&x=1", method=method, login_url="/login")
    assert r.status == 302
    location = r.headers["Location"]
    assert location == "/login?next=%2Fme%2Fpage%3Ftab%3Da%2520b%26x%3D1"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query == {"next": ["/me/page?tab=a%20b&x=1"]}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_authenticated_refuses_other_methods_with_403(method: str) -> None:
    class Everything(Profile):
        put = delete = Profile.post

    r = await get(Everything, method=method, login_url="/login")
    assert r.status == 403


async def test_absolute_login_url_gets_the_full_url_as_next() -> None:
    r = await get(Profile, "/me?x=1", login_url="https://login.example/auth")
    assert r.status == 302
    host = r.headers["Location"]
    assert host.startswith("https://login.example/auth?next=http%3A%2F%2F")
    next_url = urllib.parse.parse_qs(urllib.parse.urlsplit(host).query)["next"][0]
    assert next_url.endswith("/me?x=1") and next_url.startswith("http://")


async def test_login_url_with_a_query_is_used_as_is() -> None:
    r = await get(Profile, "/me", login_url="/login?service=app")
    assert r.headers["Location"] == "/login?service=app"


async def test_get_login_url_override() -> None:
    class Custom(Profile):
        def get_login_url(self) -> str:
            return "/signin"

    r = await get(Custom, "/me")
    assert r.headers["Location"] == "/signin?next=%2Fme"


async def test_missing_login_url_names_the_setting() -> None:
    caught: list[str] = []

    class NoLoginUrl(Profile):
        def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
            caught.append(str(value))

    r = await get(NoLoginUrl, "/me")
    assert r.status == 500
    assert caught and "login_url application setting" in caught[0]


async def test_authenticated_with_async_get_current_user_and_prepare() -> None:
    class Guarded(RequestHandler):
        async def get_current_user(self) -> str | None:
            await trio.lowlevel.checkpoint()
            return self.get_cookie("user")

        @trioweb.authenticated
        def prepare(self) -> None:
            calls.append("prepared")

        def get(self) -> None:
            self.write(self.current_user)

    calls.clear()
    r = await get(Guarded, "/x", login_url="/login")
    assert (r.status, r.headers["Location"], calls) == (302, "/login?next=%2Fx", [])
    r = await get(Guarded, "/x", cookie="user=ann", login_url="/login")
    assert (r.status, r.text, calls) == (200, "ann", ["prepared"])


async def test_http_error_from_async_get_current_user_is_answered() -> None:
    class Broken(RequestHandler):
        async def get_current_user(self) -> None:
            raise HTTPError(401)

        def get(self) -> None:
            self.write("unreachable")

    assert (await get(Broken)).status == 401
