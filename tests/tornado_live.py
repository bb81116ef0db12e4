"""A real Tornado server in a thread, for the interoperability tests.

Tornado runs on its own asyncio loop in a background thread, listening on
127.0.0.1 at a free port, until the fixture stops it. Tests talk to it over
real sockets with httpx, and to trioweb through the TestClient, passing
cookies and tokens from one to the other the way a browser would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

tornado_web = pytest.importorskip("tornado.web", reason="tornado is a test extra")
import tornado.httpserver  # noqa: E402
import tornado.netutil  # noqa: E402

# The settings both frameworks share in these tests.
SHARED_SECRET = "shared secret for the interoperability tests"
SETTINGS: dict[str, Any] = {"cookie_secret": SHARED_SECRET, "xsrf_cookies": True}


class _Xsrf(tornado_web.RequestHandler):
    def get(self) -> None:
        self.write(self.xsrf_token)

    def post(self) -> None:
        self.write("accepted")


class _Sign(tornado_web.RequestHandler):
    def get(self) -> None:
        self.set_signed_cookie(
            self.get_argument("name"), self.get_argument("value").encode("latin-1")
        )


class _Read(tornado_web.RequestHandler):
    def get(self) -> None:
        value = self.get_signed_cookie(self.get_argument("name"))
        self.write({"value": None if value is None else value.decode("latin-1")})


class LiveTornado:
    """Tornado serving ``/xsrf`` (GET: a token; POST: 'accepted' if the
    token matches), ``/sign?name=&value=`` (sets a signed cookie) and
    ``/read?name=`` (reads one, as JSON)."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = tornado_web.Application(
            [(r"/xsrf", _Xsrf), (r"/sign", _Sign), (r"/read", _Read)], **SETTINGS
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await server.close_all_connections()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Tornado server did not start within 30 s")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def live_tornado() -> Iterator[LiveTornado]:
    server = LiveTornado()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cookie_from_set_cookie(header: str) -> tuple[str, str]:
    """``(name, value)`` of a ``Set-Cookie`` value, the value as sent (a
    browser sends it back byte for byte, quotes included)."""
    pair = header.split(";", 1)[0]
    name, _, value = pair.partition("=")
    return name.strip(), value.strip()
