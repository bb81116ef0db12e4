"""Behind a proxy: --proxy-headers, --forwarded-allow-ips and xheaders=True."""

from __future__ import annotations

import logging
import re
import signal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linear import assert_linear
from processes import trioweb_process

from trioweb import Application, RequestHandler, ServerConfig
from trioweb.httputil import HTTPHeaders
from trioweb.server.proxy import TrustedProxies, resolve_client
from trioweb.testing import TestClient

# -- the trusted set ---------------------------------------------------------------


def test_trusted_addresses_and_ranges() -> None:
    trusted = TrustedProxies("127.0.0.1, ::1,10.0.0.0/8 ,2001:db8::/32")
    assert "127.0.0.1" in trusted
    assert "::1" in trusted
    assert "10.200.3.4" in trusted
    assert "2001:db8::5" in trusted
    assert "::ffff:10.1.1.1" in trusted  # an IPv4-mapped IPv6 address
    assert "11.0.0.1" not in trusted
    assert "127.0.0.2" not in trusted
    assert "not an ip" not in trusted
    assert None in trusted  # a Unix-socket peer
    assert "anything" in TrustedProxies("*")
    assert "1.2.3.4" not in TrustedProxies("")
    assert "127.0.0.1" in TrustedProxies()  # the default
    assert "::1" in TrustedProxies()


def test_a_bad_entry_says_what_to_write() -> None:
    with pytest.raises(ValueError, match="not an IP address or a CIDR range"):
        TrustedProxies("127.0.0.1,localhost")
    with pytest.raises(ValueError, match="forwarded_allow_ips must list"):
        ServerConfig(forwarded_allow_ips="10.0.0.0/33")


# -- resolving the client ----------------------------------------------------------

LOCAL = TrustedProxies("127.0.0.1,10.0.0.0/8")


def resolve(peer: str | None, *headers: tuple[str, str]) -> tuple[Any, Any]:
    return resolve_client(peer, HTTPHeaders(list(headers)), LOCAL)


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # Trusted peer: the headers are believed.
        ("127.0.0.1", [("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", None)),
        ("127.0.0.1", [("X-Real-Ip", "203.0.113.8")], ("203.0.113.8", None)),
        ("127.0.0.1", [("X-Forwarded-Proto", "https")], (None, "https")),
        ("127.0.0.1", [("X-Forwarded-Proto", "HTTPS")], (None, "https")),
        ("127.0.0.1", [("X-Forwarded-Proto", "ftp")], (None, None)),
        ("127.0.0.1", [("X-Scheme", "https")], (None, "https")),
        (
            "127.0.0.1",
            [("X-Scheme", "https"), ("X-Forwarded-Proto", "http")],
            (None, "http"),
        ),
        ("127.0.0.1", [("X-Forwarded-Proto", "javascript")], (None, None)),
        # Untrusted peer: ignored, whatever they say.
        ("198.51.100.1", [("X-Forwarded-For", "203.0.113.7")], (None, None)),
        ("198.51.100.1", [("X-Real-Ip", "203.0.113.7")], (None, None)),
        ("198.51.100.1", [("X-Forwarded-Proto", "https")], (None, None)),
        ("198.51.100.1", [("Forwarded", "for=203.0.113.7;proto=https")], (None, None)),
        # A chain: the rightmost address that is not a trusted proxy.
        (
            "127.0.0.1",
            [("X-Forwarded-For", "1.1.1.1, 203.0.113.7, 10.0.0.2")],
            ("203.0.113.7", None),
        ),
        # Spoofed: the client wrote "10.0.0.5, 127.0.0.1" itself; the proxy
        # appended the real address. The spoof is left of it, never reached.
        (
            "127.0.0.1",
            [("X-Forwarded-For", "10.0.0.5, 127.0.0.1, 198.51.100.9")],
            ("198.51.100.9", None),
        ),
        # Several fields are one list.
        (
            "10.0.0.1",
            [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2, 10.0.0.3")],
            ("2.2.2.2", None),
        ),
        # Every hop trusted: the first.
        ("127.0.0.1", [("X-Forwarded-For", "10.0.0.9, 10.0.0.8")], ("10.0.0.9", None)),
        # Garbage stops the walk.
        ("127.0.0.1", [("X-Forwarded-For", "1.1.1.1, nonsense")], (None, None)),
        ("127.0.0.1", [("X-Real-Ip", "nonsense")], (None, None)),
        # X-Forwarded-For wins over X-Real-Ip.
        (
            "127.0.0.1",
            [("X-Real-Ip", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")],
            ("2.2.2.2", None),
        ),
        # One scheme per hop: the client's.
        (
            "127.0.0.1",
            [
                ("X-Forwarded-For", "203.0.113.7, 10.0.0.2"),
                ("X-Forwarded-Proto", "https, http"),
            ],
            ("203.0.113.7", "https"),
        ),
        # RFC 7239.
        (
            "127.0.0.1",
            [("Forwarded", 'for=203.0.113.7;proto=https, for="[2001:db8::1]:80"')],
            ("2001:db8::1", None),
        ),
        (
            "127.0.0.1",
            [("Forwarded", "for=203.0.113.7:4711;proto=https;by=10.0.0.1")],
            ("203.0.113.7", "https"),
        ),
        (
            "127.0.0.1",
            [("Forwarded", "for=203.0.113.7;proto=https, for=10.0.0.4;proto=http")],
            ("203.0.113.7", "https"),
        ),
        ("127.0.0.1", [("Forwarded", "for=unknown")], (None, None)),
        # Forwarded wins over the X- headers.
        (
            "127.0.0.1",
            [("Forwarded", "for=1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")],
            ("1.1.1.1", None),
        ),
        # Regression: a scope id is free text; it reached remote_ip and the
        # access log. Not an IP: the walk stops there.
        ("127.0.0.1", [("X-Real-Ip", "fe80::1%<img src=x>")], (None, None)),
        (
            "127.0.0.1",
            [("X-Forwarded-For", 'fe80::1%1.2.3.4 "GET admin HTTP/1.1" 200')],
            (None, None),
        ),
        ("127.0.0.1", [("X-Forwarded-For", "1.1.1.1, fe80::1%eth0")], (None, None)),
        ("127.0.0.1", [("Forwarded", 'for="[fe80::1%25x]:80"')], (None, None)),
        # IPv6 peers.
        ("::1", [("X-Forwarded-For", "2001:db8::9")], (None, None)),
        (None, [("X-Forwarded-For", "2001:db8::9")], ("2001:db8::9", None)),
    ],
)
def test_resolve_client(
    peer: str | None, headers: list[tuple[str, str]], expected: tuple[Any, Any]
) -> None:
    assert resolve(peer, *headers) == expected


def test_a_link_local_peer_with_its_scope_id_can_be_trusted() -> None:
    # The socket gives a link-local peer as "fe80::1%eth0": its own scope
    # id says nothing about trust (only forwarded addresses are refused).
    trusted = TrustedProxies("fe80::/10")
    assert "fe80::1%eth0" in trusted
    headers = HTTPHeaders([("X-Forwarded-For", "203.0.113.7")])
    assert resolve_client("fe80::1%eth0", headers, trusted) == ("203.0.113.7", None)


async def test_a_scoped_address_never_reaches_remote_ip_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    config = ServerConfig(proxy_headers=True, forwarded_allow_ips="*")
    app = Application([("/", WhoAmI)])
    async with TestClient(app, config=config, client_address=("10.0.0.1", 4000)) as c:
        for name in ("X-Forwarded-For", "X-Real-Ip"):
            r = await c.get("/", headers={name: "fe80::1%<img src=x>"})
            assert r.json()["ip"] == "10.0.0.1"
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert len(lines) == 2
    assert not any("img" in line for line in lines)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(
        ["X-Forwarded-For", "X-Real-Ip", "Forwarded", "X-Forwarded-Proto"]
    ),
    value=st.text(max_size=80),
)
def test_random_headers_never_raise(name: str, value: str) -> None:
    ip, proto = resolve("127.0.0.1", (name, value))
    assert proto in (None, "http", "https")
    if ip is not None:
        assert ":" in ip or "." in ip


# -- through the server --------------------------------------------------------------


class WhoAmI(RequestHandler):
    def get(self) -> None:
        self.write({"ip": self.request.remote_ip, "protocol": self.request.protocol})


SPOOF = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


async def who(app: Application, peer: str, config: ServerConfig | None = None) -> Any:
    async with TestClient(app, config=config, client_address=(peer, 4000)) as client:
        return (await client.get("/", headers=SPOOF)).json()


@pytest.mark.parametrize("how", ["proxy_headers", "xheaders"])
async def test_trusted_and_untrusted_peers(how: str) -> None:
    settings: dict[str, Any] = {"xheaders": True} if how == "xheaders" else {}
    config = ServerConfig(proxy_headers=how == "proxy_headers")
    app = Application([("/", WhoAmI)], **settings)
    trusted = {"ip": "203.0.113.7", "protocol": "https"}
    untrusted = {"ip": "198.51.100.1", "protocol": "http"}
    assert await who(app, "127.0.0.1", config) == trusted
    assert await who(app, "198.51.100.1", config) == untrusted
    cidr = ServerConfig(
        proxy_headers=how == "proxy_headers", forwarded_allow_ips="198.51.100.0/24"
    )
    assert await who(app, "198.51.100.1", cidr) == trusted
    assert await who(app, "127.0.0.1", cidr) == {"ip": "127.0.0.1", "protocol": "http"}
    everyone = ServerConfig(
        proxy_headers=how == "proxy_headers", forwarded_allow_ips="*"
    )
    assert await who(app, "198.51.100.1", everyone) == trusted


async def test_off_by_default() -> None:
    app = Application([("/", WhoAmI)])
    assert await who(app, "127.0.0.1") == {"ip": "127.0.0.1", "protocol": "http"}


async def test_the_access_log_shows_the_resolved_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    app = Application([("/", WhoAmI)], xheaders=True)
    await who(app, "127.0.0.1")
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    assert len(lines) == 1
    # The proxy gives no port: none is shown.
    assert lines[0].startswith("203.0.113.7 ")


# -- the command line ------------------------------------------------------------------


async def _serve_and_ask(*flags: str) -> str:
    async with trioweb_process(
        "serve", "tests.apps.input_apps:app", "--port", "0", *flags
    ) as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r":(\d+)$", line)
        assert match, line
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"http://127.0.0.1:{match.group(1)}/",
                headers={
                    "X-Forwarded-For": "203.0.113.7",
                    "X-Forwarded-Proto": "https",
                },
            )
        server.signal(signal.SIGINT)
        assert await server.finish() == 0
        server.assert_clean()
        return r.text


async def test_cli_proxy_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert await _serve_and_ask() == "127.0.0.1 http"
    assert await _serve_and_ask("--proxy-headers") == "203.0.113.7 https"
    flags = ("--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8")
    assert await _serve_and_ask(*flags) == "127.0.0.1 http"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.0.2.1")
    assert await _serve_and_ask("--proxy-headers") == "127.0.0.1 http"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert await _serve_and_ask("--proxy-headers") == "203.0.113.7 https"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("X-Forwarded-For", lambda n: ", ".join(["10.0.0.1"] * n)),
        ("X-Forwarded-For", lambda n: "," * n),
        ("Forwarded", lambda n: ", ".join(["for=10.0.0.1;proto=https"] * n)),
        ("Forwarded", lambda n: 'for="' + ";" * n),
        ("X-Forwarded-Proto", lambda n: "https," * n),
    ],
)
def test_resolving_is_linear(name: str, make: Any) -> None:
    assert_linear(lambda value: resolve("127.0.0.1", (name, value)), make, n=100)


async def test_cli_bad_allow_ips_is_a_one_line_error() -> None:
    async with trioweb_process(
        "serve", "tests.apps.input_apps:app", "--forwarded-allow-ips", "10.0.0.1,lan"
    ) as process:
        assert await process.finish() == 2
        lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("trioweb: error: --forwarded-allow-ips must list")
    assert "'lan' is not an IP address or a CIDR range" in lines[0]


@settings(max_examples=60, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                ["X-Forwarded-For", "X-Real-Ip", "Forwarded", "X-Forwarded-Proto"]
            ),
            st.text(
                alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                min_size=1,
                max_size=40,
            ),
        ),
        max_size=4,
    )
)
async def test_random_proxy_headers_never_give_a_500(
    headers: list[tuple[str, str]],
) -> None:
    app = Application([("/", WhoAmI)], xheaders=True)
    async with TestClient(app) as client:
        r = await client.get("/", headers=headers)
    assert r.status == 200
    assert r.json()["protocol"] in ("http", "https")
