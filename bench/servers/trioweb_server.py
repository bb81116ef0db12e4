"""The benchmark routes on trioweb, through its public API only.

``--http`` picks the request parser backend (``trioweb.run(..., http=...)``):
the harness runs this script twice per round, as "trioweb" with
``--http httptools`` and as "trioweb-h11" with ``--http h11``. An explicit
backend that is not installed makes the server fail at start, rather than
quietly measure the other one.
"""

from __future__ import annotations

import os

import trio
from common import (
    CHUNK_SIZE,
    HELLO,
    KEEP_ALIVE_TIMEOUT,
    MAX_BODY_SIZE,
    PAYLOAD_64K,
    SLEEP_SECONDS,
    SLEEP_SLOTS,
    make_parser,
    options_from,
)

import trioweb


class HelloHandler(trioweb.RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


class Payload64kHandler(trioweb.RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        self.write(PAYLOAD_64K)


class UploadHandler(trioweb.RequestHandler):
    async def post(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(str(len(self.request.body)))


class BigFileHandler(trioweb.RequestHandler):
    def initialize(self, path: str | None = None) -> None:
        self.path = path
        self.size = os.path.getsize(path) if path else 0

    async def get(self) -> None:
        if self.path is None:
            raise trioweb.HTTPError(404)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(self.size))
        async with await trio.open_file(self.path, "rb") as f:
            while chunk := await f.read(CHUNK_SIZE):
                self.write(chunk)
                await self.flush()  # returns once sent: flow control


class EchoSocket(trioweb.WebSocketHandler):
    async def on_message(self, message: str | bytes) -> None:
        await self.write_message(message)


class SleepHandler(trioweb.RequestHandler):
    # At most SLEEP_SLOTS at once; one more is answered 503 at once.
    max_concurrency = SLEEP_SLOTS

    async def get(self) -> None:
        await trio.sleep(SLEEP_SECONDS)
        self.set_header("Content-Type", "text/plain")
        self.write(b"slept")


def main() -> None:
    parser = make_parser(__doc__ or "")
    parser.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="request parser backend (auto: httptools when installed)",
    )
    args = parser.parse_args()
    options = options_from(args)
    app = trioweb.Application(
        [
            (r"/", HelloHandler),
            (r"/64k", Payload64kHandler),
            (r"/upload", UploadHandler),
            (r"/big", BigFileHandler, {"path": options.big_file}),
            (r"/sleep", SleepHandler),
            (r"/ws", EchoSocket),
        ]
    )
    trioweb.run(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        max_body_size=MAX_BODY_SIZE,
        keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
        http=args.http,
        # The idle scenario holds 1000 connections; the default limit is
        # exactly 1000, so leave room for the harness's own probes.
        max_connections=4096,
    )


if __name__ == "__main__":
    main()
