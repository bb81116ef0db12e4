"""The overload scenario: shedding (trioweb) against queueing (Tornado).

``GET /sleep`` works for SLEEP_SECONDS holding one of SLEEP_SLOTS slots
(``bench/servers/common.py``), so it can serve SLEEP_SLOTS / SLEEP_SECONDS
requests a second, whatever the server's speed. trioweb's handler sets
``max_concurrency = SLEEP_SLOTS`` and answers the excess 503 at once;
Tornado's waits on an ``asyncio.Semaphore``, because queueing is all it can
do.

wrk cannot measure this: it is a closed loop (each connection sends its next
request when the last is answered), so a server that answers slowly is sent
less, and a server that sheds fast is sent more. This module is an *open
loop* instead: requests are sent at a fixed rate whatever the server does,
and each latency is measured from the moment the request was due (not from
when a free connection let it go out), so waiting behind a backlog counts.
It is standard library only (asyncio), run from bench/run.py.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))

from common import SLEEP_SECONDS, SLEEP_SLOTS

HOST = "127.0.0.1"
PATH = "/sleep"
#: The capacity of the route, in requests a second.
CAPACITY = SLEEP_SLOTS / SLEEP_SECONDS
#: The rates driven, as multiples of CAPACITY.
UNLOADED = 0.5
OVERLOADED = 2.0
#: The most connections the client opens: beyond it, requests wait for a
#: free connection (and that wait counts in their latency).
MAX_CONNECTIONS = 256
#: How long the client waits, after the last request was sent, for the
#: answers still outstanding (a queueing server has a backlog to work off).
DRAIN_SECONDS = 60.0

#: metric key -> (what, unit)
METRICS: dict[str, tuple[str, str]] = {
    "overload_unloaded_p99_ms": (
        f"p99 latency unloaded ({UNLOADED:g}x capacity)",
        "ms",
    ),
    "overload_offered_rps": ("offered at 2x capacity", "req/s"),
    "overload_ok_rps": ("accepted (200) at 2x capacity", "req/s"),
    "overload_ok_p99_ms": ("p99 latency of the accepted, at 2x", "ms"),
    "overload_shed_percent": ("share answered 503", "%"),
    "overload_shed_p99_ms": ("p99 latency of the 503s", "ms"),
    "overload_failed": ("errors and unanswered", "requests"),
    "overload_others_percent": ("other processes' CPU use meanwhile", "% of a CPU"),
}


@dataclass
class Run:
    """What one open-loop run saw."""

    rate: float
    seconds: float
    sent: int = 0
    latencies: dict[int, list[float]] = field(default_factory=dict)
    errors: int = 0
    unanswered: int = 0
    #: From the first request's due time to the last 200's arrival.
    ok_span: float = 0.0

    def p(self, status: int, percent: float) -> float | None:
        values = sorted(self.latencies.get(status, []))
        if not values:
            return None
        return values[min(len(values) - 1, int(len(values) * percent / 100))]

    def count(self, status: int) -> int:
        return len(self.latencies.get(status, []))


_REQUEST = f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, bool]:
    """Send one request, read its response: (status, connection reusable)."""
    writer.write(_REQUEST)
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length = 0
    keep = True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and "close" in value.lower():
            keep = False
    await reader.readexactly(length)
    return status, keep


async def drive(port: int, rate: float, seconds: float) -> Run:
    """Send GET /sleep at ``rate`` a second for ``seconds``; wait for the
    answers (up to DRAIN_SECONDS more)."""
    loop = asyncio.get_running_loop()
    run = Run(rate=rate, seconds=seconds)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    start = loop.time() + 0.05
    last_ok = start

    async def one(due: float) -> None:
        nonlocal last_ok
        async with slots:
            try:
                if idle:
                    reader, writer = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                run.errors += 1
                return
            try:
                status, keep = await _exchange(reader, writer)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                run.errors += 1
                writer.close()
                return
            now = loop.time()
            run.latencies.setdefault(status, []).append(now - due)
            if status == 200:
                last_ok = max(last_ok, now)
            if keep:
                idle.append((reader, writer))
            else:
                writer.close()

    tasks: list[asyncio.Task[None]] = []
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    run.sent = total
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    run.unanswered = len(pending)
    for _, writer in idle:
        writer.close()
    run.ok_span = last_ok - start
    return run


def measure(port: int, seconds: float) -> dict[str, float]:
    """The scenario against the server on ``port``: the metrics of METRICS."""
    # Warm up (connections, caches), then the unloaded and overloaded runs.
    asyncio.run(drive(port, UNLOADED * CAPACITY, 0.5))
    unloaded = asyncio.run(drive(port, UNLOADED * CAPACITY, seconds))
    loaded = asyncio.run(drive(port, OVERLOADED * CAPACITY, seconds))
    values: dict[str, float] = {
        "overload_offered_rps": loaded.sent / loaded.seconds,
        "overload_ok_rps": loaded.count(200) / loaded.ok_span
        if loaded.ok_span
        else 0.0,
        "overload_shed_percent": 100.0 * loaded.count(503) / loaded.sent,
        "overload_failed": float(
            loaded.errors
            + loaded.unanswered
            + unloaded.errors
            + unloaded.unanswered
            + sum(
                len(v)
                for run in (unloaded, loaded)
                for k, v in run.latencies.items()
                if k not in (200, 503)
            )
        ),
        "overload_unloaded_shed": float(unloaded.count(503)),
    }
    for key, run, status in (
        ("overload_unloaded_p99_ms", unloaded, 200),
        ("overload_unloaded_p50_ms", unloaded, 200),
        ("overload_ok_p99_ms", loaded, 200),
        ("overload_ok_p50_ms", loaded, 200),
        ("overload_shed_p99_ms", loaded, 503),
        ("overload_shed_p50_ms", loaded, 503),
    ):
        latency = run.p(status, 99 if key.endswith("p99_ms") else 50)
        if latency is not None:
            values[key] = latency * 1000
    return values


def summary_line(name: str, values: dict[str, float]) -> str:
    def ms(key: str) -> str:
        value = values.get(key)
        return "—" if value is None else f"{value:.1f} ms"

    return (
        f"  {name:<11} /sleep   unloaded p99 {ms('overload_unloaded_p99_ms')}; "
        f"at 2x: {values['overload_ok_rps']:.0f} req/s accepted, "
        f"p99 {ms('overload_ok_p99_ms')}, "
        f"{values['overload_shed_percent']:.0f}% shed (p99 "
        f"{ms('overload_shed_p99_ms')}), {values['overload_failed']:.0f} failed"
    )


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("req/s", "requests"):
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "% of a CPU":
        return f"{value:.0f} %"
    return f"{value:,.1f}"


def section(
    medians: dict[str, dict[str, float | None]],
    labels: dict[str, str],
    seconds: float,
    rounds: int,
    quick: bool,
    problems: list[str],
) -> list[str]:
    """The report's "Overload" section (markdown lines), from the medians
    per server (``medians[server][metric]``)."""
    names = list(medians)
    mode = "quick mode, indicative only" if quick else "medians over rounds"
    lines = [
        "## Overload: shedding instead of queueing",
        "",
        f"`GET /sleep` holds one of {SLEEP_SLOTS} slots for "
        f"{SLEEP_SECONDS * 1000:g} ms (a pool of {SLEEP_SLOTS} database "
        f"connections, say), so it can serve {CAPACITY:,.0f} requests a "
        f"second on any server. trioweb's handler sets `max_concurrency = "
        f"{SLEEP_SLOTS}`; Tornado's waits for a slot on an "
        "`asyncio.Semaphore`, since queueing is all it can do. An open-loop "
        f"client (`bench/shedding.py`) sends requests at a fixed rate: "
        f"{UNLOADED:g}x the capacity ({UNLOADED * CAPACITY:,.0f} req/s) for "
        f"the unloaded latency, then {OVERLOADED:g}x "
        f"({OVERLOADED * CAPACITY:,.0f} req/s), {seconds:g} s each, on up to "
        f"{MAX_CONNECTIONS} keep-alive connections. Latency runs from when a "
        "request was due, so waiting for a connection counts. "
        f"{rounds} round(s), {mode}.",
        "",
        "| | unit | " + " | ".join(labels[n] for n in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for metric, (what, unit) in METRICS.items():
        cells = [_cell(medians[n].get(metric), unit) for n in names]
        lines.append(f"| {what} | {unit} | " + " | ".join(cells) + " |")
    if problems:
        lines += ["", "**Problems seen during the run:**", ""]
        lines += [f"- {p}" for p in problems]
    lines += [
        "",
        "What to look for: shedding should keep the accepted requests' p99 "
        "near the unloaded p99 and answer the 503s in about a millisecond, so "
        "that a client can retry elsewhere at once. Queueing serves no more "
        "requests a second, but every one of them waits behind a backlog "
        "that grows for as long as the overload lasts (here, the run's "
        f"{seconds:g} s), so its p99 grows with the run. A server short of "
        "CPU (see the last row) falls behind the open loop whatever it "
        "does: then every latency grows, the 503s' too.",
    ]
    return lines
