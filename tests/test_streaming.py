"""Streamed request bodies: @stream_request_body, request.stream(),
data_received, per-request max_body_size, 100-continue, backpressure and
disconnects mid-upload."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from helpers import kernel_buffers, not_reading

import trioweb
from trioweb import Application, MultipartParser, RequestHandler, ServerConfig
from trioweb.server.http1 import READ_AHEAD_LIMIT, RECEIVE_SIZE
from trioweb.testing import TestClient

events: list[Any] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    events.clear()


@trioweb.stream_request_body
class TrioStyle(RequestHandler):
    def prepare(self) -> None:
        events.append(("prepare", self.request.exchange.body_complete))  # type: ignore[union-attr]

    async def put(self) -> None:
        total = 0
        chunks = 0
        async for chunk in self.request.stream():
            total += len(chunk)
            chunks += 1
        self.write({"total": total, "body": len(self.request.body)})


class TornadoStyle(RequestHandler):
    stream_request_body = True  # the attribute works as the decorator does

    def prepare(self) -> None:
        self.received = bytearray()
        events.append("prepare")

    def data_received(self, chunk: bytes) -> None:
        events.append("chunk")
        self.received += chunk

    async def put(self) -> None:
        events.append("put")
        self.write(
            {"total": len(self.received), "start": bytes(self.received[:5]).decode()}
        )


@trioweb.stream_request_body
class AsyncTornadoStyle(RequestHandler):
    async def data_received(self, chunk: bytes) -> None:
        await trio.lowlevel.checkpoint()
        events.append(len(chunk))

    def put(self) -> None:
        self.write({"chunks": len(events)})


@trioweb.stream_request_body
class Limit(RequestHandler):
    def prepare(self) -> None:
        size = self.get_query_argument("max", None)
        if size is not None:
            self.request.max_body_size = int(size)

    async def put(self) -> None:
        self.write({"total": len(await self.request.stream().read())})


class BufferedBig(RequestHandler):
    max_body_size = 1000

    def put(self) -> None:
        self.write({"total": len(self.request.body)})


def app() -> Application:
    return Application(
        [
            ("/trio", TrioStyle),
            ("/tornado", TornadoStyle),
            ("/async", AsyncTornadoStyle),
            ("/limit", Limit),
            ("/buffered-big", BufferedBig),
        ]
    )


async def test_trio_style_reads_chunks_and_prepare_runs_first() -> None:
    async with TestClient(app()) as client:
        r = await client.put("/trio", body=b"x" * 200_000)
    assert r.json() == {"total": 200_000, "body": 0}
    assert events == [("prepare", False)]


async def test_tornado_style_data_received() -> None:
    async with TestClient(app()) as client:
        r = await client.put("/tornado", body=b"hello" + b"." * 150_000)
        assert r.json() == {"total": 150_005, "start": "hello"}
        assert events[0] == "prepare"
        assert events[-1] == "put"
        assert events.count("chunk") >= 2
        events.clear()
        r = await client.put(
            "/async",
            body=b"a" * 100,
            headers={"Transfer-Encoding": "chunked"},
        )
    assert r.json() == {"chunks": len(events)}
    assert sum(events) == 100


async def test_a_streaming_class_must_read_or_define_data_received() -> None:
    @trioweb.stream_request_body
    class Neither(RequestHandler):
        def put(self) -> None:
            self.write("did not read")

    async with TestClient(Application([("/", Neither)])) as client:
        # Not reading is allowed: the engine drains or closes.
        r = await client.put("/", body=b"abc")
    assert r.text == "did not read"


async def test_stream_can_be_read_once() -> None:
    @trioweb.stream_request_body
    class Twice(RequestHandler):
        async def put(self) -> None:
            await self.request.stream().read()
            try:
                self.request.stream()
            except RuntimeError as exc:
                self.write(str(exc))

    async with TestClient(Application([("/", Twice)])) as client:
        r = await client.put("/", body=b"abc")
    assert "only once" in r.text


async def test_a_buffered_handler_is_told_where_its_body_is() -> None:
    class Buffered(RequestHandler):
        async def put(self) -> None:
            try:
                self.request.stream()
            except RuntimeError as exc:
                self.write(str(exc))

    async with TestClient(Application([("/", Buffered)])) as client:
        r = await client.put("/", body=b"abc")
    assert "request.body" in r.text
    assert "stream_request_body" in r.text


# -- per-request max_body_size ---------------------------------------------------------


async def test_prepare_raises_the_limit_above_the_servers() -> None:
    config = ServerConfig(max_body_size=100)
    async with TestClient(app(), config=config) as client:
        assert (await client.put("/limit", body=b"x" * 100)).json() == {"total": 100}
        assert (await client.put("/limit", body=b"x" * 101)).status == 413
        r = await client.put("/limit?max=500", body=b"x" * 500)
        assert r.json() == {"total": 500}
        assert (await client.put("/limit?max=500", body=b"x" * 501)).status == 413
        # The buffered class attribute does the same.
        r = await client.put("/buffered-big", body=b"x" * 1000)
        assert r.json() == {"total": 1000}
        assert (await client.put("/buffered-big", body=b"x" * 1001)).status == 413


async def test_prepare_lowers_the_limit_for_a_chunked_body() -> None:
    async with TestClient(app()) as client:
        r = await client.put(
            "/limit?max=10", body=b"x" * 11, headers={"Transfer-Encoding": "chunked"}
        )
        assert r.status == 413
        r = await client.put(
            "/limit?max=10", body=b"x" * 10, headers={"Transfer-Encoding": "chunked"}
        )
        assert r.json() == {"total": 10}


async def test_max_body_size_cannot_change_once_reading() -> None:
    @trioweb.stream_request_body
    class Late(RequestHandler):
        async def put(self) -> None:
            stream = self.request.stream()
            try:
                self.request.max_body_size = 5
            except RuntimeError as exc:
                self.write(str(exc))
            await stream.read()

    async with TestClient(Application([("/", Late)])) as client:
        r = await client.put("/", body=b"abc")
    assert "prepare()" in r.text
    assert "class attribute max_body_size" in r.text


# -- 100-continue ----------------------------------------------------------------------


def _head(path: str, length: int, *, expect: bool = True) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n"
        + ("Expect: 100-continue\r\n" if expect else "")
        + "\r\n"
    ).encode()


async def test_100_continue_is_sent_when_the_body_is_first_read() -> None:
    go = trio.Event()

    @trioweb.stream_request_body
    class Waits(RequestHandler):
        async def prepare(self) -> None:
            events.append("prepare")
            await go.wait()

        async def put(self) -> None:
            self.write({"total": len(await self.request.stream().read())})

    async with TestClient(Application([("/", Waits)])) as client:
        raw = await client.raw()
        await raw.send(_head("/", 5))
        # prepare() ran, and nothing was sent: no 100 before the handler reads.
        assert await raw.receive_available() == b""
        assert events == ["prepare"]
        go.set()
        assert (await raw.receive_available()).startswith(b"HTTP/1.1 100 Continue")
        await raw.send(b"hello")
        response = await raw.read_response()
    assert response.json() == {"total": 5}


async def test_100_continue_gets_413_when_prepare_lowers_the_limit() -> None:
    async with TestClient(app()) as client:
        raw = await client.raw()
        await raw.send(_head("/limit?max=4", 5))
        data = await raw.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in data


async def test_100_continue_is_never_sent_when_prepare_answers() -> None:
    @trioweb.stream_request_body
    class Refuses(RequestHandler):
        async def prepare(self) -> None:
            await self.finish("no thanks")

        def put(self) -> None:
            raise AssertionError("not reached")

    async with TestClient(Application([("/", Refuses)])) as client:
        raw = await client.raw()
        await raw.send(_head("/", 5))
        data = await raw.receive_until_closed()
    assert b"100 Continue" not in data
    assert data.endswith(b"no thanks")


# -- backpressure --------------------------------------------------------------------


async def test_a_handler_that_does_not_read_holds_back_the_client(
    transport: str | None,
) -> None:
    go = trio.Event()
    size = 2 * 1024 * 1024

    @trioweb.stream_request_body
    class Slow(RequestHandler):
        async def put(self) -> None:
            await go.wait()
            self.write({"total": len(await self.request.stream().read())})

    sent = 0
    async with TestClient(
        Application([("/", Slow)]), **not_reading(transport)
    ) as client:
        raw = await client.raw()

        async def send_body() -> None:
            nonlocal sent
            await raw.send(_head("/", size, expect=False))
            piece = b"x" * 16384
            for _ in range(size // len(piece)):
                await raw.send(piece)
                sent += len(piece)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_body)
            await trio.testing.wait_all_tasks_blocked()
            # The client is blocked: the server took only its read-ahead.
            conn = client.server_connections[0]
            buffered = len(conn._rbuf) + len(conn.parser.buffered())
            assert buffered <= READ_AHEAD_LIMIT + RECEIVE_SIZE
            held = kernel_buffers(raw.stream, conn.stream)
            assert sent <= READ_AHEAD_LIMIT + 2 * RECEIVE_SIZE + held
            go.set()
        response = await raw.read_response()
    assert response.json() == {"total": size}


# -- disconnects -------------------------------------------------------------------


async def test_a_client_leaving_mid_upload_cancels_and_cleans_up() -> None:
    boundary = "b0undary"
    parsers: list[MultipartParser] = []

    @trioweb.stream_request_body
    class Upload(RequestHandler):
        async def put(self) -> None:
            parser = MultipartParser(
                f"multipart/form-data; boundary={boundary}", spool_size=100
            )
            parsers.append(parser)
            try:
                async for chunk in self.request.stream():
                    parser.feed(chunk)
                parser.close()
            except (trio.Cancelled, trioweb.StreamClosedError):
                # Cancelled, or (when the EOF reached the body reader
                # before the cancellation's checkpoint) told the peer left.
                events.append("ended")
                raise
            finally:
                parser.discard()

        def on_connection_close(self) -> None:
            events.append("closed")

    part = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n"
    ).encode() + b"x" * 5000
    start = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=g; filename=b\r\n\r\n"
    ).encode()
    async with TestClient(Application([("/", Upload)])) as client:
        raw = await client.raw()
        await raw.send(
            _head("/", 100_000, expect=False) + part + b"\r\n" + start + b"y"
        )
        await trio.testing.wait_all_tasks_blocked()
        [parser] = parsers
        made = [f for files in parser.files.values() for f in files]
        assert len(made) == 1
        assert made[0].file._rolled  # type: ignore[attr-defined]  (on disk)
        await raw.stream.aclose()
        await raw.server_done.wait()
    assert events == ["ended", "closed"]
    assert made[0].file.closed
