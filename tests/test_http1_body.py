"""The request body: ``Expect: 100-continue``, draining an unread body, the
body size limit and the body timeout."""

from __future__ import annotations

import trio
import trio.testing
from helpers import content_length

from trioweb.errors import HTTPInputError
from trioweb.server.config import ServerConfig
from trioweb.server.http1 import Exchange
from trioweb.testing import RawConnection, TestClient


class Reader:
    """Reads the whole body (after ``gate``, if given) and echoes its size."""

    def __init__(self, gate: trio.Event | None = None) -> None:
        self.gate = gate
        self.bodies: list[bytes] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        if self.gate is not None:
            await self.gate.wait()
        body = await exchange.read_body()
        self.bodies.append(body)
        answer = b"got %d" % len(body)
        await exchange.send_response(200, [content_length(answer)], answer)


class Ignorer:
    """Answers at once, never touching the body."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.targets.append(exchange.target)
        answer = b"ignored"
        await exchange.send_response(200, [content_length(answer)], answer)


class ChunkReader:
    """Reads the body chunk by chunk, recording when each chunk came."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        while chunk := await exchange.receive_body():
            self.chunks.append((trio.current_time(), chunk))
        await exchange.send_response(200, [content_length(b"ok")], b"ok")


async def _assert_closed(raw: RawConnection) -> None:
    assert await raw.receive_until_closed() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert raw.server_done.is_set()


EXPECT_HEAD = (
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
)


# -- Expect: 100-continue ---------------------------------------------------------


async def test_100_continue_is_sent_when_the_app_reads_the_body() -> None:
    gate = trio.Event()
    app = Reader(gate)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(EXPECT_HEAD)
        # The app has not asked for the body yet: no 100.
        assert await raw.receive_available() == b""
        gate.set()
        assert await raw.receive_available() == b"HTTP/1.1 100 Continue\r\n\r\n"
        await raw.send(b"hello")
        r = await raw.read_response("POST")
        assert (r.status, r.body) == (200, b"got 5")
        assert "Connection" not in r.headers
        assert app.bodies == [b"hello"]
        # The connection is reusable.
        await raw.send(EXPECT_HEAD + b"again")
        assert (await raw.read_response("POST")).body == b"got 5"


async def test_answer_without_reading_sends_no_100_and_closes() -> None:
    app = Ignorer()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(EXPECT_HEAD)
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b" 100 " not in data
        assert b"connection: close\r\n" in data.lower()
        assert data.endswith(b"ignored")
        await _assert_closed(raw)


async def test_413_for_an_announced_large_body_sends_no_100() -> None:
    app = Reader()
    config = ServerConfig(max_body_size=4)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        await raw.send(EXPECT_HEAD)
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 413 ")
        assert b" 100 " not in data
        assert b"connection: close\r\n" in data.lower()
        await _assert_closed(raw)
        assert app.bodies == []


# -- draining an unread body ---------------------------------------------------------


async def test_small_unread_body_is_drained_and_keep_alive_continues() -> None:
    app = Ignorer()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        r1 = await raw.read_response("POST")
        assert "Connection" not in r1.headers
        r2 = await raw.read_response()
        assert r2.body == b"ignored"
        # The body was not taken for the start of the next request.
        assert app.targets == ["/1", "/2"]


async def test_unread_body_sent_after_the_response_is_drained() -> None:
    app = Ignorer()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        assert (await raw.read_response("POST")).status == 200
        await raw.send(b"abc")
        await raw.send(b"def")
        await raw.send(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        assert app.targets == ["/1", "/2"]


async def test_unread_chunked_body_is_drained() -> None:
    app = Ignorer()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        await raw.read_response("POST")
        await raw.read_response()
        assert app.targets == ["/1", "/2"]


async def test_unread_body_over_the_limit_closes_the_connection() -> None:
    app = Ignorer()
    config = ServerConfig(max_body_size=100)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        await raw.send(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        r = await raw.read_response("POST")
        assert r.status == 200
        assert r.headers["Connection"] == "close"
        await _assert_closed(raw)
        # The next connection is served.
        assert (await client.get("/2")).status == 200


# -- the body size limit ------------------------------------------------------------


async def test_content_length_over_the_limit_is_413_before_reading() -> None:
    app = Reader()
    config = ServerConfig(max_body_size=10)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        # Only the head: the 413 must not wait for the body.
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        r = await raw.read_response("POST")
        assert r.status == 413
        assert r.headers["Connection"] == "close"
        await _assert_closed(raw)
        assert app.bodies == []
        r = await client.post("/", body=b"0123456789")
        assert (r.status, r.body) == (200, b"got 10")


async def test_chunked_body_growing_past_the_limit_is_413() -> None:
    app = Reader()
    config = ServerConfig(max_body_size=10)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        await raw.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\nabcdef\r\n"
        )
        assert await raw.receive_available() == b""
        await raw.send(b"6\r\nghijkl\r\n")
        r = await raw.read_response("POST")
        assert r.status == 413
        assert r.headers["Connection"] == "close"
        await _assert_closed(raw)
        assert app.bodies == []
        assert (await client.post("/", body=b"x" * 10)).status == 200


async def test_app_may_catch_the_413_and_answer_itself() -> None:
    class Lenient:
        async def handle_exchange(self, exchange: Exchange) -> None:
            try:
                await exchange.read_body()
            except HTTPInputError as exc:
                body = b"too big for me"
                await exchange.send_response(
                    exc.status_code, [content_length(body)], body
                )

    async with TestClient(Lenient(), config=ServerConfig(max_body_size=3)) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        r = await raw.read_response("POST")
        assert (r.status, r.body) == (413, b"too big for me")
        # The engine adds the close: the body was never read.
        assert r.headers["Connection"] == "close"
        await _assert_closed(raw)


async def test_app_can_raise_the_body_limit_per_request() -> None:
    class Generous(Reader):
        async def handle_exchange(self, exchange: Exchange) -> None:
            exchange.max_body_size = 100
            await super().handle_exchange(exchange)

    async with TestClient(Generous(), config=ServerConfig(max_body_size=3)) as client:
        r = await client.post("/", body=b"x" * 100)
        assert (r.status, r.body) == (200, b"got 100")
        r = await client.post("/", body=b"x" * 101)
        assert r.status == 413


# -- the body timeout ---------------------------------------------------------------


async def test_body_timeout_is_408_and_close(autojump_clock: trio.abc.Clock) -> None:
    app = Reader()
    config = ServerConfig(body_timeout=7, min_body_rate=0)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        start = trio.current_time()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        r = await raw.read_response("POST")
        assert r.status == 408
        assert r.headers["Connection"] == "close"
        assert trio.current_time() - start == 7
        await _assert_closed(raw)
        assert (await client.post("/", body=b"ok")).status == 200


async def test_body_timeout_runs_between_reads_not_for_the_whole_body(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = ChunkReader()
    config = ServerConfig(body_timeout=5, min_body_rate=0)
    async with TestClient(app, config=config) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for piece in (b"a", b"b", b"c", b"d"):
            await trio.sleep(4)  # each gap is within the timeout
            await raw.send(piece)
        r = await raw.read_response("POST")
        assert r.status == 200
        assert [c for _, c in app.chunks] == [b"a", b"b", b"c", b"d"]
        assert trio.current_time() == 16


class CatchesBadChunk:
    """Starts its response, catches the 400 of a broken chunked body, ends
    its response: what an ASGI adapter does with a bad body."""

    def __init__(self) -> None:
        self.errors: list[int] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        await exchange.send_response(200, [], b"start", end=False)
        try:
            await exchange.read_body()
        except HTTPInputError as exc:
            self.errors.append(exc.status_code)
        await exchange.send_body(b"", end=True)


async def test_a_failed_body_then_eof_does_not_spin_the_engine() -> None:
    # Once failed, the httptools parser ignored the EOF and said "need
    # data" forever: the engine's drain loop spun without a checkpoint and
    # every connection of the process stopped being served.
    app = CatchesBadChunk()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\nZZZ\r\n"
        )
        await trio.testing.wait_all_tasks_blocked()
        assert app.errors == [400]
        await raw.send_eof()
        with trio.fail_after(5):  # a spin would never get here
            await raw.receive_until_closed()
            await raw.server_done.wait()
        other = await client.raw()
        await other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(5):
            assert (await other.read_response()).status == 200
    assert app.errors == [400]


# -- slow bodies: the minimum rate and the whole-body deadline ----------------------


async def _drip(raw: RawConnection, pieces: int, gap: float, size: int = 1) -> None:
    for _ in range(pieces):
        await trio.sleep(gap)
        try:
            await raw.send(b"x" * size)
        except trio.BrokenResourceError:
            return


async def test_a_body_dripping_below_the_minimum_rate_is_408_after_the_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    # slowhttptest's slow-body attack: a byte every few seconds never trips
    # the per-read timeout, and would hold the connection for hours.
    app = Reader()
    config = ServerConfig(min_body_rate=100, min_body_rate_grace=5)
    async with TestClient(app, config=config) as client, trio.open_nursery() as n:
        raw = await client.raw()
        start = trio.current_time()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        n.start_soon(_drip, raw, 100, 2.0)
        r = await raw.read_response("POST")
        assert r.status == 408
        assert trio.current_time() - start == 5
        await _assert_closed(raw)
    assert app.bodies == []


async def test_a_body_at_the_minimum_rate_is_read_however_long_it_takes(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Reader()
    config = ServerConfig(min_body_rate=100, min_body_rate_grace=5)
    async with TestClient(app, config=config) as client, trio.open_nursery() as n:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6000\r\n\r\n")
        n.start_soon(_drip, raw, 60, 0.5, 100)  # 200 bytes/s for 30 s
        r = await raw.read_response("POST")
        assert (r.status, r.body) == (200, b"got 6000")
        assert trio.current_time() >= 30


async def test_a_slow_application_does_not_count_against_its_client(
    autojump_clock: trio.abc.Clock,
) -> None:
    class SlowReader:
        async def handle_exchange(self, exchange: Exchange) -> None:
            total = 0
            while chunk := await exchange.receive_body():
                total += len(chunk)
                await trio.sleep(10)  # the client is not waiting on us
            await exchange.send_response(200, [content_length(b"ok")], b"ok")

    config = ServerConfig(min_body_rate=1000, min_body_rate_grace=1)
    async with TestClient(SlowReader(), config=config) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
        for piece in (b"a", b"b", b"c"):
            await raw.send(piece)  # promptly: the application lags behind
            await trio.sleep(0.1)
        assert (await raw.read_response("POST")).status == 200
        assert trio.current_time() >= 20  # two 10 s naps, far below the rate


async def test_the_body_deadline_bounds_the_whole_body(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Reader()
    config = ServerConfig(body_deadline=3, min_body_rate=0)
    async with TestClient(app, config=config) as client, trio.open_nursery() as n:
        raw = await client.raw()
        start = trio.current_time()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        n.start_soon(_drip, raw, 10, 1.0)
        r = await raw.read_response("POST")
        assert r.status == 408
        assert trio.current_time() - start == 3


async def test_a_chunked_body_is_held_to_the_minimum_rate_too(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = Reader()
    config = ServerConfig(min_body_rate=100, min_body_rate_grace=5)
    async with TestClient(app, config=config) as client, trio.open_nursery() as n:
        raw = await client.raw()
        await raw.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n"
        )
        n.start_soon(_drip, raw, 100, 2.0)
        r = await raw.read_response("POST")
        assert r.status == 408
