"""WebSockets: :class:`WebSocketHandler`, on wsproto, in two styles.

The handshake is an ordinary request: routing, ``initialize()``,
``prepare()``, cookies, ``current_user`` and ``@authenticated`` all apply,
and the checks of the handshake itself (the ``Upgrade`` header, the version,
the key, then the origin) run in :meth:`WebSocketHandler.get`, after
``prepare()``. Once it is accepted the engine hands the connection over
(:meth:`trioweb.Exchange.upgrade`) and one *session* serves it: wsproto does
the framing, a reader task the reading, and the application runs in a cancel
scope of its own. Two styles drive the same session::

    class Echo(trioweb.WebSocketHandler):          # Tornado's callbacks
        async def on_message(self, message):
            await self.write_message(message)

    class Echo(trioweb.WebSocketHandler):          # trio-native
        async def open(self):
            async for message in self:
                await self.write_message(message)

A class that overrides ``on_message`` is in the first style: ``open()``
runs, then each message goes to ``on_message`` until the connection closes.
Otherwise the websocket lives while ``open()`` runs, and is closed (1000)
when it returns. Either way ``on_close()`` is called exactly once at the end.

Every wait has a deadline: a ping every ``websocket_ping_interval`` (20 s)
that must be answered within ``websocket_ping_timeout`` (20 s); each send
within the server's ``write_timeout`` (a client that does not read blocks
its own ``write_message``, then is aborted); the close handshake within
``websocket_close_timeout`` (5 s). Messages are capped at
``websocket_max_message_size`` (1 MiB, close 1009), decompressed size
included: a compressed message is inflated only up to the cap.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from wsproto.events import Message, Ping
from wsproto.utilities import generate_accept_token

from ._wssession import (
    DEFAULTS,
    Session,
    WebSocketClosedError,
    negotiate_deflate,
)
from .handler import RequestHandler

__all__ = ["WebSocketClosedError", "WebSocketHandler"]


_LIMITS = ("max_message_size", "ping_interval", "ping_timeout", "close_timeout")


def _check_limit(where: str, name: str, value: Any) -> None:
    """Refuse a limit that cannot work, saying what would."""
    if value is None:
        return
    if name == "max_message_size":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{where} must be a whole number of bytes, 1 or more, got {value!r}"
            )
        return
    lowest = 0 if name == "ping_interval" else 0.001
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= lowest
    ):
        raise ValueError(
            f"{where} must be a number of seconds"
            + (", 0 for no pings" if name == "ping_interval" else " above 0")
            + f", got {value!r}"
        )


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


def _same_host(origin: str, host: str) -> bool:
    return urllib.parse.urlsplit(origin.lower()).netloc == host.lower()


class WebSocketHandler(RequestHandler):
    """Serve a websocket: subclass it and override ``on_message`` (Tornado's
    style) or ``open`` (trio's style: ``async for message in self``).

    See :mod:`trioweb.websocket` for the life of a connection and
    ``docs/websockets.md`` for a guide. Class attributes override the
    application's settings of the same name with a ``websocket_`` prefix:
    ``max_message_size`` (1 MiB), ``ping_interval`` (20 s; 0: no pings),
    ``ping_timeout`` (20 s), ``close_timeout`` (5 s). None (the default)
    leaves it to the setting. An impossible value raises ValueError when
    the class is defined (or, for a setting, at the first handshake: 500).

    A websocket outlives any ``request_timeout``: the class sets it to
    ``math.inf``.
    """

    SUPPORTED_METHODS: tuple[str, ...] = ("GET",)
    request_timeout: float | None = math.inf
    max_message_size: int | None = None
    ping_interval: float | None = None
    ping_timeout: float | None = None
    close_timeout: float | None = None

    #: The close code and reason the client sent (None until it closes, or
    #: when it left without a close frame).
    close_code: int | None = None
    close_reason: str | None = None
    #: The subprotocol :meth:`select_subprotocol` chose, if any.
    selected_subprotocol: str | None = None
    _session: Session | None = None

    # -- what a subclass overrides -------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """Called when the websocket is open, with the URL's path arguments.

        May be async. In trio's style it is the whole conversation
        (``async for message in self: ...``); the websocket is closed when
        it returns.
        """
        return None

    def on_message(self, message: str | bytes) -> Any:
        """Called with each message (str for text, bytes for binary; may be
        async). The next message is not delivered until it returns."""
        raise NotImplementedError(
            f"{type(self).__name__} must override on_message() (Tornado's "
            "style) or read messages in open() with `async for message in self`"
        )

    def on_ping(self, data: bytes) -> Any:
        """Called when the client sends a ping (it is answered for you)."""
        return None

    def on_pong(self, data: bytes) -> Any:
        """Called when the client answers a ping."""
        return None

    def on_close(self) -> Any:
        """Called once when the websocket is over, however it ended (may be
        async; bounded by the ``cleanup_timeout`` setting)."""
        return None

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Choose one of the client's subprotocols, or None for none.

        Called only when the client offered some; the choice must be one of
        them.
        """
        return None

    def check_origin(self, origin: str) -> bool:
        """Whether to accept a handshake from a page at ``origin``.

        The default accepts only the request's own host (403 otherwise):
        a page elsewhere could otherwise use the visitor's cookies on this
        websocket. A request without ``Origin`` (not from a browser) is
        accepted.
        """
        host = self.request.headers.get("Host")
        return host is not None and _same_host(origin, host)

    def get_compression_options(self) -> dict[str, Any] | None:
        """None (the default): no compression. A dict turns
        permessage-deflate on when the client offers it; it may hold
        ``compression_level`` (0-9) and ``mem_level`` (1-9)."""
        return None

    # -- the handshake ----------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """The handshake (RFC 6455 4.2): refuse it with the right status, or
        accept it and serve the websocket until it closes."""
        headers = self.request.headers
        upgrade = _tokens(headers.get("Upgrade", ""))
        # RFC 9110 7.8: an HTTP/1.0 request's Upgrade is ignored.
        if "websocket" not in upgrade or self.request.version != "HTTP/1.1":
            await self._refuse(400, 'Can "Upgrade" only to "WebSocket".')
            return
        connection = _tokens(headers.get("Connection", ""))
        if "upgrade" not in connection:
            await self._refuse(400, '"Connection" must be "Upgrade".')
            return
        # A body would have to be read before the switch, and RFC 6455
        # gives it no meaning: a handshake with one is malformed.
        if self._exchange.has_body:
            await self._refuse(400, "A websocket handshake has no body.")
            return
        if headers.get("Sec-WebSocket-Version", "").strip() != "13":
            self.set_header("Sec-WebSocket-Version", "13")
            await self._refuse(426, "Only WebSocket version 13 is supported.")
            return
        key = headers.get("Sec-WebSocket-Key", "").strip()
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if not valid_key:
            await self._refuse(400, "Missing or invalid Sec-WebSocket-Key.")
            return
        origin = headers.get("Origin") or headers.get("Sec-WebSocket-Origin")
        if origin is not None and not self.check_origin(origin):
            await self._refuse(403, "Cross origin websockets not allowed.")
            return
        await self._accept(key, args, kwargs)

    async def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        await self.finish(message + "\n")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _LIMITS:
            _check_limit(f"{cls.__qualname__}.{name}", name, getattr(cls, name))

    def _limit(self, name: str) -> float:
        value = getattr(self, name)
        if value is None:
            value = self.settings.get("websocket_" + name)
            _check_limit(f"the websocket_{name} setting", name, value)
        if value is None:
            value = DEFAULTS["websocket_" + name]
        return float(value)

    async def _accept(
        self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        headers = self.request.headers
        # All read now, so that a bad setting is a 500, not a failure
        # after the 101.
        limits = {name: self._limit(name) for name in _LIMITS}
        max_size = int(limits["max_message_size"])
        offered = [
            p.strip()
            for p in ",".join(headers.get_list("Sec-WebSocket-Protocol")).split(",")
            if p.strip()
        ]
        if offered:
            chosen = self.select_subprotocol(offered)
            if chosen is not None:
                if chosen not in offered:
                    raise ValueError(
                        f"select_subprotocol() returned {chosen!r}, which the "
                        f"client did not offer ({offered!r}); return one of "
                        "them or None"
                    )
                self.selected_subprotocol = chosen
                self.set_header("Sec-WebSocket-Protocol", chosen)
        extensions = []
        options = self.get_compression_options()
        offers = ",".join(headers.get_list("Sec-WebSocket-Extensions"))
        if options is not None and offers:
            deal = negotiate_deflate(offers, options, max_size)
            if deal is not None:
                extensions.append(deal[0])
                self.set_header("Sec-WebSocket-Extensions", deal[1])
        self.clear_header("Content-Type")
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header("Sec-WebSocket-Accept", generate_accept_token(key.encode()))
        exchange = self._exchange
        stream, received = await exchange.upgrade(self._head_for_wire())
        # Nothing more goes out over HTTP: no automatic finish().
        self._finished = True
        session = self._session = Session(self, stream, extensions, limits)
        exchange.on_shutdown(session.going_away)
        try:
            await session.run(received, args, kwargs)
        finally:
            exchange.note = f"websocket {session.log_code}"

    # -- talking ---------------------------------------------------------------

    def _live_session(self) -> Session:
        if self._session is None:
            raise WebSocketClosedError("the websocket is not open yet")
        return self._session

    async def write_message(
        self, message: str | bytes | dict[str, Any], binary: bool = False
    ) -> None:
        """Send one message; return when it is handed to the connection.

        ``str`` goes as text (as binary, UTF-8, with ``binary=True``),
        ``bytes`` as binary, a dict as JSON text. Blocks while the client
        is not reading, up to the server's ``write_timeout``; then the
        connection is aborted.
        Raises :exc:`WebSocketClosedError` once the websocket is closed.
        """
        if isinstance(message, dict):
            message = json.dumps(message)
        if binary and isinstance(message, str):
            message = message.encode("utf-8")
        if not isinstance(message, (str, bytes)):
            raise TypeError(
                "write_message() takes str, bytes or dict, not "
                + type(message).__name__
            )
        await self._live_session().send(Message(data=message))

    async def ping(self, data: bytes = b"") -> None:
        """Send a ping; :meth:`on_pong` receives the answer."""
        if len(data) > 125:
            raise ValueError("a ping carries at most 125 bytes")
        await self._live_session().send(Ping(payload=data))

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Begin the closing handshake (1000 unless ``code`` says otherwise).

        Returns once the close frame is sent; no message is delivered after
        it. The client's answer is awaited (up to ``close_timeout``) before
        the connection ends. Does nothing if it is already closing.
        """
        if self._session is not None:
            await self._session.close(code or 1000, reason or "")

    async def receive(self) -> str | bytes:
        """The next message (trio's style). Raises :exc:`WebSocketClosedError`
        when the websocket is closed and no message is left."""
        return await self._live_session().receive()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        session = self._live_session()
        while True:
            try:
                message = await session.receive()
            except WebSocketClosedError:
                return
            yield message
