"""Shared fixtures for the connection-engine tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import trioweb.server.parsers
from trioweb.testing import MemoryTransport, TestClient


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if anything logged a traceback or an ERROR on trioweb's
    loggers: a client leaving, a timeout or a refused request is not a
    server fault."""
    caplog.set_level(logging.INFO, logger="trioweb")
    yield
    bad = [
        r
        for r in caplog.records
        if r.name.startswith("trioweb")
        and (r.exc_info is not None or r.levelno >= logging.ERROR)
    ]
    assert not bad, [r.getMessage() for r in bad]


# -- both request parsers, both transports ---------------------------------------
#
# The connection engine's protocol tests (tests/test_http1_*.py) run once per
# parser backend: both must behave identically. Elsewhere the default applies
# ("auto": httptools when installed).
#
# They, and the limit, timeout and disconnect tests of the modules below, also
# run once per transport: the TestClient's connections are memory streams (the
# engine's Stream path, as for TLS) or real TCP connections over 127.0.0.1
# (the path a plain-TCP client of serve() takes). A test that is about memory
# streams themselves (it passes stream_pair=, say, to model a client that
# does not read) is marked ``@pytest.mark.memory_only("why")`` and runs on
# memory streams alone.

BACKENDS = ("h11", "httptools")
TRANSPORTS = ("memory", "tcp")

# Beyond test_http1_*: modules whose tests are about limits, timeouts and
# disconnects, through the TestClient.
BOTH_TRANSPORTS = frozenset(
    {
        "test_asgi_handler",
        "test_compressed_body",
        "test_handler_lifecycle",
        "test_overload",
        "test_sse",
        "test_streaming",
        "test_testclient",
        "test_websocket_limits",
    }
)


# test_http1_* modules that never make a TestClient (they open their own
# sockets, each for the path it tests): a second transport would repeat them.
OWN_TRANSPORT = frozenset({"test_http1_plain"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "memory_only(reason): runs over memory streams only, not both transports",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    engine = module.startswith("test_http1")
    if "http_backend" in metafunc.fixturenames and engine:
        metafunc.parametrize("http_backend", BACKENDS, indirect=True)
    both = (engine and module not in OWN_TRANSPORT) or module in BOTH_TRANSPORTS
    if "transport" in metafunc.fixturenames and both:
        memory_only = metafunc.definition.get_closest_marker("memory_only")
        params = ("memory",) if memory_only else TRANSPORTS
        metafunc.parametrize("transport", params, indirect=True)


@pytest.fixture(autouse=True)
def transport(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    """The transport a TestClient made in this test uses unless told (None:
    unchanged, "memory")."""
    via: str | None = getattr(request, "param", None)
    if via is not None:
        # The default of the via= argument, for this test only: every
        # TestClient(app) the test makes connects that way.
        for init in (TestClient.__init__, MemoryTransport.__init__):
            monkeypatch.setitem(init.__kwdefaults__, "via", via)
    return via


@pytest.fixture(autouse=True)
def http_backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The parser backend "auto" stands for in this test (None: unchanged)."""
    backend: str | None = getattr(request, "param", None)
    if backend is None:
        yield None
        return
    if backend == "httptools":
        pytest.importorskip("httptools")
    original = trioweb.server.parsers.resolve_backend

    def resolve(name: str) -> str:
        return backend if name == "auto" else original(name)

    trioweb.server.parsers.resolve_backend = resolve  # type: ignore[assignment]
    try:
        yield backend
    finally:
        trioweb.server.parsers.resolve_backend = original
