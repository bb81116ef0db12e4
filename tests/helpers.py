"""Small helpers shared by the test modules (importable as ``helpers``:
pytest puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from trioweb import Application, RequestHandler
from trioweb.testing import Response, TestClient


def content_length(body: bytes) -> tuple[bytes, bytes]:
    """The ``Content-Length`` header pair for ``body``, for exchange apps."""
    return (b"content-length", str(len(body)).encode())


async def fetch(
    handler: type[RequestHandler],
    method: str = "GET",
    path: str = "/",
    *,
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Response:
    """One request to an app whose only rule sends ``path`` to ``handler``."""
    app = Application([(path, handler)], **(settings or {}))
    async with TestClient(app) as client:
        response = await client.request(method, path, **kwargs)
        # Let whatever the handler does after finish() run to its end.
        await trio.testing.wait_all_tasks_blocked()
        return response


def not_reading(transport: str | None) -> dict[str, Any]:
    """TestClient arguments for a client that does not read, on ``transport``
    (the ``transport`` fixture's value; None means memory).

    In memory, :func:`trio.testing.lockstep_stream_pair`: a server's send
    waits until the client receives. Over TCP, small kernel buffers: a send
    waits once a few KiB are in flight, so a test sends more than
    :data:`STALL_SIZE` to be sure of stalling on either transport.
    """
    if transport == "tcp":
        return {"socket_buffer": 4096}
    return {"stream_pair": trio.testing.lockstep_stream_pair}


#: A response this large stalls a client that does not read on either
#: transport (see :func:`not_reading`): far more than 4 KiB socket buffers
#: (Linux doubles them) hold, and than the engine itself takes at once.
STALL_SIZE = 256 * 1024


def kernel_buffers(client: trio.abc.Stream, server: trio.abc.Stream) -> int:
    """How many bytes the kernel may hold between a client that sends and a
    server that does not read: the client's send buffer and the server's
    receive buffer (0 for memory streams, which hold nothing)."""
    if not isinstance(client, trio.SocketStream):
        return 0
    assert isinstance(server, trio.SocketStream)
    sol, sndbuf, rcvbuf = (
        trio.socket.SOL_SOCKET,
        trio.socket.SO_SNDBUF,
        trio.socket.SO_RCVBUF,
    )
    return client.socket.getsockopt(sol, sndbuf) + server.socket.getsockopt(sol, rcvbuf)
