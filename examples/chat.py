"""A chat room over websockets: broadcast with a bounded queue per client.

Every client gets its own outbox, a bounded :func:`trio.open_memory_channel`,
and its own task that writes the outbox to its socket. A broadcast puts the
message in every outbox *without waiting* (``send_nowait``), so one client
that stops reading cannot slow anyone down: when its outbox is full it is
dropped from the room and its websocket is closed with 4000 "too slow".

Each connection is one handler in trio's style: ``open()`` owns the
websocket, runs the delivery task in its own nursery, and reads messages
with ``async for``. When the client leaves, the handler is cancelled and the
``finally`` takes it out of the room. Try it::

    trioweb serve examples.chat:app
    # then open http://127.0.0.1:8000/?name=ann and ?name=bob in two tabs

or from Python: ``websockets`` (``python -m websockets
ws://127.0.0.1:8000/ws?name=ann``).
"""

from __future__ import annotations

import trio

import trioweb

#: How many messages may wait for one client before it is dropped.
OUTBOX_SIZE = 64


class Member:
    """One client in the room: its outbox, and how to stop it."""

    def __init__(self, name: str, outbox: trio.MemorySendChannel[str]) -> None:
        self.name = name
        self.outbox = outbox
        self.dropped = False
        self.scope = trio.CancelScope()


class Room:
    def __init__(self) -> None:
        self.members: set[Member] = set()

    def broadcast(self, text: str) -> None:
        """Queue ``text`` for every member; drop the ones that are full.

        The members dropped are told about in one notice to the rest. That
        notice may fill more outboxes, so it goes out by the same loop, not
        by calling back into this method: each round drops at least one
        member, so the loop ends, and no chain of drops can run the stack
        out (1,000 clients stalled at once are one round and one notice).
        """
        while text:
            full = []
            for member in self.members:
                try:
                    member.outbox.send_nowait(text)
                except trio.WouldBlock:
                    full.append(member)
            text = self.drop(full)

    def drop(self, members: list[Member]) -> str:
        """Take ``members`` out of the room and stop them; return the notice
        for the others ("" for none)."""
        for member in members:
            self.members.discard(member)
            member.dropped = True
            member.scope.cancel()
        if not members:
            return ""
        if len(members) == 1:
            return f"* {members[0].name} was too slow and was dropped"
        return f"* {len(members)} members were too slow and were dropped"


class ChatSocket(trioweb.WebSocketHandler):
    def initialize(self, room: Room, outbox_size: int = OUTBOX_SIZE) -> None:
        self.room = room
        self.outbox_size = outbox_size

    async def open(self) -> None:
        name = self.get_argument("name", "anonymous")[:32]
        outbox, inbox = trio.open_memory_channel[str](self.outbox_size)
        member = Member(name, outbox)
        self.room.members.add(member)
        self.room.broadcast(f"* {name} joined")
        try:
            with member.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.deliver, inbox)
                    async for message in self:
                        self.room.broadcast(f"{name}: {message}")
                    nursery.cancel_scope.cancel()
        finally:
            if not member.dropped:
                self.room.members.discard(member)
                self.room.broadcast(f"* {name} left")
        if member.dropped:
            await self.close(4000, "too slow")

    async def deliver(self, inbox: trio.MemoryReceiveChannel[str]) -> None:
        async for text in inbox:
            await self.write_message(text)


class Page(trioweb.RequestHandler):
    def get(self) -> None:
        self.write(PAGE)


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>trioweb chat</title>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button>
</form>
<script>
const name = new URLSearchParams(location.search).get("name") || "anonymous";
const ws = new WebSocket(
  `ws://${location.host}/ws?name=${encodeURIComponent(name)}`);
ws.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("log").append(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
"""


def make_app(outbox_size: int = OUTBOX_SIZE) -> trioweb.Application:
    room = Room()
    return trioweb.Application(
        [
            ("/", Page),
            ("/ws", ChatSocket, {"room": room, "outbox_size": outbox_size}),
        ]
    )


app = make_app()

if __name__ == "__main__":
    trioweb.run(app)
