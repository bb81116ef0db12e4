"""RedirectHandler, ErrorHandler, @removeslash and @addslash."""

from __future__ import annotations

import pytest

from trioweb import (
    Application,
    ErrorHandler,
    RedirectHandler,
    RequestHandler,
    addslash,
    removeslash,
)
from trioweb.testing import Response, TestClient


class Page(RequestHandler):
    @removeslash
    async def get(self) -> None:
        self.write(f"page {self.request.path}")

    @removeslash
    def post(self) -> None:
        self.write("posted")


class Folder(RequestHandler):
    @addslash
    def get(self) -> None:
        self.write(f"folder {self.request.path}")

    @addslash
    def post(self) -> None:
        self.write("posted")


APP = Application(
    [
        (r"/old/(\w+)/(\w+)", RedirectHandler, {"url": "/new/{1}/{0}"}),
        (r"/temp", RedirectHandler, {"url": "/elsewhere", "permanent": False}),
        (r"/named/(?P<id>\d+)", RedirectHandler, {"url": "/item/{id}"}),
        (r"/gone", ErrorHandler, {"status_code": 410}),
        (r"/page/?", Page),
        (r"/folder/?", Folder),
        (r"/+[^/]*/?", Page),
    ]
)


async def raw_get(path: str, method: str = "GET") -> Response:
    async with TestClient(APP) as client:
        conn = await client.raw()
        await conn.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return await conn.read_response(method)


async def test_redirect_handler_substitutes_path_groups() -> None:
    async with TestClient(APP) as client:
        r = await client.get("/old/a/b", params={"q": "1"})
        assert r.status == 301
        assert r.headers["Location"] == "/new/b/a?q=1"
        r = await client.get("/temp")
        assert (r.status, r.headers["Location"]) == (302, "/elsewhere")
        r = await client.get("/named/42")
        assert (r.status, r.headers["Location"]) == (301, "/item/42")


async def test_error_handler_answers_its_status() -> None:
    async with TestClient(APP) as client:
        r = await client.get("/gone")
        assert r.status == 410
        r = await client.post("/gone", body=b"x" * 10)
        assert r.status == 410


@pytest.mark.parametrize(
    ("method", "path", "status", "location", "body"),
    [
        ("GET", "/page/", 301, "/page", None),
        ("GET", "/page/?a=1", 301, "/page?a=1", None),
        ("HEAD", "/page/", 301, "/page", None),
        ("GET", "/page", 200, None, b"page /page"),
        ("POST", "/page/", 404, None, None),
        ("POST", "/page", 200, None, b"posted"),
        ("GET", "/folder", 301, "/folder/", None),
        ("GET", "/folder?a=1", 301, "/folder/?a=1", None),
        ("GET", "/folder/", 200, None, b"folder /folder/"),
        ("POST", "/folder", 404, None, None),
        ("POST", "/folder/", 200, None, b"posted"),
        ("GET", "/", 200, None, b"page /"),
        # Never a redirect to another host (a "//host" Location).
        ("GET", "//evil.example/", 301, "/evil.example", None),
        ("GET", "///evil.example/", 301, "/evil.example", None),
    ],
)
async def test_slash_decorators(
    method: str, path: str, status: int, location: str | None, body: bytes | None
) -> None:
    r = await raw_get(path, method)
    assert r.status == status
    assert r.headers.get("Location") == location
    if body is not None:
        assert r.body == body
