"""A trioweb application served by hypercorn's trio worker (tests/test_asgi_server.py).

It prints marker lines to stderr (``app: started up``, ``app: cancelled
/hang``...) so that the test, reading the server's stderr, knows what the
application did.
"""

from __future__ import annotations

import hashlib
import sys

import trio

from trioweb import Application, RequestHandler, stream_request_body


def mark(text: str) -> None:
    print(f"app: {text}", file=sys.stderr, flush=True)


class Info(RequestHandler):
    async def get(self) -> None:
        self.write(
            {
                "version": self.request.version,
                "protocol": self.request.protocol,
                "host": self.request.host,
                "path": self.request.path,
                "query": self.get_query_argument("q", ""),
                "started": self.application.settings["state"].get("started", False),
            }
        )


@stream_request_body
class Upload(RequestHandler):
    """Hashes a streamed body; answers its size, chunk count and digest."""

    def prepare(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.chunks = 0

    def data_received(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        self.chunks += 1

    async def post(self) -> None:
        self.write(
            {
                "size": self.size,
                "chunks": self.chunks,
                "sha256": self.digest.hexdigest(),
            }
        )


class Stream(RequestHandler):
    """Flushes ``n`` parts, each of which the client receives before the next."""

    async def get(self) -> None:
        for i in range(int(self.get_query_argument("n", "3"))):
            self.write(f"part {i}\n")
            await self.flush()
        await self.finish()


class Hang(RequestHandler):
    """Sends its head, then waits forever: only a disconnect ends it."""

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write("waiting\n")
        await self.flush()
        mark("hanging /hang")
        try:
            await trio.sleep_forever()
        finally:
            mark("cancelled /hang")

    def on_connection_close(self) -> None:
        mark("connection closed /hang")


async def startup() -> None:
    app.settings["state"]["started"] = True
    mark("started up")


async def shutdown() -> None:
    mark("shut down")


app = Application(
    [
        (r"/info", Info),
        (r"/upload", Upload),
        (r"/stream", Stream),
        (r"/hang", Hang),
    ],
    on_startup=[startup],
    on_shutdown=[shutdown],
    state={},
)
asgi_app = app.asgi()
