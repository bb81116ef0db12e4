"""Debian's nginx in front of several ``trioweb serve`` instances, on
loopback, for tests/test_nginx.py.

Both halves come out of docs/deployment.md: the ``nginx`` block (the one
with ``upstream trioweb``) and the ``sh`` block of ``trioweb serve`` lines.
They are filled in -- free ports, a throwaway certificate, this test's app
-- by exact replacements that must each match, so a doc edit that breaks the
template fails here loudly instead of testing something else.

nginx runs as an ordinary child process with its own prefix, config, pid,
log and temp files in a temporary directory (``nginx -p DIR -c ...`` with
``daemon off``): never the system service, never a privileged port.
Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "deployment.md"
APP = "tests.apps.nginx_app:app"
#: The longest any start, stop or readiness wait may take.
DEADLINE = 15.0

_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def doc_block(language: str, marker: str, text: str | None = None) -> str:
    """The one fenced ``language`` block of docs/deployment.md containing
    ``marker``."""
    text = DOC.read_text() if text is None else text
    blocks = [
        body
        for lang, body in _BLOCK.findall(text)
        if lang == language and marker in body
    ]
    if len(blocks) != 1:
        raise AssertionError(
            f"docs/deployment.md must have exactly one ```{language} block "
            f"containing {marker!r}; found {len(blocks)}"
        )
    return blocks[0]


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(
            f"docs/deployment.md's config no longer contains {old!r}: "
            "update tests/nginx_cluster.py along with the doc"
        )
    return text.replace(old, new)


#: The ports and paths as docs/deployment.md writes them.
DOC_HTTP = "listen 80;"
DOC_HTTPS = "listen 443 ssl;"
DOC_CERT = "/etc/ssl/example.com.crt"
DOC_KEY = "/etc/ssl/example.com.key"
DOC_PORTS = (8001, 8002, 8003)


def site_config(
    *, http: int, https: int, upstreams: list[int], cert: Path, key: Path
) -> str:
    """docs/deployment.md's nginx block, with these ports and files."""
    config = doc_block("nginx", "upstream trioweb")
    config = _replace(config, DOC_HTTP, f"listen 127.0.0.1:{http};")
    config = _replace(config, DOC_HTTPS, f"listen 127.0.0.1:{https} ssl;")
    config = _replace(config, DOC_CERT, str(cert))
    config = _replace(config, DOC_KEY, str(key))
    for doc_port, port in zip(DOC_PORTS, upstreams, strict=True):
        config = _replace(config, f"127.0.0.1:{doc_port} ", f"127.0.0.1:{port} ")
    return config


def instance_commands() -> list[list[str]]:
    """docs/deployment.md's ``trioweb serve`` lines, split into arguments."""
    block = doc_block("sh", "--proxy-headers")
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    if [c[:2] for c in commands] != [["trioweb", "serve"]] * len(DOC_PORTS):
        raise AssertionError(
            "docs/deployment.md's instance block must be "
            f"{len(DOC_PORTS)} `trioweb serve` lines, one per upstream"
        )
    return commands


def _arguments(command: list[str], port: int) -> list[str]:
    """``trioweb serve myapp:app --port 8001 ...`` -> this test's app and port."""
    args = command[3:]  # past "trioweb serve MODULE:ATTR"
    at = args.index("--port")
    args[at + 1] = str(port)
    return [APP, *args]


def _main_config(prefix: Path) -> str:
    # The frame around the doc's block: everything an unprivileged nginx
    # needs to keep its files in `prefix` instead of /var and /run.
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        # Which instances a request went to, in order, and what each said:
        # "200 /slow?ms=60 127.0.0.1:8001, 127.0.0.1:8002 502, 200".
        "    log_format upstreams '$status $request_uri $upstream_addr "
        "$upstream_status';\n"
        f"    access_log {prefix / 'access.log'} upstreams;\n"
        f"{temp}\n"
        f"    include {prefix / 'site.conf'};\n"
        "}\n"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 (held open together
    while they are picked, so no two are the same)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once 127.0.0.1:port accepts a connection; fail if the process
    exits first or DEADLINE passes."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"exited ({process.returncode}) before listening on {port}:\n"
                + log.read_text(errors="replace")
            )
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port} after {DEADLINE} s")


def _stop(process: subprocess.Popen[bytes], signum: int) -> int:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            return process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(DEADLINE)


class Instance:
    """One ``trioweb serve`` of the doc's block, on its own port."""

    def __init__(
        self,
        number: int,
        args: list[str],
        port: int,
        env: dict[str, str],
        directory: Path,
    ) -> None:
        self.number = number
        self.args = args
        self.port = port
        self.env = env
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / f"trioweb-{number}.log"
        self.starts = 0

    @property
    def workers(self) -> int:
        if "--workers" in self.args:
            return int(self.args[self.args.index("--workers") + 1])
        return 1

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it serves."""
        self.starts += 1
        self.log = self.directory / f"trioweb-{self.number}.{self.starts}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trioweb", "serve", *self.args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        wait_for_port(self.port, self.process, self.log)
        if self.workers > 1:
            deadline = time.monotonic() + DEADLINE
            while len(self.pids()) < self.workers:
                if time.monotonic() > deadline:
                    raise AssertionError(self.log.read_text())
                time.sleep(0.02)

    def pids(self) -> set[int]:
        """The processes that serve requests: the workers, or the one."""
        assert self.process is not None
        if self.workers == 1:
            return {self.process.pid}
        started = re.findall(r"worker \d+ started \(pid (\d+)\)", self.log.read_text())
        return {int(pid) for pid in started}

    def kill(self) -> None:
        """SIGKILL: gone at once, mid-request."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(DEADLINE)

    def terminate(self) -> int:
        """SIGTERM (a graceful shutdown); return the exit status."""
        assert self.process is not None
        return _stop(self.process, signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGTERM)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert found, status
    return int(found.group(1)) * 1024


class Cluster:
    """nginx on ``http_port`` / ``https_port`` in front of ``instances``."""

    def __init__(self, directory: Path, nginx: str) -> None:
        import trustme

        self.directory = directory
        self.http_port, self.https_port, *upstreams = free_ports(2 + len(DOC_PORTS))
        self.gate_dir = directory / "gates"
        self.upload_dir = directory / "uploads"
        self.gate_dir.mkdir()
        self.upload_dir.mkdir()
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        cert_file, key_file = directory / "site.crt", directory / "site.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        env = {
            **os.environ,
            "GATE_DIR": str(self.gate_dir),
            "UPLOAD_DIR": str(self.upload_dir),
            "PYTHONPATH": str(ROOT),
        }
        env.pop("FORWARDED_ALLOW_IPS", None)
        self.instances = [
            Instance(n, _arguments(command, port), port, env, directory)
            for n, (command, port) in enumerate(
                zip(instance_commands(), upstreams, strict=True)
            )
        ]
        (directory / "site.conf").write_text(
            site_config(
                http=self.http_port,
                https=self.https_port,
                upstreams=upstreams,
                cert=cert_file,
                key=key_file,
            )
        )
        (directory / "nginx.conf").write_text(_main_config(directory))
        self.nginx_command = [
            nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"),
            "-e", str(directory / "error.log"),
        ]  # fmt: skip
        self.nginx: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for instance in self.instances:
            instance.start()
        log = self.directory / "nginx.out"
        with log.open("wb") as out:
            self.nginx = subprocess.Popen(
                self.nginx_command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        for port in (self.http_port, self.https_port):
            wait_for_port(port, self.nginx, self.directory / "error.log")

    def access_log(self) -> list[tuple[int, str, list[str]]]:
        """nginx's access log: (status, uri, the instances tried in turn)."""
        entries = []
        for line in (self.directory / "access.log").read_text().splitlines():
            status, uri, tried = line.split(" ", 2)
            # "a, b : c" -- commas between retries, a colon between groups.
            addresses = re.findall(r"127\.0\.0\.1:\d+", tried)
            entries.append((int(status), uri, addresses))
        return entries

    def stop(self) -> None:
        if self.nginx is not None:
            _stop(self.nginx, signal.SIGTERM)
        for instance in self.instances:
            instance.stop()

    def logs(self) -> str:
        """Everything nginx and the instances logged (for failure messages)."""
        parts = []
        for path in sorted(self.directory.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


@contextmanager
def running_cluster(directory: Path, nginx: str) -> Iterator[Cluster]:
    # nginx's worker runs as `nobody` when the tests run as root: it must be
    # able to reach the prefix (its temp dirs it creates and chowns itself).
    directory.chmod(0o755)
    cluster = Cluster(directory, nginx)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
