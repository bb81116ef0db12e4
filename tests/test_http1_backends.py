"""The request parser backends: choosing one, and where they must differ."""

from __future__ import annotations

from trioweb.server.config import ServerConfig
from trioweb.server.http1 import Exchange, HTTP1Connection
from trioweb.server.parsers import H11Parser, HttptoolsParser
from trioweb.testing import TestClient


class Echo:
    async def handle_exchange(self, exchange: Exchange) -> None:
        body = exchange.method.encode()
        await exchange.send_response(
            200, [(b"content-length", str(len(body)).encode())], body
        )


async def test_the_backend_under_test_is_the_one_in_use(http_backend: str) -> None:
    conn = HTTP1Connection(None, Echo(), ServerConfig())  # type: ignore[arg-type]
    expected = {"h11": H11Parser, "httptools": HttptoolsParser}[http_backend]
    assert type(conn.parser) is expected


async def test_a_method_the_parser_does_not_know(http_backend: str) -> None:
    # Any token is a method (RFC 9110 9.1): the application decides (a
    # RequestHandler answers 405). llhttp, which refuses methods it does not
    # know, is handed such a request as GET and the method reported as sent.
    async with TestClient(Echo()) as client:
        for method in ("BREW", "-BLARGH", "PRI", "SOURCE", "get"):
            r = await client.request(method, "/")
            assert (r.status, r.body) == (200, method.encode())
