#!/usr/bin/env python3
"""Benchmark trioweb against Tornado, aiohttp and hypercorn, side by side.

Run it with ``make bench`` (or ``python3 bench/run.py``). On first use it
creates its own environment, ``bench/.venv``, installs trioweb (editable)
and the peers from ``bench/requirements.txt`` into it, and re-runs itself
there; the project's dev venv is never touched. ``wrk`` must be on PATH
(``make bench`` installs it from the OS packages).

How it measures (see ``docs/performance.md`` for the results):

* trioweb is measured twice, as two servers: "trioweb" (``--http
  httptools``) and "trioweb-h11" (``--http h11``), the same script.
* Each server (``bench/servers/*.py``) is started as a fresh process pinned
  to one CPU (``taskset -c 0``); the load generator (``wrk``, or this
  script's own small clients) is pinned to the other (``taskset -c 1``).
* Every round runs every server, in an order that rotates from round to
  round, so that drift on the machine falls on all of them alike.
* Per round and server, three fresh processes: one for the wrk scenarios
  (hello GET with latency, 64 KiB response, 1 MiB POST), one for the
  1000 idle keep-alive connections, one for the 100 MiB download, one for
  the websocket echo (``bench/wsecho.py``).
* The report takes the median over rounds, and ratios against Tornado.
* The overload scenario (``bench/shedding.py``): trioweb and Tornado serve
  a route with a fixed capacity, driven by an open-loop client at twice it;
  trioweb sheds the excess (``max_concurrency``), Tornado can only queue.

Options: ``--quick`` (1 round x 2 s, to check the harness works),
``--rounds N`` / ``--duration S`` (or ``BENCH_ROUNDS`` / ``BENCH_DURATION``),
``--only NAME`` to run a subset of servers, ``--no-docs`` to leave
``docs/performance.md`` alone, ``--scenario overload`` to run only the
overload scenario (it then rewrites only that section of the page).

This file uses only the standard library until it runs inside bench/.venv
(matplotlib is imported only to draw the chart).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import shedding
import wsecho

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
SERVERS_DIR = BENCH_DIR / "servers"
RESULTS_DIR = BENCH_DIR / "results"  # raw results and server logs (gitignored)
REPORT_LUA = BENCH_DIR / "report.lua"
POST_LUA = BENCH_DIR / "post.lua"
DOC = REPO / "docs" / "performance.md"
CHART = REPO / "docs" / "performance.png"

HOST = "127.0.0.1"
HELLO = b"Hello, world!"
KiB = 1024
MiB = 1024 * KiB

#: Every subprocess wait is bounded; these are the bounds.
INSTALL_TIMEOUT = 1800.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WRK_SLACK = 60.0  # seconds allowed beyond a wrk run's duration
CLIENT_TIMEOUT = 30.0  # socket timeout of this script's own HTTP clients
#: A wrk run during which other processes used more than this share of a
#: CPU (percent) is repeated, up to WRK_RETRIES times, after waiting (up to
#: QUIET_MAX_WAIT s) for them to use less than QUIET_PERCENT.
CONTENDED_PERCENT = 10.0
QUIET_PERCENT = 3.0
QUIET_MAX_WAIT = 60.0
WRK_RETRIES = 2
#: How fast the 100 MiB download reads (bytes/s): slower than the servers send.
DOWNLOAD_RATE = 100 * 1024 * 1024


# ---------------------------------------------------------------- servers


@dataclass(frozen=True)
class Server:
    name: str  # the key used everywhere (results, logs, --only)
    label: str  # how the report's tables name it
    short: str  # how the chart names it (may hold a line break)
    color: str  # its colour in the chart
    script_prefix: str  # bench/servers/<script_prefix>_server.py
    args: tuple[str, ...] = ()  # extra arguments for the script

    @property
    def script(self) -> Path:
        return SERVERS_DIR / f"{self.script_prefix}_server.py"


#: trioweb runs twice, once per request parser backend: the same script,
#: each a fresh process per round like the others.
SERVERS = [
    Server(
        "trioweb",
        "trioweb (httptools)",
        "trioweb\n(httptools)",
        "#d62728",
        "trioweb",
        ("--http", "httptools"),
    ),
    Server(
        "trioweb-h11",
        "trioweb (h11)",
        "trioweb\n(h11)",
        "#ff9896",
        "trioweb",
        ("--http", "h11"),
    ),
    Server("tornado", "tornado", "tornado", "#1f77b4", "tornado"),
    Server("aiohttp", "aiohttp", "aiohttp", "#2ca02c", "aiohttp"),
    Server(
        "hypercorn",
        "hypercorn (trio, raw ASGI)",
        "hypercorn\n(trio, ASGI)",
        "#9467bd",
        "hypercorn",
    ),
]
BASELINE = "tornado"
#: The servers that serve the overload scenario's route (bench/shedding.py).
OVERLOAD_SERVERS = ("trioweb", "trioweb-h11", "tornado")
#: Around the overload section of docs/performance.md, so that
#: ``--scenario overload`` can rewrite it alone.
OVERLOAD_BEGIN = "<!-- overload scenario: begin -->"
OVERLOAD_END = "<!-- overload scenario: end -->"
#: The trioweb servers, and the parser backend each measures.
SUBJECTS = {"trioweb": "httptools", "trioweb-h11": "h11"}


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    rounds: int
    duration: int  # seconds per measured wrk run
    warmup: int  # seconds of wrk on GET / before the measured runs
    quick: bool
    servers: list[Server]
    scenario: str  # "all", or "overload" alone
    server_cpu: int
    client_cpu: int
    connections: int = 50
    idle_connections: int = 1000
    big_file_size: int = 100 * MiB

    @property
    def pinned_apart(self) -> bool:
        return self.server_cpu != self.client_cpu


def parse_settings(argv: list[str]) -> tuple[Settings, bool]:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark trioweb against tornado, aiohttp and hypercorn.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round x 2 s: check the harness"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds (default 3, or $BENCH_ROUNDS)",
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=None,
        help="seconds per wrk run (default 5, or $BENCH_DURATION)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[s.name for s in SERVERS],
        help="run only this server (repeatable; trioweb is the httptools "
        "backend, trioweb-h11 the h11 one); tornado is always kept",
    )
    parser.add_argument(
        "--scenario",
        choices=("all", "overload"),
        default="all",
        help="overload: only the overload scenario (trioweb and tornado), "
        "rewriting only its section of docs/performance.md",
    )
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="do not write docs/performance.md and docs/performance.png",
    )
    args = parser.parse_args(argv)

    rounds = args.rounds or _env_int("BENCH_ROUNDS") or (1 if args.quick else 3)
    duration = args.duration or _env_int("BENCH_DURATION") or (2 if args.quick else 5)
    if rounds < 1 or duration < 1:
        parser.error("rounds and duration must be at least 1")
    wanted = set(args.only or [s.name for s in SERVERS]) | {BASELINE}
    if args.scenario == "overload":
        wanted &= set(OVERLOAD_SERVERS)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = cpus[0]
    client_cpu = cpus[1] if len(cpus) > 1 else cpus[0]
    settings = Settings(
        rounds=rounds,
        duration=duration,
        warmup=1,
        quick=args.quick,
        servers=[s for s in SERVERS if s.name in wanted],
        scenario=args.scenario,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
    )
    return settings, not args.no_docs


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        sys.exit(f"bench: {name} must be a whole number, got {value!r}")


# ------------------------------------------------------- the environment


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Make bench/.venv hold what the benchmark needs; re-run inside it."""
    stamp = VENV / ".bench-installed"
    digest = _requirements_digest()
    if not VENV_PYTHON.exists():
        print(f"bench: creating {VENV.relative_to(REPO)}", flush=True)
        _check_call([sys.executable, "-m", "venv", str(VENV)], timeout=300)
        _check_call(
            [str(VENV_PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"],
            timeout=INSTALL_TIMEOUT,
        )
    if not stamp.exists() or stamp.read_text().strip() != digest:
        print("bench: installing trioweb and the peers into bench/.venv", flush=True)
        _check_call(
            [
                str(VENV_PYTHON),
                "-m",
                "pip",
                "install",
                "-q",
                "-e",
                str(REPO),
                "-r",
                str(REQUIREMENTS),
            ],
            timeout=INSTALL_TIMEOUT,
        )
        stamp.write_text(digest + "\n")
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])


def _check_call(cmd: list[str], *, timeout: float) -> None:
    """Run an install step; show its output only if it fails."""
    what = " ".join(cmd[:4]) + " ..."
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        sys.exit(f"bench: {what} took over {timeout:.0f} s")
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"bench: {what} failed (exit {done.returncode})")


def check_tools(settings: Settings) -> None:
    # The overload scenario brings its own client (bench/shedding.py).
    tools = ("taskset",) if settings.scenario == "overload" else ("wrk", "taskset")
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(
                f"bench: {tool} is not on PATH. `make bench` installs wrk "
                "(apt-get install wrk); taskset is in util-linux."
            )


# ---------------------------------------------------------------- helpers


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS in /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name, which may hold spaces: utime and
        # stime are the 14th and 15th fields of the line.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


_PF_KTHREAD = 0x00200000


def _others_cpu() -> dict[int, float]:
    """CPU seconds used so far by every process that is not the benchmark.

    The benchmark is this process and its children (the servers and wrk,
    which taskset execs). Kernel threads are left out too: they do the
    benchmark's own network work.
    """
    me = os.getpid()
    used: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        pid, ppid, flags = int(entry.name), int(fields[1]), int(fields[6])
        if pid == me or ppid == me or flags & _PF_KTHREAD:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return used


class OtherLoad:
    """How much CPU other processes use while a measurement runs.

    The machine may be shared (other people's test runs, CI): a run during
    which others used a noticeable share of a CPU is not trusted.
    """

    def __enter__(self) -> OtherLoad:
        self.before = _others_cpu()
        self.start = time.monotonic()
        self.percent = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        after = _others_cpu()
        elapsed = time.monotonic() - self.start
        # A process that started meanwhile counts all of its time.
        used = sum(t - self.before.get(pid, 0.0) for pid, t in after.items())
        self.percent = 100.0 * max(used, 0.0) / elapsed if elapsed else 0.0


def others_percent(seconds: float) -> float:
    """Other processes' CPU use over the next ``seconds``, in % of one CPU."""
    with OtherLoad() as load:
        time.sleep(seconds)
    return load.percent


def wait_until_quiet(max_wait: float = QUIET_MAX_WAIT) -> float:
    """Wait (up to ``max_wait`` s) until other processes leave the CPUs alone.

    Returns their CPU use in the last sample, in % of one CPU.
    """
    deadline = time.monotonic() + max_wait
    percent = others_percent(0.5)
    if percent <= QUIET_PERCENT:
        return percent
    log_line(f"  (other processes use {percent:.0f}% of a CPU: waiting)")
    while percent > QUIET_PERCENT and time.monotonic() < deadline:
        percent = others_percent(1.0)
    return percent


def steady_rss_kib(pid: int, samples: int = 3, interval: float = 0.1) -> int:
    values = []
    for _ in range(samples):
        values.append(rss_kib(pid))
        time.sleep(interval)
    return int(statistics.median(values))


def get(port: int, path: str, *, headers: dict[str, str] | None = None) -> bytes:
    """One GET on a new connection; the body, or an error for a non-200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body
    finally:
        conn.close()


class ServerFailed(Exception):
    """A server did not start, or did not answer as it should."""


class RunningServer:
    """A benchmark server as a fresh process pinned to the server CPU.

    ``with RunningServer(...) as server:`` returns once ``GET /`` answers;
    leaving the block sends SIGTERM, then SIGKILL if it has not exited
    within STOP_TIMEOUT.
    """

    def __init__(
        self, server: Server, settings: Settings, big_file: Path, log: TextIO
    ) -> None:
        self.server = server
        self.settings = settings
        self.big_file = big_file
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> RunningServer:
        cmd = pinned(
            self.settings.server_cpu,
            [
                sys.executable,
                str(self.server.script),
                "--port",
                str(self.port),
                "--big-file",
                str(self.big_file),
                *self.server.args,
            ],
        )
        self.log.write(f"\n=== {datetime.datetime.now():%H:%M:%S} {' '.join(cmd)}\n")
        self.log.flush()
        # taskset execs the command: the pid is the server's own.
        self.proc = subprocess.Popen(
            cmd, cwd=SERVERS_DIR, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(
                    f"{self.server.name} exited with {self.proc.returncode} "
                    "before listening (see its log in bench/results/logs/)"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    pass
                body = get(self.port, "/")
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                last_error = exc
                time.sleep(0.05)
                continue
            if body != HELLO:
                raise ServerFailed(f"{self.server.name}: GET / answered {body!r}")
            return
        raise ServerFailed(
            f"{self.server.name} did not answer within {START_TIMEOUT:.0f} s "
            f"({last_error})"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.log.write(f"bench: no exit {STOP_TIMEOUT:.0f} s after SIGTERM\n")
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


# ------------------------------------------------------------- scenarios


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int  # socket errors (connect, read, write, timeout)
    non_2xx: int
    others_percent: float = 0.0  # other processes' CPU use meanwhile
    #: The server's CPU time (user + system) during the run, if measured.
    server_cpu_s: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU per request: the steadiest figure on a shared machine."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6


def run_wrk(
    settings: Settings,
    port: int,
    path: str,
    script: Path,
    duration: int,
    *,
    server_pid: int | None = None,
) -> WrkResult:
    """One wrk run; repeated if other processes took CPU time meanwhile.
    With ``server_pid``, the server's CPU time during the run is kept."""
    for attempt in range(WRK_RETRIES + 1):
        wait_until_quiet()
        with OtherLoad() as load:
            before = None if server_pid is None else cpu_seconds(server_pid)
            result = _run_wrk_once(settings, port, path, script, duration)
            if server_pid is not None and before is not None:
                result.server_cpu_s = cpu_seconds(server_pid) - before
        result.others_percent = load.percent
        if load.percent <= CONTENDED_PERCENT:
            break
        log_line(
            f"  (other processes used {load.percent:.0f}% of a CPU during "
            f"the run of {path}" + ("; repeating it)" if attempt < WRK_RETRIES else ")")
        )
    return result


def _run_wrk_once(
    settings: Settings, port: int, path: str, script: Path, duration: int
) -> WrkResult:
    cmd = pinned(
        settings.client_cpu,
        [
            "wrk",
            "-t1",
            f"-c{settings.connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"http://{HOST}:{port}{path}",
        ],
    )
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + WRK_SLACK
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            break
    else:
        raise ServerFailed(
            f"wrk {path} printed no result (exit {done.returncode}): "
            f"{(done.stdout + done.stderr)[-500:]}"
        )
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds,
        p50_ms=raw["latency_p50_us"] / 1000,
        p99_ms=raw["latency_p99_us"] / 1000,
        p999_ms=raw["latency_p999_us"] / 1000,
        errors=sum(
            raw[f"errors_{kind}"] for kind in ("connect", "read", "write", "timeout")
        ),
        non_2xx=raw["errors_status"],
    )


def idle_connections(server: RunningServer, count: int) -> dict[str, float]:
    """Server RSS per idle keep-alive connection, in KiB.

    Opens ``count`` connections one after the other; each makes one GET /
    and reads the whole response, then stays open and idle. RSS is taken
    before the first and after the last (each the median of 3 samples).
    """
    for _ in range(20):  # warm up: first-request allocations are not per-conn
        get(server.port, "/")
    time.sleep(0.5)
    before = steady_rss_kib(server.pid)
    conns: list[http.client.HTTPConnection] = []
    try:
        for _ in range(count):
            conn = http.client.HTTPConnection(HOST, server.port, timeout=CLIENT_TIMEOUT)
            conns.append(conn)
            conn.request("GET", "/")
            response = conn.getresponse()
            if response.read() != HELLO or response.will_close:
                raise ServerFailed("idle: GET / did not keep the connection alive")
        time.sleep(1.0)
        after = steady_rss_kib(server.pid)
        still_open = sum(_is_open(conn) for conn in conns)
    finally:
        for conn in conns:
            conn.close()
    if still_open < count:
        raise ServerFailed(
            f"idle: only {still_open} of {count} connections stayed open"
        )
    return {
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": (after - before) / count,
    }


def _is_open(conn: http.client.HTTPConnection) -> bool:
    sock = conn.sock
    if sock is None:
        return False
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""  # data: open (and odd)
    except BlockingIOError:
        return True  # nothing to read, no EOF: open and idle
    except OSError:
        return False


def big_download(server: RunningServer, size: int) -> dict[str, float]:
    """Server RSS growth while one client downloads the big file.

    VmRSS is sampled every 5 ms from another thread while this one reads
    the response at up to DOWNLOAD_RATE, which is slower than any server
    sends: a server without flow control would buffer the rest of the file.
    Growth is the peak minus the RSS just before the request.
    """
    for _ in range(5):
        get(server.port, "/")
    time.sleep(0.3)
    before = steady_rss_kib(server.pid)
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peak = max(peak, rss_kib(server.pid))
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    received = 0
    buffer = memoryview(bytearray(256 * KiB))
    start = time.perf_counter()
    sampler.start()
    conn = http.client.HTTPConnection(HOST, server.port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", "/big")
        response = conn.getresponse()
        if response.status != 200:
            raise ServerFailed(f"GET /big: {response.status}")
        while n := response.readinto(buffer):
            received += n
            ahead = received / DOWNLOAD_RATE - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    finally:
        elapsed = time.perf_counter() - start
        stop.set()
        sampler.join(timeout=5)
        conn.close()
    peak = max(peak, rss_kib(server.pid))
    if received != size:
        raise ServerFailed(f"GET /big: got {received} bytes, expected {size}")
    return {
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "growth_mib": (peak - before) / KiB,
        "mib_per_s": size / MiB / elapsed,
    }


# ------------------------------------------------------------- the rounds

#: metric key -> (scenario, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "hello_rps": ("hello GET, 50 connections", "req/s", True),
    "k64_rps": ("64 KiB response, 50 connections", "req/s", True),
    "post_rps": ("1 MiB POST, 50 connections", "req/s", True),
    "hello_p99_ms": ("p99 latency, hello GET at 50 connections", "ms", False),
    "hello_p999_ms": ("p99.9 latency, hello GET at 50 connections", "ms", False),
    "hello_cpu_us": ("server CPU per hello GET", "µs / request", False),
    "idle_kib_per_conn": ("1000 idle keep-alive connections", "KiB RSS / conn", False),
    "big_growth_mib": ("100 MiB file download", "MiB RSS growth", False),
    **wsecho.METRICS,
}
# Also kept in the raw results (bench/results/latest.json), not in the
# table: hello_p50_ms, k64_mib_per_s, big_mib_per_s, ws_echo_p50_ms.


@dataclass
class Results:
    settings: dict[str, Any]
    started: str
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: wrk runs during which other processes used CPU (after the retries).
    contended: list[str] = field(default_factory=list)

    def add(self, server: str, metric: str, value: float) -> None:
        self.values.setdefault(server, {}).setdefault(metric, []).append(value)

    def median(self, server: str, metric: str) -> float | None:
        values = self.values.get(server, {}).get(metric)
        return statistics.median(values) if values else None


def log_line(text: str) -> None:
    print(text, flush=True)


def measure(settings: Settings, big_file: Path) -> Results:
    results = Results(
        settings={k: v for k, v in asdict(settings).items() if k != "servers"}
        | {"servers": [s.name for s in settings.servers]},
        started=datetime.datetime.now().isoformat(timespec="seconds"),
    )
    logs_dir = RESULTS_DIR / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    logs = {s.name: open(logs_dir / f"{s.name}.log", "w") for s in settings.servers}  # noqa: SIM115
    try:
        for round_index in range(settings.rounds):
            shift = round_index % len(settings.servers)
            order = settings.servers[shift:] + settings.servers[:shift]
            log_line(
                f"--- round {round_index + 1}/{settings.rounds}: "
                + ", ".join(s.name for s in order)
            )
            for server in order:
                _measure_one(settings, server, big_file, logs[server.name], results)
    finally:
        for f in logs.values():
            f.close()
    return results


def _measure_one(
    settings: Settings, server: Server, big_file: Path, log: TextIO, results: Results
) -> None:
    name = server.name

    def attempt(what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except (ServerFailed, OSError, RuntimeError, http.client.HTTPException) as exc:
            message = f"{name}, {what}: {exc}"
            results.problems.append(message)
            log_line(f"  ! {message}")
        except subprocess.TimeoutExpired as exc:
            message = f"{name}, {what}: {exc.cmd[3:5]} timed out"
            results.problems.append(message)
            log_line(f"  ! {message}")

    def throughput() -> None:
        with RunningServer(server, settings, big_file, log) as running:
            run_wrk(settings, running.port, "/", REPORT_LUA, settings.warmup)
            for metric, path, script in (
                ("hello", "/", REPORT_LUA),
                ("k64", "/64k", REPORT_LUA),
                ("post", "/upload", POST_LUA),
            ):
                wrk = run_wrk(
                    settings,
                    running.port,
                    path,
                    script,
                    settings.duration,
                    server_pid=running.pid,
                )
                if wrk.others_percent > CONTENDED_PERCENT:
                    results.contended.append(f"{name} {path}")
                    results.problems.append(
                        f"{name}, {path}: other processes used "
                        f"{wrk.others_percent:.0f}% of a CPU during the run"
                    )
                if wrk.errors or wrk.non_2xx:
                    results.problems.append(
                        f"{name}, {path}: {wrk.errors} socket errors, "
                        f"{wrk.non_2xx} non-2xx responses in {wrk.requests} requests"
                    )
                results.add(name, f"{metric}_rps", wrk.rps)
                if metric == "hello":
                    results.add(name, "hello_p99_ms", wrk.p99_ms)
                    results.add(name, "hello_p999_ms", wrk.p999_ms)
                    results.add(name, "hello_p50_ms", wrk.p50_ms)
                    cpu = wrk.cpu_us_per_request
                    if cpu is not None:
                        results.add(name, "hello_cpu_us", cpu)
                if metric == "k64":
                    results.add(name, "k64_mib_per_s", wrk.rps * 64 / 1024)
                log_line(
                    f"  {name:<11} {path:<8} {wrk.rps:>9.0f} req/s"
                    f"   p50 {wrk.p50_ms:7.2f} ms   p99 {wrk.p99_ms:7.2f} ms"
                    + (
                        f"   ERRORS {wrk.errors}, non-2xx {wrk.non_2xx}"
                        if wrk.errors or wrk.non_2xx
                        else ""
                    )
                )

    def idle() -> None:
        with RunningServer(server, settings, big_file, log) as running:
            idle = idle_connections(running, settings.idle_connections)
        results.add(name, "idle_kib_per_conn", idle["kib_per_conn"])
        log_line(
            f"  {name:<11} idle     {idle['kib_per_conn']:9.2f} KiB/conn"
            f"   (RSS {idle['rss_before_kib'] / KiB:.1f} -> "
            f"{idle['rss_after_kib'] / KiB:.1f} MiB)"
        )

    def big() -> None:
        with RunningServer(server, settings, big_file, log) as running:
            big = big_download(running, settings.big_file_size)
        results.add(name, "big_growth_mib", big["growth_mib"])
        results.add(name, "big_mib_per_s", big["mib_per_s"])
        log_line(
            f"  {name:<11} /big     {big['growth_mib']:9.2f} MiB RSS growth"
            f"   (RSS {big['rss_before_kib'] / KiB:.1f} -> "
            f"{big['rss_peak_kib'] / KiB:.1f} MiB peak, "
            f"{big['mib_per_s']:.0f} MiB/s)"
        )

    def websocket_echo() -> None:
        with RunningServer(server, settings, big_file, log) as running:
            wait_until_quiet()
            with OtherLoad() as load:
                values = wsecho.measure(running.port, settings.duration)
        for metric, value in values.items():
            results.add(name, metric, value)
        log_line(wsecho.summary_line(name, values))
        if load.percent > CONTENDED_PERCENT:
            results.contended.append(f"{name} /ws")
            results.problems.append(
                f"{name}, /ws: other processes used {load.percent:.0f}% of a "
                "CPU during the run"
            )

    def overload() -> None:
        with RunningServer(server, settings, big_file, log) as running:
            wait_until_quiet()
            with OtherLoad() as load:
                values = shedding.measure(running.port, settings.duration)
        values["overload_others_percent"] = load.percent
        for metric, value in values.items():
            results.add(name, metric, value)
        log_line(shedding.summary_line(name, values))
        if load.percent > CONTENDED_PERCENT:
            # An open loop cannot be repeated cheaply: say so instead.
            results.problems.append(
                f"{name}, overload: other processes used {load.percent:.0f}% "
                "of a CPU during the run: its latencies are not to be trusted"
            )

    if settings.scenario == "all":
        attempt("wrk scenarios", throughput)
        attempt("idle connections", idle)
        attempt("100 MiB download", big)
        attempt("websocket echo", websocket_echo)
    if name in OVERLOAD_SERVERS:
        attempt("overload", overload)


# ---------------------------------------------------------- the targets


@dataclass(frozen=True)
class TargetRow:
    target: str
    backend: str  # the trioweb parser backend measured ("" when none)
    required: str
    measured: str
    status: str  # "met", "not met", "not yet", "no data"


#: Issue 4's throughput targets: metric -> (what, [(backend, peer, ratio)]).
#: Each trioweb backend is held to its own: h11 is the portable default,
#: httptools (llhttp) the fast one.
THROUGHPUT_TARGETS: dict[str, tuple[str, list[tuple[str, str, float]]]] = {
    "hello_rps": (
        "hello GET req/s",
        [
            ("h11", BASELINE, 1.5),
            ("httptools", BASELINE, 3.0),
            ("httptools", "aiohttp", 1.0),
        ],
    ),
    "k64_rps": (
        "64 KiB response req/s",
        [("h11", BASELINE, 1.5), ("httptools", BASELINE, 1.5)],
    ),
    "post_rps": (
        "1 MiB POST req/s",
        [("h11", BASELINE, 1.5), ("httptools", BASELINE, 1.5)],
    ),
}


def _subject(backend: str) -> str:
    """The benchmark server that runs trioweb with this parser backend."""
    return next(name for name, b in SUBJECTS.items() if b == backend)


def _ratio(results: Results, server: str, peer: str, metric: str) -> float | None:
    ours, theirs = results.median(server, metric), results.median(peer, metric)
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def evaluate_targets(results: Results) -> list[TargetRow]:
    rows: list[TargetRow] = []
    for metric, (what, wanted) in THROUGHPUT_TARGETS.items():
        for backend, peer, required in wanted:
            ratio = _ratio(results, _subject(backend), peer, metric)
            rows.append(
                TargetRow(
                    what,
                    backend,
                    f"≥ {required:.1f}x {peer}",
                    "no data" if ratio is None else f"{ratio:.2f}x {peer}",
                    _status(ratio is not None and ratio >= required, ratio is None),
                )
            )
    for backend in ("h11", "httptools"):
        subject = _subject(backend)
        ours = results.median(subject, "hello_p99_ms")
        theirs = results.median(BASELINE, "hello_p99_ms")
        rows.append(
            TargetRow(
                "p99 latency at 50 connections",
                backend,
                "≤ tornado's",
                "no data"
                if ours is None or theirs is None
                else f"{ours:.2f} ms vs {theirs:.2f} ms",
                _status(
                    ours is not None and theirs is not None and ours <= theirs,
                    ours is None or theirs is None,
                ),
            )
        )
    for backend in ("h11", "httptools"):
        idle = results.median(_subject(backend), "idle_kib_per_conn")
        rows.append(
            TargetRow(
                "idle keep-alive connection",
                backend,
                "≤ 7 KiB RSS each",
                "no data" if idle is None else f"{idle:.2f} KiB",
                _status(idle is not None and idle <= 7, idle is None),
            )
        )
    for backend in ("h11", "httptools"):
        big = results.median(_subject(backend), "big_growth_mib")
        rows.append(
            TargetRow(
                "static 100 MiB file",
                backend,
                "≤ 8 MiB RSS growth",
                "no data" if big is None else f"{big:.2f} MiB",
                _status(big is not None and big <= 8, big is None),
            )
        )
    return rows


def _status(met: bool, missing: bool) -> str:
    if missing:
        return "no data"
    return "met" if met else "not met"


# ------------------------------------------------------------- the report

#: Written by hand from profiling the server with py-spy (not measured by
#: each run): update it when the picture changes.
WHAT_STANDS_IN_THE_WAY = [
    "## What stands in the way",
    "",
    "From instruction counts (`bench/instructions.py`, callgrind) and "
    "profiles of the server after Engine II; these numbers come from that "
    'work, not from each `make bench` run (the section "Engine II" below '
    "has the tables).",
    "",
    "- **CPU per request.** A hello GET costs the server about 279,000 "
    "instructions with httptools and 265,000 with h11 (from 619,000 and "
    "790,000 before Engine II); a 1 MiB POST 2.9 million with httptools "
    "and 1.7 million with h11. The plain-TCP fast path took the largest "
    "share: no reader task, no trio stream layers, no cancel scope around a "
    "send or a body read that does not wait. The h11 backend reads heads "
    "by h11's rules without an `h11.Connection` and frames bodies itself, "
    "so it now costs less than httptools, whose llhttp calls back into "
    "Python for every header and copies every body piece.",
    "- **What is left, by size:** the engine (about 163,000 instructions "
    "for a bare exchange application with httptools: parsing and the head "
    "meter, the exchange, the response head, trio's scheduler and one "
    "`epoll` wait per keep-alive request); the web layer (about 115,000: "
    "the handler's run and its hooks, the request object, the ETag, the "
    "response head). p99 at 50 connections is the tail of that CPU: each "
    "wake-up of the server serves the connections that are ready, one "
    "after another.",
    "- **Idle-connection memory** is now one task, its nursery (whose "
    "scope is also the connection's timer), the socket and its trio "
    "wrappers, and the parser: about 7 KiB with httptools (whose llhttp "
    "object and bound callbacks are ~1 KiB of it) and 5.6 KiB with h11.",
    "- **Not done:** a kqueue watcher for macOS/BSD (it cannot be tested "
    "on the Linux machines the project is checked on; there, connections "
    "take the Stream path with a reader task); deadlines kept by the "
    "watcher in a heap (about 3 % of a request that waits); the response "
    "head from one prepared template.",
]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "req/s":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def results_table(results: Results, servers: list[Server]) -> list[str]:
    header = "| scenario | unit | better | " + " | ".join(s.label for s in servers)
    lines = [
        header + " |",
        "|---|---|---|" + "---:|" * len(servers),
    ]
    for metric, (scenario, unit, higher) in METRICS.items():
        base = results.median(BASELINE, metric)
        cells = []
        for server in servers:
            value = results.median(server.name, metric)
            cell = _fmt(value, unit)
            if value is not None and base:
                cell += f" ({value / base:.2f}x)"
            if server.name in SUBJECTS:
                cell = f"**{cell}**"
            cells.append(cell)
        better = "higher" if higher else "lower"
        lines.append(f"| {scenario} | {unit} | {better} | " + " | ".join(cells) + " |")
    return lines


def rounds_table(results: Results, servers: list[Server]) -> list[str]:
    lines = [
        "| metric | " + " | ".join(s.label for s in servers) + " |",
        "|---|" + "---|" * len(servers),
    ]
    for metric, (_, unit, _higher) in METRICS.items():
        cells = []
        for server in servers:
            values = results.values.get(server.name, {}).get(metric, [])
            cells.append(", ".join(_fmt(v, unit) for v in values) or "—")
        lines.append(f"| `{metric}` ({unit}) | " + " | ".join(cells) + " |")
    return lines


def machine_description(results: Results, settings: Settings) -> list[tuple[str, str]]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / MiB:.1f} GiB"
                break
    os_name = platform.system()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    rows = [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu_model),
        ("memory", memory),
        ("OS", f"{os_name}, Linux {platform.release()}"),
        (
            "Python",
            f"{platform.python_implementation()} {platform.python_version()}",
        ),
        ("wrk", _command_output(["wrk", "-v"]).split(" [")[0] or "unknown"),
        (
            "other load",
            f"{len(results.contended)} wrk run(s) shared the CPUs with other "
            f"processes (over {CONTENDED_PERCENT:.0f}% of a CPU) even after "
            f"{WRK_RETRIES} retries",
        ),
        (
            "pinning",
            f"servers on CPU {settings.server_cpu}, "
            f"wrk and the harness's clients on CPU {settings.client_cpu}"
            + ("" if settings.pinned_apart else " (only one CPU: not apart)"),
        ),
    ]
    commit = _command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if commit:
        dirty = _command_output(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "trioweb"]
        )
        rows.append(
            ("trioweb source", commit + (" + uncommitted changes" if dirty else ""))
        )
    for package in (
        "trioweb",
        "trio",
        "h11",
        "tornado",
        "aiohttp",
        "hypercorn",
        "httptools",
    ):
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    return rows


def _command_output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""


def write_doc(results: Results, settings: Settings, targets: list[TargetRow]) -> None:
    servers = settings.servers
    met = sum(t.status == "met" for t in targets)
    measured_targets = sum(t.status in ("met", "not met") for t in targets)
    mode = (
        "quick mode (indicative only: check that the harness works)"
        if settings.quick
        else "default mode"
    )
    out: list[str] = [
        "# Performance",
        "",
        "<!-- Generated by bench/run.py (`make bench`); do not edit by hand. -->",
        "",
        f"Measured on {results.started[:10]} by `make bench`, {mode}: "
        f"{settings.rounds} round(s), {settings.duration} s per wrk run, "
        f"medians over rounds. trioweb, once with each request parser backend "
        "(**trioweb (httptools)**: `--http httptools`, llhttp; **trioweb "
        "(h11)**: `--http h11`, the pure-Python default when httptools is "
        "absent), against Tornado, aiohttp and hypercorn (trio worker, raw "
        "ASGI app), each on one CPU, serving the same routes "
        "(`bench/servers/`). Ratios are against Tornado unless they say "
        "otherwise.",
        "",
        "## Targets",
        "",
        f"{met} of {measured_targets} measured targets met.",
        "",
        "Each parser backend is held to its own targets (issue 4).",
        "",
        "| target | trioweb backend | required | measured | status |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        status = {"met": "✅ met", "not met": "❌ not met"}.get(t.status, t.status)
        backend = f"`{t.backend}`" if t.backend else "—"
        out.append(
            f"| {t.target} | {backend} | {t.required} | {t.measured} | {status} |"
        )
    out += [
        "",
        "## Results",
        "",
        "Medians over rounds; in brackets, the ratio to Tornado "
        "(for req/s higher is better, for the others lower is better).",
        "",
        *results_table(results, servers),
        "",
        "![req/s, p99 latency and memory per server and scenario](performance.png)",
        "",
    ]
    if results.problems:
        out += ["### Problems seen during the run", ""]
        out += [f"- {p}" for p in results.problems]
        out += [""]
    out += [
        "### Every round",
        "",
        *rounds_table(results, servers),
        "",
        *overload_section(results, settings),
        "",
        *WHAT_STANDS_IN_THE_WAY,
        "",
        *kept_by_hand(),
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in machine_description(results, settings)]
    out += [
        "",
        "## What is measured",
        "",
        "trioweb is measured twice, as two servers: the same script "
        "(`bench/servers/trioweb_server.py`) run with `--http httptools` "
        '("trioweb" in `bench/results/`, `--only trioweb`) and with '
        '`--http h11` ("trioweb-h11"), which it passes to '
        "`trioweb.run(..., http=...)`. Every server, each of those two "
        "included, is started as a fresh process for each round, pinned "
        "with `taskset -c 0`; the load generator is pinned to CPU 1. Within a "
        "round the servers take turns, in an order that rotates each round. "
        "The machine may be shared: before each wrk run the harness waits "
        f"(up to {QUIET_MAX_WAIT:.0f} s) until other processes use under "
        f"{QUIET_PERCENT:.0f}% of a CPU, and repeats a run (up to "
        f"{WRK_RETRIES} times) during which they used over "
        f"{CONTENDED_PERCENT:.0f}%; runs still shared are listed under "
        "the problems above.",
        "",
        f"- **hello GET**: `wrk -t1 -c{settings.connections} "
        f"-d{settings.duration}s --latency` on `GET /` (keep-alive), after a "
        f"{settings.warmup} s warm-up. The same run gives the **p99 latency** "
        "(wrk's latency distribution).",
        "- **64 KiB response**: the same on `GET /64k`.",
        "- **1 MiB POST**: the same on `POST /upload` with `bench/post.lua`, "
        "which sends a 1 MiB body; the server reads all of it and answers "
        "with its length.",
        "- **1000 idle keep-alive connections**: on a fresh server, after 20 "
        "warm-up requests, a Python client (`bench/run.py`, not wrk) opens "
        "1000 connections one after another; each makes one `GET /` and then "
        "stays open and idle. The server's `VmRSS` (from `/proc/PID/status`) "
        "after, minus before, divided by 1000. All 1000 are checked to be "
        "still open.",
        "- **100 MiB file**: on a fresh server, one client downloads "
        "`GET /big` reading at most 100 MiB/s (slower than every server "
        "sends, so flow control matters), while the server streams a 100 MiB "
        "file (made in a temp dir) in 64 KiB chunks, waiting for each to be "
        "sent (`await self.flush()` "
        "in trioweb and Tornado, `await response.write()` in aiohttp, "
        "`await send()` in ASGI). `VmRSS` is sampled every 5 ms; the growth "
        "is the peak minus the value just before the request.",
        "- **overload**: see its section above (`bench/shedding.py`); "
        "`--scenario overload` runs it alone.",
        "- **websocket echo** (`bench/wsecho.py`): "
        f"{wsecho.CONNECTIONS} websockets, each sending a "
        f"{wsecho.MESSAGE_SIZE}-byte text message and waiting for its echo, "
        "again and again (a closed loop); messages a second over all of them, "
        "and the p99 of one round trip.",
        "",
        "Server settings (`bench/servers/common.py`): no access log, a 16 MiB "
        "body limit, and a 75 s keep-alive timeout everywhere (aiohttp's "
        "default; trioweb's and hypercorn's 5 s would close the first idle "
        "connections before the measurement). trioweb's `max_connections` is "
        "raised from 1000 to 4096 so that the harness's probes fit beside "
        "the 1000 idle connections; its other limits are the defaults "
        "(including `max_requests_per_connection=1000`, so wrk's connections "
        "are reconnected every 1000 requests). aiohttp runs on the default "
        "asyncio loop (no uvloop). Tornado and trioweb compute an `Etag` for "
        "each small response, as they do by default.",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                       # 3 rounds x 5 s per wrk run, ~7 min",
        "make bench BENCH_ARGS=--quick    # 1 round x 2 s: check the harness",
        "BENCH_ROUNDS=5 BENCH_DURATION=10 make bench",
        "python3 bench/run.py --help      # --only NAME, --no-docs, ...",
        "```",
        "",
        "`make bench` installs `wrk` from the OS packages when it is missing "
        "(apt-get, as root); `bench/run.py` creates `bench/.venv` on first use "
        "and installs trioweb (editable) with `bench/requirements.txt` into "
        "it, never into the dev venv. It needs two CPUs to pin server and "
        "load apart. Raw results and server logs go to `bench/results/` "
        "(not committed); this page and `performance.png` are rewritten by "
        "each run.",
        "",
    ]
    DOC.write_text("\n".join(out))


def overload_section(results: Results, settings: Settings) -> list[str]:
    """The overload scenario's section of the page, between its markers."""
    servers = [s for s in settings.servers if s.name in OVERLOAD_SERVERS]
    medians = {
        s.name: {m: results.median(s.name, m) for m in shedding.METRICS}
        for s in servers
    }
    body = shedding.section(
        medians,
        {s.name: s.label for s in servers},
        settings.duration,
        settings.rounds,
        settings.quick,
        [p for p in results.problems if ", overload:" in p],
    )
    command = "make bench"
    if settings.scenario == "overload":
        quick = " --quick" if settings.quick else ""
        command = f"python3 bench/run.py{quick} --scenario overload"
    when = f"Measured on {results.started[:10]} by `{command}`."
    return [OVERLOAD_BEGIN, *body, "", when, OVERLOAD_END]


#: A section written by hand (``bench/instructions.py``'s before/after
#: tables): carried over as it is when the page is rewritten.
KEPT_BEGIN = "<!-- kept by hand: begin -->"
KEPT_END = "<!-- kept by hand: end -->"


def kept_by_hand() -> list[str]:
    """The page's hand-written section, markers included (or nothing)."""
    text = DOC.read_text() if DOC.exists() else ""
    begin, end = text.find(KEPT_BEGIN), text.find(KEPT_END)
    if begin == -1 or end == -1:
        return []
    return [text[begin : end + len(KEPT_END)], ""]


def update_overload_section(results: Results, settings: Settings) -> None:
    """Rewrite only the overload section of the page (``--scenario overload``)."""
    section = "\n".join(overload_section(results, settings))
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    begin, end = text.find(OVERLOAD_BEGIN), text.find(OVERLOAD_END)
    if begin != -1 and end != -1:
        text = text[:begin] + section + text[end + len(OVERLOAD_END) :]
    else:
        anchor = text.find("## What stands in the way")
        if anchor == -1:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        else:
            text = text[:anchor] + section + "\n\n" + text[anchor:]
    DOC.write_text(text)


def draw_chart(results: Results, settings: Settings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = settings.servers
    # metric -> the target lines to draw: (value, label, line style)
    base = {m: results.median(BASELINE, m) for m in METRICS}
    lines: dict[str, list[tuple[float, str, str]]] = {
        "idle_kib_per_conn": [(7.0, "target ≤ 7 KiB", "--")],
        "big_growth_mib": [(8.0, "target ≤ 8 MiB", "--")],
    }
    styles = {"h11": ":", "httptools": "--"}
    for metric, (_, wanted) in THROUGHPUT_TARGETS.items():
        # (peer, ratio) -> the backends held to it: one line for both
        # backends when they share a target.
        held: dict[tuple[str, float], list[str]] = {}
        for backend, peer, ratio in wanted:
            held.setdefault((peer, ratio), []).append(backend)
        for (peer, ratio), backends in held.items():
            peer_value = results.median(peer, metric)
            if not peer_value:
                continue
            who = backends[0] if len(backends) == 1 else "both backends"
            if peer != BASELINE:
                style = "-."
            elif len(backends) == 1:
                style = styles[backends[0]]
            else:
                style = "--"
            lines.setdefault(metric, []).append(
                (ratio * peer_value, f"target {who}: ≥ {ratio:.1f}x {peer}", style)
            )
    if base["hello_p99_ms"]:
        lines["hello_p99_ms"] = [(base["hello_p99_ms"], "target ≤ tornado", "--")]
    rows = -(-len(METRICS) // 3)  # one panel per metric, three a row
    fig, axes = plt.subplots(rows, 3, figsize=(16, 4.5 * rows))
    for ax in axes.flat[len(METRICS) :]:
        ax.set_visible(False)
    for ax, (metric, (scenario, unit, higher)) in zip(
        axes.flat, METRICS.items(), strict=False
    ):
        values = [results.median(s.name, metric) for s in servers]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(
            [s.short for s in servers],
            heights,
            color=[s.color for s in servers],
            edgecolor="black",
            linewidth=0.5,
        )
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                "n/a" if value is None else _fmt(value, unit),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=9,
                xytext=(0, 2),
                textcoords="offset points",
            )
        targets = lines.get(metric, [])
        for value, label, style in targets:
            ax.axhline(value, color="black", linestyle=style, linewidth=1, label=label)
        if targets:
            ax.legend(loc="upper left", fontsize=8, frameon=False)
        top = max([*heights, *(t[0] for t in targets)]) or 1.0
        ax.set_ylim(0, top * 1.35)
        ax.set_title(scenario, fontsize=10)
        ax.set_ylabel(f"{unit} ({'higher' if higher else 'lower'} is better)")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    mode = "quick run" if settings.quick else "medians"
    fig.suptitle(
        f"trioweb (httptools and h11 parsers) vs peers — {mode} of "
        f"{settings.rounds} round(s) x {settings.duration} s, "
        "server and client on separate CPUs",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_summary(
    results: Results, settings: Settings, targets: list[TargetRow]
) -> None:
    names = [s.name for s in settings.servers]
    width = max(len(m[0]) for m in METRICS.values()) + 2
    print()
    print("medians (ratio to tornado)")
    print(f"{'':<{width}}" + "".join(f"{n:>18}" for n in names))
    for metric, (scenario, unit, _) in METRICS.items():
        base = results.median(BASELINE, metric)
        row = f"{scenario:<{width}}"
        for n in names:
            value = results.median(n, metric)
            text = _fmt(value, unit)
            if value is not None and base:
                text += f" ({value / base:.2f}x)"
            row += f"{text:>18}"
        print(row + f"  {unit}")
    print()
    print("targets")
    for t in targets:
        backend = f" [{t.backend}]" if t.backend else ""
        print(
            f"  {t.status:<8} {t.target}{backend}: {t.measured} (required {t.required})"
        )
    if results.problems:
        print()
        print("problems")
        for p in results.problems:
            print(f"  {p}")


# ------------------------------------------------------------------ main


@contextlib.contextmanager
def big_file(size: int) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="trioweb-bench-") as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
            # Written out now, not by the kernel during the first measurements.
            f.flush()
            os.fsync(f.fileno())
        yield path


def main() -> None:
    settings, write_docs = parse_settings(sys.argv[1:])
    ensure_environment()
    check_tools(settings)
    # This process runs the idle and download clients: keep it off the
    # servers' CPU, like wrk.
    os.sched_setaffinity(0, {settings.client_cpu})
    if not settings.pinned_apart:
        log_line("bench: only one CPU available: server and load share it")
    log_line(
        f"bench: {settings.rounds} round(s) x {settings.duration} s per wrk run, "
        f"servers: {', '.join(s.name for s in settings.servers)}"
    )
    start = time.monotonic()
    # The overload scenario alone needs no 100 MiB file.
    size = 0 if settings.scenario == "overload" else settings.big_file_size
    with big_file(size) as path:
        results = measure(settings, path)
    targets = evaluate_targets(results)
    overload_only = settings.scenario == "overload"
    if not overload_only:
        print_summary(results, settings, targets)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / ("overload.json" if overload_only else "latest.json")
    raw.write_text(json.dumps(asdict(results), indent=2) + "\n")
    if write_docs and overload_only:
        update_overload_section(results, settings)
        log_line(f"\nbench: rewrote the overload section of {DOC.relative_to(REPO)}")
    elif write_docs:
        write_doc(results, settings, targets)
        draw_chart(results, settings, CHART)
        log_line(f"\nbench: wrote {DOC.relative_to(REPO)}, {CHART.relative_to(REPO)}")
    log_line(
        f"bench: raw results in {raw.relative_to(REPO)}; "
        f"took {time.monotonic() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
