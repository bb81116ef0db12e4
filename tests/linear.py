"""A check that a parser's cost grows linearly with its input.

Tornado and Starlette shipped advisories for parsers that were quadratic on
hostile input. The check: parsing ten times the input must cost less than
twenty times as much (a quadratic parser costs a hundred times). The bound
is generous, and each size is timed as the fastest of many single calls,
interleaved: on a busy machine some calls are preempted, but the fastest
one of each size was not, so load cannot make the check flake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def assert_linear(
    func: Callable[[Any], object], make: Callable[[int], Any], n: int = 300
) -> None:
    """Assert that ``func(make(10 * n))`` costs < 20 x ``func(make(n))``.

    ``func`` may raise (a parser refusing the input is fine): only its cost
    is measured.
    """
    small_input, large_input = make(n), make(10 * n)
    best = {0: float("inf"), 1: float("inf")}
    deadline = time.perf_counter() + 1.0
    calls = 0
    while calls < 30 or (calls < 400 and time.perf_counter() < deadline):
        calls += 1
        for key, data in ((0, small_input), (1, large_input)):
            start = time.perf_counter()
            try:
                func(data)
            except Exception:
                pass
            best[key] = min(best[key], time.perf_counter() - start)
    small, large = best[0], best[1]
    assert large < 20 * small, (
        f"10x the input cost {large / small:.1f}x the time "
        f"({small * 1e6:.0f} us -> {large * 1e6:.0f} us): not linear"
    )
