"""trioweb.asgi.ASGIAdapter driven message by message, the way an ASGI server
drives it, in memory: the lifespan, the contract (a disconnect cancels the
handler, finish() returns when the server took the bytes, the body
timeouts and limits), errors. tests/test_asgi_server.py runs it under a
real server (hypercorn)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import trioweb
from trioweb.asgi import READ_AHEAD_LIMIT, ASGIAdapter, ASGIExchange, Message

# -- an ASGI server in memory --------------------------------------------------


class Call:
    """One ASGI ``http`` call: what the test feeds to ``receive()``, and what
    the application gave ``send()``."""

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        http_version: str = "1.1",
        query: bytes = b"",
    ) -> None:
        self.inbox, self._outbox = trio.open_memory_channel[Message](math.inf)
        self.sent: list[Message] = []
        self.receives = 0
        #: While set, send() waits until it is set (a server that is slow
        #: to take the bytes).
        self.gate: trio.Event | None = None
        #: send() raises OSError (the client is gone, ASGI 2.4).
        self.closed = False
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": http_version,
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"example.com"), *(headers or [])],
            "client": ("10.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }

    async def receive(self) -> Message:
        self.receives += 1
        return await self._outbox.receive()

    async def send(self, message: Message) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.closed:
            raise OSError("the client is gone")
        self.sent.append(message)

    def body(self, data: bytes, *, more: bool = False) -> None:
        self.inbox.send_nowait(
            {"type": "http.request", "body": data, "more_body": more}
        )

    def disconnect(self) -> None:
        self.inbox.send_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def response_body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    @property
    def complete(self) -> bool:
        return bool(self.sent) and not self.sent[-1].get("more_body", False)


async def serve(adapter: ASGIAdapter, call: Call) -> Call:
    """Run one call to the end (a bodiless request's body first)."""
    if call.scope["method"] in ("GET", "HEAD"):
        call.body(b"")
    await adapter(call.scope, call.receive, call.send)
    return call


@asynccontextmanager
async def lifespan(adapter: ASGIAdapter) -> AsyncIterator[list[Message]]:
    """Run the adapter's lifespan around the block, as a server does."""
    inbox, outbox = trio.open_memory_channel[Message](math.inf)
    said: list[Message] = []
    started = trio.Event()

    async def send(message: Message) -> None:
        said.append(message)
        started.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(adapter, {"type": "lifespan"}, outbox.receive, send)
        inbox.send_nowait({"type": "lifespan.startup"})
        await started.wait()
        yield said
        inbox.send_nowait({"type": "lifespan.shutdown"})


# -- the applications ------------------------------------------------------------

events: list[str] = []


class Hello(trioweb.RequestHandler):
    async def get(self) -> None:
        self.write(
            {
                "version": self.request.version,
                "remote_ip": self.request.remote_ip,
                "uri": self.request.uri,
                "host": self.request.host,
            }
        )

    async def post(self) -> None:
        self.write(self.request.body)


class Hang(trioweb.RequestHandler):
    async def get(self) -> None:
        self.write("head")
        await self.flush()
        try:
            await trio.sleep_forever()
        finally:
            events.append("cancelled")

    def on_connection_close(self) -> None:
        events.append("connection closed")


class Finish(trioweb.RequestHandler):
    async def get(self) -> None:
        await self.finish("done")
        events.append("finish returned")


class Boom(trioweb.RequestHandler):
    async def get(self) -> None:
        if self.get_query_argument("after", None):
            self.write("part")
            await self.flush()
        raise RuntimeError("boom")


@trioweb.stream_request_body
class Slow(trioweb.RequestHandler):
    async def post(self) -> None:
        await trio.sleep_forever()


def make_app(**settings: Any) -> trioweb.Application:
    return trioweb.Application(
        [
            (r"/", Hello),
            (r"/hang", Hang),
            (r"/finish", Finish),
            (r"/boom", Boom),
            (r"/slow", Slow),
        ],
        **settings,
    )


@pytest.fixture(autouse=True)
def clear_events() -> None:
    events.clear()


# -- the tests ---------------------------------------------------------------------


async def test_an_asgi_exchange_has_the_engine_exchanges_interface() -> None:
    # The web layer is driven with an ASGIExchange as if it were the
    # engine's Exchange: every public name of one must exist on the other.
    exchange = ASGIExchange(
        Call().scope, Call().receive, Call().send, trioweb.ServerConfig()
    )
    names = {
        name
        for name in (*trioweb.Exchange.__slots__, *vars(trioweb.Exchange))
        if not name.startswith("_")
    }
    missing = sorted(name for name in names if not hasattr(exchange, name))
    assert not missing, missing


async def test_a_request_and_its_response() -> None:
    adapter = make_app().asgi()
    call = await serve(adapter, Call("GET", "/", query=b"a=%C3%A9", http_version="2"))
    assert call.status == 200
    assert call.complete
    assert call.headers[b"content-type"] == b"application/json; charset=UTF-8"
    assert b"date" not in call.headers  # the server's to add
    # So is Server: trioweb's would be a second one.
    names = [name for name, _ in call.sent[0]["headers"]]
    assert b"server" not in names
    assert json.loads(call.response_body) == {
        "version": "HTTP/2",
        "remote_ip": "10.0.0.1",
        "uri": "/?a=%C3%A9",
        "host": "example.com",
    }


async def test_the_request_body_streams_in() -> None:
    adapter = make_app().asgi()
    call = Call("POST", "/", headers=[(b"content-length", b"6")])
    call.body(b"abc", more=True)
    call.body(b"def")
    await serve(adapter, call)
    assert (call.status, call.response_body) == (200, b"abcdef")


async def test_a_disconnect_cancels_the_handler() -> None:
    adapter = make_app().asgi()
    call = Call("GET", "/hang")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, adapter, call)
        await trio.testing.wait_all_tasks_blocked()
        # flush() sent the head and the first part.
        assert call.status == 200
        assert call.response_body == b"head"
        call.disconnect()
    assert events == ["cancelled", "connection closed"]
    assert not call.complete


async def test_a_disconnect_after_the_response_cancels_nothing() -> None:
    adapter = make_app().asgi()
    call = Call("GET", "/finish")
    call.body(b"")
    # Hypercorn queues http.disconnect as the response completes.
    call.disconnect()
    await adapter(call.scope, call.receive, call.send)
    assert call.complete
    assert events == ["finish returned"]


async def test_finish_returns_when_the_server_took_the_bytes() -> None:
    adapter = make_app().asgi()
    call = Call("GET", "/finish")
    call.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, adapter, call)
        await trio.testing.wait_all_tasks_blocked()
        assert events == []
        assert call.sent == []
        call.gate.set()
    assert events == ["finish returned"]
    assert call.response_body == b"done"


async def test_a_send_to_a_client_that_left_is_stream_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = make_app().asgi()
    call = Call("GET", "/finish")
    call.closed = True
    await serve(adapter, call)
    # finish() raised StreamClosedError: no "finish returned", no error.
    assert events == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_body_that_stalls_is_a_408(autojump_clock: trio.abc.Clock) -> None:
    adapter = make_app().asgi(trioweb.ServerConfig(body_timeout=5))
    call = Call("POST", "/", headers=[(b"content-length", b"10")])
    call.body(b"abc", more=True)
    start = trio.current_time()
    await serve(adapter, call)
    assert call.status == 408
    assert trio.current_time() - start == pytest.approx(5)


async def test_a_body_dripping_below_the_minimum_rate_is_a_408(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The same rule as the engine's (trioweb.server.exchange.body_wait_deadline):
    # each piece comes well within body_timeout, but the average is far
    # below min_body_rate once its grace is over.
    config = trioweb.ServerConfig(min_body_rate=100, min_body_rate_grace=5)
    adapter = make_app().asgi(config)
    call = Call("POST", "/", headers=[(b"content-length", b"1000")])

    async def drip() -> None:
        for _ in range(100):
            call.body(b"x", more=True)
            await trio.sleep(2)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drip)
        await serve(adapter, call)
        nursery.cancel_scope.cancel()
    assert call.status == 408
    assert trio.current_time() - start == pytest.approx(5)


async def test_a_content_length_over_the_limit_is_a_413_before_reading() -> None:
    adapter = make_app().asgi(trioweb.ServerConfig(max_body_size=4))
    call = Call(
        "POST",
        "/",
        headers=[(b"content-length", b"10"), (b"expect", b"100-continue")],
    )
    await serve(adapter, call)
    assert call.status == 413
    # Never read: the server sends no 100 Continue for a refused body.
    assert call.receives == 0


async def test_a_body_over_the_limit_is_a_413() -> None:
    adapter = make_app().asgi(trioweb.ServerConfig(max_body_size=4))
    call = Call("POST", "/", headers=[(b"transfer-encoding", b"chunked")])
    call.body(b"abc", more=True)
    call.body(b"def", more=True)
    await serve(adapter, call)
    assert call.status == 413


async def test_the_body_is_read_ahead_a_bounded_way() -> None:
    adapter = make_app().asgi()
    call = Call("POST", "/slow", headers=[(b"transfer-encoding", b"chunked")])
    for _ in range(40):
        call.body(b"x" * 16384, more=True)
    with trio.move_on_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, adapter, call)
            await trio.testing.wait_all_tasks_blocked()
            # The handler reads nothing; the adapter stopped at its limit.
            assert call.receives * 16384 <= READ_AHEAD_LIMIT + 16384
            nursery.cancel_scope.cancel()


async def test_a_handler_error_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_app().asgi()
    call = await serve(adapter, Call("GET", "/boom"))
    assert call.status == 500
    assert call.complete
    assert "boom" in caplog.text


async def test_a_handler_error_after_the_head_leaves_the_response_incomplete() -> None:
    adapter = make_app().asgi()
    call = await serve(adapter, Call("GET", "/boom", query=b"after=1"))
    assert call.status == 200
    assert call.response_body == b"part"
    # No final message: the server ends the response as a broken one.
    assert not call.complete


class Early(trioweb.RequestHandler):
    async def get(self) -> None:
        self.set_status(int(self.get_argument("s")))
        await self.finish()


@pytest.mark.parametrize("status", [100, 101, 103])
async def test_a_1xx_final_response_is_a_500(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = trioweb.Application([("/", Early)]).asgi()
    call = await serve(adapter, Call("GET", "/", query=b"s=%d" % status))
    assert call.status == 500
    assert call.complete
    assert [m["type"] for m in call.sent].count("http.response.start") == 1
    assert f"status {status} cannot be a final response" in caplog.text


async def test_head_sends_no_body() -> None:
    adapter = make_app().asgi()
    call = await serve(adapter, Call("HEAD", "/"))
    assert call.status == 200
    assert call.response_body == b""
    assert call.complete
    assert int(call.headers[b"content-length"]) > 0


async def test_an_exchange_app_that_does_not_answer_gets_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Silent:
        async def handle_exchange(self, exchange: trioweb.Exchange) -> None:
            pass

    call = await serve(ASGIAdapter(Silent()), Call())
    assert call.status == 500
    assert "returned without responding" in caplog.text


async def test_the_lifespan_runs_the_applications_hooks() -> None:
    said: list[str] = []

    async def startup() -> None:
        said.append("startup")

    async def shutdown() -> None:
        said.append("shutdown")

    app = trioweb.Application(on_startup=[startup], on_shutdown=[shutdown])
    async with lifespan(app.asgi()) as messages:
        assert said == ["startup"]
        assert [m["type"] for m in messages] == ["lifespan.startup.complete"]
        # The application's nursery exists while it is served.
        assert app.nursery is not None
    assert said == ["startup", "shutdown"]
    assert [m["type"] for m in messages][-1] == "lifespan.shutdown.complete"


async def test_a_failed_startup_is_reported() -> None:
    async def startup() -> None:
        raise ValueError("no database")

    app = trioweb.Application(on_startup=[startup])
    inbox, outbox = trio.open_memory_channel[Message](1)
    said: list[Message] = []

    async def send(message: Message) -> None:
        said.append(message)

    inbox.send_nowait({"type": "lifespan.startup"})
    await app.asgi()({"type": "lifespan"}, outbox.receive, send)
    assert said[0]["type"] == "lifespan.startup.failed"
    assert "no database" in said[0]["message"]


async def test_a_websocket_is_refused() -> None:
    inbox, outbox = trio.open_memory_channel[Message](1)
    said: list[Message] = []

    async def send(message: Message) -> None:
        said.append(message)

    inbox.send_nowait({"type": "websocket.connect"})
    await make_app().asgi()({"type": "websocket"}, outbox.receive, send)
    assert said == [{"type": "websocket.close", "code": 1000}]


def test_it_says_when_the_server_is_not_on_trio() -> None:
    async def main() -> None:
        async def receive() -> Message:
            raise AssertionError("not reached")

        async def send(message: Message) -> None:
            raise AssertionError("not reached")

        await make_app().asgi()(Call().scope, receive, send)

    with pytest.raises(RuntimeError, match="--worker-class trio"):
        asyncio.run(main())


async def test_the_adapter_applies_its_config() -> None:
    # Proxy headers from a trusted peer, and the server-wide concurrency
    # limit, as trioweb's own server applies them.
    adapter = make_app().asgi(
        trioweb.ServerConfig(
            proxy_headers=True, forwarded_allow_ips="10.0.0.1", limit_concurrency=1
        )
    )
    call = Call("GET", "/", headers=[(b"x-forwarded-for", b"203.0.113.9")])
    await serve(adapter, call)
    assert json.loads(call.response_body)["remote_ip"] == "203.0.113.9"
    hanging = Call("GET", "/hang")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, adapter, hanging)
        await trio.testing.wait_all_tasks_blocked()
        shed = await serve(adapter, Call("GET", "/"))
        assert shed.status == 503
        hanging.disconnect()
