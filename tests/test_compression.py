"""Response compression: negotiation, which responses, streamed bodies, ETags.

Responses are read as raw bytes off the wire (``client.raw()``), so what is
checked is exactly what a browser would have to decode.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import brotli
import pytest

from trioweb import Application, RequestHandler, StaticFileHandler
from trioweb.compression import is_compressible, negotiate
from trioweb.testing import Response, TestClient

TEXT = ("All work and no play makes Jack a dull boy. " * 100).encode()  # 4.4 KB


class Text(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(TEXT)


class Small(RequestHandler):
    def get(self) -> None:
        self.write("<p>tiny</p>")


class Png(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "image/png")
        self.write(TEXT)


class Json(RequestHandler):
    def get(self) -> None:
        self.write({"words": TEXT.decode()})


class Streamed(RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html")
        for _ in range(3):
            self.write(TEXT)
            await self.flush()


class AlreadyEncoded(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.set_header("Content-Encoding", "gzip")
        self.write(gzip.compress(TEXT))


class NoContent(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.set_status(204)


def make_app(tmp_path: Path | None = None, **settings: Any) -> Application:
    settings.setdefault("compress_response", True)
    rules: list[Any] = [
        ("/text", Text),
        ("/small", Small),
        ("/png", Png),
        ("/json", Json),
        ("/streamed", Streamed),
        ("/encoded", AlreadyEncoded),
        ("/nocontent", NoContent),
    ]
    if tmp_path is not None:
        rules.append((r"/files/(.*)", StaticFileHandler, {"path": str(tmp_path)}))
    return Application(rules, **settings)


async def wire(
    app: Application, path: str, method: str = "GET", **headers: str
) -> Response:
    """The response exactly as sent (no client-side decoding)."""
    async with TestClient(app) as client:
        conn = await client.raw()
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        await conn.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())
        return await conn.read_response(method)


def decode(r: Response) -> bytes:
    coding = r.headers.get("Content-Encoding")
    if coding == "gzip":
        return gzip.decompress(r.body)
    if coding == "br":
        return bytes(brotli.decompress(r.body))
    assert coding is None, coding
    return r.body


# -- negotiation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "codings", "expected"),
    [
        ("gzip", ["br", "gzip"], "gzip"),
        ("br, gzip", ["br", "gzip"], "br"),
        ("gzip, deflate, br", ["br", "gzip"], "br"),
        ("gzip, br", ["gzip"], "gzip"),
        ("GZIP", ["br", "gzip"], "gzip"),
        ("x-gzip", ["br", "gzip"], "gzip"),
        ("gzip;q=1.0, br;q=0.5", ["br", "gzip"], "gzip"),
        ("br;q=0.5, gzip;q=0.5", ["br", "gzip"], "br"),  # a tie: ours
        ("gzip;q=0", ["br", "gzip"], None),
        ("gzip; q=0.000", ["gzip"], None),
        ("*", ["br", "gzip"], "br"),
        ("*;q=0", ["br", "gzip"], None),
        ("gzip;q=0, *", ["br", "gzip"], "br"),
        ("gzip;q=0, *", ["gzip"], None),
        ("br;q=0, *;q=0.1", ["br", "gzip"], "gzip"),
        ("identity", ["br", "gzip"], None),
        ("identity;q=0", ["br", "gzip"], None),
        ("deflate", ["br", "gzip"], None),
        ("", ["br", "gzip"], None),
        ("gzip;q=abc", ["br", "gzip"], None),  # an invalid q: ignored
        ("gzip;q=2", ["br", "gzip"], None),
        (" , ;,gzip", ["gzip"], "gzip"),
    ],
)
def test_negotiation_matrix(
    accept: str, codings: list[str], expected: str | None
) -> None:
    assert negotiate(accept, codings) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=UTF-8", True),
        ("text/css", True),
        ("application/json", True),
        ("application/javascript", True),
        ("application/xml", True),
        ("image/svg+xml", True),
        ("application/ld+json", True),
        ("text/event-stream", False),
        ("image/png", False),
        ("application/octet-stream", False),
        ("application/gzip", False),
        ("", False),
    ],
)
def test_compressible_types(content_type: str, expected: bool) -> None:
    assert is_compressible(content_type) is expected


# -- which responses -----------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_a_text_response_is_compressed(coding: str) -> None:
    r = await wire(make_app(), "/text", **{"Accept-Encoding": coding})
    assert r.status == 200
    assert r.headers["Content-Encoding"] == coding
    assert r.headers["Vary"] == "Accept-Encoding"
    assert int(r.headers["Content-Length"]) == len(r.body) < len(TEXT) // 4
    assert decode(r) == TEXT


async def test_json_is_compressed() -> None:
    r = await wire(make_app(), "/json", **{"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert decode(r) == b'{"words": "' + TEXT + b'"}'


async def test_nothing_changes_without_the_setting() -> None:
    r = await wire(
        make_app(compress_response=False), "/text", **{"Accept-Encoding": "gzip"}
    )
    assert "Content-Encoding" not in r.headers
    assert "Vary" not in r.headers
    assert r.body == TEXT


async def test_no_accept_encoding_means_identity_with_vary() -> None:
    r = await wire(make_app(), "/text")
    assert "Content-Encoding" not in r.headers
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.body == TEXT


async def test_refused_coding_is_not_used() -> None:
    r = await wire(make_app(), "/text", **{"Accept-Encoding": "gzip;q=0, br;q=0"})
    assert "Content-Encoding" not in r.headers
    assert r.body == TEXT


async def test_small_bodies_are_sent_as_they_are() -> None:
    r = await wire(make_app(), "/small", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.body == b"<p>tiny</p>"


async def test_incompressible_types_are_left_alone() -> None:
    r = await wire(make_app(), "/png", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers
    assert "Vary" not in r.headers
    assert r.body == TEXT


async def test_an_encoded_body_is_not_encoded_twice() -> None:
    r = await wire(make_app(), "/encoded", **{"Accept-Encoding": "gzip, br"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.body) == TEXT


HEAD_FIELDS = (
    "Content-Length",
    "Transfer-Encoding",
    "Content-Encoding",
    "ETag",
    "Vary",
)


def fields(r: Response) -> dict[str, str | None]:
    return {name: r.headers.get(name) for name in HEAD_FIELDS}


@pytest.mark.parametrize("accept", ["gzip", "br", "identity"])
async def test_head_has_the_header_fields_of_get(accept: str) -> None:
    # Regression: HEAD was never compressed, so it announced another
    # representation than GET's (RFC 9110 9.3.2: the same header fields).
    app = make_app()
    get = await wire(app, "/text", **{"Accept-Encoding": accept})
    head = await wire(app, "/text", "HEAD", **{"Accept-Encoding": accept})
    assert head.status == get.status == 200
    assert fields(head) == fields(get)
    assert head.headers.get("Content-Encoding") == (
        None if accept == "identity" else accept
    )
    # The compressed length: the body was compressed, and dropped.
    assert head.headers["Content-Length"] == str(len(get.body))
    assert head.body == b""


@pytest.mark.parametrize("size", [len(TEXT), 100])
async def test_static_head_has_the_header_fields_of_get(
    tmp_path: Path, size: int
) -> None:
    # GET streams a big file compressed (chunked, no length); HEAD says so
    # too, rather than the identity length of a representation not sent.
    (tmp_path / "site.css").write_bytes(TEXT[:size])
    app = make_app(tmp_path)
    get = await wire(app, "/files/site.css", **{"Accept-Encoding": "gzip"})
    head = await wire(app, "/files/site.css", "HEAD", **{"Accept-Encoding": "gzip"})
    assert fields(head) == fields(get)
    if size >= 1024:
        assert head.headers["Content-Encoding"] == "gzip"
        assert "Content-Length" not in head.headers
    else:
        assert head.headers["Content-Length"] == str(size)
    assert head.body == b""


async def test_a_304_varies_as_its_200_does(tmp_path: Path) -> None:
    # Regression: the 304 lacked the 200's Vary: Accept-Encoding
    # (RFC 9110 15.4.5: a 304 carries what the 200 would).
    (tmp_path / "site.css").write_bytes(TEXT)
    app = make_app(tmp_path)
    for path in ("/text", "/small", "/files/site.css"):
        first = await wire(app, path, **{"Accept-Encoding": "gzip"})
        again = await wire(
            app,
            path,
            **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
        )
        assert again.status == 304, path
        assert again.headers["Vary"] == first.headers["Vary"] == "Accept-Encoding"
    # An incompressible type's 200 does not vary; nor does its 304.
    (tmp_path / "logo.png").write_bytes(TEXT)
    first = await wire(app, "/files/logo.png", **{"Accept-Encoding": "gzip"})
    again = await wire(
        app, "/files/logo.png", **{"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    assert "Vary" not in again.headers and "Vary" not in first.headers


async def test_204_and_304_have_no_encoding() -> None:
    r = await wire(make_app(), "/nocontent", **{"Accept-Encoding": "gzip"})
    assert r.status == 204
    assert "Content-Encoding" not in r.headers
    first = await wire(make_app(), "/text")
    r = await wire(
        make_app(),
        "/text",
        **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
    )
    assert r.status == 304
    assert "Content-Encoding" not in r.headers
    assert r.body == b""


async def test_compressed_etag_differs_and_revalidates() -> None:
    plain = await wire(make_app(), "/text")
    zipped = await wire(make_app(), "/text", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert zipped.headers["ETag"].startswith('"')  # still strong
    again = await wire(
        make_app(),
        "/text",
        **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status == 304
    # The 304 names the variant the client has (RFC 9110 15.4.5).
    assert again.headers["ETag"] == zipped.headers["ETag"]


async def test_a_streamed_response_is_compressed_flush_by_flush() -> None:
    async with TestClient(make_app()) as client:
        conn = await client.raw()
        await conn.send(
            b"GET /streamed HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        r = await conn.read_response()
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert gzip.decompress(r.body) == TEXT * 3


async def test_each_flush_is_decodable_on_arrival() -> None:
    async with (
        TestClient(make_app()) as client,
        client.stream("GET", "/streamed", headers={"Accept-Encoding": "gzip"}) as r,
    ):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        first = await r.receive()
        # The first flush alone decodes to the first write: the client
        # is not left waiting for the end of the response.
        assert decoder.decompress(first) == TEXT
        rest = await r.read()
        assert decoder.decompress(rest) == TEXT * 2
        assert decoder.eof


async def test_static_files_are_compressed_but_not_their_ranges(
    tmp_path: Path,
) -> None:
    (tmp_path / "big.css").write_bytes(TEXT)
    app = make_app(tmp_path)
    r = await wire(app, "/files/big.css", **{"Accept-Encoding": "br"})
    assert r.headers["Content-Encoding"] == "br"
    assert decode(r) == TEXT
    r = await wire(
        app, "/files/big.css", **{"Accept-Encoding": "br", "Range": "bytes=0-9"}
    )
    assert r.status == 206
    assert "Content-Encoding" not in r.headers
    assert r.body == TEXT[:10]
    # Revalidating with the compressed variant's tag is a 304 too.
    first = await wire(app, "/files/big.css", **{"Accept-Encoding": "gzip"})
    r = await wire(
        app,
        "/files/big.css",
        **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
    )
    assert r.status == 304
    assert r.headers["ETag"] == first.headers["ETag"]
    assert first.headers["ETag"].endswith('-gzip"')
    assert r.headers["ETag"] == first.headers["ETag"]
    assert first.headers["ETag"].endswith('-gzip"')


async def test_vary_is_added_to_an_existing_one() -> None:
    class WithVary(RequestHandler):
        def get(self) -> None:
            self.set_header("Vary", "Cookie")
            self.write(TEXT.decode())

    r = await wire(
        Application([("/", WithVary)], compress_response=True),
        "/",
        **{"Accept-Encoding": "gzip"},
    )
    assert r.headers["Vary"] == "Cookie, Accept-Encoding"
