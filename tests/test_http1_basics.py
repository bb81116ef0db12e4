"""The connection engine's everyday behaviour: keep-alive, pipelining,
HTTP/1.0, ``Connection: close``, HEAD, framing of the response."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from helpers import content_length, not_reading

from trioweb.server.http1 import Exchange
from trioweb.testing import TestClient


class Echo:
    """Answers ``METHOD TARGET <body>`` with a Content-Length."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        self.seen.append(exchange.target)
        payload = f"{exchange.method} {exchange.target} ".encode() + body
        await exchange.send_response(200, [content_length(payload)], payload)


class Streamer:
    """Sends a body of unknown length: a head, then two pieces."""

    async def handle_exchange(self, exchange: Exchange) -> None:
        await exchange.send_response(
            200, [(b"content-type", b"text/plain")], b"first,", end=False
        )
        await exchange.send_body(b"second,")
        await exchange.send_body(b"third", end=True)


class CountingStream(trio.abc.HalfCloseableStream):
    """A server stream that records every ``send_all``."""

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        self.inner = inner
        self.sends: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sends.append(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- keep-alive and pipelining ------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    app = Echo()
    async with TestClient(app) as client:
        for i in range(3):
            r = await client.post(f"/n/{i}", body=f"body{i}")
            assert r.status == 200
            assert r.body == f"POST /n/{i} body{i}".encode()
            assert "close" not in r.headers.get("Connection", "")
        assert len(client.server_connections) == 1


async def test_keep_alive_on_a_raw_connection() -> None:
    async with TestClient(Echo()) as client:
        raw = await client.raw()
        for path in ("/a", "/b"):
            await raw.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = await raw.read_response()
            assert r.body == f"GET {path} ".encode()
        assert not raw.server_done.is_set()


class OneAtATime:
    """Records how many requests run at once; earlier requests take longer."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            delay = {"/1": 3.0, "/2": 2.0, "/3": 1.0}[exchange.target]
            await trio.sleep(delay)
            body = exchange.target.encode()
            await exchange.send_response(200, [content_length(body)], body)
        finally:
            self.active -= 1


async def test_pipelined_requests_are_answered_in_order_one_at_a_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = OneAtATime()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [(await raw.read_response()).body for _ in range(3)]
        assert bodies == [b"/1", b"/2", b"/3"]
        assert app.most == 1
        # Run one after the other: 3 + 2 + 1 seconds.
        assert trio.current_time() == 6.0


async def test_pipelined_request_with_bodies() -> None:
    async with TestClient(Echo()) as client:
        raw = await client.raw()
        await raw.send(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nde\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert (await raw.read_response()).body == b"POST /a abc"
        assert (await raw.read_response()).body == b"POST /b de"
        assert (await raw.read_response()).body == b"GET /c "


# -- HTTP/1.0 and Connection: close --------------------------------------------


async def test_http10_response_is_not_chunked_and_closes() -> None:
    async with TestClient(Streamer()) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.0\r\n\r\n")
        data = await raw.receive_until_closed()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"transfer-encoding" not in head.lower()
        assert b"content-length" not in head.lower()
        # The body is delimited by the close, so it is sent as is.
        assert body == b"first,second,third"
        await trio.testing.wait_all_tasks_blocked()
        assert raw.server_done.is_set()


async def test_http10_with_length_closes_after_the_response() -> None:
    async with TestClient(Echo()) as client:
        raw = await client.raw()
        await raw.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = await raw.read_response()
        assert r.body == b"GET /old "
        assert r.headers["Connection"] == "close"
        assert await raw.receive_until_closed() == b""
        await trio.testing.wait_all_tasks_blocked()
        assert raw.server_done.is_set()


async def test_connection_close_from_the_client() -> None:
    async with TestClient(Echo()) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = await raw.read_response()
        assert r.status == 200
        assert r.headers["Connection"] == "close"
        assert await raw.receive_until_closed() == b""
        await trio.testing.wait_all_tasks_blocked()
        assert raw.server_done.is_set()


async def test_requests_after_connection_close_are_not_served() -> None:
    app = Echo()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert (await raw.read_response()).body == b"GET /1 "
        assert await raw.receive_until_closed() == b""
        assert app.seen == ["/1"]


# -- HEAD, 204, 304 ----------------------------------------------------------


class FixedBody:
    """Answers with ``status`` and a 5-byte body with its Content-Length."""

    def __init__(self, status: int = 200) -> None:
        self.status = status

    async def handle_exchange(self, exchange: Exchange) -> None:
        body = b"hello"
        await exchange.send_response(self.status, [content_length(body)], body)


async def test_head_response_keeps_content_length_and_sends_no_body() -> None:
    async with TestClient(FixedBody()) as client:
        raw = await client.raw()
        await raw.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await raw.receive_available()
        assert data.endswith(b"\r\n\r\n")
        assert b"content-length: 5\r\n" in data.lower()
        assert b"hello" not in data
        # The connection is still in sync: the next response parses cleanly.
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.body == b"hello"


async def test_head_of_a_streamed_response_sends_no_body() -> None:
    async with TestClient(Streamer()) as client:
        r = await client.head("/")
        assert r.status == 200
        assert r.body == b""
        r = await client.get("/")
        assert r.body == b"first,second,third"
        assert len(client.server_connections) == 1


async def test_204_has_no_body_and_no_contentcontent_length() -> None:
    async with TestClient(FixedBody(204)) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 204 ")
        assert data.endswith(b"\r\n\r\n")
        assert b"content-length" not in data.lower()
        assert b"transfer-encoding" not in data.lower()
        assert b"hello" not in data


async def test_304_has_no_body() -> None:
    async with TestClient(FixedBody(304)) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 304 ")
        assert data.endswith(b"\r\n\r\n")
        assert b"hello" not in data
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 304


# -- framing and writes -----------------------------------------------------------


async def test_unknown_length_is_sent_chunked() -> None:
    async with TestClient(Streamer()) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in r.headers
        assert r.body == b"first,second,third"
        # Chunked framing keeps the connection reusable.
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).body == b"first,second,third"


async def test_streamed_pieces_reach_the_client_as_they_are_sent() -> None:
    gate = trio.Event()

    class Slow:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [], b"early", end=False)
            await gate.wait()
            await exchange.send_body(b"late", end=True)

    async with TestClient(Slow()) as client, client.stream("GET", "/") as r:
        assert await r.receive() == b"early"
        gate.set()
        assert await r.receive() == b"late"
        assert await r.receive() == b""


@pytest.mark.memory_only("counts the Stream path's send_all calls (a wrapper)")
async def test_a_small_response_is_one_send_all() -> None:
    streams: list[CountingStream] = []

    def pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        counting = CountingStream(server_stream)
        streams.append(counting)
        return client_stream, counting

    async with TestClient(FixedBody(), stream_pair=pair) as client:
        r = await client.get("/")
        assert r.body == b"hello"
        [stream] = streams
        [sent] = stream.sends
        assert sent.startswith(b"HTTP/1.1 200 ")
        assert sent.endswith(b"\r\n\r\nhello")


async def test_a_pipelining_flood_is_not_buffered_without_bound(
    transport: str | None,
) -> None:
    """While a handler runs, the engine reads ahead only so far; a client
    sending more is held back (here: its send_all cannot complete, the
    socket buffers between them being small over TCP)."""
    gate = trio.Event()

    class Gated:
        def __init__(self) -> None:
            self.calls = 0

        async def handle_exchange(self, exchange: Exchange) -> None:
            self.calls += 1
            await gate.wait()
            await exchange.send_response(200, [content_length(b"")])

    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"
    count = 300  # about 300 KiB in all
    app = Gated()
    sent_all = trio.Event()
    async with TestClient(app, **not_reading(transport)) as client:
        raw = await client.raw()

        async def flood() -> None:
            await raw.send(request * count)
            sent_all.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            assert app.calls == 1
            assert not sent_all.is_set()
            gate.set()
            for _ in range(count):
                assert (await raw.read_response()).status == 200
        assert app.calls == count


# -- pipelining across framing boundaries (regressions: the httptools backend
# once spun forever on these) -------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "targets"),
    [
        pytest.param(
            [
                b"POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /2 HTTP/1.1\r\nHo",
                b"st: x\r\n\r\n",
            ],
            ["/1", "/2"],
            id="after-chunked",
        ),
        pytest.param(
            [
                b"POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
                b"\r\n\r\n12345",
                b"67890GET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
            ],
            ["/1", "/2", "/3"],
            id="chunked-then-length",
        ),
        pytest.param(
            [
                b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n",
                b"\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
            ],
            ["/1", "/2"],
            id="empty-line-split",
        ),
        pytest.param(
            [
                b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r",
                b"\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
            ],
            ["/1", "/2"],
            id="cr-lf-split",
        ),
        pytest.param(
            [b"\r\n\r\nGET /1 HTTP/1.1\r\nHost: x\r\n\r\n"],
            ["/1"],
            id="leading-empty-lines",
        ),
    ],
)
async def test_pipelined_requests_across_framing_boundaries(
    pieces: list[bytes], targets: list[str]
) -> None:
    seen: list[str] = []

    class Targets:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.read_body()
            seen.append(exchange.target)
            await exchange.send_response(200, [(b"content-length", b"0")])

    async with TestClient(Targets()) as client:
        raw = await client.raw()
        for piece in pieces:
            await raw.send(piece)
            await trio.testing.wait_all_tasks_blocked()
        for _ in targets:
            assert (await raw.read_response()).status == 200
    assert seen == targets
