"""Request ids, Server-Timing, and the access log's two formats, through the
real connection code (TestClient)."""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

import pytest
import trio

from trioweb import Application, RequestHandler, ServerConfig
from trioweb.server.observe import request_id, response_headers, valid_request_id
from trioweb.testing import TestClient


class WhoAmI(RequestHandler):
    def get(self) -> None:
        self.write({"id": self.request.id, "root_path": self.request.root_path})


class Slow(RequestHandler):
    async def get(self) -> None:
        await trio.sleep(0.25)
        self.write("done")


class OwnId(RequestHandler):
    def get(self) -> None:
        self.set_header("X-Request-Id", "chosen-by-the-app")
        self.write(str(self.request.id))


APP = Application([("/", WhoAmI), ("/slow", Slow), ("/own", OwnId)])


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]


# -- request ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "abc123",
        "Root=1-67891233-abcdef012345678912345678",  # AWS's X-Amzn-Trace-Id
        "a" * 200,
    ],
)
async def test_a_sane_request_id_is_honoured(given: str) -> None:
    async with TestClient(APP) as client:
        r = await client.get("/", headers={"X-Request-Id": given})
    assert r.json() == {"id": given, "root_path": ""}
    assert r.headers["X-Request-Id"] == given


@pytest.mark.parametrize(
    "given",
    [
        "",
        "a" * 201,
        "two words",
        'quote"d',
        "new\tline",
        "caf\u00e9",
        "<script>",
    ],
)
async def test_an_insane_request_id_is_replaced(given: str) -> None:
    async with TestClient(APP) as client:
        r = await client.get("/", headers={"X-Request-Id": given.encode("latin-1")})
    made = r.json()["id"]
    assert made != given
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert r.headers["X-Request-Id"] == made


async def test_generated_ids_differ_and_are_echoed() -> None:
    async with TestClient(APP) as client:
        first = await client.get("/")
        second = await client.get("/")
    ids = [first.json()["id"], second.json()["id"]]
    assert ids[0] != ids[1]
    assert [first.headers["X-Request-Id"], second.headers["X-Request-Id"]] == ids


async def test_the_application_may_set_its_own_header() -> None:
    async with TestClient(APP) as client:
        r = await client.get("/own", headers={"X-Request-Id": "from-the-proxy"})
    assert r.headers.get_list("X-Request-Id") == ["chosen-by-the-app"]
    assert r.text == "from-the-proxy"  # request.id is still the request's


async def test_the_id_is_in_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    async with TestClient(APP) as client:
        await client.get("/", headers={"X-Request-Id": "trace-42"})
    [line] = access_lines(caplog)
    assert re.fullmatch(r'\S+ \[trace-42\] "GET / HTTP/1\.1" 200 \d+ [\d.]+ms', line)


async def test_request_ids_off() -> None:
    config = ServerConfig(request_id=False)
    async with TestClient(APP, config=config) as client:
        r = await client.get("/", headers={"X-Request-Id": "trace-42"})
    assert r.json()["id"] is None
    assert "X-Request-Id" not in r.headers


def test_request_id_rules() -> None:
    assert request_id([(b"x-request-id", b"ok-1")]) == "ok-1"
    # The first X-Request-Id counts, even when it is the bad one.
    assert request_id([(b"x-request-id", b"b a d"), (b"x-request-id", b"ok")]) != "ok"
    assert valid_request_id(b"A-z_0.9:+/=@")
    assert not valid_request_id(b"a\x00b")


def test_made_request_ids_differ_between_forked_workers() -> None:
    # Workers are forked from one process: each must make ids of its own,
    # not the parent's sequence again.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then gone
        try:
            os.write(write, request_id([]).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    parent = request_id([])
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child != parent
    assert len({request_id([]) for _ in range(1000)}) == 1000


def test_an_app_set_request_id_header_is_kept_in_any_case() -> None:
    headers = [(b"x-REQUEST-id", b"mine"), (b"content-length", b"0")]
    assert response_headers(headers, "made", None) == headers
    assert response_headers([(b"Content-Length", b"0")], "made", None) == [
        (b"Content-Length", b"0"),
        (b"X-Request-Id", b"made"),
    ]


# -- Server-Timing ------------------------------------------------------------------


async def test_server_timing_is_opt_in(autojump_clock: trio.abc.Clock) -> None:
    async with TestClient(APP) as client:
        r = await client.get("/slow")
    assert "Server-Timing" not in r.headers
    config = ServerConfig(server_timing=True)
    async with TestClient(APP, config=config) as client:
        r = await client.get("/slow")
    assert r.text == "done"
    match = re.fullmatch(r"app;dur=([\d.]+)", r.headers["Server-Timing"])
    assert match, r.headers["Server-Timing"]
    # The handler slept 250 ms (on the mock clock): that is its time.
    assert float(match.group(1)) == pytest.approx(250, abs=1)


# -- JSON access log lines ----------------------------------------------------------


async def test_json_access_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    config = ServerConfig(access_log_format="json")
    async with TestClient(APP, config=config) as client:
        await client.get("/?a=1", headers={"X-Request-Id": "req-1"})
        await client.get("/missing")
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        await raw.receive_available()
    lines = access_lines(caplog)
    assert len(lines) == 3
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    first, missing, refused = records
    assert first["method"] == "GET"
    assert first["target"] == "/?a=1"
    assert first["status"] == 200
    assert first["http_version"] == "1.1"
    assert first["request_id"] == "req-1"
    assert first["bytes"] > 0
    assert isinstance(first["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert first["client"].startswith("127.0.0.1:")
    assert first["note"] is None
    assert (missing["status"], missing["target"]) == (404, "/missing")
    assert re.fullmatch(r"[0-9a-f]{32}", missing["request_id"])
    # A request refused before it was parsed has no method or target.
    assert refused["status"] == 431
    assert (refused["method"], refused["target"]) == (None, None)
    assert refused["note"]


async def test_json_escapes_what_it_must(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    config = ServerConfig(access_log_format="json")
    async with TestClient(APP, config=config) as client:
        raw = await client.raw()
        await raw.send(b'GET /"quoted"\\%0A HTTP/1.1\r\nHost: x\r\n\r\n')
        await raw.receive_available()
    [line] = access_lines(caplog)
    assert json.loads(line)["target"] == '/"quoted"\\%0A'


def test_access_log_format_is_checked() -> None:
    with pytest.raises(ValueError, match="access_log_format must be one of text"):
        ServerConfig(access_log_format="xml")


# -- the client field -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    ("peer", "forwarded", "shown"),
    [
        (("127.0.0.1", 4000), None, "127.0.0.1:4000"),
        # IPv6 in brackets, so that the port stands apart.
        (("::1", 48570), None, "[::1]:48570"),
        # A client a trusted proxy reported has no port: none is invented.
        (("127.0.0.1", 4000), "203.0.113.7", "203.0.113.7"),
        (("::1", 48570), "2001:db8::9", "2001:db8::9"),
    ],
)
async def test_the_client_field(
    caplog: pytest.LogCaptureFixture,
    fmt: str,
    peer: tuple[str, int],
    forwarded: str | None,
    shown: str,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    config = ServerConfig(
        access_log_format=fmt, proxy_headers=True, forwarded_allow_ips="*"
    )
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with TestClient(APP, config=config, client_address=peer) as client:
        await client.get("/", headers=headers)
        # Refused before it is parsed: the peer as the socket gives it.
        raw = await client.raw()
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        await raw.receive_available()
    answered, refused = access_lines(caplog)
    peer_shown = "[::1]:48570" if peer[0] == "::1" else "127.0.0.1:4000"
    if fmt == "json":
        assert json.loads(answered)["client"] == shown
        assert json.loads(refused)["client"] == peer_shown
    else:
        assert answered.split()[0] == shown
        assert refused.split()[0] == peer_shown
