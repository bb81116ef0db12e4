"""Serve a trioweb application from any ASGI server: :class:`ASGIAdapter`.

::

    app = trioweb.Application([(r"/", Home)])
    asgi_app = app.asgi()          # or trioweb.asgi.ASGIAdapter(app)

    $ hypercorn --worker-class trio module:asgi_app

The adapter is an ASGI 3 application. For each HTTP request it builds an
:class:`~trioweb.asgi_exchange.ASGIExchange` -- an object with the
interface of the connection engine's :class:`~trioweb.Exchange`, but over
the ASGI ``receive`` and ``send`` callables instead of a socket -- and
hands it to ``app.handle_exchange``, the web layer's single entry point. Routing,
handlers, errors, cookies, the overload limits: all of it runs unchanged,
with no copy of its logic here. The ``lifespan`` protocol runs the
application's own lifespan (:meth:`Application.running`: the startup and
shutdown hooks, :attr:`Application.nursery`).

The contract holds under an ASGI server too (see ``docs/asgi.md``):

* **a disconnect cancels the handler.** A task in the request's own nursery
  keeps calling ``receive()``: it reads the request body a bounded way ahead
  of the handler, and once the body is in it waits for ``http.disconnect``.
  That message, while the response is incomplete, fires the exchange's
  disconnect signal, which cancels the handler, as the engine's reader does.
  (Hypercorn's trio worker, for one, sends it but cancels nothing itself.)
* **``finish()`` means sent**: it returns when the server's ``send()``
  returned for the last body message -- when the server took the bytes. A
  send to a client that left raises :exc:`~trioweb.StreamClosedError`.
* **every wait has a deadline**: the body reads (``body_timeout``, and
  ``body_deadline``) and the sends (``write_timeout``) of the adapter's
  :class:`~trioweb.ServerConfig`; the rest -- reading heads, keep-alive, the
  connection limit, TLS, HTTP/2 and HTTP/3 -- is the ASGI server's.

The adapter runs on trio: under hypercorn, use ``--worker-class trio``.
"""

from __future__ import annotations

import contextlib
import logging

import trio

from .asgi_exchange import (
    READ_AHEAD_LIMIT,
    ASGIApp,
    ASGIExchange,
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
)
from .errors import HTTPError, StreamClosedError
from .httputil import reason_phrase
from .server import writer
from .server.config import ServerConfig
from .server.exchange import ExchangeApp
from .server.limits import limit_concurrency

__all__ = [
    "READ_AHEAD_LIMIT",
    "ASGIAdapter",
    "ASGIApp",
    "ASGIExchange",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

log = logging.getLogger("trioweb.error")


def _not_on_trio() -> RuntimeError:
    return RuntimeError(
        "trioweb's ASGI adapter runs on trio, and this ASGI server called it "
        "from another event loop: run hypercorn with --worker-class trio"
    )


class ASGIAdapter:
    """An ASGI 3 application that serves a trioweb application.

    Args:
      app: An :class:`~trioweb.Application`, or anything with
        ``handle_exchange`` (see :mod:`trioweb.server.http1`).
      config: The limits the adapter applies itself (a
        :class:`~trioweb.ServerConfig`; the defaults if omitted):
        ``max_body_size``, ``body_timeout``, ``body_deadline``,
        ``write_timeout``, ``limit_concurrency``, ``proxy_headers`` and
        ``forwarded_allow_ips``. Listening, TLS, connection limits and the
        other timeouts are the ASGI server's business.

    It serves ``http`` and ``lifespan`` scopes; a ``websocket`` connection
    is refused (closed before the handshake completes, which the server
    answers 403).
    """

    def __init__(self, app: ExchangeApp, config: ServerConfig | None = None) -> None:
        self.app = app
        self.config = config or ServerConfig()
        # As trioweb's own server does: the app behind limit_concurrency.
        self._served = limit_concurrency(app, self.config)

    def __repr__(self) -> str:
        return f"ASGIAdapter({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            raise _not_on_trio() from None
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(
                f"trioweb's ASGI adapter serves http and lifespan scopes, not {kind!r}"
            )

    # -- the lifespan ---------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        running = getattr(self.app, "running", None)
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise ValueError(f"expected lifespan.startup, got {message['type']!r}")
        async with contextlib.AsyncExitStack() as stack:
            if running is not None:
                try:
                    await stack.enter_async_context(running())
                except Exception as exc:
                    log.exception("application startup failed")
                    await send(
                        {"type": "lifespan.startup.failed", "message": repr(exc)}
                    )
                    return
            await send({"type": "lifespan.startup.complete"})
            # Served until the server says it has stopped serving.
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            try:
                await stack.aclose()
            except Exception as exc:
                log.exception("application shutdown failed")
                await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                return
        await send({"type": "lifespan.shutdown.complete"})

    # -- a request ------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = ASGIExchange(scope, receive, send, self.config)
        # The request's nursery (contract 1): the receiver task ends with it.
        async with trio.open_nursery() as nursery:
            exchange._nursery = nursery
            if not exchange.expects_continue:
                # Reading at once sees a disconnect at once. A client that
                # asked for 100 Continue is read only when the handler
                # reads: a refused body is then never invited.
                exchange._start_receiving()
            try:
                await self._run(exchange)
            finally:
                nursery.cancel_scope.cancel()

    async def _run(self, exchange: ASGIExchange) -> None:
        # What the engine does around handle_exchange (http1._run_app), for
        # an application that does not answer every request itself.
        try:
            # An ASGIExchange has the Exchange interface (checked by the
            # tests), not its class: the engine's is tied to a socket.
            await self._served.handle_exchange(exchange)  # type: ignore[arg-type]
        except StreamClosedError:
            return
        except HTTPError as exc:
            if not exchange.head_sent:
                await _send_simple(exchange, exc.status_code)
            return
        except Exception:
            log.exception("unhandled error in %s %s", exchange.method, exchange.target)
            if not exchange.head_sent:
                await _send_simple(exchange, 500)
            else:
                exchange.abort()
            return
        if exchange.disconnected or exchange._broken:
            return
        if not exchange.head_sent:
            log.error(
                "%r returned without responding to %s %s",
                self.app,
                exchange.method,
                exchange.target,
            )
            await _send_simple(exchange, 500)
        elif not exchange.finished:
            try:
                await exchange.send_body(b"", end=True)
            except writer.FramingError:
                exchange.abort()
            except StreamClosedError:
                pass


async def _send_simple(exchange: ASGIExchange, status: int) -> None:
    body = f"{status} {reason_phrase(status)}\n".encode()
    with contextlib.suppress(StreamClosedError):
        await exchange.send_response(
            status,
            [
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", str(len(body)).encode()),
            ],
            body,
        )
