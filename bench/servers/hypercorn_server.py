"""The benchmark routes as a raw ASGI app (no framework) on hypercorn's trio worker.

This is what ``hypercorn --worker-class trio`` runs, started programmatically
(``hypercorn.trio.serve``) so that it takes the same arguments as the others.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from common import (
    CHUNK_SIZE,
    HELLO,
    KEEP_ALIVE_TIMEOUT,
    PAYLOAD_64K,
    parse_args,
)
from hypercorn.config import Config
from hypercorn.trio import serve

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def stream_file(send: Send, path: str, size: int) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(size).encode()),
            ],
        }
    )
    # Plain reads of a file in the page cache, as the other servers do.
    with open(path, "rb") as f:  # noqa: ASYNC230
        while chunk := f.read(CHUNK_SIZE):
            # send() returns once the bytes are written: flow control.
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def echo_socket(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )
        else:  # websocket.disconnect
            return


def make_app(big_file: str | None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    big_size = os.path.getsize(big_file) if big_file else 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await echo_socket(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/":
            await respond(send, 200, HELLO, b"text/plain")
        elif method == "GET" and path == "/64k":
            await respond(send, 200, PAYLOAD_64K, b"application/octet-stream")
        elif method == "POST" and path == "/upload":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            await respond(send, 200, str(len(body)).encode(), b"text/plain")
        elif method == "GET" and path == "/big" and big_file is not None:
            await stream_file(send, big_file, big_size)
        else:
            await respond(send, 404, b"Not Found", b"text/plain")

    return app


def main() -> None:
    options = parse_args(__doc__ or "")
    config = Config()
    config.bind = [f"{options.host}:{options.port}"]
    config.accesslog = None
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    trio.run(partial(serve, make_app(options.big_file), config, mode="asgi"))


if __name__ == "__main__":
    main()
