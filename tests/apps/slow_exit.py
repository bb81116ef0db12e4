"""An exchange app whose process takes a while to exit after serving: an
``atexit`` function stretches the last moments of the process (after
trioweb has stopped watching signals) so that a test can send a signal
there. Used by tests/test_cli.py."""

from __future__ import annotations

import atexit
import time

from tests.apps.exchange_apps import ExchangeApp, mark


def _linger() -> None:
    mark("exiting")
    time.sleep(0.5)
    mark("exited")


atexit.register(_linger)

app = ExchangeApp()
