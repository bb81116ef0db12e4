"""How the handler's hooks are called once the check is made per class.

RequestHandler decides once per class whether ``prepare()``, the HTTP
method and ``on_finish()`` are inherited no-ops, ``async def`` or plain
functions (trioweb._concurrency.hook_kind). Every shape a hook can take
must still be called the way it was before: a plain function returning an
awaitable, a hook set on the instance, a subclass of a subclass, a class
whose hooks change shape in a subclass.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import trio
from helpers import fetch

from trioweb import RequestHandler
from trioweb._concurrency import COROUTINE, INHERITED, OTHER, hook_kind


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
