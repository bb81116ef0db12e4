"""The test client's websocket: ``TestClient.websocket_connect()``.

::

    async with client.websocket_connect("/ws", subprotocols=["chat"]) as ws:
        await ws.send_text("hello")
        assert await ws.receive_text() == "hello"

It runs over the same in-memory connection as every other test request, so
the handshake goes through routing, ``prepare()``, cookies and the origin
check, and the server side is the real one. The client is wsproto, driven
by hand: nothing happens unless the test asks (a ping from the server is
answered while the test waits for a message), so a test can play a client
that does not read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import h11
import trio
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from .errors import HTTPError
from .httputil import HTTPHeaders
from .websocket import WebSocketClosedError

if TYPE_CHECKING:
    from .testing import TestClient

__all__ = ["TestWebSocket", "WebSocketRejected", "websocket_connect"]

_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class WebSocketRejected(HTTPError):
    """The server answered the handshake with something other than 101.

    An :exc:`~trioweb.HTTPError`: ``status_code``, and the response's
    ``headers`` (:class:`~trioweb.HTTPHeaders`) and ``body``.
    """

    def __init__(self, status: int, headers: HTTPHeaders, body: bytes) -> None:
        super().__init__(status, "websocket handshake refused: %d", status)
        self.headers = headers
        self.body = body


class TestWebSocket:
    """The client end of a websocket opened by ``websocket_connect()``."""

    __test__ = False

    def __init__(
        self,
        stream: trio.abc.Stream,
        server_done: trio.Event,
        received: bytes,
        headers: HTTPHeaders,
        extensions: list[PerMessageDeflate],
        timeout: float,
    ) -> None:
        self.stream = stream
        self.server_done = server_done
        #: The headers of the server's 101 response.
        self.headers = headers
        #: The subprotocol the server chose, or None.
        self.subprotocol: str | None = headers.get("Sec-WebSocket-Protocol")
        #: The close code the server sent (or 1006 if it left without one);
        #: None while the websocket is open.
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._ws = Connection(ConnectionType.CLIENT, extensions=list(extensions))
        self._timeout = timeout
        self._parts: list[Any] = []
        if received:
            self._ws.receive_data(received)

    # -- sending ----------------------------------------------------------------

    async def _send(self, event: Any) -> None:
        await self.stream.send_all(self._ws.send(event))

    async def send_text(self, text: str) -> None:
        """Send a text message."""
        await self._send(Message(data=text))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self._send(Message(data=data))

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text message."""
        await self.send_text(json.dumps(value))

    async def send_frames(self, *parts: str | bytes) -> None:
        """Send one message in several frames (a fragmented message)."""
        for i, part in enumerate(parts):
            await self._send(Message(data=part, message_finished=i == len(parts) - 1))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (a malformed frame, say)."""
        await self.stream.send_all(data)

    async def ping(self, data: bytes = b"") -> None:
        """Send a ping (the server answers it with a pong)."""
        await self._send(Ping(payload=data))

    # -- receiving --------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message from the server.

        Answers the server's pings while it waits. Raises
        :class:`~trioweb.WebSocketClosedError` (with ``code``) when the
        server closed the websocket (the close is answered) or went away.
        """
        while True:
            for event in self._ws.events():
                message = await self._handle(event)
                if message is not None:
                    return message
            if self.close_code is not None:
                raise WebSocketClosedError(
                    code=self.close_code, reason=self.close_reason
                )
            await self._read()

    async def _read(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except _STREAM_ERRORS:
            data = b""
        if data:
            self._ws.receive_data(bytes(data))
        else:
            # Gone without a close frame: 1006, as browsers report it.
            self.close_code = self.close_code or 1006
            raise WebSocketClosedError(code=self.close_code)

    async def _handle(self, event: Any) -> str | bytes | None:
        kind = type(event)
        if kind is TextMessage or kind is BytesMessage:
            self._parts.append(event.data)
            if not event.message_finished:
                return None
            parts, self._parts = self._parts, []
            return ("" if kind is TextMessage else b"").join(parts)
        if kind is Ping and self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(*_STREAM_ERRORS):
                await self._send(event.response())
        elif kind is CloseConnection:
            self.close_code = int(event.code)
            self.close_reason = event.reason or None
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                with contextlib.suppress(*_STREAM_ERRORS):
                    await self._send(event.response())
            raise WebSocketClosedError(code=self.close_code, reason=self.close_reason)
        return None

    async def receive_text(self) -> str:
        """The next message, which must be text."""
        message = await self.receive()
        if not isinstance(message, str):
            raise AssertionError(f"expected a text message, got {message!r}")
        return message

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary."""
        message = await self.receive()
        if not isinstance(message, bytes):
            raise AssertionError(f"expected a binary message, got {message!r}")
        return message

    async def receive_json(self) -> Any:
        """The next message, parsed as JSON."""
        return json.loads(await self.receive())

    # -- ending -----------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket: send a close frame and wait (bounded) for the
        server's answer; messages that arrive meanwhile are dropped."""
        if self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(*_STREAM_ERRORS):
                await self._send(CloseConnection(code=code, reason=reason))
        with trio.move_on_after(self._timeout):
            while self.close_code is None:
                try:
                    await self.receive()
                except WebSocketClosedError:
                    break
        await trio.aclose_forcefully(self.stream)
        with trio.move_on_after(self._timeout):
            await self.server_done.wait()

    async def abort(self) -> None:
        """Leave without a close frame (the TCP connection just ends), and
        wait until the server side of the connection is over, so the
        handler's ``on_close()`` has run when this returns."""
        if self.close_code is None:
            self.close_code = 1006
        await trio.aclose_forcefully(self.stream)
        with trio.fail_after(self._timeout):
            await self.server_done.wait()


@contextlib.asynccontextmanager
async def websocket_connect(
    client: TestClient,
    path: str,
    *,
    subprotocols: list[str] | None = None,
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    compression: bool = False,
) -> AsyncIterator[TestWebSocket]:
    """Open a websocket to ``path`` (see ``TestClient.websocket_connect``)."""
    raw = await client.raw()
    stream, done = raw.stream, raw.server_done
    key = base64.b64encode(os.urandom(16)).decode()
    fields = [
        ("Host", client.host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        fields.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    deflate = PerMessageDeflate()
    if compression:
        fields.append(
            ("Sec-WebSocket-Extensions", f"{deflate.name}; {deflate.offer()}")
        )
    given = list(headers.items()) if isinstance(headers, Mapping) else headers or []
    names = {name.lower() for name, _ in given}
    fields = [(n, v) for n, v in fields if n.lower() not in names] + list(given)
    h11_client = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=path, headers=fields)
    await stream.send_all(
        h11_client.send(request) + h11_client.send(h11.EndOfMessage())
    )
    timeout = client.config.write_timeout + 10.0
    head: h11.InformationalResponse | h11.Response | None = None
    body = bytearray()
    while True:
        event = h11_client.next_event()
        if event is h11.NEED_DATA:
            data = await _receive(stream)
            h11_client.receive_data(data)
            continue
        if isinstance(event, (h11.InformationalResponse, h11.Response)):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        if event is h11.PAUSED or isinstance(
            event, (h11.EndOfMessage, h11.ConnectionClosed)
        ):
            break
    assert head is not None
    response_headers = HTTPHeaders()
    for name, value in head.headers:
        response_headers.add(name.decode("latin-1"), value.decode("latin-1"))
    if head.status_code != 101:
        await trio.aclose_forcefully(stream)
        raise WebSocketRejected(head.status_code, response_headers, bytes(body))
    accepted = response_headers.get("Sec-WebSocket-Extensions")
    extensions = []
    if accepted:
        deflate.finalize(accepted)
        extensions.append(deflate)
    ws = TestWebSocket(
        stream,
        done,
        bytes(h11_client.trailing_data[0]),
        response_headers,
        extensions,
        timeout,
    )
    try:
        yield ws
    finally:
        if ws.close_code is None:
            await ws.close()
        else:
            await trio.aclose_forcefully(stream)


async def _receive(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(65536))
    except _STREAM_ERRORS:
        return b""
