"""multipart/form-data uploads: trioweb.multipart and request.files."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from linear import assert_linear

from trioweb import (
    Application,
    HTTPError,
    MultipartParser,
    RequestHandler,
    UploadedFile,
)
from trioweb.multipart import MAX_PART_HEADERS, parse_multipart
from trioweb.testing import TestClient

BOUNDARY = "trioweb-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def part(headers: list[str], data: bytes, boundary: str = BOUNDARY) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n"


def field(name: str, value: bytes) -> bytes:
    return part([f'Content-Disposition: form-data; name="{name}"'], value)


def upload(
    name: str, filename: str, data: bytes, content_type: str = "text/plain"
) -> bytes:
    return part(
        [
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"',
            f"Content-Type: {content_type}",
        ],
        data,
    )


def end(boundary: str = BOUNDARY) -> bytes:
    return f"--{boundary}--\r\n".encode()


def body_of(*parts: bytes) -> bytes:
    return b"".join(parts) + end()


# -- the parser --------------------------------------------------------------------


def test_fields_and_files() -> None:
    body = body_of(
        field("title", b"Hello"),
        field("tag", b"a"),
        field("tag", b"b"),
        upload("doc", "a.txt", b"line 1\r\nline 2"),
        part(
            [
                'Content-Disposition: form-data; name="doc"; filename="x"; '
                "filename*=UTF-8''%E2%82%AC%20rates.csv"
            ],
            b"",
        ),
    )
    fields, files = parse_multipart(body, CONTENT_TYPE)
    assert fields == {"title": [b"Hello"], "tag": [b"a", b"b"]}
    first, second = files["doc"]
    assert isinstance(first, UploadedFile)
    assert (first.filename, first.content_type, first.size) == (
        "a.txt",
        "text/plain",
        14,
    )
    assert first.body == b"line 1\r\nline 2"
    assert first.file.read() == b"line 1\r\nline 2"  # at offset 0
    # Tornado's HTTPFile access.
    assert first["filename"] == "a.txt"
    assert first["body"] == first.body
    assert first["content_type"] == "text/plain"
    with pytest.raises(KeyError):
        first["nope"]
    assert second.filename == "€ rates.csv"
    assert second.content_type == "application/octet-stream"
    assert second.size == 0
    assert second.body == b""
    assert "€ rates.csv" in repr(second)


def test_parts_larger_than_the_spool_size_go_to_a_temporary_file() -> None:
    body = body_of(upload("small", "s", b"x" * 100), upload("big", "b", b"y" * 101))
    _, files = parse_multipart(body, CONTENT_TYPE, spool_size=100)
    small, big = files["small"][0], files["big"][0]
    assert not small.file._rolled  # type: ignore[attr-defined]
    assert big.file._rolled  # type: ignore[attr-defined]
    assert big.body == b"y" * 101
    small.close()
    big.close()
    assert small.file.closed and big.file.closed


def test_fed_in_pieces() -> None:
    body = body_of(field("a", b"1" * 50), upload("f", "f.bin", bytes(range(256)) * 4))
    for size in (1, 7, 64):
        parser = MultipartParser(CONTENT_TYPE)
        for i in range(0, len(body), size):
            parser.feed(body[i : i + size])
        fields, files = parser.close()
        assert fields == {"a": [b"1" * 50]}
        assert files["f"][0].body == bytes(range(256)) * 4


def test_parts_cap() -> None:
    at_limit = body_of(*(field(f"f{i}", b"v") for i in range(5)))
    fields, _ = parse_multipart(at_limit, CONTENT_TYPE, max_parts=5)
    assert len(fields) == 5
    over = body_of(*(field(f"f{i}", b"v") for i in range(6)))
    with pytest.raises(HTTPError) as info:
        parse_multipart(over, CONTENT_TYPE, max_parts=5)
    assert info.value.status_code == 400
    assert "max_multipart_parts=5" in (info.value.reason or "")


def test_part_header_block_cap() -> None:
    # The cap counts the names and values of a part's headers together.
    disposition = 'form-data; name="f"'
    used = len("Content-Disposition") + len(disposition) + len("X-Pad")

    def body(pad: int) -> bytes:
        return body_of(
            part([f"Content-Disposition: {disposition}", "X-Pad: " + "p" * pad], b"v")
        )

    fields, _ = parse_multipart(body(200 - used), CONTENT_TYPE, max_header_size=200)
    assert fields == {"f": [b"v"]}
    with pytest.raises(HTTPError) as info:
        parse_multipart(body(201 - used), CONTENT_TYPE, max_header_size=200)
    assert info.value.status_code == 400
    assert "200 bytes" in (info.value.reason or "")


def test_the_default_header_block_cap_is_10_kib() -> None:
    def body(pad: int) -> bytes:
        return body_of(
            part(
                [
                    'Content-Disposition: form-data; name="f"',
                    *(f"X-Pad-{i}: " + "p" * 1000 for i in range(pad)),
                ],
                b"v",
            )
        )

    assert parse_multipart(body(9), CONTENT_TYPE)[0] == {"f": [b"v"]}
    with pytest.raises(HTTPError):
        parse_multipart(body(11), CONTENT_TYPE)


def test_part_header_count_cap() -> None:
    # Tiny headers fit the byte cap by the thousand, and each costs the
    # parser more than its bytes: the count has a cap of its own.
    def body(headers: int) -> bytes:
        pads = [f"X-{i}: p" for i in range(headers - 1)]
        return body_of(part(['Content-Disposition: form-data; name="f"', *pads], b"v"))

    assert parse_multipart(body(MAX_PART_HEADERS), CONTENT_TYPE)[0] == {"f": [b"v"]}
    with pytest.raises(HTTPError) as info:
        parse_multipart(body(MAX_PART_HEADERS + 1), CONTENT_TYPE)
    assert info.value.status_code == 400
    assert f"limit {MAX_PART_HEADERS}" in (info.value.reason or "")
    # What a hostile client sends: a 10 KiB block of "X:y" lines.
    flood = body_of(
        part(["X:y"] * 2000 + ["Content-Disposition: form-data; name=f"], b"")
    )
    with pytest.raises(HTTPError) as info:
        parse_multipart(flood, CONTENT_TYPE)
    assert "Too many headers" in (info.value.reason or "")


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("multipart/form-data", body_of(field("a", b"1")), "no boundary"),
        ("multipart/form-data; boundary=", body_of(field("a", b"1")), "no boundary"),
        ("multipart/form-data; boundary=" + "x" * 71, b"", "invalid boundary"),
        ("multipart/form-data; boundary=other", body_of(field("a", b"1")), ""),
        (CONTENT_TYPE, body_of(field("a", b"1"))[:-9], "closing boundary"),
        (CONTENT_TYPE, b"", "closing boundary"),
        (CONTENT_TYPE, b"garbage", ""),
        (CONTENT_TYPE, body_of(part(["X-Other: 1"], b"v")), "Content-Disposition"),
        (
            CONTENT_TYPE,
            body_of(part(["Content-Disposition: attachment; name=a"], b"v")),
            "not form-data",
        ),
        (
            CONTENT_TYPE,
            body_of(part(["Content-Disposition: form-data; filename=a"], b"v")),
            "no name",
        ),
        (CONTENT_TYPE, f"--{BOUNDARY}\r\nno colon\r\n\r\nv\r\n".encode(), ""),
    ],
)
def test_malformed_bodies_are_400(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(HTTPError) as info:
        parse_multipart(body, content_type)
    assert info.value.status_code == 400
    assert message in (info.value.reason or "")


def test_not_multipart_is_415() -> None:
    with pytest.raises(HTTPError) as info:
        MultipartParser("text/plain")
    assert info.value.status_code == 415


def test_an_error_leaves_no_file_open() -> None:
    made: list[Any] = []
    parser = MultipartParser(CONTENT_TYPE, spool_size=10)
    parser.feed(upload("f", "a", b"z" * 50))
    # A part ends where the next boundary begins.
    parser.feed(
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=g\r\n\r\n".encode()
    )
    made.extend(parser.files["f"])
    parser.feed(b"partial data")
    with pytest.raises(HTTPError):
        parser.close()  # no closing boundary
    assert all(upload.file.closed for upload in made)


@pytest.mark.parametrize(
    "make",
    [
        # Many small parts.
        lambda n: body_of(*[field("a", b"1")] * n),
        # Data full of near-boundaries.
        lambda n: body_of(field("a", f"\r\n--{BOUNDARY[:-1]}".encode() * n)),
        # A long header value, and a Content-Disposition full of parameters.
        lambda n: body_of(
            part([f'Content-Disposition: form-data; name="a"{"; x=1" * n}'], b"v")
        ),
        lambda n: body_of(
            part(['Content-Disposition: form-data; name="a"; f="' + "\\" * n], b"")
        ),
    ],
)
def test_the_parser_is_linear(make: Any) -> None:
    def parse(body: bytes) -> None:
        parse_multipart(body, CONTENT_TYPE, max_parts=10**9, max_header_size=10**9)

    assert_linear(parse, make, n=100)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_damage_is_a_400_or_parses(data: st.DataObject) -> None:
    body = bytearray(body_of(field("a", b"1"), upload("f", "n.txt", b"data" * 10)))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[where] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del body[where:]
            if not body:
                break
        else:
            body[where:where] = data.draw(st.binary(max_size=8))
    try:
        _, files = parse_multipart(bytes(body), CONTENT_TYPE, max_parts=3)
    except HTTPError as exc:
        assert exc.status_code == 400
    else:
        for uploads in files.values():
            for f in uploads:
                f.close()


# -- through a handler -----------------------------------------------------------------

opened: list[UploadedFile] = []


class Upload(RequestHandler):
    async def post(self) -> None:
        files = self.request.files
        opened.extend(f for uploads in files.values() for f in uploads)
        self.write(
            {
                "fields": {
                    k: self.get_body_arguments(k) for k in self.request.body_arguments
                },
                "args": self.get_arguments("title"),
                "files": {
                    name: [[f.filename, f.content_type, f.size] for f in uploads]
                    for name, uploads in files.items()
                },
            }
        )


class Fails(RequestHandler):
    async def post(self) -> None:
        opened.extend(f for uploads in self.request.files.values() for f in uploads)
        raise RuntimeError("the handler failed after the upload")


class Waits(RequestHandler):
    async def post(self) -> None:
        opened.extend(f for uploads in self.request.files.values() for f in uploads)
        await trio.sleep_forever()


class Small(RequestHandler):
    max_body_size = 300

    async def post(self) -> None:
        self.write({"n": len(self.request.files)})


def upload_app(**settings: Any) -> Application:
    return Application(
        [("/up", Upload), ("/fails", Fails), ("/waits", Waits), ("/small", Small)],
        **settings,
    )


@pytest.fixture(autouse=True)
def _clear_opened() -> None:
    opened.clear()


async def test_upload_through_the_handler() -> None:
    body = body_of(
        field("title", "Grüße".encode()),
        upload("doc", "a.txt", b"hello"),
        upload("doc", "b.bin", b"\x00" * 2000, "application/octet-stream"),
    )
    async with TestClient(upload_app(multipart_spool_size=1000)) as client:
        r = await client.post(
            "/up?title=q", body=body, headers={"Content-Type": CONTENT_TYPE}
        )
    assert r.status == 200, r.text
    assert r.json() == {
        "fields": {"title": ["Grüße"]},
        "args": ["q", "Grüße"],
        "files": {
            "doc": [
                ["a.txt", "text/plain", 5],
                ["b.bin", "application/octet-stream", 2000],
            ]
        },
    }
    # Closed (temporary files deleted) when the request ended.
    assert len(opened) == 2
    assert all(f.file.closed for f in opened)


async def test_parts_cap_through_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    headers = {"Content-Type": CONTENT_TYPE}
    async with TestClient(upload_app(max_multipart_parts=3)) as client:
        r = await client.post(
            "/up", body=body_of(*[field("a", b"1")] * 3), headers=headers
        )
        assert r.status == 200
        r = await client.post(
            "/up", body=body_of(*[field("a", b"1")] * 4), headers=headers
        )
        assert r.status == 400
        assert "max_multipart_parts=3" in r.text
        assert (await client.post("/up", body=end(), headers=headers)).status == 200
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


async def test_total_size_is_max_body_size() -> None:
    headers = {"Content-Type": CONTENT_TYPE}
    async with TestClient(upload_app()) as client:
        small = body_of(upload("f", "a", b"x" * 100))
        assert len(small) <= 300
        r = await client.post("/small", body=small, headers=headers)
        assert r.json() == {"n": 1}
        r = await client.post(
            "/small", body=body_of(upload("f", "a", b"x" * 300)), headers=headers
        )
        assert r.status == 413


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", body_of(field("a", b"1"))),
        (CONTENT_TYPE, body_of(field("a", b"1"))[:-5]),
        (CONTENT_TYPE, body_of(part(["X-Nothing: 1"], b"v"))),
        (CONTENT_TYPE, body_of(part(["Content-Disposition: form-data"], b"v"))),
        (CONTENT_TYPE, b"\r\n\r\n--nonsense"),
    ],
)
async def test_malformed_uploads_are_one_warning_and_a_400(
    caplog: pytest.LogCaptureFixture, content_type: str, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    async with TestClient(upload_app()) as client:
        r = await client.post("/up", body=body, headers={"Content-Type": content_type})
        assert r.status == 400
        assert "multipart" not in r.text or "Traceback" not in r.text
        assert (await client.post("/up", data={"a": "1"})).status == 200
    warnings = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(warnings) == 1, [rec.getMessage() for rec in warnings]
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].exc_info is None


async def test_temporary_files_are_closed_after_an_error() -> None:
    body = body_of(upload("f", "a", b"x" * 5000))
    async with TestClient(upload_app(multipart_spool_size=100)) as client:
        r = await client.post(
            "/fails", body=body, headers={"Content-Type": CONTENT_TYPE}
        )
    assert r.status == 500
    assert len(opened) == 1
    assert opened[0].file.closed


async def test_temporary_files_are_closed_after_a_disconnect(
    autojump_clock: trio.abc.Clock,
) -> None:
    body = body_of(upload("f", "a", b"x" * 5000))
    async with TestClient(upload_app(multipart_spool_size=100)) as client:
        await client.abort(
            "POST",
            "/waits",
            after=1.0,
            body=body,
            headers={"Content-Type": CONTENT_TYPE},
        )
    assert len(opened) == 1
    assert opened[0].file.closed
