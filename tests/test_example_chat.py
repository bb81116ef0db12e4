"""examples/chat.py: a broadcast to several clients, and a slow client
dropped instead of slowing everyone down."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trioweb
from examples.chat import Member, Room, make_app
from examples.chat import app as chat_app
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


async def test_many_slow_members_are_dropped_at_once_with_one_notice() -> None:
    # Far more stalled clients than the interpreter's recursion limit
    # (1000): each drop used to broadcast its own notice from inside the
    # broadcast, one stack frame deeper each time.
    room = Room()
    slow, listeners = [], []
    for i in range(1200):
        outbox, inbox = trio.open_memory_channel[str](1)
        outbox.send_nowait("unread")  # a client that stopped reading
        member = Member(f"slow{i}", outbox)
        room.members.add(member)
        slow.append((member, inbox))
    for name, size in [("ann", 10), ("bob", 10), ("tight", 1)]:
        outbox, inbox = trio.open_memory_channel[str](size)
        member = Member(name, outbox)
        room.members.add(member)
        listeners.append((member, inbox))

    room.broadcast("hello")

    assert {m.name for m in room.members} == {"ann", "bob"}
    for member, inbox in slow:
        assert member.dropped and member.scope.cancel_called
        assert inbox.receive_nowait() == "unread"
        with pytest.raises(trio.WouldBlock):
            inbox.receive_nowait()
    heard = {}
    for member, inbox in listeners:
        heard[member.name] = []
        while True:
            try:
                heard[member.name].append(inbox.receive_nowait())
            except trio.WouldBlock:
                break
    # One notice for the 1,200; "tight" took the message but not that
    # notice, so it went in a second round, with its own.
    expected = [
        "hello",
        "* 1200 members were too slow and were dropped",
        "* tight was too slow and was dropped",
    ]
    assert heard == {"ann": expected, "bob": expected, "tight": ["hello"]}
