"""CPU per request of the web layer alone, as instruction counts.

``Application.handle_exchange`` -- the request object, routing, the
handler's life, the response head handed to the engine -- called in a loop
on a stand-in for the engine's exchange whose ``send_response`` does
nothing: no sockets, no scheduler passes, so the count is the same from
run to run, to the instruction, however busy the machine. Two runs under
``valgrind --tool=callgrind`` (``N`` and ``2N`` hello GETs) subtract
start-up, so what is printed is instructions per request::

    python3 bench/web_instructions.py -n 2000

``bench/instructions.py`` counts the whole server; this one tells what a
change to the web layer did, without the engine's timing-dependent share.
Needs valgrind. Imports the trioweb of this checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HELLO = b"Hello, world!"


def _serve(requests: int) -> None:
    # Runs inside the measured process.
    import trio

    import trioweb

    class Config:
        proxy_headers = False
        root_path = ""
        forwarded_allow_ips = "127.0.0.1"

    class StandInExchange:
        """What the web layer reads and calls of trioweb.server.exchange's Exchange."""

        config = Config()

        def __init__(self) -> None:
            self.method = "GET"
            self.target = "/"
            self.http_version = "1.1"
            self.headers = [(b"host", b"bench"), (b"user-agent", b"instructions")]
            self.client = ("127.0.0.1", 50000)
            self.server = ("127.0.0.1", 8000)
            self.scheme = "http"
            self.start_time = 0.0
            self.request_id = None
            self.max_body_size = 1 << 20
            self.has_body = False
            self.disconnected = False
            self.finished = False
            self.head_sent = False
            self.note = None
            self.shutting_down = False
            self.connection_cancelled = False

        def cancel_connection_on_disconnect(self) -> bool:
            return True

        def stop_cancelling_connection(self) -> None:
            pass

        def on_disconnect(self, callback: Callable[[], object]) -> None:
            pass

        async def send_response(
            self, status: int, headers: Any, body: bytes = b"", **kwargs: Any
        ) -> None:
            self.head_sent = True
            self.finished = kwargs.get("end", True)
            answered.append((status, body))

    class HelloHandler(trioweb.RequestHandler):
        async def get(self) -> None:
            self.set_header("Content-Type", "text/plain")
            self.write(HELLO)

    app = trioweb.Application([(r"/", HelloHandler)])

    answered: list[tuple[int, bytes]] = []

    async def main() -> None:
        for _ in range(requests):
            await app.handle_exchange(StandInExchange())  # type: ignore[arg-type]
        # A stand-in the web layer no longer fits would count an error page.
        if answered != [(200, HELLO)] * requests:
            raise RuntimeError(f"the web layer answered {answered[:1]}, not hello")

    trio.run(main)


def measure(requests: int) -> int:
    """Instructions the process executed to start and answer ``requests``."""
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--serve",
            str(requests),
        ],
        env={**os.environ, "PYTHONPATH": str(HERE.parent), "PYTHONHASHSEED": "0"},
        capture_output=True,
        check=True,
    )
    match = re.search(rb"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(result.stderr.decode(errors="replace"))
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="requests (and 2N)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    small = measure(args.n)
    large = measure(2 * args.n)
    print(f"web layer: {(large - small) / args.n:,.0f} instructions per request")


if __name__ == "__main__":
    main()
