"""An app that tells what the garbage collector's settings are in the
process serving it (tests/test_gc.py)."""

from __future__ import annotations

import gc

from trioweb import Application, RequestHandler


class GCState(RequestHandler):
    def get(self) -> None:
        self.write({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()})


app = Application([("/", GCState)])
