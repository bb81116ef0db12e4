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
