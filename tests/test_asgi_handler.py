"""trioweb.ASGIHandler: an ASGI application (a real Starlette app, and bare
ASGI callables) mounted under a trioweb route, on trio, through the real
connection code (TestClient)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import trioweb
from trioweb.asgi import Message, Receive, Scope, Send
from trioweb.asgi_mount import asgi_lifespan, literal_prefix
from trioweb.testing import TestClient

starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import (  # noqa: E402
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route  # noqa: E402

events: list[str] = []
release = trio.Event()


@pytest.fixture(autouse=True)
def fresh() -> None:
    global release
    events.clear()
    release = trio.Event()


# -- the Starlette application --------------------------------------------------


async def where(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "root_path": request.scope["root_path"],
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.query_params.get("q"),
            "url_for": str(request.url_for("where")),
            "method": request.method,
            "client": request.client.host if request.client else None,
            "http_version": request.scope["http_version"],
        }
    )


async def echo(request: Request) -> StreamingResponse:
    """Sends each body chunk back, upper-cased, as it arrives."""

    async def upper() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk.upper()

    return StreamingResponse(upper(), media_type="text/plain")


async def parts(request: Request) -> StreamingResponse:
    """Sends one part, waits for the test's release, sends another."""

    async def gen() -> AsyncIterator[bytes]:
        yield b"first\n"
        await release.wait()
        yield b"second\n"

    return StreamingResponse(gen(), media_type="text/plain")


async def ticks(request: Request) -> StreamingResponse:
    """Ticks until Starlette's own disconnect check says the client left."""

    async def gen() -> AsyncIterator[bytes]:
        try:
            while not await request.is_disconnected():
                yield b"tick\n"
                await trio.sleep(1)
            events.append("saw the disconnect")
        finally:
            events.append("generator closed")

    return StreamingResponse(gen(), media_type="text/plain")


async def size(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


async def plain(request: Request) -> PlainTextResponse:
    return PlainTextResponse("plain text")


async def fail(request: Request) -> Response:
    raise RuntimeError("starlette endpoint failed")


legacy = Starlette(
    routes=[
        Route("/where", where, name="where", methods=["GET", "POST", "HEAD"]),
        Route("/echo", echo, methods=["POST"]),
        Route("/parts", parts),
        Route("/ticks", ticks),
        Route("/size", size, methods=["POST"]),
        Route("/fail", fail),
        Route("/plain", plain),
    ]
)


# -- bare ASGI applications -------------------------------------------------------


async def waits_for_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Streams a head, then listens: the ASGI way to learn the client left."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    while True:
        message = await receive()
        events.append(message["type"])
        if message["type"] == "http.disconnect":
            break
    try:
        await send({"type": "http.response.body", "body": b"more", "more_body": True})
    except OSError:
        events.append("send raised OSError")


async def ignores_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    try:
        await trio.sleep_forever()
    finally:
        events.append(f"cancelled at {trio.current_time():g}")


async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    pass


async def half_response(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"half", "more_body": True})


async def reads_body(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        events.append(f"{message['type']} {len(message.get('body', b''))}")
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


class Recording(trioweb.ASGIHandler):
    def on_connection_close(self) -> None:
        events.append("on_connection_close")


def make_app(**settings: Any) -> trioweb.Application:
    return trioweb.Application(
        [
            (r"/", Hello),
            (r"/legacy/.*", trioweb.ASGIHandler, {"app": legacy}),
            (r"/api/v1/(.*)", trioweb.ASGIHandler, {"app": legacy}),
            (r"/mounted/.*", trioweb.ASGIHandler, {"app": legacy, "root_path": ""}),
            (r"/listen", Recording, {"app": waits_for_disconnect}),
            (r"/ignore", Recording, {"app": ignores_disconnect, "disconnect_grace": 2}),
            (r"/none", trioweb.ASGIHandler, {"app": no_response}),
            (r"/half", trioweb.ASGIHandler, {"app": half_response}),
            (r"/reads", trioweb.ASGIHandler, {"app": reads_body}),
        ],
        **settings,
    )


class Hello(trioweb.RequestHandler):
    def get(self) -> None:
        self.write("trioweb")


# -- mounting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"/legacy/.*", "/legacy/"),
        (r"/api/v1/(.*)", "/api/v1/"),
        (r"/docs/?", "/docs"),
        (r"/a\.b/(?P<rest>.*)", "/a.b/"),
        (r"/x+", "/x"),
        (r"\d+", ""),
        (r"/exact", "/exact"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


async def test_starlette_mounted_with_its_root_path() -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/legacy/where", params={"q": "é"})
        assert r.status == 200
        assert r.json() == {
            "root_path": "/legacy",
            # As ASGI has it: the path and raw_path whole, root_path included.
            "path": "/legacy/where",
            "raw_path": "/legacy/where",
            "query": "é",
            # URLs built by the mounted app point into the mount.
            "url_for": "http://testserver/legacy/where",
            "method": "GET",
            "client": "127.0.0.1",
            "http_version": "1.1",
        }
        # The rest of the site is trioweb's.
        assert (await client.get("/")).body == b"trioweb"
        # Routes of the Starlette app that do not exist: its own 404.
        assert (await client.get("/legacy/nothing")).status == 404


async def test_the_root_path_from_a_group_and_given() -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/api/v1/where")
        assert r.json()["root_path"] == "/api/v1"
        assert r.json()["url_for"] == "http://testserver/api/v1/where"
        # Given: the app routes on the whole path (no /where there: 404).
        assert (await client.get("/mounted/where")).status == 404


async def test_as_the_default_handler_it_gets_every_other_path() -> None:
    app = trioweb.Application(
        [(r"/", Hello)],
        default_handler_class=trioweb.ASGIHandler,
        default_handler_args={"app": legacy},
    )
    async with TestClient(app) as client:
        assert (await client.get("/")).body == b"trioweb"
        r = await client.get("/where")
        assert r.json()["root_path"] == ""
        assert r.json()["path"] == "/where"


async def test_every_method_and_head() -> None:
    async with TestClient(make_app()) as client:
        r = await client.post("/legacy/where", body=b"x")
        assert r.json()["method"] == "POST"
        get = await client.get("/legacy/plain")
        head = await client.head("/legacy/plain")
        assert head.status == 200
        assert head.body == b""
        assert head.headers["Content-Length"] == get.headers["Content-Length"] == "10"


# -- streaming both ways ------------------------------------------------------------


async def test_the_request_and_the_response_stream_both_ways() -> None:
    # Each chunk comes back before the next is sent: neither side waits
    # for the whole body.
    async with TestClient(make_app()) as client:
        conn = await client.raw()
        await conn.send(
            b"POST /legacy/echo HTTP/1.1\r\nHost: t\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        )
        received = b""
        while b"ABC" not in received:
            received += await conn.receive()
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"DEF" not in received
        await conn.send(b"3\r\ndef\r\n")
        while b"DEF" not in received:
            received += await conn.receive()
        await conn.send(b"0\r\n\r\n")
        while not received.endswith(b"0\r\n\r\n"):
            received += await conn.receive()
        await conn.aclose()


async def test_a_streamed_response_arrives_part_by_part() -> None:
    async with (
        TestClient(make_app()) as client,
        client.stream("GET", "/legacy/parts") as r,
    ):
        assert await r.receive() == b"first\n"
        release.set()
        assert await r.read() == b"second\n"


async def test_a_large_body_reaches_the_app() -> None:
    async with TestClient(make_app()) as client:
        r = await client.post("/legacy/size", body=b"z" * 1_000_000)
        assert r.body == b"1000000"


# -- disconnects --------------------------------------------------------------------


async def test_the_app_sees_http_disconnect_when_the_client_leaves(
    no_tracebacks: None,
) -> None:
    async with TestClient(make_app()) as client:
        sent = await client.abort("GET", "/listen", after=1)
    assert sent.endswith(b"hello\r\n")
    assert events == [
        "http.request",
        "http.disconnect",
        "send raised OSError",
        "on_connection_close",
    ]


async def watches_while_answering(scope: Scope, receive: Receive, send: Send) -> None:
    # A common ASGI pattern: a task waits for http.disconnect while the
    # response goes out.
    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        events.append(f"{scope['path']} disconnect")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
    events.append(f"{scope['path']} returned")


async def test_a_pending_receive_gets_http_disconnect_once_the_response_is_complete(
    autojump_clock: trio.abc.Clock, no_tracebacks: None
) -> None:
    app = trioweb.Application(
        [(r"/w/.*", trioweb.ASGIHandler, {"app": watches_while_answering})]
    )
    async with TestClient(app) as client:
        conn = await client.raw()
        # Pipelined: the second is answered only once the first app returned.
        await conn.send(
            b"GET /w/a HTTP/1.1\r\nHost: t\r\n\r\nGET /w/b HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        with trio.fail_after(5):
            first = await conn.read_response()
            second = await conn.read_response()
        await conn.aclose()
    assert (first.status, first.body, second.status, second.body) == (
        200,
        b"ok",
        200,
        b"ok",
    )
    assert events == [
        "/w/a disconnect",
        "/w/a returned",
        "/w/b disconnect",
        "/w/b returned",
    ]


async def answers_1xx(scope: Scope, receive: Receive, send: Send) -> None:
    status = int(scope["query_string"].decode())
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("status", [100, 101, 103])
async def test_an_app_answering_1xx_gets_a_500_and_the_connection_stays_in_step(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    app = trioweb.Application(
        [
            (r"/early", trioweb.ASGIHandler, {"app": answers_1xx}),
            (r"/", Hello),
        ]
    )
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(
            b"GET /early?%d HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" % status
        )
        first = await conn.read_response()
        second = await conn.read_response()
        await conn.aclose()
    assert first.status == 500
    assert (second.status, second.body) == (200, b"trioweb")
    assert f"status {status} cannot be a final response" in caplog.text


async def test_starlettes_is_disconnected_works_on_trio(
    autojump_clock: trio.abc.Clock, no_tracebacks: None
) -> None:
    async with TestClient(make_app()) as client:
        sent = await client.abort("GET", "/legacy/ticks", after=2.5)
    assert sent.count(b"tick") == 3
    assert events == ["saw the disconnect", "generator closed"]


async def test_an_app_that_ignores_the_disconnect_is_cancelled_after_the_grace(
    autojump_clock: trio.abc.Clock, no_tracebacks: None
) -> None:
    async with TestClient(make_app()) as client:
        left = trio.current_time() + 1
        await client.abort("GET", "/ignore", after=1)
    assert events == [f"cancelled at {left + 2:g}", "on_connection_close"]


async def test_a_body_over_the_limit_is_413_and_the_app_is_told_the_request_ended(
    no_tracebacks: None,
) -> None:
    async with TestClient(
        make_app(), config=trioweb.ServerConfig(max_body_size=4)
    ) as client:
        conn = await client.raw()
        await conn.send(
            b"POST /reads HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n"
        )
        # The app has the first chunk before the second takes the body past
        # the limit (chunks that arrive together are one piece).
        await trio.testing.wait_all_tasks_blocked()
        await conn.send(b"3\r\ndef\r\n0\r\n\r\n")
        r = await conn.read_response("POST")
        assert r.status == 413
        # Refused from its Content-Length: the app never runs.
        r = await client.post("/reads", body=b"too long")
        assert r.status == 413
    assert events == ["http.request 3", "http.disconnect 0"]


async def test_a_stalled_body_is_408(autojump_clock: trio.abc.Clock) -> None:
    config = trioweb.ServerConfig(body_timeout=3)
    async with TestClient(make_app(), config=config) as client:
        conn = await client.raw()
        await conn.send(
            b"POST /reads HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"
        )
        r = await conn.read_response("POST")
        assert r.status == 408
    assert events == ["http.request 3", "http.disconnect 0"]


# -- errors -------------------------------------------------------------------------


async def test_an_app_error_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/legacy/fail")
    assert r.status == 500
    assert "starlette endpoint failed" in caplog.text


async def test_an_app_that_sends_no_response_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(make_app()) as client:
        r = await client.get("/none")
    assert r.status == 500
    assert "returned without sending a response" in caplog.text


async def test_an_app_that_stops_mid_response_leaves_it_incomplete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(make_app()) as client:
        conn = await client.raw()
        await conn.send(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n")
        received = await conn.receive_until_closed()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"4\r\nhalf\r\n")  # no last chunk: broken
    assert "before completing its response" in caplog.text


async def test_cross_origin_protection_applies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with TestClient(make_app(cross_origin_protection=True)) as client:
        r = await client.post(
            "/legacy/where", headers={"Sec-Fetch-Site": "cross-site"}, body=b""
        )
        assert r.status == 403
        r = await client.post(
            "/legacy/where", headers={"Sec-Fetch-Site": "same-origin"}, body=b""
        )
        assert r.status == 200


async def test_a_bad_app_argument_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    app = trioweb.Application([(r"/x", trioweb.ASGIHandler, {"app": "nope"})])
    async with TestClient(app) as client:
        assert (await client.get("/x")).status == 500
    assert "must be an ASGI application" in caplog.text


async def test_a_message_of_the_wrong_kind_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def websocket_talk(scope: Scope, receive: Receive, send: Send) -> None:
        message: Message = {"type": "websocket.accept"}
        await send(message)

    app = trioweb.Application([(r"/x", trioweb.ASGIHandler, {"app": websocket_talk})])
    async with TestClient(app) as client:
        assert (await client.get("/x")).status == 500
    assert "websocket.accept" in caplog.text


# -- the mounted application's lifespan ----------------------------------------------


def lifespan_app(fail: bool = False) -> tuple[Starlette, list[str]]:
    said: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        said.append("startup")
        if fail:
            raise ValueError("no database")
        yield {"greeting": "hello from the lifespan"}
        said.append("shutdown")

    async def greet(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.greeting)

    return Starlette(routes=[Route("/greet", greet)], lifespan=lifespan), said


async def test_a_mounted_apps_lifespan_and_its_state() -> None:
    sub, said = lifespan_app()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: trioweb.Application) -> AsyncIterator[None]:
        async with asgi_lifespan(sub, state):
            yield

    app = trioweb.Application(
        [(r"/sub/.*", trioweb.ASGIHandler, {"app": sub, "state": state})],
        lifespan=lifespan,
    )
    async with TestClient(app) as client:
        assert said == ["startup"]
        r = await client.get("/sub/greet")
        assert r.body == b"hello from the lifespan"
    assert said == ["startup", "shutdown"]


async def test_a_failed_mounted_startup_raises() -> None:
    sub, said = lifespan_app(fail=True)
    with pytest.raises(RuntimeError, match=r"lifespan\.startup failed") as info:
        async with asgi_lifespan(sub):
            pass  # pragma: no cover
    assert "no database" in str(info.value)
    assert said == ["startup"]


async def test_an_app_without_a_lifespan_is_left_alone() -> None:
    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")

    async with asgi_lifespan(http_only) as state:
        assert state == {}


async def test_a_shutdown_that_hangs_is_cut_short(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def hangs(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await trio.sleep_forever()

    start = trio.current_time()
    async with asgi_lifespan(hangs, shutdown_timeout=3):
        pass
    assert trio.current_time() - start == pytest.approx(3)
    assert "did not complete its lifespan shutdown in 3 s" in caplog.text


# -- over a real socket ------------------------------------------------------------


async def test_mounted_over_a_real_socket_with_httpx() -> None:
    # trioweb's own server on loopback, httpx as the client: the Starlette
    # app streams a request body back while it arrives.
    config = trioweb.ServerConfig(host="127.0.0.1", port=0, access_log=False)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(trioweb.serve, make_app(), config)
        host, port = addresses[0][:2]

        async def body() -> AsyncIterator[bytes]:
            for part in (b"one ", b"two ", b"three"):
                yield part

        with trio.fail_after(10):
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
                r = await http.get("/legacy/where")
                assert r.json()["root_path"] == "/legacy"
                r = await http.post("/legacy/echo", content=body())
                assert r.text == "ONE TWO THREE"
                assert r.headers["transfer-encoding"] == "chunked"
        nursery.cancel_scope.cancel()
