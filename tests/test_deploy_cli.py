"""``trioweb serve`` deployed: HTTPS (one process and --workers), inherited
sockets (--fd, systemd's LISTEN_FDS), --root-path, and the log flags
(--access-log-format json, --log-config).

Each test starts ``python -m trioweb serve tests.apps.deploy_apps:app`` as a
real subprocess and talks to it over real sockets; every wait is under a
hard deadline (tests/processes.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
from processes import DEADLINE, ROOT, ServerProcess, trioweb_process

APP = "tests.apps.deploy_apps:app"


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Any]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    server.private_key_and_cert_chain_pem.write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {"cert": str(cert), "key": str(key), "client": client}


async def port_of(server: ServerProcess, scheme: str = "http") -> int:
    line = await server.wait_for(f"trioweb: serving on {scheme}://")
    match = re.search(r":(\d+)$", line)
    assert match, line
    server.port = int(match.group(1))
    return server.port


async def stop(server: ServerProcess) -> None:
    server.signal(signal.SIGINT)
    assert await server.finish() == 0
    server.assert_clean()


@asynccontextmanager
async def process(
    argv: list[str],
    *,
    pass_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
) -> AsyncIterator[ServerProcess]:
    """Start ``argv`` (with ``pass_fds`` inherited); kill it if left running."""
    proc = await trio.lowlevel.open_process(
        argv,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
        env=env,
    )
    server = ServerProcess(proc)
    try:
        with trio.fail_after(DEADLINE):
            yield server
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.move_on_after(DEADLINE):
            await server.finish()
        assert proc.stderr is not None
        await proc.stderr.aclose()


# -- HTTPS ---------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_https_from_the_command_line(certs: dict[str, Any], workers: str) -> None:
    async with trioweb_process(
        "serve",
        APP,
        "--port",
        "0",
        "--certfile",
        certs["cert"],
        "--keyfile",
        certs["key"],
        "--workers",
        workers,
    ) as server:
        port = await port_of(server, "https")
        pids = set()
        for _ in range(6):
            # A fresh connection each time: the kernel spreads them over the
            # workers.
            async with httpx.AsyncClient(verify=certs["client"]) as client:
                r = await client.get(f"https://127.0.0.1:{port}/x")
            assert r.status_code == 200
            assert r.json()["protocol"] == "https"
            pids.add(r.json()["pid"])
        await stop(server)
    assert pids


async def test_a_certfile_holding_the_key_too(certs: dict[str, Any]) -> None:
    async with trioweb_process(
        "serve", APP, "--port", "0", "--certfile", certs["cert"]
    ) as server:
        port = await port_of(server, "https")
        async with httpx.AsyncClient(verify=certs["client"]) as client:
            r = await client.get(f"https://127.0.0.1:{port}/")
        assert r.json()["protocol"] == "https"
        await stop(server)


async def test_ca_certs_without_cert_reqs_is_a_warning(
    certs: dict[str, Any],
) -> None:
    # uvicorn accepts --ssl-ca-certs alone (and ignores it): so does trioweb,
    # but it says so.
    async with trioweb_process(
        "serve",
        APP,
        "--port",
        "0",
        "--certfile",
        certs["cert"],
        "--ca-certs",
        certs["cert"],
    ) as server:
        port = await port_of(server, "https")
        async with httpx.AsyncClient(verify=certs["client"]) as client:
            r = await client.get(f"https://127.0.0.1:{port}/")
        assert r.status_code == 200
        await stop(server)
    assert (
        "trioweb: warning: --ca-certs has no effect without --cert-reqs "
        "optional or required" in server.stderr
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--keyfile", "k.pem"], "--keyfile needs --certfile"),
        (
            ["--keyfile", "k.pem", "--cert-reqs", "required"],
            "--keyfile, --cert-reqs need --certfile",
        ),
        (["--certfile", "/nonexistent.pem"], "cannot read the certificate"),
        (["--cert-reqs", "always"], "--cert-reqs must be one of none, optional"),
    ],
)
async def test_bad_tls_flags_are_one_line_errors(
    flags: list[str], message: str
) -> None:
    async with trioweb_process("serve", APP, "--port", "0", *flags) as server:
        assert await server.finish() == 2
    assert message in server.stderr
    server.assert_clean()


# -- inherited sockets ---------------------------------------------------------


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_fd_serves_on_an_inherited_socket(workers: str) -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    try:
        async with process(
            [
                sys.executable,
                *("-m", "trioweb", "serve", APP, "--fd", str(fd)),
                *("--workers", workers),
            ],
            pass_fds=(fd,),
        ) as server:
            # The address announced is the socket's own.
            assert await port_of(server) == port
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{port}/")
            assert r.json()["protocol"] == "http"
            await stop(server)
    finally:
        sock.close()


# As systemd starts a service: the socket at fd 3, LISTEN_FDS=1, and
# LISTEN_PID set to the service's own PID (the launcher's, which exec keeps).
SYSTEMD_LAUNCHER = """\
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def systemd_start(fd: int, *argv: str) -> list[str]:
    return [sys.executable, "-c", SYSTEMD_LAUNCHER, str(fd), *argv]


async def test_fd_with_systemd_socket_activation() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    command = systemd_start(fd, "-m", "trioweb", "serve", APP, "--fd", "3")
    try:
        async with process(command, pass_fds=(fd,)) as server:
            assert await port_of(server) == port
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{port}/")
            assert r.status_code == 200
            await stop(server)
        # Asking for a descriptor systemd did not pass is an error that says
        # which ones it did.
        wrong = systemd_start(fd, "-m", "trioweb", "serve", APP, "--fd", "4")
        async with process(wrong, pass_fds=(fd,)) as server:
            assert await server.finish() == 1
        assert "systemd passed 1 socket(s) (fd 3), not fd 4" in server.stderr
        server.assert_clean()
    finally:
        sock.close()


def documented_exec_start() -> list[str]:
    """The app and flags of the ExecStart line in docs/deployment.md's
    socket-activated unit."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("## systemd with socket activation")[1].split("\n## ")[0]
    [line] = re.findall(r"^ExecStart=(.*)$", section, re.MULTILINE)
    words = shlex.split(line)
    assert words[0].endswith("/trioweb"), words
    assert words[1] == "serve", words
    return words[3:]


async def test_the_documented_systemd_unit() -> None:
    flags = documented_exec_start()
    assert flags[:2] == ["--fd", "3"]
    sock = listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    command = systemd_start(fd, "-m", "trioweb", "serve", APP, *flags)
    try:
        async with process(command, pass_fds=(fd,)) as server:
            assert await port_of(server) == port
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{port}/unit")
            assert r.status_code == 200
            line = await server.wait_for('"target": "/unit"')
            assert json.loads(line)["request_id"] == r.headers["X-Request-Id"]
            # KillMode=mixed: one SIGTERM, to the main process alone.
            server.signal(signal.SIGTERM)
            assert await server.finish() == 0
        server.assert_clean()
    finally:
        sock.close()


def test_the_systemd_variables_are_not_passed_on() -> None:
    sock = listening_socket()
    fd = sock.fileno()
    check = (
        "import os, trioweb.server.sockets as s; "
        "s.inherited_socket(3).detach(); print(os.environ.get('LISTEN_FDS'))"
    )
    try:
        result = subprocess.run(
            systemd_start(fd, "-c", check),
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            cwd=ROOT,
        )
    finally:
        sock.close()
    assert result.stdout.strip() == "None", result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fd", "99"], "cannot listen on file descriptor 99: no such file"),
        (["--fd", "0"], "not a socket"),
        (
            ["--fd", "3", "--uds", "/tmp/x.sock"],
            "error: --fd and --uds cannot both be given",
        ),
    ],
)
async def test_bad_fd_is_a_one_line_error(flags: list[str], message: str) -> None:
    async with trioweb_process("serve", APP, *flags) as server:
        assert await server.finish() in (1, 2)
    assert message in server.stderr
    server.assert_clean()


async def test_fd_of_a_file_is_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        async with process(
            [sys.executable, "-m", "trioweb", "serve", APP, "--fd", str(fd)],
            pass_fds=(fd,),
        ) as server:
            assert await server.finish() == 1
    finally:
        os.close(fd)
    assert "the file descriptor is not a socket" in server.stderr


async def test_fd_of_a_connected_socket_is_refused() -> None:
    listener = listening_socket()
    connected = socket.create_connection(listener.getsockname())
    try:
        fd = connected.fileno()
        async with process(
            [sys.executable, "-m", "trioweb", "serve", APP, "--fd", str(fd)],
            pass_fds=(fd,),
        ) as server:
            assert await server.finish() == 1
    finally:
        connected.close()
        listener.close()
    assert "the socket is connected (to ('127.0.0.1', " in server.stderr
    assert "not listening: pass a listening socket" in server.stderr
    server.assert_clean()


# -- --root-path -----------------------------------------------------------------


async def test_root_path_reaches_the_application() -> None:
    async with trioweb_process(
        "serve", APP, "--port", "0", "--root-path", "/api"
    ) as server:
        port = await port_of(server)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/items")
        assert r.json()["root_path"] == "/api"
        assert r.json()["path"] == "/items"
        await stop(server)


async def test_root_path_must_be_a_path() -> None:
    async with trioweb_process("serve", APP, "--root-path", "api/") as server:
        assert await server.finish() == 2
    assert "--root-path must be empty or a path like /app" in server.stderr


# -- logs --------------------------------------------------------------------------


async def test_json_access_log_on_stderr() -> None:
    async with trioweb_process(
        "serve", APP, "--port", "0", "--access-log-format", "json"
    ) as server:
        port = await port_of(server)
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"http://127.0.0.1:{port}/a?b=1", headers={"X-Request-Id": "abc-1"}
            )
        assert r.headers["X-Request-Id"] == "abc-1"
        line = await server.wait_for('"request_id": "abc-1"')
        await stop(server)
    # One JSON object a line, nothing in front of it.
    record = json.loads(line)
    assert record["target"] == "/a?b=1"
    assert record["status"] == 200
    assert record["request_id"] == r.json()["id"] == "abc-1"


def dict_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "ACCESS %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
            }
        },
        "loggers": {
            "trioweb.access": {"handlers": ["file"], "level": "INFO"},
        },
    }


INI = """\
[loggers]
keys=root,access

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_access]
level=INFO
handlers=file
qualname=trioweb.access
propagate=0

[handler_file]
class=FileHandler
formatter=plain
args=({filename!r},)

[formatter_plain]
format=ACCESS %(message)s
"""


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
async def test_log_config(tmp_path: Path, kind: str) -> None:
    log_file = tmp_path / "access.log"
    config_file = tmp_path / f"logging.{kind}"
    if kind == "json":
        config_file.write_text(json.dumps(dict_config(log_file)))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        config_file.write_text(yaml.safe_dump(dict_config(log_file)))
    else:
        config_file.write_text(INI.format(filename=str(log_file)))
    async with trioweb_process(
        "serve", APP, "--port", "0", "--log-config", str(config_file)
    ) as server:
        port = await port_of(server)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/logged")
        await stop(server)
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r'ACCESS \S+ \[[0-9a-f]{32}\] "GET /logged HTTP/1.1" 200 .*', lines[0]
    )


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("{not json", "bad.json", "JSONDecodeError"),
        ('{"version": 99}', "bad.json", "ValueError"),
        ("[]", "list.json", "expected a dictConfig mapping"),
        ("", "missing.ini", "No such file"),
        # dictConfig's own message names the handler; its cause says why.
        (
            '{"version": 1, "handlers": {"h": {"class": "logging.FileHandler", '
            '"filename": "/nonexistent/dir/x.log"}}, "root": {"handlers": ["h"]}}',
            "file.json",
            "Unable to configure handler 'h': FileNotFoundError: No such file or "
            "directory: '/nonexistent/dir/x.log'",
        ),
        (
            '{"version": 1, "handlers": {"h": {"class": "nosuch.Handler"}}}',
            "class.json",
            "Cannot resolve 'nosuch.Handler': No module named 'nosuch'",
        ),
        # A YAML error keeps its position.
        (
            "a: [\n",
            "bad.yaml",
            "ParserError: expected the node content, but found '<stream end>' "
            "(line 2, column 1)",
        ),
    ],
)
async def test_a_bad_log_config_is_a_one_line_error(
    tmp_path: Path, content: str, name: str, message: str
) -> None:
    path = tmp_path / name
    if content:
        path.write_text(content)
    async with trioweb_process(
        "serve", APP, "--port", "0", "--log-config", str(path)
    ) as server:
        assert await server.finish() == 2
    assert f"--log-config {path}: " in server.stderr
    assert message in server.stderr
    server.assert_clean()


@pytest.mark.parametrize("name", ["logging.json", "logging.ini"])
async def test_a_log_config_that_is_a_directory(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.mkdir()
    async with trioweb_process(
        "serve", APP, "--port", "0", "--log-config", str(path)
    ) as server:
        assert await server.finish() == 2
    assert f"--log-config {path} is a directory: give the logging" in server.stderr
    server.assert_clean()


def test_environment_is_unchanged_by_the_suite() -> None:
    # The systemd tests set LISTEN_* only in their children.
    assert "LISTEN_FDS" not in os.environ


# -- JSON logs only --------------------------------------------------------------


def documented_json_log_config() -> str:
    """The logging configuration in docs/deployment.md's "JSON logs only"."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("## JSON logs only")[1].split("\n## ")[0]
    [config] = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    return config


async def test_the_documented_json_log_config(tmp_path: Path) -> None:
    config = tmp_path / "logging.json"
    config.write_text(documented_json_log_config())
    argv = [
        sys.executable, "-m", "trioweb", "serve",
        "tests.apps.lifespan_apps:failing_task", "--port", "0",
        "--access-log-format", "json", "--log-config", str(config),
    ]  # fmt: skip
    proc = await trio.lowlevel.open_process(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    server = ServerProcess(proc)
    stdout = b""
    try:
        with trio.fail_after(DEADLINE):
            port = await port_of(server)
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/fail")).is_success
            # A failing application task: an error record with a traceback.
            assert await server.finish() == 1
            assert proc.stdout is not None
            while data := await proc.stdout.receive_some(65536):
                stdout += data
    finally:
        if proc.returncode is None:
            proc.kill()
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            await stream.aclose()
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    access = [r for r in records if r.get("target") == "/fail"]
    assert len(access) == 1 and access[0]["status"] == 200
    [failed] = [r for r in records if r.get("level") == "ERROR"]
    assert failed["logger"] == "trioweb.error"
    assert failed["message"].startswith("application task failed: RuntimeError")
    assert 'raise RuntimeError("background task died")' in failed["traceback"]
    # On stderr, only what is not a log record (and the test app's marker).
    assert server.stderr.splitlines() == [
        f"trioweb: serving on http://127.0.0.1:{port}",
        "app: shutdown hook ran",
    ]
