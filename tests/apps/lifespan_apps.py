"""trioweb.Application apps with a troublesome tear-down, served by
``python -m trioweb serve`` in tests/test_cli.py. Marker lines on stderr as in
exchange_apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tests.apps.exchange_apps import mark
from trioweb import Application, RequestHandler


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


class Hang(RequestHandler):
    async def get(self) -> None:
        mark("started GET /hang")
        await trio.sleep_forever()


@asynccontextmanager
async def _hanging_exit(app: Application) -> AsyncIterator[None]:
    yield
    mark("lifespan exiting")
    try:
        await trio.sleep_forever()
    finally:
        mark("lifespan exit cancelled")


async def _hanging_hook() -> None:
    mark("shutdown hook running")
    try:
        await trio.sleep_forever()
    finally:
        mark("shutdown hook cancelled")


#: The lifespan's exit hangs; its deadline (60 s) is far away.
hanging_exit = Application([(r"/", Hello)], lifespan=_hanging_exit, shutdown_timeout=60)
#: A shutdown hook hangs, and then the lifespan's exit would too.
hanging_hook = Application(
    [(r"/", Hello), (r"/hang", Hang)],
    lifespan=_hanging_exit,
    on_shutdown=[_hanging_hook],
    shutdown_timeout=60,
)


# -- a background task that fails -------------------------------------------------

_fail_now = trio.Event()


async def _doomed(app: Application) -> None:
    await _fail_now.wait()
    raise RuntimeError("background task died")


class Fail(RequestHandler):
    def get(self) -> None:
        _fail_now.set()
        self.write("failing")


class Slow(RequestHandler):
    async def get(self) -> None:
        mark("started GET /slow")
        await _fail_now.wait()
        # Still in flight while the server shuts down after the failure.
        await trio.sleep(0.3)
        self.write("slept")
        mark("finished GET /slow")


async def _start_task(app: Application) -> None:
    app.nursery.start_soon(_doomed, app)


async def _tear_down(app: Application) -> None:
    mark("shutdown hook ran")


#: GET /fail makes a task in Application.nursery raise; GET /slow is a
#: request in flight when that happens.
failing_task = Application(
    [(r"/fail", Fail), (r"/slow", Slow)],
    on_startup=[_start_task],
    on_shutdown=[_tear_down],
)
