"""The benchmark routes on aiohttp.web (default asyncio loop, no access log)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from common import (
    CHUNK_SIZE,
    HELLO,
    KEEP_ALIVE_TIMEOUT,
    MAX_BODY_SIZE,
    PAYLOAD_64K,
    parse_args,
)


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/plain")


async def payload_64k(request: web.Request) -> web.Response:
    return web.Response(body=PAYLOAD_64K, content_type="application/octet-stream")


async def echo_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == web.WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def upload(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(text=str(len(body)), content_type="text/plain")


def big_file_handler(
    path: str | None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    size = os.path.getsize(path) if path else 0

    async def big(request: web.Request) -> web.StreamResponse:
        if path is None:
            raise web.HTTPNotFound()
        response = web.StreamResponse(
            headers={"Content-Type": "application/octet-stream"}
        )
        response.content_length = size
        await response.prepare(request)
        # Plain reads of a file in the page cache, as the other servers do.
        with open(path, "rb") as f:  # noqa: ASYNC230
            while chunk := f.read(CHUNK_SIZE):
                await response.write(chunk)  # drains: flow control
        await response.write_eof()
        return response

    return big


def main() -> None:
    options = parse_args(__doc__ or "")
    app = web.Application(client_max_size=MAX_BODY_SIZE)
    app.router.add_get("/", hello)
    app.router.add_get("/64k", payload_64k)
    app.router.add_post("/upload", upload)
    app.router.add_get("/big", big_file_handler(options.big_file))
    app.router.add_get("/ws", echo_socket)
    web.run_app(
        app,
        host=options.host,
        port=options.port,
        access_log=None,
        keepalive_timeout=KEEP_ALIVE_TIMEOUT,
        print=None,
    )


if __name__ == "__main__":
    main()
