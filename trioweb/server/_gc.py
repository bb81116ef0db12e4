"""Garbage-collector tuning for a server process.

CPython's cyclic collector runs a young-generation pass every 700 container
allocations, and now and then a full pass over *every* tracked object -- the
modules, classes and routes that start-up built and that live as long as
the process. Two changes, measured (docs/performance.md, "Engine II, first
steps"):

* :func:`raise_gen0_threshold`: a young-generation pass every
  :data:`GEN0_THRESHOLD` allocations instead of 700. Most of a request's
  objects are freed by reference counting before a pass would see them;
  about 1 % fewer instructions per hello-world request (50,000 was no
  better than the default).
* :func:`freeze_startup_objects`, once the server listens: what start-up
  built moves to the permanent generation (:func:`gc.freeze`), which no
  collection walks again. A full collection of the benchmark server went
  from ~5 ms to nothing -- a pause every request in flight would wait
  through. The objects are still freed by reference counting if they die.
  Worker processes are forked after it, and share those pages longer.

Only the process owner may do this: ``trioweb serve`` and
:func:`trioweb.run` call these; :func:`trioweb.serve` (a library call inside
someone else's program) leaves the collector alone.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "freeze_startup_objects", "raise_gen0_threshold"]

#: Container allocations between two young-generation collections.
GEN0_THRESHOLD = 10_000


def raise_gen0_threshold() -> None:
    """Collect the young generation every :data:`GEN0_THRESHOLD` allocations
    (keeping the older generations' thresholds); never lower it."""
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GEN0_THRESHOLD:
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


def freeze_startup_objects() -> None:
    """Move every object alive now to the permanent generation.

    Garbage left by start-up is collected first, so that it is not kept
    forever.
    """
    gc.collect()
    gc.freeze()
