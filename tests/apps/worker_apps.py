"""Exchange apps served with ``--workers`` in tests/test_workers.py.

Every response body is the serving process's PID, so a test can tell the
workers apart. Handlers print marker lines to stderr as in exchange_apps.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tests.apps.exchange_apps import mark
from trioweb import Application, Exchange, RequestHandler


class PidApp:
    """Routes by path:

    * ``/slow`` answers after 0.5 s (a request in flight for a while),
      ``/slow?60`` after 60 s;
    * anything else answers at once.

    Both answer with ``os.getpid()``.
    """

    async def handle_exchange(self, exchange: Exchange) -> None:
        what = f"{exchange.method} {exchange.target} in {os.getpid()}"
        path, _, query = exchange.target.partition("?")
        slow = path == "/slow"
        if slow:
            mark(f"started {what}")
            await trio.sleep(float(query or 0.5))
        body = str(os.getpid()).encode()
        await exchange.send_response(
            200,
            [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
            body,
        )
        if slow:
            mark(f"finished {what}")


class BrokenStartApp(PidApp):
    """An app whose lifespan start-up fails (think: no database)."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        raise RuntimeError("cannot reach the database")
        yield


class Pid(RequestHandler):
    def get(self) -> None:
        self.write(str(os.getpid()))


async def _slow_shutdown_hook() -> None:
    mark(f"shutdown hook started in {os.getpid()}")
    await trio.sleep(1.0)
    mark(f"shutdown hook finished in {os.getpid()}")


app = PidApp()
broken_start = BrokenStartApp()
#: A trioweb.Application whose shutdown hook takes 1 s, well within its
#: shutdown_timeout.
slow_shutdown = Application(
    [(r"/pid", Pid)], on_shutdown=[_slow_shutdown_hook], shutdown_timeout=5
)
