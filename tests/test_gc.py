"""``trioweb serve`` and ``run()`` tune the garbage collector; ``serve()``
leaves it alone (trioweb.server._gc)."""

from __future__ import annotations

import gc
import json
import re
import signal
from typing import Any

import trio
from apps.gc_apps import app
from processes import trioweb_process

from trioweb import ServerConfig, serve
from trioweb.server._gc import GEN0_THRESHOLD


async def get_json(port: int) -> Any:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := await stream.receive_some():
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return json.loads(body)


async def test_trioweb_serve_freezes_start_up_and_raises_the_gen0_threshold() -> None:
    async with trioweb_process(
        "serve", "tests.apps.gc_apps:app", "--port", "0"
    ) as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r":(\d+)$", line)
        assert match, line
        state = await get_json(int(match.group(1)))
        server.signal(signal.SIGTERM)
        assert await server.finish() == 0
    assert state["threshold"][0] == GEN0_THRESHOLD
    # Start-up's objects (trioweb, trio, the app) are in the permanent
    # generation: many thousands of them.
    assert state["frozen"] > 10_000
    server.assert_clean()


async def test_serve_leaves_the_collector_alone() -> None:
    before = (gc.get_threshold(), gc.get_freeze_count())
    trigger = trio.Event()
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: serve(
                app,
                ServerConfig(port=0),
                shutdown_trigger=trigger,
                task_status=task_status,
            )
        )
        state = await get_json(addresses[0][1])
        trigger.set()
    assert (tuple(state["threshold"]), state["frozen"]) == before
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
