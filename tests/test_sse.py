"""Server-sent events: framing, one flush per event, keep-alive pings,
Last-Event-ID, the end of the block, and cancellation when the client leaves."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from helpers import not_reading

from trioweb import Application, RequestHandler, ServerConfig
from trioweb.sse import format_event
from trioweb.testing import TestClient

# -- framing (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("hi",), {}, b"data: hi\n\n"),
        (("",), {}, b"data: \n\n"),
        (("a\nb",), {}, b"data: a\ndata: b\n\n"),
        (("a\r\nb\rc",), {}, b"data: a\ndata: b\ndata: c\n\n"),
        (("a\n",), {}, b"data: a\ndata: \n\n"),
        # Only CR and LF break lines in the format; U+2028 stays in one.
        (("a\u2028b",), {}, "data: a\u2028b\n\n".encode()),
        ((b"bytes",), {}, b"data: bytes\n\n"),
        (({"n": 1},), {}, b'data: {"n": 1}\n\n'),
        (
            ("x",),
            {"event": "tick", "id": "7", "retry": 2500},
            b"event: tick\nid: 7\nretry: 2500\ndata: x\n\n",
        ),
    ],
)
def test_format_event(
    args: tuple[Any, ...], kwargs: dict[str, Any], expected: bytes
) -> None:
    assert format_event(*args, **kwargs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "1\n2"},
        {"id": "1\x002"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": True},
    ],
)
def test_format_event_refuses_fields_that_would_break_the_stream(
    kwargs: dict[str, Any],
) -> None:
    with pytest.raises(ValueError):
        format_event("x", **kwargs)


# -- over the connection ---------------------------------------------------------


def parse_events(raw: bytes) -> list[str]:
    return [block for block in raw.decode().split("\n\n") if block]


async def test_headers_one_flush_per_event_and_the_end() -> None:
    class Events(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                await events.send("one", event="n", id="1")
                await events.send("two\nlines", id="2")

    app = Application([("/events", Events)])
    async with TestClient(app) as client, client.stream("GET", "/events") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["Cache-Control"] == "no-cache"
        pieces = [piece async for piece in r.iter_bytes()]
        assert r.complete  # the response ended with the block
    assert pieces == [
        b"event: n\nid: 1\ndata: one\n\n",
        b"id: 2\ndata: two\ndata: lines\n\n",
    ]


async def test_last_event_id_is_available() -> None:
    seen: list[str | None] = []

    class Events(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                seen.append(events.last_event_id)

    async with TestClient(Application([("/events", Events)])) as client:
        await client.get("/events", headers={"Last-Event-ID": "41"})
        await client.get("/events")
    assert seen == ["41", None]


async def test_keep_alive_comment_when_idle(autojump_clock: trio.abc.Clock) -> None:
    class Quiet(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                await events.send("start")
                await trio.sleep(40)  # two ping intervals, then one more event
                await events.send("end")

    async with TestClient(Application([("/events", Quiet)])) as client:
        start = trio.current_time()
        async with client.stream("GET", "/events") as r:
            received = []
            async for piece in r.iter_bytes():
                received.append((round(trio.current_time() - start), piece))
    assert received == [
        (0, b"data: start\n\n"),
        (15, b": ping\n\n"),
        (30, b": ping\n\n"),
        (40, b"data: end\n\n"),
    ]


async def test_ping_interval_counts_from_the_last_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Busy(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream(ping_interval=10) as events:
                for n in range(3):
                    await events.send(str(n))
                    await trio.sleep(6)  # never 10 s without an event

    async with TestClient(Application([("/events", Busy)])) as client:
        r = await client.get("/events")
    assert b"ping" not in r.body
    assert parse_events(r.body) == ["data: 0", "data: 1", "data: 2"]


async def test_client_leaving_cancels_the_handler(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []

    class Ticker(RequestHandler):
        async def get(self) -> None:
            try:
                async with self.event_stream() as events:
                    n = 0
                    while True:
                        await events.send(str(n))
                        n += 1
                        await trio.sleep(1)
            except trio.Cancelled:
                log.append("cancelled")
                raise
            finally:
                log.append("finally")

        def on_connection_close(self) -> None:
            log.append("on_connection_close")

        def on_finish(self) -> None:
            log.append("on_finish")

    async with TestClient(Application([("/tick", Ticker)])) as client:
        start = trio.current_time()
        received = await client.abort("GET", "/tick", after=2.5)
        # Returned once the server side ended: the handler did not go on.
        assert trio.current_time() - start == pytest.approx(2.5)
    assert b"data: 0\n\n" in received and b"data: 2\n\n" in received
    assert b"data: 3" not in received
    assert log == ["cancelled", "finally", "on_connection_close", "on_finish"]


async def test_a_client_that_stops_reading_gets_the_write_timeout(
    autojump_clock: trio.abc.Clock, transport: str | None
) -> None:
    log: list[str] = []

    class Flood(RequestHandler):
        async def get(self) -> None:
            try:
                async with self.event_stream() as events:
                    while True:
                        await events.send("x" * 1000)
            finally:
                log.append(f"ended after {trio.current_time():.0f}s")

    config = ServerConfig(write_timeout=7)
    async with TestClient(
        Application([("/flood", Flood)]),
        config=config,
        **not_reading(transport),
    ) as client:
        conn = await client.raw()
        await conn.send(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        await conn.receive()  # the head, then never read again
        with trio.fail_after(60):
            await conn.server_done.wait()
    assert log == ["ended after 7s"]


@pytest.mark.memory_only("a ping must wait on the reader: kernel buffers hold it")
async def test_a_normal_exit_lets_a_ping_in_flight_finish(
    autojump_clock: trio.abc.Clock, no_tracebacks: None
) -> None:
    # Regression: the end of the block cancelled the pinger while its
    # flush() waited on a slow reader; the cut send made the engine abort
    # the response (444, no last chunk) of a client that was still there.
    class Feed(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream(ping_interval=1) as events:
                await events.send("first")
                await trio.sleep(1.5)  # the ping (at 1s) is still being sent

    async with TestClient(
        Application([("/feed", Feed)]),
        stream_pair=trio.testing.lockstep_stream_pair,
    ) as client:
        conn = await client.raw()
        await conn.send(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n")
        received = await conn.receive()  # the head
        while b"data: first" not in received:
            received += await conn.receive()
        await trio.sleep(3)  # a slow reader, but still reading
        received += await conn.receive_until_closed()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b": ping\n\n\r\n0\r\n\r\n")


async def test_events_are_never_compressed() -> None:
    class Events(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                await events.send("y" * 5000)

    app = Application([("/events", Events)], compress_response=True)
    async with TestClient(app) as client:
        r = await client.get("/events", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers
    assert r.body == b"data: " + b"y" * 5000 + b"\n\n"


async def test_an_error_in_the_block_aborts_the_response_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                await events.send("before")
                raise ValueError("boom")

    async with TestClient(Application([("/events", Failing)])) as client:
        raw = await client.raw()
        await raw.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        sent = await raw.receive_until_closed()
        assert sent.startswith(b"HTTP/1.1 200 ")  # the head was out before
        assert b"data: before\n\n" in sent
        # Aborted, not ended: no last chunk makes the cut-short stream look
        # complete (see docs/handlers.md).
        assert not sent.endswith(b"0\r\n\r\n")
        # The server still serves.
        r = await client.get("/nothing")
        assert r.status == 404
    assert any("boom" in str(rec.exc_info) for rec in caplog.records)


async def test_comments_and_the_event_count() -> None:
    counts: list[int] = []

    class Events(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream() as events:
                await events.comment("hello\nthere")
                await events.send("x")
                counts.append(events.events_sent)

    async with TestClient(Application([("/events", Events)])) as client:
        r = await client.get("/events")
    assert r.body == b": hello\n: there\n\ndata: x\n\n"
    assert counts == [1]


async def test_a_bad_ping_interval_is_a_500_that_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Events(RequestHandler):
        async def get(self) -> None:
            async with self.event_stream(ping_interval=0):
                pass

    async with TestClient(Application([("/events", Events)])) as client:
        r = await client.get("/events")
    assert r.status == 500
    assert any(
        "ping_interval must be > 0" in str(rec.exc_info) for rec in caplog.records
    )
