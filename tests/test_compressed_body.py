"""Compressed request bodies: the decompress_request setting."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trioweb
from trioweb import Application, HTTPError, RequestHandler, ServerConfig
from trioweb.body import Decompressor
from trioweb.testing import TestClient


class Form(RequestHandler):
    def post(self) -> None:
        self.write(
            {
                "args": {
                    k: self.get_body_arguments(k) for k in self.request.body_arguments
                },
                "body": len(self.request.body),
                "encoding": self.request.headers.get("X-Consumed-Content-Encoding"),
            }
        )


@trioweb.stream_request_body
class Stream(RequestHandler):
    async def post(self) -> None:
        sizes = [len(chunk) async for chunk in self.request.stream()]
        self.write(
            {
                "total": sum(sizes),
                "largest": max(sizes, default=0),
                "chunks": len(sizes),
            }
        )


def app(**settings: Any) -> Application:
    return Application([("/form", Form), ("/stream", Stream)], **settings)


FORM = b"a=1&b=caf%C3%A9&a=2"


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", deflate)],
)
async def test_compressed_form_is_decoded(encoding: str, compress: Any) -> None:
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/form",
            body=compress(FORM),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": encoding,
            },
        )
    assert r.json() == {
        "args": {"a": ["1", "2"], "b": ["café"]},
        "body": len(FORM),
        "encoding": encoding,
    }


async def test_without_the_setting_the_body_is_left_alone() -> None:
    async with TestClient(app()) as client:
        r = await client.post(
            "/form",
            body=gzip.compress(FORM),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": "gzip",
            },
        )
    assert r.json() == {"args": {}, "body": len(gzip.compress(FORM)), "encoding": None}


async def test_streamed_and_decoded_in_bounded_pieces() -> None:
    data = b"0123456789" * 100_000
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/stream", body=gzip.compress(data), headers={"Content-Encoding": "gzip"}
        )
    assert r.json()["total"] == len(data)
    assert r.json()["largest"] <= 64 * 1024


async def test_a_gzip_bomb_is_413() -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    config = ServerConfig(max_body_size=1024 * 1024)
    async with TestClient(app(decompress_request=True), config=config) as client:
        for path in ("/form", "/stream"):
            r = await client.post(path, body=bomb, headers={"Content-Encoding": "gzip"})
            assert r.status == 413
            assert "decompressed" in r.text


def test_the_decompressor_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    decoder = Decompressor("gzip", 1024 * 1024)
    with pytest.raises(HTTPError) as info:
        decoder.decompress(bomb)
    assert info.value.status_code == 413
    # It stopped one piece past the cap, never inflating the rest.
    assert decoder.size <= 1024 * 1024 + 64 * 1024


async def test_a_gzip_body_of_several_members_is_decoded_whole() -> None:
    # Regression: only the first member was decoded (RFC 1952 2.2 allows
    # several, and gzip.decompress() reads them all).
    parts = [b"a=1&", b"b=caf%C3%A9", b"", b"&a=2"]
    body = b"".join(gzip.compress(part) for part in parts)
    assert gzip.decompress(body) == FORM
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/form",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": "gzip",
            },
        )
        assert r.json()["args"] == {"a": ["1", "2"], "b": ["café"]}
        data = b"0123456789" * 50_000
        r = await client.post(
            "/stream",
            body=gzip.compress(data) + gzip.compress(data),
            headers={"Content-Encoding": "gzip"},
        )
        assert r.json()["total"] == 2 * len(data)


def test_members_are_found_whatever_the_chunk_boundaries() -> None:
    body = gzip.compress(b"first, ") + gzip.compress(b"second")
    decoder = Decompressor("gzip", 1024)
    out = b"".join(
        piece for i in range(len(body)) for piece in decoder.decompress(body[i : i + 1])
    )
    decoder.flush()
    assert out == b"first, second"


def test_tiny_members_are_joined_into_few_pieces() -> None:
    # Regression: each member's output was a piece of its own, so 20 bytes
    # on the wire were one round trip through the handler's loop.
    body = gzip.compress(b"x", mtime=0) * 5000
    decoder = Decompressor("gzip", 1024 * 1024)
    assert decoder.decompress(body) == [b"x" * 5000]
    big = gzip.compress(b"y" * 100_000, mtime=0)
    pieces = Decompressor("gzip", 1024 * 1024).decompress(big + body)
    assert [len(p) for p in pieces] == [64 * 1024, 100_000 - 64 * 1024 + 5000]


async def test_tiny_members_reach_a_streaming_handler_in_few_chunks() -> None:
    body = gzip.compress(b"x", mtime=0) * 20_000  # 400 KB, 20,000 bytes decoded
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/stream", body=body, headers={"Content-Encoding": "gzip"}
        )
    assert r.json()["total"] == 20_000
    assert r.json()["chunks"] < 100


def test_the_cap_counts_every_member() -> None:
    member = gzip.compress(b"\0" * 600_000)
    decoder = Decompressor("gzip", 1024 * 1024)
    decoder.decompress(member)
    with pytest.raises(HTTPError) as info:
        decoder.decompress(member)
    assert info.value.status_code == 413


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("br", b"x", 415),
        ("gzip, gzip", b"x", 415),
        ("compress", b"x", 415),
        ("gzip", b"not gzip at all", 400),
        ("gzip", gzip.compress(FORM)[:-12], 400),
        ("deflate", gzip.compress(FORM), 400),
        # Regression: what followed the first member was ignored.
        ("gzip", gzip.compress(FORM) + b"\x00garbage" * 100, 400),
        ("gzip", gzip.compress(FORM) + b"\x1f", 400),  # half a magic number
        ("gzip", gzip.compress(FORM) + gzip.compress(FORM)[:-4], 400),
        ("deflate", deflate(FORM) + b"garbage", 400),
    ],
)
async def test_bad_encodings(encoding: str, body: bytes, status: int) -> None:
    async with TestClient(app(decompress_request=True)) as client:
        for path in ("/form", "/stream"):
            r = await client.post(
                path, body=body, headers={"Content-Encoding": encoding}
            )
            assert r.status == status, (path, r.text)
        # Still serving.
        assert (await client.post("/form", data={"a": "1"})).status == 200


async def test_identity_is_no_encoding() -> None:
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/form",
            body=FORM,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": "identity",
            },
        )
    assert r.json()["args"]["a"] == ["1", "2"]


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), encoding=st.sampled_from(["gzip", "deflate"]))
async def test_random_compressed_bodies_never_give_a_500(
    body: bytes, encoding: str
) -> None:
    async with TestClient(app(decompress_request=True)) as client:
        r = await client.post(
            "/form",
            body=body,
            headers={
                "Content-Encoding": encoding,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert r.status in (200, 400, 413)
