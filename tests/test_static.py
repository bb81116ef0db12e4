"""StaticFileHandler: headers, conditional GET, ranges, path safety, bounded
streaming, static_url versions -- through the real connection code."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
import trio
import trio.testing

from trioweb import Application, RequestHandler, StaticFileHandler
from trioweb._files import CHUNK_SIZE, UNSATISFIABLE, parse_range
from trioweb.httputil import format_timestamp
from trioweb.testing import TestClient

BODY = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    static.mkdir()
    (static / "data.bin").write_bytes(BODY)
    (static / "site.css").write_text("body { color: red }\n")
    (static / "page.html").write_text("<p>hi</p>")
    (static / "blob.unknownext").write_bytes(b"?")
    (static / "app.js").write_text("1;")
    (static / "docs").mkdir()
    (static / "docs" / "index.html").write_text("<h1>docs</h1>")
    (static / "empty").mkdir()
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return static


def app_for(root: Path, **kwargs: object) -> Application:
    return Application(
        [
            (
                r"/files/(.*)",
                StaticFileHandler,
                {"path": str(root), "default_filename": "index.html"},
            ),
            (r"/plain/(.*)", StaticFileHandler, {"path": str(root)}),
        ],
        static_path=str(root),
        **kwargs,
    )


async def get(
    root: Path, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with TestClient(app_for(root)) as client:
        r = await client.get(path, headers=headers)
        return r.status, dict(r.headers.get_all()), r.body


# -- the plain answer ------------------------------------------------------------


async def test_serves_a_file_with_its_headers(root: Path) -> None:
    status, headers, body = await get(root, "/static/data.bin")
    assert status == 200
    assert body == BODY
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == "1024"
    assert headers["Accept-Ranges"] == "bytes"
    assert re.fullmatch(r'"[0-9a-f-]+"', headers["ETag"])  # strong
    mtime = (root / "data.bin").stat().st_mtime
    assert headers["Last-Modified"] == format_timestamp(mtime)
    assert "Cache-Control" not in headers


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("site.css", "text/css; charset=utf-8"),
        ("page.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
async def test_content_type_from_the_name(
    root: Path, name: str, content_type: str
) -> None:
    status, headers, _ = await get(root, f"/static/{name}")
    assert status == 200
    # mimetypes may say application/javascript on older Pythons.
    assert headers["Content-Type"] == content_type or (
        name == "app.js"
        and headers["Content-Type"] == "application/javascript; charset=utf-8"
    )


async def test_head_has_the_headers_and_no_body(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        r = await client.head("/static/data.bin")
    assert r.status == 200
    assert r.body == b""
    assert r.headers["Content-Length"] == "1024"
    assert "ETag" in r.headers


async def test_missing_file_is_404(root: Path) -> None:
    status, _, _ = await get(root, "/static/nope.txt")
    assert status == 404


async def test_favicon_and_robots_come_from_static_path(root: Path) -> None:
    (root / "robots.txt").write_text("User-agent: *\n")
    status, _, body = await get(root, "/robots.txt")
    assert (status, body) == (200, b"User-agent: *\n")


async def test_directory_with_default_filename(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        r = await client.get("/files/docs/")
        assert (r.status, r.body) == (200, b"<h1>docs</h1>")
        r = await client.get("/files/docs", params={"a": "1"})
        assert r.status == 301
        assert r.headers["Location"] == "/files/docs/?a=1"
        r = await client.get("/files/empty/")
        assert r.status == 404


async def test_directory_without_default_filename_is_403(root: Path) -> None:
    status, _, _ = await get(root, "/plain/docs/")
    assert status == 403
    status, _, _ = await get(root, "/plain/docs")
    assert status == 403


async def test_static_handler_settings(root: Path) -> None:
    class Tagged(StaticFileHandler):
        def set_extra_headers(self, path: str) -> None:
            self.set_header("X-File", path)

    app = Application(
        [],
        static_path=str(root),
        static_url_prefix="/assets/",
        static_handler_class=Tagged,
        static_handler_args={"default_filename": "index.html"},
    )
    async with TestClient(app) as client:
        r = await client.get("/assets/docs/")
        assert (r.status, r.body) == (200, b"<h1>docs</h1>")
        assert r.headers["X-File"] == "docs/index.html"
        assert (await client.get("/static/site.css")).status == 404


async def test_static_root_itself_with_default_filename(root: Path) -> None:
    (root / "index.html").write_text("home")
    status, _, body = await get(root, "/files/")
    assert (status, body) == (200, b"home")


# -- conditional GET -------------------------------------------------------------


async def test_conditional_matrix(root: Path) -> None:
    _, headers, _ = await get(root, "/static/data.bin")
    etag = headers["ETag"]
    modified = headers["Last-Modified"]
    later = format_timestamp((root / "data.bin").stat().st_mtime + 3600)
    earlier = format_timestamp((root / "data.bin").stat().st_mtime - 3600)
    cases = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f'"other", {etag}'}, 304),
        ({"If-None-Match": f"W/{etag}"}, 304),  # weak comparison
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": later}, 304),
        ({"If-Modified-Since": earlier}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        # If-None-Match wins over If-Modified-Since, both ways.
        ({"If-None-Match": '"other"', "If-Modified-Since": later}, 200),
        ({"If-None-Match": etag, "If-Modified-Since": earlier}, 304),
    ]
    for request_headers, expected in cases:
        status, headers, body = await get(root, "/static/data.bin", **request_headers)
        assert status == expected, request_headers
        if expected == 304:
            assert body == b""
            assert headers["ETag"] == etag
            assert "Content-Type" not in headers
        else:
            assert body == BODY


async def test_a_changed_file_gets_a_new_etag(root: Path) -> None:
    _, first, _ = await get(root, "/static/site.css")
    (root / "site.css").write_text("body { color: blue }\n")
    os.utime(root / "site.css", (1, 1))
    status, second, body = await get(
        root, "/static/site.css", **{"If-None-Match": first["ETag"]}
    )
    assert status == 200
    assert second["ETag"] != first["ETag"]
    assert body == b"body { color: blue }\n"


# -- ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-9", 206, "bytes 0-9/1024", BODY[:10]),
        ("bytes=1000-", 206, "bytes 1000-1023/1024", BODY[1000:]),
        ("bytes=-5", 206, "bytes 1019-1023/1024", BODY[-5:]),
        ("bytes=-5000", 206, "bytes 0-1023/1024", BODY),
        ("bytes=1020-5000", 206, "bytes 1020-1023/1024", BODY[1020:]),
        ("bytes=5-5", 206, "bytes 5-5/1024", BODY[5:6]),
        ("BYTES= 2-3", 206, "bytes 2-3/1024", BODY[2:4]),
        ("bytes=1024-", 416, "bytes */1024", b""),
        ("bytes=5000-6000", 416, "bytes */1024", b""),
        ("bytes=-0", 416, "bytes */1024", b""),
        ("bytes=9" + "9" * 5000 + "-", 416, "bytes */1024", b""),
        # Invalid syntax, other units, several ranges: the whole file.
        ("bytes=5-2", 200, None, BODY),
        ("bytes=-", 200, None, BODY),
        ("bytes=a-b", 200, None, BODY),
        ("items=0-9", 200, None, BODY),
        ("bytes 0-9", 200, None, BODY),
        ("bytes=0-1,5-6", 200, None, BODY),
        ("bytes=" + "0-1," * 1500 + "5-6", 200, None, BODY),
    ],
)
async def test_range_matrix(
    root: Path, header: str, status: int, content_range: str | None, body: bytes
) -> None:
    got_status, headers, got_body = await get(root, "/static/data.bin", Range=header)
    assert got_status == status
    assert headers.get("Content-Range") == content_range
    assert got_body == body
    assert headers["Content-Length"] == str(len(body))


async def test_if_range(root: Path) -> None:
    _, headers, _ = await get(root, "/static/data.bin")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    for if_range, expected in [
        (etag, 206),
        ('"stale"', 200),
        (modified, 206),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
    ]:
        status, _, _ = await get(
            root, "/static/data.bin", Range="bytes=0-1", **{"If-Range": if_range}
        )
        assert status == expected, if_range


async def test_range_on_an_empty_file_is_416(root: Path) -> None:
    (root / "empty.txt").write_bytes(b"")
    status, headers, _ = await get(root, "/static/empty.txt", Range="bytes=0-")
    assert (status, headers["Content-Range"]) == (416, "bytes */0")


def test_parse_range_is_linear_in_a_huge_header() -> None:
    # Thousands of ranges are refused by one search (no quadratic merge);
    # a huge number is clamped instead of converted.
    assert parse_range("bytes=" + "1-2," * 100_000, 10) is None
    assert parse_range("bytes=0-" + "9" * 100_000, 10) == (0, 10)
    assert parse_range("bytes=" + "9" * 100_000 + "-", 10) == UNSATISFIABLE


# -- path safety ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/docs/../../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc/passwd",
        "/static/data.bin%00.txt",
        "/files/%2e%2e/secret.txt",
        "/files/..",
        "/files/%2e%2e",
    ],
)
async def test_traversal_is_refused(root: Path, path: str) -> None:
    async with TestClient(app_for(root)) as client:
        conn = await client.raw()
        await conn.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = await conn.read_response()
    assert r.status in (403, 404), path
    assert b"SECRET" not in r.body
    assert b"root:" not in r.body


async def test_symlink_out_of_the_root_is_refused(root: Path) -> None:
    (root / "leak.txt").symlink_to(root.parent / "secret.txt")
    (root / "outside").symlink_to(root.parent)
    for path in ("/static/leak.txt", "/static/outside/secret.txt"):
        status, _, body = await get(root, path)
        assert status == 403, path
        assert b"SECRET" not in body


async def test_names_the_file_system_refuses_are_404_not_500(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # stat() fails with ENAMETOOLONG for a segment over 255 bytes, and
    # with ELOOP for a symlink loop: the client's doing, not a server error.
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    caplog.set_level(logging.ERROR, logger="trioweb")
    for path in ("/static/" + "a" * 256, "/static/loop1", "/static/loop1/x"):
        status, _, _ = await get(root, path)
        assert status == 404, path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_symlink_inside_the_root_is_served(root: Path) -> None:
    (root / "alias.css").symlink_to(root / "site.css")
    status, _, body = await get(root, "/static/alias.css")
    assert (status, body) == (200, b"body { color: red }\n")


async def test_directory_redirect_never_leaves_the_site(root: Path) -> None:
    # Tornado's CVE-2023-28370: a "//host" target is another site.
    app = Application(
        [(r"/(.*)", StaticFileHandler, {"path": str(root), "default_filename": "x"})]
    )
    async with TestClient(app) as client:
        for target in ("//docs", "/%2f/docs", "/\\docs"):
            conn = await client.raw()
            await conn.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = await conn.read_response()
            assert r.status in (403, 404), target
            assert "Location" not in r.headers


async def test_a_fifo_is_not_served(root: Path) -> None:
    os.mkfifo(root / "pipe")
    status, _, _ = await get(root, "/static/pipe")
    assert status == 404


# -- static_url and versions ------------------------------------------------------


async def test_static_url_versions_and_caching(root: Path) -> None:
    urls: list[str] = []

    class Page(RequestHandler):
        def get(self) -> None:
            urls.append(self.static_url("site.css"))
            urls.append(self.static_url("site.css", include_version=False))
            urls.append(self.static_url("missing.css"))

    app = app_for(root)
    app.add_handlers(".*$", [(r"/page", Page)])
    async with TestClient(app) as client:
        await client.get("/page")
        versioned, plain, missing = urls
        assert re.fullmatch(r"/static/site\.css\?v=[0-9a-f]{20}", versioned)
        assert plain == "/static/site.css"
        assert missing == "/static/missing.css"
        r = await client.get(versioned)
        assert r.headers["Cache-Control"] == "max-age=31536000, immutable"
        assert r.body == b"body { color: red }\n"
        r = await client.get(plain)
        assert "Cache-Control" not in r.headers
        # The version follows the content.
        (root / "site.css").write_text("body { color: green }\n")
        os.utime(root / "site.css", (2, 2))
        await client.get("/page")
        assert urls[3] != versioned


async def test_version_hash_is_computed_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trioweb import _files

    opened: list[str] = []
    real_open = open

    def counting_open(file: str, *args: object, **kwargs: object) -> object:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(_files, "open", counting_open, raising=False)
    settings = {"static_path": str(root)}
    first = _files.static_url(settings, "app.js", True)
    second = _files.static_url(settings, "app.js", True)
    assert first == second
    assert len([p for p in opened if p.endswith("app.js")]) == 1


def test_static_url_without_static_path_says_what_to_do() -> None:
    from trioweb import _files

    with pytest.raises(RuntimeError, match="static_path"):
        _files.static_url({}, "x.css", True)


# -- big files: bounded memory, disconnects ------------------------------------------


def sparse(path: Path, size: int) -> None:
    """A file of ``size`` zero bytes that takes no disk space."""
    with open(path, "wb") as file:
        file.truncate(size)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
async def test_big_file_is_streamed_in_bounded_chunks(tmp_path: Path) -> None:
    big = tmp_path / "big.iso"
    size = 3 * 1024**3  # sparse: costs no disk
    sparse(big, size)
    app = Application([(r"/(.*)", StaticFileHandler, {"path": str(tmp_path)})])
    # Lockstep streams: a send waits for the client to read it, so the
    # server cannot run ahead into a buffer.
    async with TestClient(app, stream_pair=trio.testing.lockstep_stream_pair) as c:
        async with c.stream("GET", "/big.iso") as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(size)
            before = _rss()
            received = 0
            largest = 0
            async for piece in r.iter_bytes():
                received += len(piece)
                largest = max(largest, len(piece))
                if received >= 64 * 1024**2:
                    break
            grown = _rss() - before
        # 64 MiB went through; memory grew by a few chunks at most, not by
        # what was sent (let alone the 3 GiB file).
        assert received >= 64 * 1024**2
        assert largest <= CHUNK_SIZE
        assert grown < 4 * 1024**2, grown
        # A range near the end is a seek, not a read of what comes before.
        r2 = await c.get("/big.iso", headers={"Range": f"bytes={size - 10}-"})
        assert (r2.status, r2.body) == (206, b"\0" * 10)


async def test_client_leaving_mid_download_frees_everything(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    sparse(big, 1024**3)
    events: list[str] = []

    class Tracked(StaticFileHandler):
        def on_connection_close(self) -> None:
            events.append("closed")

        def on_finish(self) -> None:
            events.append("finished")

    def open_fds() -> set[str]:
        fds = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds.add(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        return fds

    app = Application([(r"/(.*)", Tracked, {"path": str(tmp_path)})])
    async with TestClient(app, stream_pair=trio.testing.lockstep_stream_pair) as c:
        async with c.stream("GET", "/big.bin") as r:
            assert await r.receive()
            assert str(big) in open_fds()
        # Leaving the block mid-body closed the connection and waited for
        # the server side: the handler was cancelled and the file closed.
        assert events == ["closed", "finished"]
        assert str(big) not in open_fds()
        assert (await c.get("/big.bin", headers={"Range": "bytes=0-0"})).status == 206


async def test_each_chunk_has_the_write_timeout(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from trioweb import ServerConfig

    sparse(tmp_path / "big.bin", 1024**2)
    finished = trio.Event()

    class Tracked(StaticFileHandler):
        def on_finish(self) -> None:
            finished.set()

    app = Application([(r"/(.*)", Tracked, {"path": str(tmp_path)})])
    config = ServerConfig(write_timeout=5)
    async with TestClient(
        app, config=config, stream_pair=trio.testing.lockstep_stream_pair
    ) as c:
        start = trio.current_time()
        async with c.stream("GET", "/big.bin") as r:
            assert await r.receive()
            # The client stops reading (and sets no deadline of its own: the
            # clock jumps while the server's file reads run in a thread).
            # Only the server's write timeout can end the download.
            await finished.wait()
            assert trio.current_time() - start >= 5


async def test_a_sibling_directory_with_a_common_prefix_is_outside(
    root: Path,
) -> None:
    # "/x/static-private" starts with "/x/static" but is not inside it.
    private = root.parent / (root.name + "-private")
    private.mkdir()
    (private / "key.txt").write_text("SECRET KEY")
    (root / "key.txt").symlink_to(private / "key.txt")
    status, _, body = await get(root, "/static/key.txt")
    assert status == 403
    assert b"SECRET" not in body


def test_content_type_of_compressed_files() -> None:
    from trioweb._files import content_type_for

    assert content_type_for("a.tar.gz") == "application/gzip"
    assert content_type_for("a.svg") == "image/svg+xml; charset=utf-8"
    assert content_type_for("a.png") == "image/png"
