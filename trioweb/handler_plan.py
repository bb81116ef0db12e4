"""What a handler class overrides, found out once per class.

A request calls (or skips) several of :class:`~trioweb.RequestHandler`'s
overridable hooks: ``set_default_headers()``, ``get_current_user()``,
``prepare()``, the ETag methods, ``on_finish()``. Whether each is the
inherited no-op, an ``async def`` or something else does not change from
one request to the next, so it is asked once per class
(:func:`~trioweb._concurrency.hook_kind` for each hook) and kept in a
:class:`HandlerPlan`; a request then pays one dict look-up for all of them.

A hook set on the instance itself (``self.prepare = ...`` in
``initialize()``) wins over its class's, as with ``hook_kind``: such a
handler gets a plan of its own, not cached.
"""

from __future__ import annotations

from typing import Final

from ._concurrency import INHERITED, hook_kind

__all__ = ["HandlerPlan", "plan_for"]

#: The hooks a plan answers for.
HOOKS: Final = frozenset(
    {
        "check_etag_header",
        "compute_etag",
        "get_current_user",
        "on_finish",
        "prepare",
        "set_default_headers",
        "set_etag_header",
    }
)


class HandlerPlan:
    """How one handler class's hooks are called.

    ``prepare`` and ``get_current_user`` are :func:`hook_kind`'s answers
    (``INHERITED``, ``COROUTINE`` or ``OTHER``); the others are True when
    the hook is overridden and must be called.
    """

    __slots__ = (
        "etag",
        "get_current_user",
        "on_finish",
        "prepare",
        "set_default_headers",
    )

    def __init__(self, handler: object, base: type) -> None:
        def kind(name: str) -> int:
            return hook_kind(handler, name, base)

        self.set_default_headers: bool = kind("set_default_headers") != INHERITED
        self.get_current_user: int = kind("get_current_user")
        self.prepare: int = kind("prepare")
        #: Any of compute_etag(), set_etag_header(), check_etag_header()
        #: overridden: the ETag goes through them, not the inlined default.
        self.etag: bool = any(
            kind(name) != INHERITED
            for name in ("compute_etag", "set_etag_header", "check_etag_header")
        )
        self.on_finish: bool = kind("on_finish") != INHERITED


_plans: dict[type, HandlerPlan] = {}


def plan_for(handler: object, base: type) -> HandlerPlan:
    """``handler``'s plan (``base``: the class whose hooks are the defaults)."""
    plan = _plans.get(type(handler))
    if plan is not None and HOOKS.isdisjoint(handler.__dict__):
        return plan
    plan = HandlerPlan(handler, base)
    if HOOKS.isdisjoint(handler.__dict__):
        _plans[type(handler)] = plan
    return plan
