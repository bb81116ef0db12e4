"""A trioweb Application served with ``--limit-concurrency`` in
tests/test_overload.py. Handlers print marker lines to stderr as in
exchange_apps (``app: started GET /hang``)."""

from __future__ import annotations

import trio

from tests.apps.exchange_apps import mark
from trioweb import Application, RequestHandler


class Hang(RequestHandler):
    """Never answers; cancelled when its client leaves."""

    async def get(self) -> None:
        mark(f"started GET {self.request.uri}")
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            mark(f"cancelled GET {self.request.uri}")
            raise


class Echo(RequestHandler):
    """Answers ``METHOD URI``."""

    def get(self) -> None:
        mark(f"started GET {self.request.uri}")
        self.write(f"GET {self.request.uri}")


app = Application([("/hang", Hang), ("/", Echo)])
