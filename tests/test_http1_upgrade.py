"""Exchange.upgrade(): the engine hands its stream to another protocol.

Run on both parser backends (the ``http_backend`` fixture): the bytes the
client sent after the upgrade request must reach the new protocol whole and
in order, whichever parser buffered them.
"""

from __future__ import annotations

import logging

import pytest
import trio

import trioweb
from trioweb.server.http1 import Exchange
from trioweb.testing import TestClient

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_text(text: str) -> bytes:
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    return (
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


class Echo(trioweb.WebSocketHandler):
    async def open(self) -> None:
        async for message in self:
            await self.write_message(message)


class Tunnel:
    """A minimal ExchangeApp: upgrade every request, echo the raw bytes."""

    def __init__(self) -> None:
        self.received = b""

    async def handle_exchange(self, exchange: Exchange) -> None:
        stream, self.received = await exchange.upgrade([(b"Upgrade", b"echo")])
        data = self.received
        while data:
            await stream.send_all(data.upper())
            if b"END" in data.upper():
                return
            data = bytes(await stream.receive_some(100))


async def test_frames_sent_with_the_handshake_reach_the_websocket(
    http_backend: str,
) -> None:
    app = trioweb.Application([("/ws", Echo)])
    async with TestClient(app) as client:
        raw = await client.raw()
        # Handshake and two frames in one write: the parser holds the frames.
        await raw.send(HANDSHAKE + masked_text("one") + masked_text("two"))
        received = b""
        while received.count(b"one") + received.count(b"two") < 2:
            data = await raw.receive()
            assert data, received
            received += data
        await raw.aclose()
    head, _, frames = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frames == b"\x81\x03one\x81\x03two"


async def test_upgrade_hands_over_the_stream_and_the_buffered_bytes(
    http_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    app = Tunnel()
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"GET /x HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: upgrade\r\n"
            b"\r\nhello "
        )
        received = b""
        while b"HELLO " not in received:
            received += await raw.receive()
        await raw.send(b"then END")
        rest = await raw.receive_until_closed()
    assert app.received == b"hello "
    assert received.startswith(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n")
    assert rest.endswith(b"THEN END")
    # The engine closed the connection when the application returned.
    assert client.server_connections[0].must_close
    assert any('"GET /x HTTP/1.1" 101' in r.getMessage() for r in caplog.records)


async def test_an_upgrade_request_to_a_plain_handler_is_served_as_http(
    http_backend: str,
) -> None:
    class Plain(trioweb.RequestHandler):
        def get(self) -> None:
            self.write("plain")

        def post(self) -> None:
            self.write(self.request.body)

    app = trioweb.Application([("/ws", Plain)])
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            HANDSHAKE.replace(b"GET", b"POST").replace(
                b"\r\n\r\n", b"\r\nContent-Length: 4\r\n\r\nbody"
            )
            + b"GET /ws HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        first = await raw.read_response("POST")
        second = await raw.read_response()
        await raw.aclose()
    assert (first.status, first.body) == (200, b"body")
    assert (second.status, second.body) == (200, b"plain")


async def test_upgrade_refuses_a_request_with_a_body_with_a_400(
    http_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    refusals: list[trioweb.HTTPError] = []

    class App:
        async def handle_exchange(self, exchange: Exchange) -> None:
            try:
                await exchange.upgrade([])
            except trioweb.HTTPError as exc:
                refusals.append(exc)
                await exchange.send_response(
                    exc.status_code, [(b"Content-Length", b"0")]
                )

    async with TestClient(App()) as client:
        for body, framing in [
            (b"abc", b"Content-Length: 3\r\n"),
            (b"3\r\nabc\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
        ]:
            raw = await client.raw()
            await raw.send(HANDSHAKE[:-2] + framing + b"\r\n" + body)
            response = await raw.read_response()
            await raw.aclose()
            assert response.status == 400
    assert [exc.status_code for exc in refusals] == [400, 400]
    assert "the request has a body" in str(refusals[0])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_upgrade_refuses_a_started_response(http_backend: str) -> None:
    errors: list[str] = []

    class App:
        async def handle_exchange(self, exchange: Exchange) -> None:
            await exchange.send_response(200, [(b"Content-Length", b"0")])
            try:
                await exchange.upgrade([])
            except RuntimeError as exc:
                errors.append(str(exc))

    async with TestClient(App()) as client:
        response = await client.get("/")
        await trio.testing.wait_all_tasks_blocked()
    assert response.status == 200
    assert errors == ["upgrade(): a response was already started"]
