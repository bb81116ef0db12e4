"""Exchange apps served by ``python -m trioweb serve`` in tests/test_cli.py.

Each handler prints a marker line to stderr when it starts (``app: started
GET /hang``) and when it is cancelled (``app: cancelled GET /hang``), so a
test reading the server's stderr knows a request is in flight before it
sends a signal.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from trioweb import Exchange

#: Size of the /big response: more than the kernel buffers on both ends of
#: a loopback connection can hold, so a client that does not read blocks
#: the send.
BIG = 16 * 1024 * 1024


def mark(text: str) -> None:
    print(f"app: {text}", file=sys.stderr, flush=True)


class ExchangeApp:
    """Routes by path:

    * ``/hang`` never answers;
    * ``/echo`` answers with the request body;
    * ``/big`` sends a 16 MiB body;
    * ``/crash`` raises;
    * anything else answers ``METHOD TARGET``.
    """

    async def handle_exchange(self, exchange: Exchange) -> None:
        what = f"{exchange.method} {exchange.target}"
        path = exchange.target.partition("?")[0]
        mark(f"started {what}")
        try:
            if path == "/hang":
                await trio.sleep_forever()
            elif path == "/echo":
                body = await exchange.read_body()
            elif path == "/big":
                body = b"x" * BIG
            elif path == "/crash":
                raise RuntimeError("the /crash handler crashed")
            else:
                body = what.encode()
            await exchange.send_response(
                200,
                [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
                body,
            )
        except trio.Cancelled:
            mark(f"cancelled {what}")
            raise
        mark(f"finished {what}")


class SlowStartApp(ExchangeApp):
    """An app whose lifespan start-up never ends (think: a database that
    does not answer)."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        mark("lifespan starting")
        try:
            await trio.sleep_forever()
            yield
        finally:
            mark("lifespan cleaned up")


class HangingExitApp(ExchangeApp):
    """An app whose lifespan tear-down never ends by itself."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield
        mark("lifespan exiting")
        try:
            await trio.sleep_forever()
        finally:
            mark("lifespan exit cancelled")


app = ExchangeApp()
slow_start = SlowStartApp()
hanging_exit = HangingExitApp()
not_an_app = 42
