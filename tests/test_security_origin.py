"""Cross-origin protection: Tornado 6.6's decision table, through the
TestClient (and the pure rule on its own)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from trioweb import Application, RequestHandler
from trioweb.security import check_cross_origin, origin_matches_host
from trioweb.testing import TestClient

body_read: list[bytes] = []


class Target(RequestHandler):
    def prepare(self) -> None:
        body_read.append(self.request.body)

    def get(self) -> None:
        self.write("ok")

    post = put = patch = delete = options = get


TRUSTED = "https://partner.example"

# (method, Sec-Fetch-Site, Origin, Host, allowed?) -- Tornado 6.6's table.
TABLE = [
    # Safe methods are never checked.
    ("GET", "cross-site", "https://evil.example", "app.example", True),
    ("HEAD", "cross-site", "https://evil.example", "app.example", True),
    ("OPTIONS", "cross-site", "https://evil.example", "app.example", True),
    # The browser says same-origin, or the user navigated directly.
    ("POST", "same-origin", "https://evil.example", "app.example", True),
    ("POST", "none", None, "app.example", True),
    # No Sec-Fetch-Site: the Origin decides, against the Host header.
    ("POST", None, None, "app.example", True),
    ("POST", None, "https://app.example", "app.example", True),
    ("POST", None, "http://APP.example", "app.example", True),
    ("POST", None, "https://app.example:8443", "app.example:8443", True),
    ("POST", None, "https://app.example:8443", "app.example", False),
    ("POST", None, "https://evil.example", "app.example", False),
    ("POST", None, "null", "app.example", False),
    ("POST", None, TRUSTED, "app.example", True),
    # Sec-Fetch-Site says another origin: only a trusted Origin passes.
    ("POST", "cross-site", "https://evil.example", "app.example", False),
    ("POST", "cross-site", "https://app.example", "app.example", False),
    ("POST", "cross-site", None, "app.example", False),
    ("POST", "cross-site", TRUSTED, "app.example", True),
    ("POST", "same-site", "https://sub.app.example", "app.example", False),
    ("POST", "same-site", TRUSTED, "app.example", True),
    ("POST", "unexpected-value", TRUSTED, "app.example", True),
    ("POST", "unexpected-value", "https://app.example", "app.example", False),
    # Every unsafe method is checked.
    ("PUT", "cross-site", "https://evil.example", "app.example", False),
    ("PATCH", "cross-site", "https://evil.example", "app.example", False),
    ("DELETE", "cross-site", "https://evil.example", "app.example", False),
]


def headers_for(sfs: str | None, origin: str | None, host: str) -> dict[str, str]:
    headers = {"Host": host}
    if sfs is not None:
        headers["Sec-Fetch-Site"] = sfs
    if origin is not None:
        headers["Origin"] = origin
    return headers


@pytest.mark.parametrize(("method", "sfs", "origin", "host", "allowed"), TABLE)
async def test_decision_table(
    method: str,
    sfs: str | None,
    origin: str | None,
    host: str,
    allowed: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(
        [("/", Target)], cross_origin_protection=True, trusted_origins=[TRUSTED]
    )
    body_read.clear()
    async with TestClient(app) as client:
        r = await client.request(
            method, "/", headers=headers_for(sfs, origin, host), body=b"payload"
        )
    if allowed:
        assert r.status == 200
        return
    assert r.status == 403
    # Refused from the headers alone: the body was never read, prepare()
    # never ran, and one WARNING says why.
    assert body_read == []
    messages = [
        rec.getMessage()
        for rec in caplog.records
        if rec.name == "trioweb.error" and rec.levelno == logging.WARNING
    ]
    assert len(messages) == 1 and "not allowed" in messages[0]


async def test_off_by_default() -> None:
    async with TestClient(Application([("/", Target)])) as client:
        r = await client.post(
            "/", headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://e.x"}
        )
    assert r.status == 200


async def test_check_trusted_origin_override() -> None:
    class Partners(Target):
        def check_trusted_origin(self, origin: str) -> bool:
            return origin.endswith(".partner.example")

    app = Application([("/", Partners)], cross_origin_protection=True)
    async with TestClient(app) as client:
        ok = await client.post(
            "/",
            headers={
                "Sec-Fetch-Site": "cross-site",
                "Origin": "https://a.partner.example",
            },
        )
        refused = await client.post(
            "/", headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://x.example"}
        )
    assert (ok.status, refused.status) == (200, 403)


async def test_both_protections_together() -> None:
    # With xsrf_cookies too, a same-origin POST still needs its token.
    app = Application(
        [("/", Target)],
        cross_origin_protection=True,
        xsrf_cookies=True,
        cookie_secret="k",
    )
    async with TestClient(app) as client:
        r = await client.post("/", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status == 403


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        ("https://a.example", "a.example", True),
        ("https://user@a.example", "a.example", False),
        ("http://[", "a.example", False),
        ("https://a.example/path", "a.example", True),
        ("https://a.example", "b.example", False),
        ("null", "", False),
        ("", "", False),
        ("https://", "", False),
    ],
)
def test_origin_matches_host(origin: str, host: str, expected: bool) -> None:
    assert origin_matches_host(origin, host) is expected


def test_trust_is_asked_only_for_cross_origin_requests() -> None:
    asked: list[str] = []

    def trust(origin: str) -> Any:
        asked.append(origin)
        return False

    assert check_cross_origin("same-origin", "https://x", "h", trust) is None
    assert check_cross_origin(None, "https://h", "h", trust) is None
    assert check_cross_origin(None, None, "h", trust) is None
    assert asked == []
    assert check_cross_origin("cross-site", "https://x", "h", trust) is not None
    assert asked == ["https://x"]
