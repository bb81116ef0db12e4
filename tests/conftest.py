"""Shared fixtures for the connection-engine tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import trioweb.server.parsers


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


# -- both request parsers -------------------------------------------------------
#
# The connection engine's protocol tests (tests/test_http1_*.py) run once per
# parser backend: both must behave identically. Elsewhere the default applies
# ("auto": httptools when installed).

BACKENDS = ("h11", "httptools")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "http_backend" in metafunc.fixturenames and module.startswith("test_http1"):
        metafunc.parametrize("http_backend", BACKENDS, indirect=True)


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
