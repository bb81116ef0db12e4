"""The pytest plugin (entry point ``pytest11``): ``trioweb_client``.

Each test runs pytest in a subprocess on generated files: an in-process run
would start a second trio loop inside this test's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import trioweb

pytest_plugins = ["pytester"]

INI = """
[pytest]
trio_mode = true
addopts = -p no:cacheprovider
"""

APP = """
import pytest
import trio
import trioweb


class Hello(trioweb.RequestHandler):
    async def get(self, name):
        self.write({"hello": name})


EVENTS = []


async def startup():
    EVENTS.append("startup")


async def shutdown():
    EVENTS.append("shutdown")


def make_app():
    return trioweb.Application(
        [(r"/hello/(.*)", Hello)], on_startup=[startup], on_shutdown=[shutdown]
    )
"""


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner run imports this checkout of trioweb, whatever state the
    # installed copy is in (its pytest11 entry point loads the plugin).
    root = Path(trioweb.__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", str(root))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    return pytester.runpytest_subprocess("-v", *args)


def test_trioweb_client_uses_the_trioweb_app_fixture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        myapp=APP,
        conftest="""
import pytest
from myapp import make_app


@pytest.fixture
def trioweb_app():
    return make_app()
""",
        test_hello="""
from trioweb.testing import TestClient
from myapp import EVENTS


async def test_hello(trioweb_client):
    assert isinstance(trioweb_client, TestClient)
    assert EVENTS == ["startup"]  # the lifespan runs around the test
    r = await trioweb_client.get("/hello/ann")
    assert r.status == 200
    assert r.json() == {"hello": "ann"}


def test_after():
    # The client was closed after the test: shutdown hooks ran.
    assert EVENTS == ["startup", "shutdown"]


async def test_fresh_client_per_test(trioweb_client):
    assert EVENTS == ["startup", "shutdown", "startup"]
    r = await trioweb_client.get("/missing")
    assert r.status == 404
""",
    )
    result = run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_trioweb_app_defined_in_the_test_module_may_be_async(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        myapp=APP,
        test_async_app="""
import pytest
import trio
from myapp import make_app


@pytest.fixture
async def trioweb_app():
    await trio.sleep(0)
    return make_app()


async def test_hello(trioweb_client):
    r = await trioweb_client.get("/hello/%C3%A9")
    assert r.json() == {"hello": "é"}
""",
    )
    run(pytester).assert_outcomes(passed=1)


def test_trioweb_client_works_under_autojump_clock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_clock="""
import pytest
import trio
import trioweb


class Slow(trioweb.RequestHandler):
    async def get(self):
        await trio.sleep(60)
        self.write("late")


@pytest.fixture
def trioweb_app():
    return trioweb.Application([(r"/", Slow)])


async def test_slow(trioweb_client, autojump_clock):
    start = trio.current_time()
    r = await trioweb_client.get("/")
    assert r.text == "late"
    assert trio.current_time() - start == 60
""",
    )
    run(pytester).assert_outcomes(passed=1)


def test_a_failing_assertion_in_the_test_is_reported(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        myapp=APP,
        test_fail="""
import pytest
from myapp import make_app


@pytest.fixture
def trioweb_app():
    return make_app()


async def test_wrong(trioweb_client):
    r = await trioweb_client.get("/hello/x")
    assert r.status == 500
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 200 == 500*"])


def test_without_trioweb_app_the_error_says_what_to_do(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_no_app="""
async def test_hello(trioweb_client):
    await trioweb_client.get("/")
""",
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*UsageError*the trioweb_client fixture needs your app: define a "
            "fixture named 'trioweb_app' that returns it*"
        ]
    )


def test_the_plugin_is_registered_as_trioweb(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nothing="""
async def test_hello(trioweb_client):
    pass
""",
    )
    result = run(pytester, "-p", "no:trioweb")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'trioweb_client' not found*"])
