"""examples/chat.py: a broadcast to several clients, and a slow client
dropped instead of slowing everyone down."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trioweb
from examples.chat import app as chat_app
from examples.chat import make_app
from trioweb._ws_testing import TestWebSocket
from trioweb.testing import TestClient


async def receive_until(ws: TestWebSocket, last: str) -> list[str]:
    got = []
    while (text := await ws.receive_text()) != last:
        got.append(text)
    return [*got, text]


async def test_the_page_and_a_broadcast_to_several_clients() -> None:
    async with TestClient(chat_app) as client:
        page = await client.get("/")
        assert "new WebSocket" in page.text
        async with (
            client.websocket_connect("/ws?name=ann") as ann,
            client.websocket_connect("/ws?name=bob") as bob,
        ):
            assert await ann.receive_text() == "* ann joined"
            await ann.send_text("hi all")
            assert await receive_until(bob, "ann: hi all") == [
                "* bob joined",
                "ann: hi all",
            ]
            assert await receive_until(ann, "ann: hi all") == [
                "* bob joined",
                "ann: hi all",
            ]
            await bob.close()
            assert await ann.receive_text() == "* bob left"


async def test_a_slow_client_is_dropped_and_the_others_carry_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Lockstep streams: the server's send waits until the client reads, so
    # a client that does not read really does block its own writes.
    app = make_app(outbox_size=4)
    got: dict[str, list[str]] = {"ann": [], "bob": []}

    async def read_all(ws: TestWebSocket, name: str) -> None:
        try:
            while True:
                got[name].append(await ws.receive_text())
        except trioweb.WebSocketClosedError:
            pass

    lockstep = trio.testing.lockstep_stream_pair
    async with (
        TestClient(app, stream_pair=lockstep) as client,
        client.websocket_connect("/ws?name=ann") as ann,
        client.websocket_connect("/ws?name=bob") as bob,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(read_all, ann, "ann")
        nursery.start_soon(read_all, bob, "bob")
        async with client.websocket_connect("/ws?name=slow") as slow:
            # slow never reads. ann keeps talking; everyone else keeps up.
            start = trio.current_time()
            for i in range(20):
                await ann.send_text(f"m{i}")
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            assert "* slow was too slow and was dropped" in got["bob"]
            assert trio.current_time() - start < 1
            assert [m for m in got["bob"] if m.startswith("ann: ")] == [
                f"ann: m{i}" for i in range(20)
            ]
            await slow.abort()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("name", ["x" * 100])
async def test_names_are_capped(name: str) -> None:
    async with (
        TestClient(chat_app) as client,
        client.websocket_connect(f"/ws?name={name}") as ws,
    ):
        assert await ws.receive_text() == f"* {'x' * 32} joined"
