"""CPU per request as instruction counts: steady on a shared, noisy machine.

Runs the trioweb benchmark server (``bench/servers/trioweb_server.py``,
through ``trioweb.run``) under ``valgrind --tool=callgrind`` and drives it
from this process with a plain-socket client: ``--connections`` keep-alive
connections (1 by default, new ones every 500 requests), each sending
hello GETs one after another, round robin, until ``N`` requests have been
answered. Callgrind counts the instructions the server executed; two runs
(``N`` and ``2N`` requests) subtract start-up and shutdown, so what is
printed is instructions per request::

    python3 bench/instructions.py --http httptools -n 2000

Wall-clock time does not enter the figure, so it is comparable between two
commits measured on a busy machine (not between machines). Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Requests per connection: below the server's max_requests_per_connection.
PER_CONNECTION = 500
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: instructions\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_response(sock: socket.socket, buffered: bytearray) -> None:
    # Enough of HTTP/1.1 for a Content-Length response.
    while True:
        end = buffered.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffered[:end]).lower()
            match = re.search(rb"\r\ncontent-length: *(\d+)", head)
            assert match, head
            total = end + 4 + int(match.group(1))
            if len(buffered) >= total:
                del buffered[:total]
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffered += chunk


def _drive(port: int, requests: int, connections: int) -> None:
    def connect() -> list[socket.socket]:
        return [
            socket.create_connection(("127.0.0.1", port), timeout=600)
            for _ in range(connections)
        ]

    socks = connect()
    buffers = [bytearray() for _ in socks]
    done = 0
    while done < requests:
        if done and done % (PER_CONNECTION * connections) == 0:
            # Fresh connections before the server's limit closes them.
            for sock in socks:
                sock.close()
            socks = connect()
        batch = min(connections, requests - done)
        for sock in socks[:batch]:
            sock.sendall(REQUEST)
        for sock, buffered in zip(socks[:batch], buffers, strict=False):
            _read_response(sock, buffered)
        done += batch
    for sock in socks:
        sock.close()


def measure(requests: int, http: str, connections: int, extra: list[str]) -> int:
    """Instructions the server executed to start, answer, and stop."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *extra,
                sys.executable,
                str(HERE / "servers" / "trioweb_server.py"),
                "--port",
                str(port),
                "--http",
                http,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # This checkout's trioweb, whatever the interpreter has installed.
            # A fixed hash seed: dict and set layouts, and so the counts,
            # are the same from run to run.
            env={**os.environ, "PYTHONPATH": str(HERE.parent), "PYTHONHASHSEED": "0"},
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            _drive(port, requests, connections)
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=300)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        match = re.search(rb"Collected : (\d+)", err)
        if match is None:
            raise RuntimeError(err.decode(errors="replace"))
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="requests (and 2N)")
    parser.add_argument("--http", default="httptools", choices=("h11", "httptools"))
    # One connection: every request is one whole wake-up of the server, so
    # that how requests batch up (a matter of timing) cannot move the count.
    parser.add_argument("--connections", type=int, default=1)
    args, extra = parser.parse_known_args()
    small = measure(args.n, args.http, args.connections, extra)
    large = measure(2 * args.n, args.http, args.connections, extra)
    per_request = (large - small) / args.n
    print(f"{args.http}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
