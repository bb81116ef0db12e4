"""How the handler's hooks are called once the check is made per class.

RequestHandler decides once per class whether ``prepare()``, the HTTP
method and ``on_finish()`` are inherited no-ops, ``async def`` or plain
functions (trioweb._concurrency.hook_kind). Every shape a hook can take
must still be called the way it was before: a plain function returning an
awaitable, a hook set on the instance, a subclass of a subclass, a class
whose hooks change shape in a subclass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any

import trio
from helpers import fetch

from trioweb import Application, RequestHandler
from trioweb._concurrency import COROUTINE, INHERITED, OTHER, hook_kind
from trioweb.testing import TestClient


async def test_a_plain_method_returning_an_awaitable_is_awaited() -> None:
    done: list[str] = []

    class H(RequestHandler):
        def get(self) -> Awaitable[None]:  # type: ignore[override]
            async def later() -> None:
                await trio.lowlevel.checkpoint()
                self.write("from the awaitable")
                done.append("get")

            return later()

        def prepare(self) -> Awaitable[None]:
            async def later() -> None:
                done.append("prepare")

            return later()

    r = await fetch(H)
    assert (r.status, r.body) == (200, b"from the awaitable")
    assert done == ["prepare", "get"]


async def test_hooks_set_on_the_instance_are_called() -> None:
    calls: list[str] = []

    class H(RequestHandler):
        def initialize(self, **kwargs: Any) -> None:
            async def prepare() -> None:
                calls.append("prepare")

            self.prepare = prepare  # type: ignore[method-assign,assignment]
            self.on_finish = lambda: calls.append("on_finish")  # type: ignore[method-assign,assignment,func-returns-value]

        async def get(self) -> None:
            self.write("ok")

    r = await fetch(H)
    assert r.status == 200
    assert calls == ["prepare", "on_finish"]


async def test_overrides_are_found_in_subclasses_of_subclasses() -> None:
    calls: list[str] = []

    class Base(RequestHandler):
        async def prepare(self) -> None:
            calls.append("async prepare")

        async def on_finish(self) -> None:
            calls.append("async on_finish")

    class Child(Base):
        async def get(self) -> None:
            self.write("child")

    class GrandChild(Child):
        # The same hook, plain this time: the parent's kind must not stick.
        def prepare(self) -> None:
            calls.append("plain prepare")

    assert (await fetch(Child)).body == b"child"
    assert calls == ["async prepare", "async on_finish"]
    calls.clear()
    assert (await fetch(GrandChild)).body == b"child"
    assert calls == ["plain prepare", "async on_finish"]


def test_hook_kind_tells_the_shapes_apart() -> None:
    class Plain(RequestHandler):
        def get(self) -> None:
            pass

    class Async(RequestHandler):
        async def get(self) -> None:
            pass

        async def on_finish(self) -> None:
            pass

    plain, coro = object.__new__(Plain), object.__new__(Async)
    assert hook_kind(plain, "on_finish", RequestHandler) == INHERITED
    assert hook_kind(plain, "get", RequestHandler) == OTHER
    assert hook_kind(coro, "get", RequestHandler) == COROUTINE
    assert hook_kind(coro, "on_finish", RequestHandler) == COROUTINE
    # Asked again (now from the cache), the same answers.
    assert hook_kind(coro, "on_finish", RequestHandler) == COROUTINE
    assert hook_kind(plain, "on_finish", RequestHandler) == INHERITED
    coro.on_finish = lambda: None  # type: ignore[method-assign,assignment,return-value]
    assert hook_kind(coro, "on_finish", RequestHandler) == OTHER


# -- the per-class plan (trioweb/handler_plan.py) ------------------------------------


async def test_an_instance_hook_is_seen_after_the_class_plan_is_cached() -> None:
    # The first request caches the class's plan (prepare inherited); the
    # second sets prepare on the instance, which must still be called.
    calls: list[str] = []

    class H(RequestHandler):
        def initialize(self, **kwargs: Any) -> None:
            if self.get_query_argument("hook", None):

                def prepare() -> None:
                    calls.append("instance prepare")

                self.prepare = prepare  # type: ignore[method-assign,assignment]

        async def get(self) -> None:
            self.write("ok")

    app = Application([("/", H)])
    async with TestClient(app) as client:
        assert (await client.get("/")).status == 200
        assert calls == []
        assert (await client.get("/?hook=1")).status == 200
    assert calls == ["instance prepare"]


async def test_an_overridden_check_etag_header_alone_decides_the_304() -> None:
    class H(RequestHandler):
        def check_etag_header(self) -> bool:
            return self.request.headers.get("X-Fresh") == "yes"

        async def get(self) -> None:
            self.write("body")

    assert (await fetch(H, headers={"X-Fresh": "yes"})).status == 304
    assert (await fetch(H, headers={"If-None-Match": "*"})).status == 200


async def test_set_default_headers_of_a_subclass_is_called() -> None:
    class Base(RequestHandler):
        async def get(self) -> None:
            self.write("ok")

    class WithDefaults(Base):
        def set_default_headers(self) -> None:
            self.set_header("X-Default", "1")

    assert "X-Default" not in (await fetch(Base)).headers
    assert (await fetch(WithDefaults)).headers["X-Default"] == "1"


async def test_the_etag_covers_every_write_and_sees_changed_request_headers() -> None:
    class H(RequestHandler):
        def prepare(self) -> None:
            # A change to the request's headers (which builds their dict)
            # is what the 304 decision sees.
            if self.get_query_argument("tag", None):
                self.request.headers["If-None-Match"] = self.get_query_argument("tag")

        async def get(self) -> None:
            self.write("one ")
            self.write(b"two")

    tag = f'"{hashlib.sha1(b"one two").hexdigest()}"'
    assert (await fetch(H)).headers["ETag"] == tag
    assert (await fetch(H, params={"tag": tag})).status == 304


async def test_an_overridden_check_etag_header_may_answer_304_without_any_tag() -> None:
    # Regression: the 304 path read If-None-Match and ETag with [] and
    # answered 500 when either was missing.
    class H(RequestHandler):
        def compute_etag(self) -> str | None:
            return None

        def check_etag_header(self) -> bool:
            return True

        async def get(self) -> None:
            self.write("body")

    r = await fetch(H)
    assert r.status == 304
    assert "ETag" not in r.headers
