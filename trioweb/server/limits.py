"""The server-wide concurrency limit: at most N requests in flight.

``ServerConfig(limit_concurrency=N)`` (``trioweb serve --limit-concurrency``)
wraps what the engine serves in :class:`ConcurrencyLimit`: one request more
is answered ``503`` with ``Retry-After`` at once, by the engine, before the
application sees it -- the cheapest answer a server can give when it is
already doing all it can. The per-handler limits (a queue per handler class,
request deadlines) are the web layer's: :mod:`trioweb.overload`.
"""

from __future__ import annotations

from ..errors import StreamClosedError
from ..httputil import SERVER_SOFTWARE
from .config import ServerConfig
from .exchange import Exchange, ExchangeApp

__all__ = ["SERVER_RETRY_AFTER", "ConcurrencyLimit", "limit_concurrency"]

#: The ``Retry-After`` of a request the server-wide limit sheds, in seconds.
SERVER_RETRY_AFTER = 1


class ConcurrencyLimit:
    """Wrap an application so that at most ``limit`` requests are in flight.

    A request beyond the limit is answered 503 with ``Retry-After`` at once,
    by the engine, without reaching ``app``. :func:`trioweb.serve` and the
    test client apply it when ``ServerConfig.limit_concurrency`` is set.
    """

    def __init__(
        self, app: ExchangeApp, limit: int, retry_after: int = SERVER_RETRY_AFTER
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit!r}")
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """How many requests the application is serving right now."""
        return self._in_flight

    async def handle_exchange(self, exchange: Exchange) -> None:
        if self._in_flight >= self.limit:
            exchange.note = "shed"
            await send_overloaded(exchange, self.retry_after)
            return
        self._in_flight += 1
        try:
            await self.app.handle_exchange(exchange)
        finally:
            self._in_flight -= 1


def limit_concurrency(app: ExchangeApp, config: ServerConfig) -> ExchangeApp:
    """``app``, wrapped in :class:`ConcurrencyLimit` if ``config`` asks."""
    if config.limit_concurrency is None:
        return app
    return ConcurrencyLimit(app, config.limit_concurrency)


async def send_overloaded(exchange: Exchange, retry_after: int) -> None:
    """Answer 503 with ``Retry-After`` on ``exchange`` (quietly if the
    client is gone). The body is left unread: the engine drains it after
    the response when it can and closes the connection when it cannot."""
    body = b"503 Service Unavailable: the server is overloaded; retry later\n"
    try:
        await exchange.send_response(
            503,
            # Spelled as a handler's response is (the engine does not
            # change the case of names), Server included.
            [
                (b"Server", SERVER_SOFTWARE.encode()),
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", str(len(body)).encode()),
                (b"Retry-After", str(retry_after).encode()),
            ],
            body,
        )
    except StreamClosedError:
        pass
