"""What every benchmark server shares: its command line and its payloads.

Each server script serves the same four routes, so that the harness
(``bench/run.py``) can drive them all the same way:

* ``GET /``        -> ``Hello, world!`` (text/plain)
* ``GET /64k``     -> 65536 bytes
* ``POST /upload`` -> reads the whole body, answers with its length
* ``GET /big``     -> streams the file given by ``--big-file`` in 64 KiB
                      chunks, waiting for each chunk to be sent before reading
                      the next (flow control: memory must not grow with the
                      file's size)

* ``GET /ws``      -> a websocket that sends each message back (the
                      websocket echo scenario, ``bench/wsecho.py``)

trioweb and Tornado also serve the overload scenario's route:

* ``GET /sleep``   -> sleeps SLEEP_SECONDS holding one of SLEEP_SLOTS slots
                      (think: a pool of database connections), then answers
                      ``slept``. trioweb's handler sets ``max_concurrency =
                      SLEEP_SLOTS`` and sheds the excess with 503; Tornado's
                      waits for a slot on an ``asyncio.Semaphore``: it can
                      only queue.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

HELLO = b"Hello, world!"
PAYLOAD_64K = b"x" * 65536
CHUNK_SIZE = 64 * 1024
#: Large enough for the 1 MiB POST on every server (aiohttp's default is 1 MiB
#: and rejects a body of exactly that size).
MAX_BODY_SIZE = 16 * 1024 * 1024
#: Seconds an idle keep-alive connection is kept. The idle-connection scenario
#: holds 1000 connections open for a few seconds; trioweb's and hypercorn's
#: default (5 s) could close the first ones before the measurement, so every
#: server uses aiohttp's default here.
KEEP_ALIVE_TIMEOUT = 75.0
#: The overload scenario's handler: how long it works, and how many may work
#: at once. Its capacity is SLEEP_SLOTS / SLEEP_SECONDS requests a second.
SLEEP_SECONDS = 0.010
SLEEP_SLOTS = 8


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    big_file: str | None


def make_parser(description: str) -> argparse.ArgumentParser:
    """The command line every server takes; a server may add its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--big-file", default=None, help="the file that GET /big streams"
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    return Options(host=args.host, port=args.port, big_file=args.big_file)


def parse_args(description: str) -> Options:
    return options_from(make_parser(description).parse_args())
