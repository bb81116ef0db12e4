"""The application tests/test_nginx.py serves from several instances behind
nginx.

Every answer says which process served it (``pid``) and over which TCP
connection (``peer``: nginx's end of the upstream connection, as the kernel
reports it, *before* the proxy headers replace it with the client). Routes:

* ``GET /whoami``: the pid, the peer, ``request.remote_ip``,
  ``request.protocol`` and ``request.host``, as JSON.
* ``GET /slow?ms=N``: the same, after N milliseconds (a request in flight
  for a while, for the kill and restart tests).
* ``GET /events/TOKEN``: three server-sent events; event N+1 is not sent
  until the file ``$GATE_DIR/TOKEN.N`` exists, which the test creates only
  once it has received event N -- so each event must have crossed nginx
  alone.
* ``PUT /files/NAME``: examples/upload.py's streamed upload, into
  ``$UPLOAD_DIR``.
* ``/ws``: a websocket that sends the whoami JSON, then echoes (only once
  ``trioweb.WebSocketHandler`` exists).
"""

from __future__ import annotations

import contextvars
import inspect
import json
import os
from typing import Any

import trio

import trioweb
from examples.upload import FileUpload
from trioweb import Exchange

#: The TCP peer of the current request's connection, before proxy headers.
_peer: contextvars.ContextVar[str] = contextvars.ContextVar("peer", default="-")


class PeerRecordingApp(trioweb.Application):
    async def handle_exchange(self, exchange: Exchange) -> None:
        # The handler runs inside this call, in this task: it sees the value.
        client = exchange.client
        _peer.set(f"{client[0]}:{client[1]}" if client else "-")
        await super().handle_exchange(exchange)


def whoami(handler: trioweb.RequestHandler) -> dict[str, Any]:
    request = handler.request
    return {
        "pid": os.getpid(),
        "peer": _peer.get(),
        "remote_ip": request.remote_ip,
        "protocol": request.protocol,
        "host": request.host,
    }


class WhoAmI(trioweb.RequestHandler):
    def get(self) -> None:
        self.write(whoami(self))


class Slow(trioweb.RequestHandler):
    async def get(self) -> None:
        await trio.sleep(int(self.get_argument("ms", "100")) / 1000)
        self.write(whoami(self))


class Events(trioweb.RequestHandler):
    async def get(self, token: str) -> None:
        gates = trio.Path(os.environ["GATE_DIR"])
        async with self.event_stream() as events:
            for n in range(3):
                await events.send(json.dumps({"n": n, "pid": os.getpid()}), id=str(n))
                if n == 2:
                    break
                # The gate is a file the test process creates: there is no
                # event to wait on across processes, so look every 10 ms.
                # Bounded: a client that never opens the gate ends the stream.
                with trio.move_on_after(10):
                    while not await (gates / f"{token}.{n}").exists():  # noqa: ASYNC110
                        await trio.sleep(0.01)


async def _maybe_await(value: object) -> None:
    # Tornado's write_message() returns a future; trioweb's may be a
    # coroutine or nothing: this handler works either way.
    if inspect.isawaitable(value):
        await value


routes: list[Any] = [
    (r"/whoami", WhoAmI),
    (r"/slow", Slow),
    (r"/events/(\w+)", Events),
    (r"/files/([^/]+)", FileUpload),
]

if hasattr(trioweb, "WebSocketHandler"):

    class Echo(trioweb.WebSocketHandler):  # type: ignore[name-defined,misc]
        async def open(self) -> None:
            await _maybe_await(self.write_message(json.dumps(whoami(self))))

        async def on_message(self, message: str | bytes) -> None:
            await _maybe_await(self.write_message(message))

    routes.append((r"/ws", Echo))

app = PeerRecordingApp(routes)
