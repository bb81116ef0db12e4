"""The benchmark routes on Tornado 6 (single process, no access log)."""

from __future__ import annotations

import asyncio
import logging
import os

import tornado.web
import tornado.websocket
from common import (
    CHUNK_SIZE,
    HELLO,
    KEEP_ALIVE_TIMEOUT,
    MAX_BODY_SIZE,
    PAYLOAD_64K,
    SLEEP_SECONDS,
    SLEEP_SLOTS,
    parse_args,
)


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


class Payload64kHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        self.write(PAYLOAD_64K)


class UploadHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(str(len(self.request.body)))


class BigFileHandler(tornado.web.RequestHandler):
    def initialize(self, path: str | None = None) -> None:
        self.path = path
        self.size = os.path.getsize(path) if path else 0

    async def get(self) -> None:
        if self.path is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(self.size))
        # Plain reads of a file in the page cache, as the other servers do.
        with open(self.path, "rb") as f:  # noqa: ASYNC230
            while chunk := f.read(CHUNK_SIZE):
                self.write(chunk)
                await self.flush()  # resolves once sent: flow control


class EchoSocket(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


class SleepHandler(tornado.web.RequestHandler):
    """The same work as trioweb's: SLEEP_SLOTS at once, the rest wait."""

    def initialize(self, slots: asyncio.Semaphore) -> None:
        self.slots = slots

    async def get(self) -> None:
        async with self.slots:
            await asyncio.sleep(SLEEP_SECONDS)
        self.set_header("Content-Type", "text/plain")
        self.write(b"slept")


async def serve() -> None:
    options = parse_args(__doc__ or "")
    # Access logging off: Tornado logs each request through this logger.
    logging.getLogger("tornado.access").disabled = True
    app = tornado.web.Application(
        [
            (r"/", HelloHandler),
            (r"/64k", Payload64kHandler),
            (r"/upload", UploadHandler),
            (r"/big", BigFileHandler, {"path": options.big_file}),
            (r"/sleep", SleepHandler, {"slots": asyncio.Semaphore(SLEEP_SLOTS)}),
            (r"/ws", EchoSocket),
        ]
    )
    app.listen(
        options.port,
        address=options.host,
        max_body_size=MAX_BODY_SIZE,
        idle_connection_timeout=KEEP_ALIVE_TIMEOUT,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve())
