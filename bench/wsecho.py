"""The websocket echo scenario: messages a second and p99 round trip.

Every server serves ``/ws``, a websocket that sends each message back
(``bench/servers/*.py``). This client opens CONNECTIONS websockets and, on
each, sends a MESSAGE_SIZE-byte text message and waits for its echo, again
and again for the run's duration (a closed loop, as wrk's). It reports the
round trips completed a second, over all connections, and the p50/p99 of
one round trip.

The client is asyncio with the one masked frame it sends built once by
wsproto; the echo it expects is always the same unmasked frame, so reading
it is one ``readexactly``: the client costs little next to the server.
Run from bench/run.py, or alone: ``python bench/wsecho.py PORT [SECONDS]``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time

HOST = "127.0.0.1"
PATH = "/ws"
CONNECTIONS = 50
MESSAGE_SIZE = 32

#: metric key -> (what, unit, higher is better), as bench/run.py's METRICS.
METRICS: dict[str, tuple[str, str, bool]] = {
    "ws_echo_mps": (
        f"websocket echo, {CONNECTIONS} connections, {MESSAGE_SIZE} B",
        "msg/s",
        True,
    ),
    "ws_echo_p99_ms": ("p99 round trip, websocket echo", "ms", False),
}


def _frames() -> tuple[bytes, bytes]:
    """The masked frame a client sends, and the server's echo of it."""
    # Imported here: bench/run.py imports this module before it re-runs
    # itself inside bench/.venv, where wsproto is (run.py's own start-up is
    # standard library only).
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Message

    payload = "x" * MESSAGE_SIZE
    sent = Connection(ConnectionType.CLIENT).send(Message(data=payload))
    echo = Connection(ConnectionType.SERVER).send(Message(data=payload))
    return sent, echo


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"websocket handshake refused: {head[:60]!r}")
    return reader, writer


async def _run(port: int, seconds: float) -> tuple[int, list[float]]:
    sent, echo = _frames()
    streams = await asyncio.gather(*(_connect(port) for _ in range(CONNECTIONS)))
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clock = time.perf_counter
        while (start := clock()) < end:
            writer.write(sent)
            got = await reader.readexactly(len(echo))
            latencies.append(clock() - start)
            if got != echo:
                raise RuntimeError(f"unexpected echo {got[:40]!r}")

    try:
        await asyncio.gather(*(loop(r, w) for r, w in streams))
    finally:
        for _, writer in streams:
            writer.close()
    return len(latencies), latencies


def measure(port: int, seconds: float) -> dict[str, float]:
    """Run the scenario against the server on ``port``; its metrics."""
    count, latencies = asyncio.run(_run(port, seconds))
    latencies.sort()

    def p(percent: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * percent / 100))]

    return {
        "ws_echo_mps": count / seconds,
        "ws_echo_p50_ms": p(50) * 1000,
        "ws_echo_p99_ms": p(99) * 1000,
    }


def summary_line(name: str, values: dict[str, float]) -> str:
    return (
        f"  {name:<11} /ws      {values['ws_echo_mps']:9.0f} msg/s"
        f"   p50 {values['ws_echo_p50_ms']:7.2f} ms"
        f"   p99 {values['ws_echo_p99_ms']:7.2f} ms"
    )


if __name__ == "__main__":
    values = measure(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 5)
    print(summary_line("server", values))
