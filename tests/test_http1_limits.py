"""The limits table of ServerConfig and the requests the engine refuses.

Every refusal answers with a definite status and ``Connection: close``,
closes the connection, and leaves the server serving new connections.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trioweb.server.config import ServerConfig
from trioweb.server.http1 import Exchange
from trioweb.testing import RawConnection, Response, TestClient

pytestmark = pytest.mark.usefixtures("no_tracebacks")

SMALL = ServerConfig(max_request_line=100, max_header_size=200, max_headers=5)


class Ok:
    """Reads the body and answers 200 ``ok``."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_exchange(self, exchange: Exchange) -> None:
        self.calls += 1
        await exchange.read_body()
        await exchange.send_response(200, [(b"content-length", b"2")], b"ok")


async def _refused(
    client: TestClient, raw: RawConnection, status: int, method: str = "GET"
) -> Response:
    """The response is ``status`` with ``Connection: close``, the connection
    ends, and a new connection is served."""
    r = await raw.read_response(method)
    assert r.status == status, r
    assert r.headers["Connection"] == "close"
    assert await raw.receive_until_closed() == b""
    # The client closes in turn (the server may be waiting for it: bytes it
    # has not read would make its close a reset).
    await raw.aclose()
    with trio.fail_after(1):
        await raw.server_done.wait()
    again = await client.get("/")
    assert (again.status, again.body) == (200, b"ok")
    return r


async def _send_in_pieces(raw: RawConnection, data: bytes, size: int = 1) -> None:
    """Send ``data`` ``size`` bytes at a time, stopping if the server ends
    the connection (refusing before the end is allowed)."""
    for i in range(0, len(data), size):
        if raw.server_done.is_set():
            return
        try:
            await raw.send(data[i : i + size])
        except trio.BrokenResourceError:
            return


# -- request line ------------------------------------------------------------------

LONG_TARGET = b"/" + b"a" * 120


async def test_long_request_line_whole_is_414() -> None:
    app = Ok()
    async with TestClient(app, config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET " + LONG_TARGET + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        await _refused(client, raw, 414)
        assert app.calls == 1  # only the request after the refusal


async def test_request_line_just_over_the_limit_is_414() -> None:
    """The limit is on the whole line, not just the target."""
    line = b"GET /" + b"b" * 90 + b" HTTP/1.1"
    assert len(line) > SMALL.max_request_line >= len(line) - len(" HTTP/1.1")
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(line + b"\r\nHost: x\r\n\r\n")
        await _refused(client, raw, 414)


async def test_request_line_at_the_limit_is_served() -> None:
    line = b"GET /" + b"b" * 86 + b" HTTP/1.1"
    assert len(line) == SMALL.max_request_line
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(line + b"\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200


async def test_long_request_line_bytewise_is_414_before_it_ends() -> None:
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await _send_in_pieces(
            raw, b"GET " + LONG_TARGET + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        await _refused(client, raw, 414)


async def test_long_incomplete_request_line_is_414_without_waiting(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET " + LONG_TARGET)  # no end of line, ever
        with trio.fail_after(0.1):
            await _refused(client, raw, 414)


# -- header block --------------------------------------------------------------------

BIG_HEADERS = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 40) for i in range(5))


async def test_large_header_block_whole_is_431() -> None:
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + BIG_HEADERS + b"\r\n")
        await _refused(client, raw, 431)


async def test_large_header_block_in_small_pieces_is_431() -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + BIG_HEADERS + b"\r\n"
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await _send_in_pieces(raw, data, 7)
        await _refused(client, raw, 431)


async def test_large_incomplete_header_block_is_431_without_waiting(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        # One header that never ends, fed slowly.
        await raw.send(b"X-Long: ")
        await _send_in_pieces(raw, b"v" * (SMALL.max_header_size + 10))
        with trio.fail_after(0.1):
            await _refused(client, raw, 431)


async def test_header_block_at_the_limit_is_served() -> None:
    # name + value + 4 (": " and CRLF) per field, as the limit counts them.
    host = b"Host: x\r\n"
    value = b"v" * (SMALL.max_header_size - len(host) - len(b"X: \r\n"))
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\n" + host + b"X: " + value + b"\r\n\r\n")
        assert (await raw.read_response()).status == 200


async def test_too_many_headers_is_431() -> None:
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(SMALL.max_headers))
    async with TestClient(Ok(), config=SMALL) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        await _refused(client, raw, 431)
        # One fewer is fine.
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + many[:-8] + b"\r\n")
        assert (await raw.read_response()).status == 200


# -- body ------------------------------------------------------------------------------


async def test_content_length_over_the_limit_is_413() -> None:
    async with TestClient(Ok(), config=ServerConfig(max_body_size=5)) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        await _refused(client, raw, 413, "POST")


async def test_chunked_body_over_the_limit_is_413() -> None:
    async with TestClient(Ok(), config=ServerConfig(max_body_size=5)) as client:
        raw = await client.raw()
        await raw.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n3\r\ndef\r\n"
        )
        await _refused(client, raw, 413, "POST")


async def test_body_timeout_is_408(autojump_clock: trio.abc.Clock) -> None:
    async with TestClient(Ok(), config=ServerConfig(body_timeout=3)) as client:
        raw = await client.raw()
        await raw.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        await _refused(client, raw, 408, "POST")
        assert trio.current_time() == 3


# -- header timeout ----------------------------------------------------------------


async def test_header_timeout_with_a_partial_head_is_408(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(Ok(), config=ServerConfig(header_timeout=4)) as client:
        raw = await client.raw()
        await trio.sleep(1)
        await raw.send(b"GET / HTTP/1.1\r\nHo")
        await _refused(client, raw, 408)
        # For a new connection the timer runs from the accept.
        assert trio.current_time() == 4


async def test_header_timeout_with_nothing_sent_closes_quietly(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(Ok(), config=ServerConfig(header_timeout=4)) as client:
        raw = await client.raw()
        assert await raw.receive_until_closed() == b""
        assert trio.current_time() == 4
        assert (await client.get("/")).status == 200


async def test_header_timeout_on_a_keep_alive_request_starts_at_its_first_byte(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = ServerConfig(header_timeout=4, keep_alive_timeout=10)
    async with TestClient(Ok(), config=config) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        await trio.sleep(8)  # idle: within the keep-alive timeout
        start = trio.current_time()
        await raw.send(b"GET / HT")
        await _refused(client, raw, 408)
        assert trio.current_time() - start == 4


async def test_keep_alive_request_completed_in_time_is_served(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = ServerConfig(header_timeout=4, keep_alive_timeout=10)
    async with TestClient(Ok(), config=config) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await raw.read_response()
        await trio.sleep(8)
        await raw.send(b"GET / HT")
        await trio.sleep(3)
        await raw.send(b"TP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200


async def test_pipelined_partial_head_after_a_slow_handler_is_not_timed_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The head of the next request arrived (in part) while the previous
    handler ran for longer than the header timeout; its clock starts when
    the engine starts reading it, not at the previous request."""

    class Slow:
        async def handle_exchange(self, exchange: Exchange) -> None:
            if exchange.target == "/slow":
                await trio.sleep(20)
            await exchange.send_response(200, [(b"content-length", b"2")], b"ok")

    config = ServerConfig(header_timeout=4)
    async with TestClient(Slow(), config=config) as client:
        raw = await client.raw()
        await raw.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(1)
        await raw.send(b"GET /next HT")  # arrives while /slow runs
        assert (await raw.read_response()).status == 200
        await trio.sleep(1)
        await raw.send(b"TP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.status == 200


async def test_keep_alive_idle_timeout_closes_quietly(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = ServerConfig(header_timeout=2, keep_alive_timeout=6)
    async with TestClient(Ok(), config=config) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        start = trio.current_time()
        assert await raw.receive_until_closed() == b""
        assert trio.current_time() - start == 6
        assert (await client.get("/")).status == 200


async def test_max_requests_per_connection_closes_after_the_last(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = ServerConfig(max_requests_per_connection=3)
    async with TestClient(Ok(), config=config) as client:
        raw = await client.raw()
        for _ in range(2):
            await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert "Connection" not in (await raw.read_response()).headers
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await _refused(client, raw, 200)


# -- rejections ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            id="content-length-and-transfer-encoding",
        ),
        pytest.param(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            id="transfer-encoding-in-http10",
        ),
        pytest.param(b"GET / HTTP/3.1\r\nHost: x\r\n\r\n", 505, id="http31"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="http20"),
        pytest.param(b"GET / HTTP/0.9\r\n\r\n", 505, id="http09"),
        pytest.param(b"GET /\r\n\r\n", 400, id="no-version"),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="one-word"),
        pytest.param(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, id="extra"),
        pytest.param(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="double-space"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="no-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
            id="bad-content-length",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\nab",
            400,
            id="conflicting-content-lengths",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            id="unsupported-transfer-coding",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            400,
            id="bad-chunk-size",
        ),
    ],
)
async def test_rejected_requests(request_bytes: bytes, status: int) -> None:
    app = Ok()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(request_bytes)
        method = "POST" if request_bytes.startswith(b"POST") else "GET"
        await _refused(client, raw, status, method)


async def test_a_refused_pipelined_request_ends_the_connection() -> None:
    app = Ok()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /2 HTTP/2.0\r\nHost: x\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert (await raw.read_response()).status == 200
        await _refused(client, raw, 505)
        assert app.calls == 2  # /1 and the new connection's request, not /3


@pytest.mark.parametrize(
    "garbage", [b"\x00\x01junk", b"NOT A REQUEST\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"]
)
async def test_garbage_pipelined_after_a_request_is_400(garbage: bytes) -> None:
    """The bad head is already buffered when the first response is done."""
    async with TestClient(Ok()) as client:
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + garbage)
        assert (await raw.read_response()).status == 200
        await _refused(client, raw, 400)


async def test_refused_head_request_gets_no_body() -> None:
    async with TestClient(Ok()) as client:
        raw = await client.raw()
        await raw.send(b"HEAD / HTTP/2.0\r\nHost: x\r\n\r\n")
        # _refused checks that nothing follows the head.
        r = await _refused(client, raw, 505, "HEAD")
        assert int(r.headers["Content-Length"]) > 0  # what GET would get
