"""docs/tutorial.md's code works as printed: its `notes.py` and its
`test_notes.py` are taken from the page and run here, and the app does what
the text says (including what the page's own tests do not check)."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trioweb.testing import TestClient

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def code_block(first_line: str) -> str:
    """The fenced Python block of the tutorial that starts with first_line."""
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S):
        if block.startswith(first_line + "\n"):
            return str(block)
    raise AssertionError(f"docs/tutorial.md has no block starting {first_line!r}")


@pytest.fixture
def notes() -> Iterator[types.ModuleType]:
    module = types.ModuleType("notes")
    exec(compile(code_block("# notes.py"), "notes.py", "exec"), module.__dict__)
    sys.modules["notes"] = module
    try:
        yield module
    finally:
        del sys.modules["notes"]


async def test_the_tutorials_own_tests_pass(notes: types.ModuleType) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(code_block("# test_notes.py"), "test_notes.py", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        await test()


async def test_list_and_bad_input(notes: types.ModuleType) -> None:
    async with TestClient(notes.make_app()) as client:
        assert (await client.get("/notes")).json() == {"notes": []}
        await client.post("/notes", json={"text": "a"})
        await client.post("/notes", json={"text": "b"})
        assert (await client.get("/notes")).json() == {"notes": ["a", "b"]}
        for bad in ({"text": ""}, {"text": 3}, "a"):
            r = await client.post("/notes", json=bad)
            assert r.status == 400 and r.reason == 'Send {"text": "..."}'
        r = await client.post("/notes", body=b"text=a")  # not JSON
        assert r.status == 415
        assert (await client.get("/notes/x")).status == 404


async def test_waiting_gives_up_after_30_s(
    notes: types.ModuleType, autojump_clock: trio.testing.MockClock
) -> None:
    async with TestClient(notes.make_app()) as client:
        start = trio.current_time()
        r = await client.get("/notes/after/0")
        assert r.json() == {"notes": []}
        assert trio.current_time() - start == pytest.approx(30, abs=1)


async def test_waiting_returns_only_the_new_notes(notes: types.ModuleType) -> None:
    async with TestClient(notes.make_app()) as client:
        await client.post("/notes", json={"text": "old"})
        r = await client.get("/notes/after/0")  # already more than 0
        assert r.json() == {"notes": ["old"]}
        async with trio.open_nursery() as nursery:
            answers = []

            async def wait() -> None:
                answers.append(await client.get("/notes/after/1"))

            nursery.start_soon(wait)
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            await client.post("/notes", json={"text": "new"})
        assert [a.json() for a in answers] == [{"notes": ["new"]}] * 2


async def test_a_client_that_leaves_stops_the_wait(
    notes: types.ModuleType,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = notes.Notes.wait_for_more_than
    cancelled_at = []

    async def recorded(self: Any, count: int) -> Any:
        try:
            return await waiting(self, count)
        except trio.Cancelled:
            cancelled_at.append(trio.current_time())
            raise

    monkeypatch.setattr(notes.Notes, "wait_for_more_than", recorded)
    async with TestClient(notes.make_app()) as client:
        start = trio.current_time()
        sent = await client.abort("GET", "/notes/after/0", after=2)
        assert sent == b""
        # Cancelled when the client left, not at the 30 s give-up.
        assert len(cancelled_at) == 1
        assert cancelled_at[0] - start == pytest.approx(2, abs=0.5)
