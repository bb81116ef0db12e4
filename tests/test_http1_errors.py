"""Application faults and bad responses: a bug in the app is a 500 with one
logged traceback, never a crash of the connection engine; a header that
could split the response never reaches the wire."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from helpers import content_length

import trioweb
from trioweb.errors import HTTPError
from trioweb.server.http1 import Exchange
from trioweb.testing import RawConnection, TestClient

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class Buggy:
    """Fails in the way ``mode`` says, on ``/bug``; answers 200 elsewhere."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def handle_exchange(self, exchange: Exchange) -> None:
        if exchange.target != "/bug":
            await exchange.send_response(200, [content_length(b"ok")], b"ok")
            return
        if self.mode == "raise":
            raise ZeroDivisionError("boom")
        if self.mode == "raise-after-head":
            await exchange.send_response(200, [], b"partial", end=False)
            raise ZeroDivisionError("boom")
        if self.mode == "return-silently":
            return
        if self.mode == "return-unfinished":
            await exchange.send_response(200, [], b"partial", end=False)
            return
        if self.mode == "short-body":
            await exchange.send_response(
                200, [content_length(b"0123456789")], b"01234", end=False
            )
            return
        if self.mode == "http-error":
            raise HTTPError(404)
        raise AssertionError(self.mode)


async def _closed(raw: RawConnection) -> None:
    assert await raw.receive_until_closed() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert raw.server_done.is_set()


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("trioweb") and r.levelno >= logging.ERROR
    ]


async def test_app_exception_is_500_with_one_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(Buggy("raise")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.status == 500
        assert r.headers["Connection"] == "close"
        assert b"boom" not in r.body  # the traceback is for the log only
        await _closed(raw)
        assert (await client.get("/")).body == b"ok"
    [record] = _errors(caplog)
    assert record.name == "trioweb.error"
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


async def test_app_exception_after_the_head_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(Buggy("raise-after-head")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await raw.receive_until_closed()
        assert data.startswith(b"HTTP/1.1 200 ")
        # The body was cut short: no final chunk, so the client can tell.
        assert not data.endswith(b"0\r\n\r\n")
        assert (await client.get("/")).body == b"ok"
    [record] = _errors(caplog)
    assert record.exc_info is not None


async def test_app_returning_without_a_response_is_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(Buggy("return-silently")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.status == 500
        assert r.headers["Connection"] == "close"
        await _closed(raw)
    assert len(_errors(caplog)) == 1


async def test_app_returning_mid_response_gets_it_ended() -> None:
    async with TestClient(Buggy("return-unfinished")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert (r.status, r.body) == (200, b"partial")
        await raw.send(REQUEST)
        assert (await raw.read_response()).body == b"ok"


async def test_app_sending_less_than_its_content_length_closes() -> None:
    async with TestClient(Buggy("short-body")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await raw.receive_until_closed()
        assert data.endswith(b"\r\n\r\n01234")
        await trio.testing.wait_all_tasks_blocked()
        assert raw.server_done.is_set()


async def test_http_error_escaping_the_app_is_answered_and_keeps_alive() -> None:
    async with TestClient(Buggy("http-error")) as client:
        raw = await client.raw()
        await raw.send(b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
        assert r.status == 404
        assert "Connection" not in r.headers
        await raw.send(REQUEST)
        assert (await raw.read_response()).body == b"ok"


# -- response heads that must not reach the wire -----------------------------------

BAD_VALUES = [b"a\r\nInjected: yes", b"a\nInjected: yes", b"a\rInjected", b"a\x00b"]


class BadHead:
    """Tries a bad header value or reason; answers 500 itself on ValueError
    (or lets it escape, if ``escape``)."""

    def __init__(
        self,
        *,
        value: bytes = b"fine",
        reason: bytes | None = None,
        escape: bool = False,
    ) -> None:
        self.value = value
        self.reason = reason
        self.escape = escape
        self.errors: list[ValueError] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        try:
            await exchange.send_response(
                200,
                [(b"x-value", self.value), content_length(b"body")],
                b"body",
                reason=self.reason,
            )
        except ValueError as exc:
            self.errors.append(exc)
            if self.escape:
                raise
            assert not exchange.head_sent
            await exchange.send_response(500, [content_length(b"sorry")], b"sorry")


@pytest.mark.parametrize("value", BAD_VALUES)
async def test_bad_header_value_is_refused_before_anything_is_sent(
    value: bytes,
) -> None:
    app = BadHead(value=value)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 500 ")
        assert data.endswith(b"sorry")
        assert b"Injected" not in data and b"x-value" not in data
        assert len(app.errors) == 1


@pytest.mark.parametrize(
    "reason", [b"OK\r\nInjected: yes", b"OK\nX", b"O\rK", b"O\x00K"]
)
async def test_bad_reason_is_refused_before_anything_is_sent(reason: bytes) -> None:
    app = BadHead(reason=reason)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        data = await raw.receive_available()
        assert data.startswith(b"HTTP/1.1 500 ")
        assert b"Injected" not in data and b"OK" not in data
        assert len(app.errors) == 1


async def test_custom_reason_is_sent() -> None:
    async with TestClient(BadHead(reason=b"Very Fine")) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        assert (await raw.read_response()).reason == "Very Fine"


async def test_bad_header_escaping_the_app_is_a_500_from_the_engine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = BadHead(value=BAD_VALUES[0], escape=True)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(REQUEST)
        data = await raw.receive_until_closed()
        assert data.startswith(b"HTTP/1.1 500 ")
        assert b"connection: close\r\n" in data.lower()
        assert b"Injected" not in data
    [record] = _errors(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError


# -- a 1xx status cannot end an exchange ---------------------------------------------


@pytest.mark.parametrize("status", [100, 101, 103])
async def test_a_1xx_final_response_is_refused_before_anything_is_sent(
    status: int, http_backend: str
) -> None:
    app = BadStatus(status)
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(REQUEST + REQUEST)
        first = await raw.read_response()
        second = await raw.read_response()
        await raw.aclose()
    assert (first.status, first.body) == (500, b"sorry")
    assert (second.status, second.body) == (500, b"sorry")
    assert len(app.errors) == 2
    assert f"status {status} cannot be a final response" in str(app.errors[0])


class BadStatus:
    def __init__(self, status: int) -> None:
        self.status = status
        self.errors: list[ValueError] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        try:
            await exchange.send_response(self.status, [content_length(b"")])
        except ValueError as exc:
            self.errors.append(exc)
            assert not exchange.head_sent
            await exchange.send_response(500, [content_length(b"sorry")], b"sorry")


@pytest.mark.parametrize("status", [100, 101, 103])
async def test_a_handler_answering_1xx_gets_a_500_and_the_connection_stays_in_step(
    status: int, http_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Early(trioweb.RequestHandler):
        async def get(self) -> None:
            self.set_status(int(self.get_argument("s")))
            await self.finish()

    app = trioweb.Application([("/", Early)])
    async with TestClient(app) as client:
        raw = await client.raw()
        await raw.send(
            b"GET /?s=%d HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /?s=200 HTTP/1.1\r\nHost: x\r\n\r\n" % status
        )
        first = await raw.read_response()
        second = await raw.read_response()
        await raw.aclose()
    assert first.status == 500
    assert second.status == 200
    [record] = _errors(caplog)
    assert record.exc_info is not None and record.exc_info[0] is ValueError
