"""RequestHandler lifecycle: initialize, prepare, the methods, finish,
on_connection_close, on_finish; method dispatch (405, HEAD); and what happens
when the client leaves (docs/design.md, the contract, rule 3)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from helpers import fetch

from trioweb import (
    Application,
    Finish,
    HTTPError,
    RequestHandler,
    StreamClosedError,
    url,
)
from trioweb.testing import TestClient


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def access_statuses(caplog: pytest.LogCaptureFixture) -> list[int]:
    # '127.0.0.1:50000 "GET / HTTP/1.1" 499 0 1000.0ms'
    statuses = []
    for record in records(caplog, "trioweb.access"):
        match = re.search(r'" (\d{3}) \d+ ', record.getMessage())
        assert match, record.getMessage()
        statuses.append(int(match.group(1)))
    return statuses


class Recorder(RequestHandler):
    """Appends each lifecycle step to the class's ``events`` list."""

    events: list[str]

    def initialize(self, **kwargs: Any) -> None:
        self.events.append("initialize")

    def prepare(self) -> Awaitable[None] | None:
        self.events.append("prepare")
        return None

    def on_connection_close(self) -> None:
        self.events.append("on_connection_close")

    def on_finish(self) -> None:
        self.events.append("on_finish")


# -- initialize and prepare -----------------------------------------------------


async def test_initialize_receives_the_url_rule_kwargs() -> None:
    db = object()

    class H(RequestHandler):
        def initialize(self, db: object, name: str = "default") -> None:
            self.db = db
            self.name = name

        def get(self) -> None:
            self.write({"same_db": self.db is db, "name": self.name})

    app = Application(
        [
            ("/tuple", H, {"db": db}),
            url("/url", H, {"db": db, "name": "given"}, name="u"),
        ]
    )
    async with TestClient(app) as client:
        assert (await client.get("/tuple")).json() == {
            "same_db": True,
            "name": "default",
        }
        assert (await client.get("/url")).json() == {"same_db": True, "name": "given"}


async def test_a_request_runs_initialize_prepare_method_on_finish_in_order() -> None:
    class H(Recorder):
        events: list[str] = []

        def get(self) -> None:
            self.events.append("get")
            self.write("ok")

    r = await fetch(H)
    assert r.text == "ok"
    assert H.events == ["initialize", "prepare", "get", "on_finish"]


async def test_path_arguments_reach_prepare_and_the_method() -> None:
    seen: list[Any] = []

    class H(RequestHandler):
        def prepare(self) -> None:
            seen.append((self.path_args, self.path_kwargs))

        def get(self, *args: str, **kwargs: str) -> None:
            seen.append((args, kwargs))

    app = Application([(r"/a/(\w+)/(\w+)", H), (r"/k/(?P<item>\w+)", H)])
    async with TestClient(app) as client:
        await client.get("/a/x/y")
        await client.get("/k/z")
    assert seen == [
        (["x", "y"], {}),
        (("x", "y"), {}),
        ([], {"item": "z"}),
        ((), {"item": "z"}),
    ]


@pytest.mark.parametrize("is_async", [False, True])
async def test_prepare_may_finish_and_the_method_is_not_called(is_async: bool) -> None:
    class H(Recorder):
        events: list[str] = []

        def get(self) -> None:
            self.events.append("get")

    if is_async:

        async def prepare(self: H) -> None:
            self.events.append("prepare")
            await trio.lowlevel.checkpoint()
            await self.finish("from prepare")

    else:

        def prepare(self: H) -> None:  # type: ignore[misc]
            self.events.append("prepare")
            raise Finish("from prepare")

    H.prepare = prepare  # type: ignore[method-assign,assignment]
    r = await fetch(H)
    assert (r.status, r.text) == (200, "from prepare")
    assert H.events == ["initialize", "prepare", "on_finish"]


async def test_prepare_raising_http_error_skips_the_method() -> None:
    class H(Recorder):
        events: list[str] = []

        async def prepare(self) -> None:
            self.events.append("prepare")
            raise HTTPError(403)

        def get(self) -> None:
            self.events.append("get")

    r = await fetch(H)
    assert r.status == 403
    assert H.events == ["initialize", "prepare", "on_finish"]


# -- the methods ----------------------------------------------------------------

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def make_handler(method: str, is_async: bool) -> type[RequestHandler]:
    if is_async:

        async def handle(self: RequestHandler) -> None:
            await trio.lowlevel.checkpoint()
            self.set_header("X-Method", method)
            self.write(f"{method} async")

    else:

        def handle(self: RequestHandler) -> None:  # type: ignore[misc]
            self.set_header("X-Method", method)
            self.write(f"{method} sync")

    return type(f"H{method}", (RequestHandler,), {method.lower(): handle})


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("method", METHODS)
async def test_every_method_may_be_sync_or_async(method: str, is_async: bool) -> None:
    body = b"payload" if method in ("POST", "PUT", "PATCH") else None
    r = await fetch(make_handler(method, is_async), method, body=body)
    assert r.status == 200
    assert r.headers["X-Method"] == method
    expected = f"{method} {'async' if is_async else 'sync'}".encode()
    assert r.headers["Content-Length"] == str(len(expected))
    assert r.body == (b"" if method == "HEAD" else expected)


async def test_finish_is_automatic_when_the_method_returns() -> None:
    finished: list[bool] = []

    class H(RequestHandler):
        async def get(self) -> None:
            self.write("written, never finished")

        def on_finish(self) -> None:
            finished.append(self._finished)

    r = await fetch(H)
    assert r.text == "written, never finished"
    assert finished == [True]


async def test_method_returning_after_explicit_finish_is_not_finished_again() -> None:
    class H(Recorder):
        events: list[str] = []

        async def get(self) -> None:
            await self.finish("done")
            self.events.append("after finish")

    r = await fetch(H)
    assert r.text == "done"
    assert H.events == ["initialize", "prepare", "after finish", "on_finish"]


# -- 405 and HEAD -----------------------------------------------------------------


async def test_unimplemented_method_is_405_with_allow() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            pass

        def post(self) -> None:
            pass

    async with TestClient(Application([("/", H)])) as client:
        for method in ("DELETE", "PUT", "PATCH", "OPTIONS"):
            r = await client.request(method, "/")
            assert r.status == 405, method
            assert r.headers["Allow"] == "GET, HEAD, POST"
        assert (await client.get("/")).status == 200


async def test_allow_lists_head_only_with_get_and_explicit_methods() -> None:
    class PostOnly(RequestHandler):
        def post(self) -> None:
            pass

        def options(self) -> None:
            pass

    async with TestClient(Application([("/", PostOnly)])) as client:
        r = await client.get("/")
        assert r.status == 405
        assert r.headers["Allow"] == "POST, OPTIONS"
        r = await client.head("/")
        assert r.status == 405
        assert r.body == b""


async def test_method_outside_supported_methods_is_405() -> None:
    called: list[str] = []

    class H(RequestHandler):
        SUPPORTED_METHODS = ("GET",)

        def get(self) -> None:
            pass

        def post(self) -> None:
            called.append("post")  # implemented, but not supported

    class Extended(RequestHandler):
        SUPPORTED_METHODS = (*RequestHandler.SUPPORTED_METHODS, "PROPFIND")

        def propfind(self) -> None:
            self.write("props")

    async with TestClient(Application([("/", H), ("/x", Extended)])) as client:
        for method in ("POST", "HEAD", "PROPFIND", "MKCOL"):
            r = await client.request(method, "/")
            assert r.status == 405, method
            assert r.headers["Allow"] == "GET"
        r = await client.request("PROPFIND", "/x")
        assert (r.status, r.text) == (200, "props")
        r = await client.request("MKCOL", "/x")
        assert r.status == 405
        assert r.headers["Allow"] == "PROPFIND"
    assert called == []


async def test_head_runs_get_and_drops_the_body() -> None:
    calls: list[str] = []

    class H(RequestHandler):
        def get(self) -> None:
            calls.append(self.request.method)
            self.set_header("X-From", "get")
            self.write("x" * 123)

    async with TestClient(Application([("/", H)])) as client:
        get = await client.get("/")
        head = await client.head("/")
        assert len(client.server_connections) == 1  # HEAD framing kept it alive
    assert calls == ["GET", "HEAD"]
    assert head.status == 200
    assert head.body == b""
    assert head.headers["X-From"] == "get"
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "123"
    assert head.headers["ETag"] == get.headers["ETag"]


async def test_explicit_head_is_preferred_over_get() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("from get")

        def head(self) -> None:
            self.set_header("X-From", "head")

    r = await fetch(H, "HEAD")
    assert r.headers["X-From"] == "head"
    assert r.headers["Content-Length"] == "0"


async def test_head_of_a_streamed_get_sends_no_body() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("one")
            await self.flush()
            self.write("two")

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await conn.read_response("HEAD")
        assert r.status == 200
        assert r.body == b""
        assert await conn.receive_available() == b""  # nothing after the head


def expect_request(method: str, path: str, length: int = 10) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/nowhere", b"404"), ("/get-only", b"405")],
)
async def test_404_and_405_never_ask_for_the_body(path: str, status: bytes) -> None:
    read: list[bytes] = []

    class GetOnly(RequestHandler):
        def get(self) -> None:
            read.append(self.request.body)

    async with TestClient(Application([("/get-only", GetOnly)])) as client:
        conn = await client.raw()
        await conn.send(expect_request("POST", path))
        data = await conn.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"100 Continue" not in data
    assert b"connection: close" in data.lower()
    assert read == []


async def test_an_accepted_request_gets_100_continue_first() -> None:
    # The control for the test above: the same request, to a method that
    # exists, is asked for its body.
    class H(RequestHandler):
        def post(self) -> None:
            self.write(self.request.body)

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(expect_request("POST", "/"))
        first = await conn.receive()
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n")
        await conn.send(b"0123456789")
        r = await conn.read_response("POST")
    assert (r.status, r.body) == (200, b"0123456789")


# -- on_finish ------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize(
    "outcome", ["ok", "finish", "http_error", "crash", "finish_exc"]
)
async def test_on_finish_runs_exactly_once(is_async: bool, outcome: str) -> None:
    calls: list[int] = []

    class H(RequestHandler):
        async def get(self) -> None:
            if outcome == "finish":
                await self.finish("early")
            elif outcome == "http_error":
                raise HTTPError(404)
            elif outcome == "crash":
                raise ValueError("boom")
            elif outcome == "finish_exc":
                raise Finish("bye")

    if is_async:

        async def on_finish(self: H) -> None:
            await trio.lowlevel.checkpoint()
            calls.append(self.get_status())

    else:

        def on_finish(self: H) -> None:  # type: ignore[misc]
            calls.append(self.get_status())

    H.on_finish = on_finish  # type: ignore[method-assign,assignment]
    r = await fetch(H)
    expected = {"http_error": 404, "crash": 500}.get(outcome, 200)
    assert r.status == expected
    assert calls == [expected]


async def test_on_finish_error_is_logged_and_the_response_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("fine")

        async def on_finish(self) -> None:
            raise KeyError("cleanup")

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        async with TestClient(Application([("/", H)])) as client:
            r = await client.get("/")
            assert (r.status, r.text) == (200, "fine")
            r = await client.get("/")  # the connection still serves
            assert r.status == 200
            await trio.testing.wait_all_tasks_blocked()
    errors = records(caplog, "trioweb.error")
    assert len(errors) == 2
    assert all("on_finish" in e.getMessage() for e in errors)
    assert all(e.exc_info is not None for e in errors)


# -- the client leaves (contract 3) ------------------------------------------------


async def test_disconnect_cancels_the_handler_promptly(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class H(Recorder):
        events: list[str] = []

        async def get(self) -> None:
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.events.append("cancelled")
                raise
            finally:
                self.events.append("finally")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        sent = await client.abort("GET", "/", after=1.0)
        elapsed = trio.current_time() - start
    assert sent == b""
    assert elapsed == pytest.approx(1.0)
    assert H.events == [
        "initialize",
        "prepare",
        "cancelled",
        "finally",
        "on_connection_close",
        "on_finish",
    ]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


@pytest.mark.parametrize("is_async", [False, True])
async def test_on_connection_close_sync_or_async_before_on_finish(
    autojump_clock: trio.abc.Clock, is_async: bool
) -> None:
    events: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await trio.sleep(100)

        def on_finish(self) -> None:
            events.append("on_finish")

    if is_async:

        async def on_connection_close(self: H) -> None:
            await trio.sleep(1)  # not cancelled: the handler's scope is over
            events.append("on_connection_close")

    else:

        def on_connection_close(self: H) -> None:  # type: ignore[misc]
            events.append("on_connection_close")

    H.on_connection_close = on_connection_close  # type: ignore[method-assign,assignment]
    async with TestClient(Application([("/", H)])) as client:
        await client.abort("GET", "/", after=0.5)
    assert events == ["on_connection_close", "on_finish"]


async def test_on_connection_close_not_called_when_the_response_completed(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(Recorder):
        events: list[str] = []

        async def get(self) -> None:
            self.events.append("get")
            self.write("ok")

    async with TestClient(Application([("/", H)])) as client:
        r = await client.get("/")
        assert r.text == "ok"
        # The client leaves after its response: nothing was running.
        received = await client.abort("GET", "/", after=1.0)
        assert received.endswith(b"ok")
    assert H.events == ["initialize", "prepare", "get", "on_finish"] * 2


async def test_client_leaving_before_the_handler_starts_cancels_it_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(Recorder):
        events: list[str] = []

        async def prepare(self) -> None:
            self.events.append("prepare")
            await trio.sleep(10)
            self.events.append("prepare done")

        def get(self) -> None:
            self.events.append("get")

    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        await client.abort("GET", "/")
        assert trio.current_time() - start < 0.1
    assert H.events == ["initialize", "prepare", "on_connection_close", "on_finish"]


async def test_fan_out_in_the_handlers_nursery_is_cancelled_cleanly(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    unwound: list[int] = []
    events: list[str] = []

    async def slow_call(i: int) -> None:
        try:
            await trio.sleep(10 + i)
        finally:
            unwound.append(i)

    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(slow_call, i)
            events.append("all calls returned")  # never: they are cancelled

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        await client.abort("GET", "/", after=2.0)
        assert trio.current_time() - start == pytest.approx(2.0)
    assert sorted(unwound) == [0, 1, 2, 3, 4]
    assert events == ["on_connection_close", "on_finish"]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


async def test_streaming_handler_is_cancelled_when_the_reader_leaves(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[int] = []
    events: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            try:
                for i in range(100):
                    self.write(f"{i};")
                    await self.flush()
                    sent.append(i)
                    await trio.sleep(1)
            finally:
                events.append("finally")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        async with client.stream("GET", "/") as r:
            assert await r.receive() == b"0;"
            assert await r.receive() == b"1;"
        start = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == start  # no time passed: it ended at once
    assert sent == [0, 1]
    assert events == ["finally", "on_connection_close", "on_finish"]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


async def test_cancel_on_disconnect_false_runs_to_completion(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []

    class H(RequestHandler):
        cancel_on_disconnect = False

        async def get(self) -> None:
            self.write("partial")
            await trio.sleep(10)  # the client leaves meanwhile: not cancelled
            events.append(("disconnected", self.client_disconnected))
            try:
                await self.flush()
            except StreamClosedError:
                events.append("flush raised")
            try:
                await self.finish("end")
            except StreamClosedError:
                events.append("finish raised")
            events.append("completed")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        received = await client.abort("GET", "/", after=1.0)
        assert trio.current_time() - start == pytest.approx(10.0)
    assert received == b""
    assert events == [
        ("disconnected", True),
        "flush raised",
        "finish raised",
        "completed",
        "on_connection_close",
        "on_finish",
    ]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


async def test_cancel_on_disconnect_false_uncaught_stream_closed_is_quiet(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    class H(RequestHandler):
        cancel_on_disconnect = False

        async def get(self) -> None:
            await trio.sleep(5)
            await self.finish("too late")  # raises StreamClosedError
            events.append("not reached")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        await client.abort("GET", "/", after=1.0)
    assert events == ["on_connection_close", "on_finish"]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


async def test_cancel_on_disconnect_false_handler_bug_after_disconnect(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # The bug is logged; the error page cannot go out, and that is quiet;
    # on_connection_close and on_finish still run.
    events: list[str] = []

    class H(RequestHandler):
        cancel_on_disconnect = False

        async def get(self) -> None:
            await trio.sleep(5)
            raise ValueError("bug after the client left")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        await client.abort("GET", "/", after=1.0)
    assert events == ["on_connection_close", "on_finish"]
    errors = [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)
    assert access_statuses(caplog) == [499]


async def test_on_connection_close_error_is_logged_and_on_finish_still_runs(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await trio.sleep_forever()

        def on_connection_close(self) -> None:
            raise KeyError("oops")

        def on_finish(self) -> None:
            events.append("on_finish")

    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        async with TestClient(Application([("/", H)])) as client:
            await client.abort("GET", "/", after=1.0)
    assert events == ["on_finish"]
    errors = records(caplog, "trioweb.error")
    assert len(errors) == 1
    assert "on_connection_close" in errors[0].getMessage()
    assert errors[0].exc_info is not None


async def test_the_server_keeps_serving_after_a_client_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            if self.get_argument("slow", None):
                await trio.sleep_forever()
            self.write("fast")

    async with TestClient(Application([("/", H)])) as client:
        await client.abort("GET", "/", params={"slow": "1"}, after=1.0)
        r = await client.get("/")
        assert r.text == "fast"


async def test_client_leaving_mid_body_ends_the_request_quietly(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class H(Recorder):
        events: list[str] = []

        def post(self) -> None:
            self.events.append("post")

    caplog.set_level(logging.INFO, logger="trioweb")
    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        )
        await trio.sleep(1)
        await conn.aclose()
        with trio.fail_after(1):
            await conn.server_done.wait()
    assert H.events == ["initialize", "on_connection_close", "on_finish"]
    assert access_statuses(caplog) == [499]
    assert [
        r for r in records(caplog, "trioweb.error") if r.levelno >= logging.WARNING
    ] == []


# -- on_finish() and on_connection_close() have a deadline --------------------------


@pytest.mark.parametrize("setting", [None, 3.0])
async def test_a_slow_on_finish_is_cut_at_cleanup_timeout_and_pipelining_goes_on(
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    setting: float | None,
) -> None:
    # Regression: on_finish() ran with no deadline, so one that hung held
    # the next pipelined request (and the server's shutdown) forever.
    timeout = 10.0 if setting is None else setting
    finished: list[float] = []

    class H(RequestHandler):
        def get(self) -> None:
            self.write(self.request.path)

        async def on_finish(self) -> None:
            if self.request.path == "/slow":
                await trio.sleep_forever()
            finished.append(trio.current_time())

    settings = {} if setting is None else {"cleanup_timeout": setting}
    app = Application([(r"/.*", H)], **settings)
    caplog.set_level(logging.WARNING, logger="trioweb.error")
    # (Virtual time: without a deadline, this fails instead of hanging.)
    with trio.fail_after(100):
        async with TestClient(app) as client:
            conn = await client.raw()
            start = trio.current_time()
            await conn.send(
                b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert (await conn.read_response()).text == "/slow"
            assert (await conn.read_response()).text == "/next"
    assert finished == [pytest.approx(start + timeout)]
    [warning] = records(caplog, "trioweb.error")
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        f"H.on_finish() did not finish within {timeout:g} s: cancelled "
        "(raise the cleanup_timeout setting if it needs longer)"
    )


async def test_a_slow_on_connection_close_is_cut_and_on_finish_still_runs(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[tuple[str, float]] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await trio.sleep_forever()

        async def on_connection_close(self) -> None:
            try:
                await trio.sleep_forever()
            finally:
                events.append(("on_connection_close cut", trio.current_time()))

        async def on_finish(self) -> None:
            await trio.sleep(1)  # a deadline of its own: not cancelled
            events.append(("on_finish", trio.current_time()))

    caplog.set_level(logging.WARNING, logger="trioweb.error")
    app = Application([("/", H)], cleanup_timeout=2)
    with trio.fail_after(100):
        async with TestClient(app) as client:
            start = trio.current_time()
            await client.abort("GET", "/", after=1.0)
            await trio.sleep(5)
    assert events == [
        ("on_connection_close cut", pytest.approx(start + 3)),
        ("on_finish", pytest.approx(start + 4)),
    ]
    [warning] = records(caplog, "trioweb.error")
    assert "H.on_connection_close() did not finish within 2 s" in warning.getMessage()


async def test_prepare_runs_before_the_405_of_an_unimplemented_method() -> None:
    class CatchAll(RequestHandler):
        async def prepare(self) -> None:
            if self.request.path == "/old":
                await self.redirect("/new")
            else:
                raise HTTPError(404)

    async with TestClient(Application([("/.*", CatchAll)])) as client:
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            r = await client.request(method, "/missing")
            assert r.status == 404, method
        r = await client.post("/old", body=b"x")
        assert (r.status, r.headers["Location"]) == (302, "/new")


async def test_405_when_prepare_does_not_finish_and_the_body_is_not_read() -> None:
    seen: list[tuple[str, bytes]] = []

    class H(RequestHandler):
        max_body_size = 10

        def prepare(self) -> None:
            seen.append((self.request.method, self.request.body))

        def get(self) -> None:
            pass

    async with TestClient(Application([("/", H)])) as client:
        # A body over the limit would be a 413 if anything read it.
        r = await client.post("/", body=b"x" * 100)
        assert r.status == 405
        assert r.headers["Allow"] == "GET, HEAD"
        # Not in SUPPORTED_METHODS: 405 before prepare().
        r = await client.request("MKCOL", "/")
        assert r.status == 405
    assert seen == [("POST", b"")]


async def test_a_disconnect_cancels_through_the_connections_scope_and_hooks_still_run(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A GET handler runs in its connection's own scope, which the disconnect
    # cancels (no scope per request); the hooks after it run under a shield,
    # each with its own deadline, and may await.
    events: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            try:
                await trio.sleep(100)
            finally:
                events.append("cancelled")

        async def on_connection_close(self) -> None:
            await trio.sleep(1)
            events.append("on_connection_close")

        async def on_finish(self) -> None:
            await trio.sleep(1)
            events.append(
                "on_finish, connection cancelled: "
                f"{self._exchange.connection_cancelled}"
            )

    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        await client.abort("GET", "/", after=0.5)
        assert trio.current_time() - start == pytest.approx(2.5)
    assert events == [
        "cancelled",
        "on_connection_close",
        "on_finish, connection cancelled: True",
    ]


async def test_a_client_leaving_during_on_finish_after_an_aborted_response(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The handler failed after its head went out: the response is aborted,
    # never complete. Its run is over; a client that leaves during
    # on_finish() must not cancel the hook through the connection's scope.
    events: list[str] = []

    class H(RequestHandler):
        async def get(self) -> None:
            self.write(b"x" * 100)
            await self.flush()
            raise RuntimeError("after the head")

        async def on_finish(self) -> None:
            events.append("on_finish")
            await trio.sleep(1)
            events.append("on_finish done")

    async with TestClient(Application([("/", H)])) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(0.5)
        assert events == ["on_finish"]
        await raw.aclose()
        await raw.server_done.wait()
    assert events == ["on_finish", "on_finish done"]


async def test_a_head_request_keeps_a_scope_of_its_own(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Its streaming handler is cancelled when the head is sent, and its
    # connection serves the next request: the connection's scope must not be
    # the one cancelled.
    cancelled: list[tuple[float, bool]] = []

    class H(RequestHandler):
        async def get(self) -> None:
            self.write("first")
            await self.flush()
            try:
                await trio.sleep(100)
            except trio.Cancelled:
                cancelled.append(
                    (trio.current_time(), self._exchange.connection_cancelled)
                )
                raise

    async with TestClient(Application([("/", H)])) as client:
        for _ in range(2):
            r = await client.head("/")
            assert r.status_code == 200
            await trio.testing.wait_all_tasks_blocked()
        assert len(client.server_connections) == 1
    # Both cancelled at once (no virtual time passed), neither through the
    # connection's scope.
    assert cancelled == [(0.0, False), (0.0, False)]
