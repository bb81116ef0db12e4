"""A check that a parser's cost grows linearly with its input.

Tornado and Starlette shipped advisories for parsers that were quadratic on
hostile input. The check: parsing ten times the input must cost less than
twenty times as much (a quadratic parser costs a hundred times). It is built
not to flake on a busy machine: each size is timed as the fastest of many
single calls, interleaved, with the garbage collector paused; and the input
is kept small enough that one call of the larger size takes about a
millisecond, shorter than the scheduler's time slice, so that some calls of
each size run without being preempted.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

try:
    from coverage import Coverage
except ImportError:  # coverage is a test tool; the check works without it
    Coverage = None  # type: ignore[assignment,misc]


def _once(func: Callable[[Any], object], data: Any) -> float:
    start = time.perf_counter()
    try:
        func(data)
    except Exception:
        pass  # a parser refusing the input is fine: only its cost counts
    return time.perf_counter() - start


@contextmanager
def _coverage_paused() -> Iterator[None]:
    # Under `make test` coverage traces every Python line, slowing Python code
    # ~10x but not the C code it calls: a parser whose small input stays in C
    # and whose large input reaches a Python walk looks quadratic. The ratio
    # is only meaningful untraced.
    cov = Coverage.current() if Coverage is not None else None
    if cov is not None:
        cov.stop()
    try:
        yield
    finally:
        if cov is not None:
            cov.start()


def assert_linear(
    func: Callable[[Any], object], make: Callable[[int], Any], n: int = 300
) -> None:
    """Assert that ``func(make(10 * n))`` costs < 20 x ``func(make(n))``.

    ``n`` is an upper bound: it is halved while one call on ``make(n)``
    takes more than 100 us.
    """
    with _coverage_paused():
        while n > 10 and min(_once(func, make(n)) for _ in range(3)) > 100e-6:
            n //= 2
        small_input, large_input = make(n), make(10 * n)
        best = [float("inf"), float("inf")]
        enabled = gc.isenabled()
        gc.disable()
        try:
            deadline = time.perf_counter() + 0.25
            calls = 0
            while calls < 15 or (calls < 300 and time.perf_counter() < deadline):
                calls += 1
                best[0] = min(best[0], _once(func, small_input))
                best[1] = min(best[1], _once(func, large_input))
        finally:
            if enabled:
                gc.enable()
    small, large = best
    assert large < 20 * small, (
        f"10x the input (n={n}) cost {large / small:.1f}x the time "
        f"({small * 1e6:.0f} us -> {large * 1e6:.0f} us): not linear"
    )


def python_lines(func: Callable[[Any], object], data: Any) -> int:
    """How many lines of Python ``func(data)`` runs (C code runs none).

    For a parser that must stay in C however hostile its input: the count
    for a large input equals the count for a small one when no Python code
    runs per byte, per escape or per object, which a timing cannot show as
    reliably (linear but a microsecond per byte is still too slow).
    """
    lines = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return trace

    # The collector is paused: a collection runs whatever finalizers
    # earlier tests left, in Python, and more often for a larger input.
    enabled = gc.isenabled()
    gc.disable()
    with _coverage_paused():
        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            func(data)
        except Exception:
            pass  # a parser refusing the input runs lines too: they count
        finally:
            sys.settrace(previous)
            if enabled:
                gc.enable()
    return lines
