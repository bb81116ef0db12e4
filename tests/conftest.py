"""Shared fixtures for the connection-engine tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


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
