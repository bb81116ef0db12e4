"""The pytest plugin trioweb installs (entry point ``pytest11``).

It gives every project that has trioweb installed a ``trioweb_client``
fixture. Point it at your application by defining a ``trioweb_app`` fixture
(in ``conftest.py``)::

    @pytest.fixture
    def trioweb_app():
        return myproject.make_app()

    async def test_home(trioweb_client):
        r = await trioweb_client.get("/")
        assert r.status_code == 200

The client (an ``httpx.AsyncClient``) runs the app's lifespan and is closed
after the test. It needs httpx (``pip install httpx``, the ``testing`` extra); async
fixtures and tests need pytest-trio (``trio_mode = true``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import TestClient


@pytest.fixture
def trioweb_app() -> Any:
    """Override this fixture to return the application under test."""
    raise pytest.UsageError(
        "the trioweb_client fixture needs your app: define a fixture named "
        "'trioweb_app' that returns it (for example in conftest.py)"
    )


@pytest.fixture
async def trioweb_client(trioweb_app: Any) -> AsyncIterator[TestClient]:
    """A :class:`trioweb.testing.TestClient` for ``trioweb_app``, entered."""
    # Imported here: the plugin loads in every pytest run of a project that
    # has trioweb, and only this fixture needs httpx.
    from .testing import TestClient

    async with TestClient(trioweb_app) as client:
        yield client
