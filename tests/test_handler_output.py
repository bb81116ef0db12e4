"""RequestHandler output: status, headers, body, flush/finish, redirect, ETags.

Every test drives a real Application through :class:`TestClient`; what a
handler saw (an exception it caught, a value it read) is recorded in a list
and asserted in the test body, so a failure points at the test, not at a 500.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from typing import Any

import pytest
import trio
import trio.testing
from helpers import fetch

from trioweb import Application, Finish, RedirectHandler, RequestHandler
from trioweb.testing import TestClient


async def fetch_raw(handler: type[RequestHandler], path: str = "/") -> bytes:
    """The exact bytes the server sends for ``GET path`` (then closes)."""
    async with TestClient(Application([(path, handler)])) as client:
        conn = await client.raw()
        await conn.send(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        return await conn.receive_until_closed()


# -- status ---------------------------------------------------------------


async def test_status_defaults_to_200_ok() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write(str(self.get_status()))

    r = await fetch(H)
    assert (r.status, r.reason, r.text) == (200, "OK", "200")


async def test_set_status_with_standard_and_custom_reason() -> None:
    class Standard(RequestHandler):
        def get(self) -> None:
            self.set_status(201)
            self.write(str(self.get_status()))

    class Custom(RequestHandler):
        def get(self) -> None:
            self.set_status(299, "Mostly Fine")

    r = await fetch(Standard)
    assert (r.status, r.reason, r.text) == (201, "Created", "201")
    r = await fetch(Custom)
    assert (r.status, r.reason) == (299, "Mostly Fine")


@pytest.mark.parametrize(
    "reason",
    [
        "Bad\r\nX-Injected: 1",
        "Bad\nX-Injected: 1",
        "Bad\rthing",
        "nul\x00",
        "del\x7f",
        "not latin-1: \u2615",
    ],
)
async def test_unsendable_reason_raises(reason: str) -> None:
    # A reason that would split the status line is the application's bug:
    # ValueError (a 500 with its traceback), never bytes on the wire.
    caught: list[str] = []

    class H(RequestHandler):
        def get(self) -> None:
            try:
                self.set_status(400, reason)
            except ValueError as exc:
                caught.append(str(exc))
            self.set_status(400, reason)

    r = await fetch(H)
    assert caught and caught[0].startswith("unsafe reason phrase")
    assert (r.status, r.reason) == (500, "Internal Server Error")
    assert "X-Injected" not in r.headers


@pytest.mark.parametrize("reason", ["tab\tbed", "<script>alert(1)</script>"])
async def test_markup_reason_becomes_unknown(reason: str) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(400, reason)

    r = await fetch(H)
    assert (r.status, r.reason) == (400, "Unknown")


# -- headers ----------------------------------------------------------------


async def test_set_header_converts_str_bytes_int_and_datetime() -> None:
    when = datetime.datetime(2013, 1, 27, 18, 43, 20, tzinfo=datetime.UTC)
    est = datetime.timezone(datetime.timedelta(hours=-5))

    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-Str", "text")
            self.set_header("X-Bytes", b"raw")
            self.set_header("X-Int", 42)
            self.set_header("X-Date", when)
            self.set_header("X-Naive", datetime.datetime(2013, 1, 27, 18, 43, 20))
            self.set_header(
                "X-Aware", datetime.datetime(2013, 1, 27, 13, 43, 20, 0, est)
            )

    r = await fetch(H)
    assert r.headers["X-Str"] == "text"
    assert r.headers["X-Bytes"] == "raw"
    assert r.headers["X-Int"] == "42"
    for name in ("X-Date", "X-Naive", "X-Aware"):
        assert r.headers[name] == "Sun, 27 Jan 2013 18:43:20 GMT"


async def test_set_header_replaces_and_add_header_appends() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-One", "first")
            self.set_header("X-One", "second")
            self.add_header("X-Many", "a")
            self.add_header("X-Many", 2)
            self.add_header("X-Reset", "old1")
            self.add_header("X-Reset", "old2")
            self.set_header("X-Reset", "new")

    r = await fetch(H)
    assert r.headers.get_list("X-One") == ["second"]
    assert r.headers.get_list("X-Many") == ["a", "2"]
    assert r.headers.get_list("X-Reset") == ["new"]


async def test_clear_header_removes_set_and_default_headers() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-Gone", "1")
            self.add_header("X-Gone", "2")
            self.clear_header("X-Gone")
            self.clear_header("Server")
            self.clear_header("X-Never-Set")  # a no-op

    r = await fetch(H)
    assert "X-Gone" not in r.headers
    assert "Server" not in r.headers


async def test_default_headers_server_and_content_type() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("hi")

    r = await fetch(H)
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert r.headers["Server"].startswith("trioweb/")
    assert "Date" in r.headers


@pytest.mark.parametrize(
    "value",
    ["a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rX-Evil", "a\x00Evil", b"a\r\nX-Evil: 1"],
)
async def test_unsafe_header_value_raises_value_error(value: str | bytes) -> None:
    caught: list[str] = []

    class H(RequestHandler):
        def get(self) -> None:
            for method in (self.set_header, self.add_header):
                try:
                    method("X-Test", value)
                except ValueError:
                    caught.append(method.__name__)
            self.write("still fine")

    r = await fetch(H)
    assert caught == ["set_header", "add_header"]
    assert r.status == 200
    assert r.text == "still fine"
    assert "X-Test" not in r.headers


async def test_unsafe_header_value_uncaught_is_500_without_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-Safe", "kept?")
            self.set_header("X-Test", "a\r\nX-Evil: 1")

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        data = await fetch_raw(H)
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Evil" not in data
    # The error page starts from clear(): what the handler set is gone.
    assert b"X-Safe" not in data
    errors = [r for r in caplog.records if r.name == "trioweb.error"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


async def test_bool_header_value_is_a_type_error() -> None:
    caught: list[type[BaseException]] = []

    class H(RequestHandler):
        def get(self) -> None:
            for value in (True, None, 1.5):
                try:
                    self.set_header("X-Test", value)  # type: ignore[arg-type]
                except TypeError as exc:
                    caught.append(type(exc))

    r = await fetch(H)
    assert r.status == 200
    assert caught == [TypeError] * 3
    assert "X-Test" not in r.headers


async def test_set_default_headers_applies_to_every_response() -> None:
    class H(RequestHandler):
        def set_default_headers(self) -> None:
            self.set_header("X-Frame-Options", "DENY")
            self.clear_header("Server")

        def get(self) -> None:
            if self.get_argument("clear", None):
                self.set_header("X-Frame-Options", "ALLOW")
                self.clear()
            if self.get_argument("fail", None):
                raise ValueError("boom")
            self.write("ok")

    async with TestClient(Application([("/", H)])) as client:
        for params in ({}, {"clear": "1"}, {"fail": "1"}):
            r = await client.get("/", params=params)
            assert r.headers.get_list("X-Frame-Options") == ["DENY"], params
            assert "Server" not in r.headers
        r = await client.get("/nowhere")  # another handler class: not its headers
        assert r.status == 404
        assert "X-Frame-Options" not in r.headers


async def test_clear_resets_status_headers_and_body() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(201)
            self.set_header("X-Before", "1")
            self.set_header("Content-Type", "text/plain")
            self.write("discarded")
            self.clear()
            self.write("kept")

    r = await fetch(H)
    assert (r.status, r.reason) == (200, "OK")
    assert "X-Before" not in r.headers
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert r.text == "kept"


# -- write ------------------------------------------------------------------


async def test_write_str_and_bytes_are_concatenated() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("héllo ")
            self.write(b"\xffraw")
            self.write("")

    r = await fetch(H)
    assert r.body == "héllo ".encode() + b"\xffraw"
    assert r.headers["Content-Length"] == str(len(r.body))


async def test_write_dict_is_json_with_script_safe_escaping() -> None:
    payload = {"html": "</script><script>alert(1)</script>", "n": [1, 2]}

    class H(RequestHandler):
        def get(self) -> None:
            self.write(payload)

    r = await fetch(H)
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert b"</" not in r.body
    assert b"<\\/script>" in r.body
    assert json.loads(r.body) == payload


@pytest.mark.parametrize("chunk", [[1, 2], ["a"], 42, None, 1.5, ("t",)])
async def test_write_refuses_other_types(chunk: Any) -> None:
    caught: list[TypeError] = []

    class H(RequestHandler):
        def get(self) -> None:
            try:
                self.write(chunk)
            except TypeError as exc:
                caught.append(exc)
            self.write("after")

    r = await fetch(H)
    assert len(caught) == 1
    if isinstance(chunk, list):
        assert "wrap the list in a dict" in str(caught[0])
    assert (r.status, r.text) == (200, "after")


async def test_write_list_uncaught_is_500() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("partial")
            self.write([1, 2])  # type: ignore[arg-type]

    r = await fetch(H)
    assert r.status == 500
    assert "partial" not in r.text


# -- flush and finish -----------------------------------------------------------


async def test_flush_streams_chunked_pieces_in_order() -> None:
    proceed = trio.Event()
    steps: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            nonlocal proceed
            self.set_header("X-Early", "yes")
            for piece in ("one", "two"):
                self.write(piece)
                await self.flush()
                steps.append(f"flushed {piece}")
                await proceed.wait()
                proceed = trio.Event()
            await self.finish("three")

    async with (
        TestClient(Application([("/", H)])) as client,
        client.stream("GET", "/") as r,
    ):
        assert r.status == 200
        assert r.headers["Transfer-Encoding"] == "chunked"
        assert r.headers["X-Early"] == "yes"
        assert "Content-Length" not in r.headers
        assert "ETag" not in r.headers  # not computed once the head is out
        # Each flush arrives while the handler waits: the pieces are sent
        # as they are flushed, not when the handler ends.
        assert await r.receive() == b"one"
        assert steps == ["flushed one"]
        proceed.set()
        assert await r.receive() == b"two"
        assert steps == ["flushed one", "flushed two"]
        proceed.set()
        assert await r.receive() == b"three"
        assert await r.receive() == b""
        assert r.complete


async def test_flush_with_nothing_buffered_sends_the_head() -> None:
    release = trio.Event()

    class H(RequestHandler):
        async def get(self) -> None:
            self.set_status(202)
            await self.flush()
            await self.flush()  # nothing new: nothing sent
            await release.wait()
            self.write("late")

    async with (
        TestClient(Application([("/", H)])) as client,
        client.stream("GET", "/") as r,
    ):
        assert r.status == 202
        release.set()
        assert await r.read() == b"late"


async def test_status_and_headers_after_flush_do_not_change_the_response() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("a")
            await self.flush()
            self.set_status(404)
            self.set_header("X-Late", "1")
            self.write("b")

    r = await fetch(H)
    assert r.status == 200
    assert "X-Late" not in r.headers
    assert r.body == b"ab"


async def test_flush_on_http10_is_delimited_by_close() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("one,")
            await self.flush()
            self.write("two")

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = await conn.receive_until_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"one,two"


async def test_finish_returns_only_when_the_bytes_are_sent(
    autojump_clock: trio.abc.Clock,
) -> None:
    # lockstep streams: a send completes only when the client receives it.
    returned = trio.Event()

    class H(RequestHandler):
        async def get(self) -> None:
            await self.finish("done")
            returned.set()

    async with TestClient(
        Application([("/", H)]), stream_pair=trio.testing.lockstep_stream_pair
    ) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(1)
        assert not returned.is_set()  # the client has not read anything yet
        r = await conn.read_response()
        assert r.body == b"done"
        with trio.fail_after(1):
            await returned.wait()


async def test_finish_with_chunk_and_dict() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("a")
            await self.finish("b")

    class J(RequestHandler):
        async def get(self) -> None:
            await self.finish({"ok": True})

    r = await fetch(H)
    assert (r.body, r.headers["Content-Length"]) == (b"ab", "2")
    r = await fetch(J)
    assert r.json() == {"ok": True}
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"


async def test_second_finish_and_write_after_finish_raise() -> None:
    caught: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await self.finish("once")
            try:
                await self.finish()
            except RuntimeError as exc:
                caught.append(str(exc))
            try:
                self.write("again")
            except RuntimeError as exc:
                caught.append(str(exc))
            try:
                await self.finish("x")
            except RuntimeError as exc:
                caught.append(str(exc))

    r = await fetch(H)
    assert r.body == b"once"
    assert caught == [
        "finish() called twice",
        "cannot write() after finish()",
        "finish() called twice",
    ]


async def test_finish_after_flush_ends_the_chunked_body() -> None:
    caught: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            self.write("a")
            await self.flush()
            await self.finish("b")
            try:
                await self.finish()
            except RuntimeError as exc:
                caught.append(str(exc))

    r = await fetch(H)
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.body == b"ab"
    assert caught == ["finish() called twice"]


async def test_a_flush_cancelled_by_the_handler_never_corrupts_the_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("first")
            with trio.move_on_after(0):
                await self.flush()  # cancelled before its bytes went out
            await self.finish("rest")

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await conn.receive_until_closed()
    # A whole response or an honest close; never a body without its head.
    assert data == b"" or data.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_keep_alive_survives_several_responses() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            if self.get_argument("stream", None):
                self.write("s")
                await self.flush()
            self.write("x")

    async with TestClient(Application([("/", H)])) as client:
        for params in ({}, {"stream": "1"}, {}):
            r = await client.get("/", params=params)
            assert r.status == 200
        assert len(client.server_connections) == 1


# -- Content-Length and bodiless statuses ------------------------------------


async def test_content_length_is_set_when_the_whole_body_is_known() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("x" * 1000)

    class Empty(RequestHandler):
        def get(self) -> None:
            pass

    r = await fetch(H)
    assert r.headers["Content-Length"] == "1000"
    assert "Transfer-Encoding" not in r.headers
    r = await fetch(Empty)
    assert r.headers["Content-Length"] == "0"
    assert r.body == b""


async def test_204_never_carries_a_body_or_length() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(204)

    data = await fetch_raw(H)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
    lower = head.lower()
    assert b"content-length" not in lower
    assert b"transfer-encoding" not in lower
    assert b"content-type" not in lower
    assert body == b""


async def test_body_written_with_204_is_an_error_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(204)
            self.write("not allowed")

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        r = await fetch(H)
    # Tornado's rule: a body with 204 is a bug in the handler, so a 500 page.
    assert r.status == 500
    assert r.text == (
        "<html><title>500: Internal Server Error</title>"
        "<body>500: Internal Server Error</body></html>"
    )
    errors = [rec for rec in caplog.records if rec.name == "trioweb.error"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


async def test_finish_exception_with_a_body_on_204_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(204)
            raise Finish("not allowed")

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        r = await fetch(H)
    assert r.status == 500
    errors = [rec for rec in caplog.records if rec.name == "trioweb.error"]
    assert len(errors) == 1
    assert isinstance(errors[0].exc_info[1], RuntimeError)  # type: ignore[index]


async def test_invalid_status_is_a_500_page(caplog: pytest.LogCaptureFixture) -> None:
    # h11 refuses the head; nothing was sent, so the error page can be.
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(1000)

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        r = await fetch(H)
    assert r.status == 500
    assert "500: Internal Server Error" in r.text
    errors = [rec for rec in caplog.records if rec.name == "trioweb.error"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


# -- redirect -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, 302),
        ({"permanent": True}, 301),
        ({"status": 303}, 303),
        ({"status": 307}, 307),
        ({"permanent": True, "status": 308}, 308),
    ],
)
async def test_redirect(kwargs: dict[str, Any], status: int) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.redirect("/elsewhere?a=1", **kwargs)

    r = await fetch(H)
    assert r.status == status
    assert r.headers["Location"] == "/elsewhere?a=1"
    assert r.body == b""


async def test_redirect_percent_encodes_non_ascii_as_utf8() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.redirect("/café/☕?q=naïve&x=%20")

    r = await fetch(H)
    assert r.status == 302
    # Latin-1 on the wire would be misread as UTF-8 by browsers.
    assert r.headers["Location"] == "/caf%C3%A9/%E2%98%95?q=na%C3%AFve&x=%20"


async def test_redirect_handler_fills_in_path_arguments_and_the_query() -> None:
    app = Application(
        [(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}", "permanent": False})]
    )
    async with TestClient(app) as client:
        r = await client.get("/old/caf%C3%A9", params={"q": "1"})
    assert r.status == 302
    assert r.headers["Location"] == "/new/caf%C3%A9?q=1"


async def test_redirect_handler_answers_400_for_a_target_it_cannot_send(
    no_tracebacks: None,
) -> None:
    # Regression: a path argument decoded to CR LF made redirect() raise
    # ValueError: a 500 and an ERROR traceback for the client's input.
    app = Application([(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})])
    async with TestClient(app) as client:
        r = await client.get("/old/a%0d%0aX:1")
        assert r.status == 400
        assert "X" not in r.headers
        assert "Location" not in r.headers
        assert (await client.get("/old/b")).headers["Location"] == "/new/b"


@pytest.mark.parametrize(
    "path", ["/old//evil.example/", "/old/%5Cevil.example", "/old/%2F%2Fevil"]
)
async def test_redirect_handler_answers_400_for_an_offsite_target(
    path: str, no_tracebacks: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: "/{0}" filled with "/evil.example" made redirect() raise
    # ValueError (an offsite redirect): a 500 and an ERROR traceback.
    app = Application([(r"/old/(.*)", RedirectHandler, {"url": "/{0}"})])
    async with TestClient(app) as client:
        r = await client.get(path)
        assert r.status == 400
        assert "Location" not in r.headers
        assert (await client.get("/old/b")).headers["Location"] == "/b"
    (warning,) = [m for m in caplog.records if m.levelno == logging.WARNING]
    assert "offsite" in warning.getMessage()


async def test_redirect_status_must_be_3xx() -> None:
    caught: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            try:
                await self.redirect("/x", status=200)
            except ValueError as exc:
                caught.append(str(exc))
            self.write("no redirect")

    r = await fetch(H)
    assert caught == ["redirect status must be 3xx, got 200"]
    assert (r.status, r.text) == (200, "no redirect")
    assert "Location" not in r.headers


@pytest.mark.parametrize("url", ["/a\r\nX-Evil: 1", "/a\nX-Evil: 1", "/a\rX-Evil"])
async def test_redirect_with_newline_is_500(url: str) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.redirect(url)

    class Caught(RequestHandler):
        async def get(self) -> None:
            try:
                await self.redirect(url)
            except ValueError:
                self.write("refused")

    data = await fetch_raw(H)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"Evil" not in data
    assert b"location" not in data.lower()
    r = await fetch(Caught)
    assert (r.status, r.text) == (200, "refused")


async def test_redirect_after_flush_is_an_error() -> None:
    caught: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await self.flush()
            try:
                await self.redirect("/x")
            except RuntimeError as exc:
                caught.append(str(exc))

    r = await fetch(H)
    assert r.status == 200
    assert caught == ["cannot redirect after the headers were sent"]


# -- Finish -------------------------------------------------------------------


async def test_raise_finish_keeps_status_and_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after: list[str] = []

    class H(RequestHandler):
        async def prepare(self) -> None:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="x"')
            self.write("nope, ")
            raise Finish("go away")

        def get(self) -> None:
            after.append("get")

    with caplog.at_level(logging.DEBUG, logger="trioweb.error"):
        r = await fetch(H)
    assert (r.status, r.reason) == (401, "Unauthorized")
    assert r.headers["WWW-Authenticate"] == 'Basic realm="x"'
    assert r.text == "nope, go away"
    assert after == []
    assert [rec for rec in caplog.records if rec.name == "trioweb.error"] == []


async def test_raise_finish_without_chunk_and_after_flush() -> None:
    class Plain(RequestHandler):
        def get(self) -> None:
            self.set_status(202)
            raise Finish()

    class Streamed(RequestHandler):
        async def get(self) -> None:
            self.write("a")
            await self.flush()
            raise Finish({"b": 1})

    r = await fetch(Plain)
    assert (r.status, r.body) == (202, b"")
    r = await fetch(Streamed)
    assert r.body == b'a{"b": 1}'


async def test_raise_finish_after_finish_is_quiet() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.finish("done")
            raise Finish("ignored")

    r = await fetch(H)
    assert (r.status, r.text) == (200, "done")


# -- ETag and 304 ---------------------------------------------------------------

BODY = b"a resource body"
BODY_ETAG = f'"{hashlib.sha1(BODY).hexdigest()}"'


class Resource(RequestHandler):
    def get(self) -> None:
        self.write(BODY)


async def test_etag_is_computed_for_200_get_and_head() -> None:
    async with TestClient(Application([("/", Resource)])) as client:
        get = await client.get("/")
        head = await client.head("/")
    assert get.headers["ETag"] == BODY_ETAG
    assert get.headers["Content-Length"] == str(len(BODY))
    assert head.headers["ETag"] == BODY_ETAG
    assert head.headers["Content-Length"] == str(len(BODY))
    assert head.body == b""


async def test_no_etag_for_other_methods_or_statuses() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_status(201)
            self.write(BODY)

        def post(self) -> None:
            self.write(BODY)

    async with TestClient(Application([("/", H)])) as client:
        assert "ETag" not in (await client.get("/")).headers
        r = await client.post("/", headers={"If-None-Match": "*"}, body=b"x")
        assert r.status == 200
        assert "ETag" not in r.headers


@pytest.mark.parametrize(
    "if_none_match",
    [
        BODY_ETAG,
        "W/" + BODY_ETAG,
        f'"other", {BODY_ETAG}',
        f'"a",W/{BODY_ETAG} , "b"',
        "*",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_matching_if_none_match_is_304(if_none_match: str, method: str) -> None:
    async with TestClient(Application([("/", Resource)])) as client:
        conn = await client.raw()
        await conn.send(
            f"{method} / HTTP/1.1\r\nHost: x\r\nIf-None-Match: {if_none_match}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = await conn.receive_until_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    lower = head.lower()
    assert f"etag: {BODY_ETAG}".encode() in lower
    assert b"content-type" not in lower
    assert b"content-length" not in lower
    assert b"transfer-encoding" not in lower
    assert body == b""


@pytest.mark.parametrize(
    "if_none_match", ['"nope"', 'W/"nope"', '"a", "b"', BODY_ETAG[:-2] + '"', ""]
)
async def test_non_matching_if_none_match_is_200(if_none_match: str) -> None:
    r = await fetch(Resource, headers={"If-None-Match": if_none_match})
    assert r.status == 200
    assert r.body == BODY
    assert r.headers["ETag"] == BODY_ETAG


async def test_compute_etag_override_and_none_disables() -> None:
    class Custom(RequestHandler):
        def compute_etag(self) -> str | None:
            return '"v1"'

        def get(self) -> None:
            self.write("anything")

    class NoEtag(RequestHandler):
        def compute_etag(self) -> str | None:
            return None

        def get(self) -> None:
            self.write("anything")

    r = await fetch(Custom)
    assert r.headers["ETag"] == '"v1"'
    r = await fetch(Custom, headers={"If-None-Match": 'W/"v1"'})
    assert (r.status, r.body) == (304, b"")
    r = await fetch(NoEtag)
    assert "ETag" not in r.headers
    r = await fetch(NoEtag, headers={"If-None-Match": "*"})
    assert (r.status, r.text) == (200, "anything")


async def test_etag_set_by_the_handler_is_kept() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("ETag", '"mine"')
            if self.check_etag_header():
                self.set_status(304)
                return
            self.write("body")

    r = await fetch(H)
    assert r.headers["ETag"] == '"mine"'
    assert r.text == "body"
    r = await fetch(H, headers={"If-None-Match": '"mine"'})
    assert (r.status, r.body) == (304, b"")
    assert "Content-Type" not in r.headers


async def test_constant_bodies_get_their_own_tags_request_after_request() -> None:
    # finish() keeps the tag of a body written as one bytes object (by the
    # object): two constants served in turn must each keep their own tag,
    # and a fresh body with equal bytes gets the equal tag.
    first, second = b"first constant", b"second constant"

    class H(RequestHandler):
        def get(self) -> None:
            which = self.get_query_argument("which")
            if which == "fresh":
                self.write(bytes(bytearray(first)))
            else:
                self.write(first if which == "1" else second)

    def tag(body: bytes) -> str:
        return f'"{hashlib.sha1(body).hexdigest()}"'

    async with TestClient(Application([("/", H)])) as client:
        for which in ("1", "2", "1", "2", "fresh"):
            r = await client.get("/", params={"which": which})
            assert r.headers["ETag"] == tag(second if which == "2" else first)
