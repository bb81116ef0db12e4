"""RequestHandler errors: HTTPError, send_error, write_error, the default
page, tracebacks, logging, exception groups, errors after the head was sent,
and the per-handler body limit."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from helpers import fetch

from trioweb import (
    Application,
    Finish,
    HTTPError,
    RequestHandler,
    ServerConfig,
)
from trioweb.testing import Response, TestClient


def page(code: int, reason: str) -> str:
    return f"<html><title>{code}: {reason}</title><body>{code}: {reason}</body></html>"


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "trioweb.error" and r.levelno >= logging.WARNING
    ]


@pytest.fixture(autouse=True)
def _capture_error_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trioweb.error")


# -- HTTPError --------------------------------------------------------------


async def test_http_error_status_reason_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write("discarded")
            raise HTTPError(
                418, "no coffee for %s (%d%%)", "ann", 100, reason="I Am A Teapot"
            )

    r = await fetch(H, params={"q": "1"})
    assert (r.status, r.reason) == (418, "I Am A Teapot")
    assert r.text == page(418, "I Am A Teapot")
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    [record] = error_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    message = record.getMessage()
    assert "no coffee for ann (100%)" in message
    assert message.startswith("418 GET /?q=1 (127.0.0.1)")


async def test_http_error_without_log_message_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            raise HTTPError(404)

    r = await fetch(H)
    assert (r.status, r.reason, r.text) == (404, "Not Found", page(404, "Not Found"))
    assert [r for r in caplog.records if r.name == "trioweb.error"] == []


async def test_http_error_log_message_with_percent_and_no_args(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            raise HTTPError(400, "100% wrong")

    r = await fetch(H)
    assert r.status == 400
    [record] = error_records(caplog)
    assert "100% wrong" in record.getMessage()


async def test_http_error_unknown_code_and_unsafe_reason() -> None:
    class Unknown(RequestHandler):
        def get(self) -> None:
            raise HTTPError(599)

    class Unsafe(RequestHandler):
        def get(self) -> None:
            raise HTTPError(400, reason="<b>bold</b>")

    r = await fetch(Unknown)
    assert (r.status, r.reason, r.text) == (599, "Unknown", page(599, "Unknown"))
    r = await fetch(Unsafe)
    assert (r.status, r.reason, r.text) == (400, "Unknown", page(400, "Unknown"))


async def test_missing_argument_is_400_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.write(self.get_argument("needed"))

    r = await fetch(H)
    assert r.status == 400
    [record] = error_records(caplog)
    assert "Missing argument needed" in record.getMessage()
    assert record.exc_info is None


async def test_error_page_starts_from_clear_but_keeps_default_headers() -> None:
    class H(RequestHandler):
        def set_default_headers(self) -> None:
            self.set_header("X-Default", "yes")

        def get(self) -> None:
            self.set_status(201)
            self.set_header("X-Lost", "1")
            self.set_header("Content-Type", "application/octet-stream")
            self.write("body that is thrown away")
            raise HTTPError(409)

    r = await fetch(H)
    assert r.status == 409
    assert r.headers["X-Default"] == "yes"
    assert "X-Lost" not in r.headers
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert r.text == page(409, "Conflict")
    assert r.headers["Content-Length"] == str(len(r.body))


async def test_http_error_with_a_bodiless_status() -> None:
    class NotModified(RequestHandler):
        def get(self) -> None:
            raise HTTPError(304)

    class NoContent(RequestHandler):
        def get(self) -> None:
            raise HTTPError(204)

    for handler, status in ((NotModified, 304), (NoContent, 204)):
        r = await fetch(handler)
        assert (r.status, r.body) == (status, b"")
        assert "Content-Type" not in r.headers


# -- send_error and write_error ----------------------------------------------------


async def test_send_error_from_a_handler(caplog: pytest.LogCaptureFixture) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("thrown away")
            await self.send_error(503, reason="Come Back Later")

    r = await fetch(H)
    assert (r.status, r.reason) == (503, "Come Back Later")
    assert r.text == page(503, "Come Back Later")
    assert error_records(caplog) == []


async def test_send_error_passes_kwargs_to_write_error() -> None:
    seen: list[tuple[int, dict[str, Any]]] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await self.send_error(429, retry_after=30)

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            seen.append((status_code, kwargs))
            self.set_header("Retry-After", kwargs["retry_after"])
            self.write(f"slow down ({status_code})")

    r = await fetch(H)
    assert (r.status, r.text) == (429, "slow down (429)")
    assert r.headers["Retry-After"] == "30"
    assert seen == [(429, {"retry_after": 30})]


@pytest.mark.parametrize("is_async", [False, True])
async def test_write_error_override_sees_the_exception(is_async: bool) -> None:
    seen: list[Any] = []

    class H(RequestHandler):
        def get(self) -> None:
            raise HTTPError(403, "forbidden for %s", "bob")

        def post(self) -> None:
            raise KeyError("missing")

    if is_async:

        async def write_error(self: H, status_code: int, **kwargs: Any) -> None:
            await trio.lowlevel.checkpoint()
            seen.append(kwargs["exc_info"][1])
            await self.finish({"error": status_code, "async": True})

    else:

        def write_error(self: H, status_code: int, **kwargs: Any) -> None:  # type: ignore[misc]
            seen.append(kwargs["exc_info"][1])
            self.write({"error": status_code, "async": False})

    H.write_error = write_error  # type: ignore[method-assign,assignment]
    async with TestClient(Application([("/", H)])) as client:
        r = await client.get("/")
        assert r.status == 403
        assert r.json() == {"error": 403, "async": is_async}
        assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
        r = await client.post("/", body=b"x")
        assert r.status == 500
        assert r.json() == {"error": 500, "async": is_async}
    assert isinstance(seen[0], HTTPError)
    assert seen[0].status_code == 403
    assert isinstance(seen[1], KeyError)


async def test_write_error_that_fails_is_logged_and_the_status_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            raise HTTPError(404)

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.write("partial page, ")
            raise RuntimeError("the error page is broken")

    r = await fetch(H)
    assert r.status == 404
    [record] = error_records(caplog)
    assert "write_error" in record.getMessage()
    assert record.exc_info is not None


# -- the default page and tracebacks ------------------------------------------------


async def test_unhandled_exception_is_500_with_one_error_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-Before", "1")
            raise ZeroDivisionError("secret detail")

    r = await fetch(H)
    assert (r.status, r.reason) == (500, "Internal Server Error")
    assert r.text == page(500, "Internal Server Error")
    assert "secret" not in r.text
    assert "X-Before" not in r.headers
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ZeroDivisionError)
    assert "GET / (127.0.0.1)" in record.getMessage()


@pytest.mark.parametrize(
    "settings", [{"serve_traceback": True}, {"debug": True}], ids=["serve_tb", "debug"]
)
async def test_traceback_is_served_when_enabled(settings: dict[str, Any]) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            raise ValueError("visible detail")

    r = await fetch(H, settings=settings)
    assert r.status == 500
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert r.text.startswith("Traceback (most recent call last):")
    assert "ValueError: visible detail" in r.text
    assert "in get" in r.text


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"serve_traceback": False},
        {"debug": False},
        {"debug": True, "serve_traceback": False},
    ],
)
async def test_traceback_is_not_served_otherwise(settings: dict[str, Any]) -> None:
    class H(RequestHandler):
        def get(self) -> None:
            raise ValueError("hidden detail")

    r = await fetch(H, settings=settings)
    assert r.status == 500
    assert r.text == page(500, "Internal Server Error")
    assert "hidden" not in r.text


async def test_send_error_without_an_exception_serves_no_traceback() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            await self.send_error(500)

    r = await fetch(H, settings={"serve_traceback": True})
    assert r.text == page(500, "Internal Server Error")


# -- exception groups -----------------------------------------------------------------


async def _fail_with(exc: BaseException) -> None:
    await trio.lowlevel.checkpoint()
    raise exc


async def _raise_now(exc: BaseException) -> None:
    raise exc


async def test_http_error_inside_a_group_keeps_its_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(_fail_with, HTTPError(403, "denied %s", "x"))

    r = await fetch(H)
    assert (r.status, r.text) == (403, page(403, "Forbidden"))
    [record] = error_records(caplog)
    assert record.levelno == logging.WARNING
    assert "denied x" in record.getMessage()


async def test_nested_single_groups_are_unwrapped() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as outer:

                async def inner() -> None:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_fail_with, HTTPError(410))

                outer.start_soon(inner)

    r = await fetch(H)
    assert r.status == 410


async def test_error_inside_a_group_is_500_with_one_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(_fail_with, ValueError("in a task"))

    r = await fetch(H)
    assert (r.status, r.text) == (500, page(500, "Internal Server Error"))
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_finish_inside_a_group_finishes() -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.set_status(202)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_fail_with, Finish("from a task"))

    r = await fetch(H)
    assert (r.status, r.text) == (202, "from a task")


async def test_group_of_several_errors_is_500_with_one_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as nursery:
                # No checkpoint before the raise: both fail, neither is
                # cancelled by the other's failure first.
                nursery.start_soon(_raise_now, HTTPError(403))
                nursery.start_soon(_raise_now, ValueError("second"))

    r = await fetch(H)
    assert r.status == 500
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert isinstance(record.exc_info[1], BaseExceptionGroup)  # type: ignore[index]


# -- errors once the head is out ----------------------------------------------------


def access_statuses(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split('" ')[1].split()[0]
        for r in caplog.records
        if r.name == "trioweb.access"
    ]


async def _get_raw(app: Application) -> bytes:
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(1):
            return await conn.receive_until_closed()


async def test_exception_after_flush_aborts_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ending the chunked body with its last chunk would make a truncated
    # response look complete (a cache would keep it): the connection is
    # closed mid-body instead.
    caplog.set_level(logging.INFO, logger="trioweb.access")

    class H(RequestHandler):
        async def get(self) -> None:
            self.write("streamed part")
            await self.flush()
            self.write(" and more")
            raise ValueError("mid-stream")

    data = await _get_raw(Application([("/", H)]))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in data
    assert data.endswith(b"\r\n\r\nd\r\nstreamed part\r\n")
    assert b"0\r\n\r\n" not in data
    assert b"<html>" not in data
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert access_statuses(caplog) == ["444"]


async def test_http_error_after_flush_aborts_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("begun")
            await self.flush()
            raise HTTPError(403, "too late for %s", "a page")

    data = await _get_raw(Application([("/", H)]))
    assert data.endswith(b"\r\n\r\n5\r\nbegun\r\n")
    [record] = error_records(caplog)
    assert record.levelno == logging.WARNING
    assert "too late for a page" in record.getMessage()


async def test_on_finish_runs_after_a_mid_stream_failure() -> None:
    finished: list[bool] = []

    class H(RequestHandler):
        async def get(self) -> None:
            await self.flush()
            raise ValueError("mid-stream")

        def on_finish(self) -> None:
            finished.append(True)

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await conn.receive_until_closed()
        await conn.server_done.wait()
    assert finished == [True]


async def test_exception_after_flush_with_content_length_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A response that promised 100 bytes and sent 5 cannot end honestly:
    # the connection is closed, so the client sees it was cut short.
    class H(RequestHandler):
        async def get(self) -> None:
            self.set_header("Content-Length", 100)
            self.write("12345")
            await self.flush()
            raise ValueError("short")

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await conn.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n12345")
    [record] = error_records(caplog)
    assert isinstance(record.exc_info[1], ValueError)  # type: ignore[index]


async def test_explicit_send_error_after_flush_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class H(RequestHandler):
        async def get(self) -> None:
            self.write("begun")
            await self.flush()
            await self.send_error(500)

    r = await fetch(H)
    assert (r.status, r.body) == (200, b"begun")
    [record] = error_records(caplog)
    assert "after headers written" in record.getMessage()


# -- log_exception ---------------------------------------------------------------------


async def test_log_exception_can_be_overridden(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    class H(RequestHandler):
        def get(self) -> None:
            raise ValueError("custom logging")

        def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
            seen.append((typ, str(value), tb is not None))

    r = await fetch(H)
    assert r.status == 500
    assert seen == [(ValueError, "custom logging", True)]
    assert error_records(caplog) == []


# -- the body limit per handler ------------------------------------------------------


class Echo(RequestHandler):
    def post(self) -> None:
        self.write(str(len(self.request.body)))


class BigEcho(Echo):
    max_body_size = 1000


class SmallEcho(Echo):
    max_body_size = 10

    def prepare(self) -> None:
        calls.append("prepare")


calls: list[str] = []


async def test_handler_max_body_size_larger_than_the_server_default() -> None:
    app = Application([("/big", BigEcho), ("/default", Echo)])
    async with TestClient(app, config=ServerConfig(max_body_size=100)) as client:
        r = await client.post("/big", body=b"x" * 1000)
        assert (r.status, r.text) == (200, "1000")
        r = await client.post("/big", body=b"x" * 1001)
        assert r.status == 413
        r = await client.post("/default", body=b"x" * 100)
        assert (r.status, r.text) == (200, "100")
        r = await client.post("/default", body=b"x" * 500)
        assert r.status == 413


async def test_handler_max_body_size_larger_with_a_chunked_body() -> None:
    app = Application([("/big", BigEcho)])
    async with TestClient(app, config=ServerConfig(max_body_size=100)) as client:
        conn = await client.raw()
        chunk = b"x" * 300
        await conn.send(
            b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3
            + b"0\r\n\r\n"
        )
        r = await conn.read_response("POST")
    assert (r.status, r.text) == (200, "900")


async def test_handler_max_body_size_smaller_is_413_before_reading() -> None:
    calls.clear()
    async with TestClient(Application([("/small", SmallEcho)])) as client:
        r = await client.post("/small", body=b"x" * 10)
        assert (r.status, r.text) == (200, "10")
        r = await client.post("/small", body=b"x" * 11)
        assert r.status == 413
        assert r.text == page(413, "Content Too Large")
        assert r.headers["Connection"] == "close"
    assert calls == ["prepare"]  # not for the refused request


async def test_handler_max_body_size_smaller_with_expect_100_continue() -> None:
    calls.clear()
    async with TestClient(Application([("/small", SmallEcho)])) as client:
        conn = await client.raw()
        await conn.send(
            b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data = await conn.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in data
    assert calls == []


async def test_handler_max_body_size_smaller_with_a_chunked_body() -> None:
    calls.clear()
    async with TestClient(Application([("/small", SmallEcho)])) as client:
        conn = await client.raw()
        await conn.send(
            b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        )
        data = await conn.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 413 ")
    assert calls == []


# -- what is not a handler error -----------------------------------------------------


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains(e, kind) for e in exc.exceptions)
    return isinstance(exc, kind)


async def test_keyboard_interrupt_in_a_handler_nursery_is_not_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ctrl-C can land in whatever task runs; inside a handler's nursery it
    # arrives in a group, and must still stop the server, not become a 500.
    class H(RequestHandler):
        async def get(self) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_raise_now, KeyboardInterrupt())

    responses: list[Response] = []
    with pytest.raises(BaseException) as info:
        async with TestClient(Application([("/", H)])) as client:
            responses.append(await client.get("/"))
    assert _contains(info.value, KeyboardInterrupt)
    assert responses == []
    assert error_records(caplog) == []


@pytest.mark.parametrize("is_async", [False, True])
async def test_a_method_that_returns_a_value_is_a_500(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # A returned value is not the response; Tornado fails the same way.
    if is_async:

        class H(RequestHandler):
            async def get(self) -> dict[str, int]:
                return {"a": 1}

    else:

        class H(RequestHandler):  # type: ignore[no-redef]
            def get(self) -> dict[str, int]:
                return {"a": 1}

    r = await fetch(H)
    assert r.status == 500
    [record] = error_records(caplog)
    assert isinstance(record.exc_info[1], TypeError)  # type: ignore[index]
    assert "H.get() returned {'a': 1}" in str(record.exc_info[1])  # type: ignore[index]


async def test_body_short_of_its_content_length_at_finish_after_flush_aborts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")

    class H(RequestHandler):
        async def get(self) -> None:
            self.set_header("Content-Length", 10)
            self.write("12345")
            await self.flush()
            await self.finish()

    data = await _get_raw(Application([("/", H)]))
    assert data.endswith(b"\r\n\r\n12345")
    [record] = error_records(caplog)
    assert "short" in str(record.exc_info[1])  # type: ignore[index]
    assert access_statuses(caplog) == ["444"]
