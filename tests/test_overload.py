"""Deadlines and overload (trioweb.overload): request_timeout and
self.deadline, per-route max_concurrency / max_queue_time, the server-wide
limit_concurrency, and how they compose with disconnects and shutdown.

Every timing test runs under ``autojump_clock``; the ``--limit-concurrency``
flag is tested over real sockets against ``trioweb serve``.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import pytest
import trio
import trio.testing
from test_cli import APP, Client, run_trioweb, serving

from trioweb import (
    Application,
    DeadlineExceeded,
    Overloaded,
    RequestHandler,
    ServerConfig,
)
from trioweb.testing import TestClient

pytestmark = pytest.mark.usefixtures("no_tracebacks")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "trioweb.error" and r.levelno == logging.WARNING
    ]


# -- request deadlines -----------------------------------------------------------


class Slow(RequestHandler):
    request_timeout = 1.0
    events: list[str]

    async def get(self) -> None:
        self.events.append("get")
        try:
            await trio.sleep(10)
            self.write("too late")
        finally:
            self.events.append("finally")

    def on_finish(self) -> None:
        self.events.append("on_finish")


async def test_a_deadline_cancels_a_slow_handler_with_503(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class H(Slow):
        events: list[str] = []

    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        response = await client.get("/")
        elapsed = trio.current_time() - start
        assert response.status == 503
        assert "503: Service Unavailable" in response.text  # the default page
        assert "connection" not in response.headers  # the connection is kept
        # on_finish() runs once the response is sent: over a socket the
        # client may see it first. Let the server finish.
        await trio.testing.wait_all_tasks_blocked()
        assert H.events == ["get", "finally", "on_finish"]
        assert elapsed == pytest.approx(1.0)
        # The connection serves the next request.
        H.events.clear()
        assert (await client.get("/")).status == 503
        assert len(client.server_connections) == 1
    (first, _) = access_lines(caplog)
    assert re.search(r'"GET / HTTP/1.1" 503 \d+ 1000\.0ms \(timeout\)$', first), first
    timeouts = [r.getMessage() for r in warnings(caplog)]
    assert timeouts == ["503 GET / (127.0.0.1): request_timeout of 1 s expired"] * 2


async def test_the_deadline_page_goes_through_write_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(Slow):
        events: list[str] = []

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            exc = kwargs["exc_info"][1]
            assert isinstance(exc, DeadlineExceeded)
            self.write({"error": "timeout", "after": exc.timeout})

    async with TestClient(Application([("/", H)])) as client:
        response = await client.get("/")
    assert response.status == 503
    assert response.json() == {"error": "timeout", "after": 1.0}


async def test_the_setting_applies_and_a_class_overrides_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Sleeper(RequestHandler):
        async def get(self) -> None:
            await trio.sleep(float(self.get_argument("s")))
            self.write("done")

    class Patient(Sleeper):
        request_timeout = math.inf

    class Strict(Sleeper):
        request_timeout = 0.5

    app = Application(
        [("/", Sleeper), ("/patient", Patient), ("/strict", Strict)],
        request_timeout=2,
    )
    async with TestClient(app) as client:
        assert (await client.get("/", params={"s": 1.5})).status == 200
        assert (await client.get("/", params={"s": 2.5})).status == 503
        assert (await client.get("/patient", params={"s": 100})).status == 200
        assert (await client.get("/strict", params={"s": 1})).status == 503


async def test_no_deadline_by_default(autojump_clock: trio.abc.Clock) -> None:
    seen: list[float] = []

    class H(RequestHandler):
        async def get(self) -> None:
            seen.append(self.deadline)
            await trio.sleep(1000)
            self.write("done")

    async with TestClient(Application([("/", H)])) as client:
        assert (await client.get("/")).text == "done"
    assert seen == [math.inf]


async def test_self_deadline_is_the_absolute_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(RequestHandler):
        request_timeout = 3.0

        async def get(self) -> None:
            left = self.deadline - trio.current_time()
            # Passing the budget on: the call gives up before the deadline,
            # and the handler still answers.
            with trio.move_on_at(self.deadline - 0.5):
                await trio.sleep(100)
            self.write({"left": left, "at_answer": self.deadline - trio.current_time()})

    async with TestClient(Application([("/", H)])) as client:
        response = await client.get("/")
    assert response.status == 200
    assert response.json() == {"left": 3.0, "at_answer": pytest.approx(0.5)}


async def test_a_deadline_after_the_head_was_sent_closes_the_connection(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    class H(RequestHandler):
        request_timeout = 1.0

        async def get(self) -> None:
            self.write("part one;")
            await self.flush()
            try:
                await trio.sleep(10)
            finally:
                events.append("finally")
            self.write("part two")

        def on_finish(self) -> None:
            events.append("on_finish")

    async with TestClient(Application([("/", H)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = await conn.receive_until_closed()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    # The first chunk, and no last chunk: the client sees the body cut short.
    assert body == b"9\r\npart one;\r\n"
    assert events == ["finally", "on_finish"]
    (line,) = access_lines(caplog)
    assert re.search(r'" 444 9 1000\.0ms \(timeout\)$', line), line
    (warning,) = warnings(caplog)
    assert warning.getMessage() == (
        "GET / (127.0.0.1): request_timeout of 1 s expired after the response "
        "started; closing the connection"
    )


def test_impossible_limits_are_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ValueError, match=r"max_concurrency must be a whole number"):

        class A(RequestHandler):
            max_concurrency = 0

    with pytest.raises(ValueError, match=r"max_queue_time must be .* 0 or more"):

        class B(RequestHandler):
            max_queue_time = -1

    with pytest.raises(ValueError, match=r"request_timeout must be greater than 0"):

        class C(RequestHandler):
            request_timeout = 0

    with pytest.raises(ValueError, match=r"retry_after must be 0 or more"):

        class D(RequestHandler):
            retry_after = -5

    with pytest.raises(TypeError, match=r"request_timeout setting must be a number"):
        Application([], request_timeout="10s")
    with pytest.raises(ValueError, match=r"limit_concurrency must be 1 or more"):
        ServerConfig(limit_concurrency=0)


# -- per-route concurrency ------------------------------------------------------------


class Gate:
    """Handlers that wait until the test opens the gate, counting runs."""

    def __init__(self) -> None:
        self.open = trio.Event()
        self.started = 0
        self.prepared = 0


def gated(gate: Gate, **attributes: Any) -> type[RequestHandler]:
    class H(RequestHandler):
        def prepare(self) -> None:
            gate.prepared += 1

        async def get(self) -> None:
            gate.started += 1
            await gate.open.wait()
            self.write("ok")

        post = get

    for name, value in attributes.items():
        setattr(H, name, value)
    return H


async def test_max_concurrency_admits_n_and_sheds_the_next(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate, max_concurrency=2))])
    results: list[int] = []
    async with TestClient(app) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(_status_into, results, client.get("/"))
            await trio.testing.wait_all_tasks_blocked()
            assert gate.started == 2
            start = trio.current_time()
            shed = await client.get("/")
            assert trio.current_time() == start  # at once: no queueing
            assert shed.status == 503
            assert shed.headers["Retry-After"] == "1"
            assert "503: Service Unavailable" in shed.text
            assert gate.prepared == 2  # the shed request never ran
            gate.open.set()
        assert results == [200, 200]
        # Capacity is back.
        assert (await client.get("/")).status == 200
    assert sum(line.endswith("(shed)") for line in access_lines(caplog)) == 1


async def test_a_changed_max_concurrency_applies_to_the_next_requests(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    handler = gated(gate, max_concurrency=1)
    client = TestClient(Application([("/", handler)]))
    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/")
        await trio.testing.wait_all_tasks_blocked()
        assert (await client.get("/")).status == 503
        handler.max_concurrency = 2
        nursery.start_soon(client.get, "/")
        await trio.testing.wait_all_tasks_blocked()
        assert gate.started == 2
        assert (await client.get("/")).status == 503
        gate.open.set()


async def _status_into(results: list[int], request: Any) -> None:
    results.append((await request).status)


async def test_a_queued_request_runs_when_a_slot_frees_in_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    class H(RequestHandler):
        max_concurrency = 1
        max_queue_time = 5.0

        async def get(self) -> None:
            await trio.sleep(2)
            self.write(str(trio.current_time()))

    done: dict[str, tuple[int, float]] = {}

    async def get(name: str, client: TestClient) -> None:
        response = await client.get("/")
        done[name] = (response.status, trio.current_time())

    async with TestClient(Application([("/", H)])) as client:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, "first", client)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(get, "second", client)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(get, "third", client)
    # One at a time: the second waited 2 s, the third 4 s -- under 5 s each.
    assert {k: (s, t - start) for k, (s, t) in done.items()} == {
        "first": (200, 2.0),
        "second": (200, 4.0),
        "third": (200, 6.0),
    }


async def test_the_queue_wait_is_bounded_by_max_queue_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    app = Application(
        [("/", gated(gate, max_concurrency=1, max_queue_time=1.5, retry_after=7))]
    )
    async with TestClient(app) as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        shed = await client.get("/")
        assert trio.current_time() - start == pytest.approx(1.5)
        assert (shed.status, shed.headers["Retry-After"]) == (503, "7")
        assert gate.prepared == 1
        gate.open.set()


@pytest.mark.parametrize("cancel_on_disconnect", [True, False])
async def test_a_queued_client_that_leaves_is_dropped_from_the_queue(
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    cancel_on_disconnect: bool,
) -> None:
    gate = Gate()
    handler = gated(
        gate,
        max_concurrency=1,
        max_queue_time=100.0,
        cancel_on_disconnect=cancel_on_disconnect,
    )
    async with TestClient(Application([("/", handler)])) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get, "/")
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            # Queued, then gone after 1 s: abort() returns once the server
            # side of that connection has ended -- long before the 100 s.
            assert await client.abort("GET", "/", after=1.0) == b""
            assert trio.current_time() - start == pytest.approx(1.0)
            gate.open.set()
        # The slot went to nobody else: only the first request ran, and the
        # next one is admitted at once.
        assert gate.prepared == 1
        assert (await client.get("/")).status == 200
        assert gate.prepared == 2
    assert any(
        re.search(r'" 499 0 1000\.0ms$', line) for line in access_lines(caplog)
    ), access_lines(caplog)


async def test_shedding_does_not_read_the_body_and_keeps_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate, max_concurrency=1))])
    async with TestClient(app) as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/")
        await trio.testing.wait_all_tasks_blocked()
        conn = await client.raw()
        # Only the head: the 503 comes before a byte of the body was sent.
        await conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        shed = await conn.read_response()
        assert (shed.status, shed.headers["Retry-After"]) == (503, "1")
        assert "Connection" not in shed.headers
        # The body the client sends anyway is drained, within max_body_size,
        # and the connection serves the next request.
        await conn.send(b"0123456789")
        await conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert (await conn.read_response()).status == 503

        # A client waiting for 100 Continue never gets it: it is told 503
        # and the connection ends, since its body may never come.
        waiting = await client.raw()
        await waiting.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        received = await waiting.receive_until_closed()
        assert received.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"100 Continue" not in received
        assert b"connection: close" in received.lower()
        assert gate.prepared == 1
        gate.open.set()


async def test_a_queued_request_gets_503_when_shutdown_begins(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate, max_concurrency=1, max_queue_time=100.0))])
    results: list[int] = []
    async with TestClient(app) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_status_into, results, client.get("/"))
            await trio.testing.wait_all_tasks_blocked()
            queued = await client.raw()
            await queued.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            # What the server does to every connection when shutdown begins.
            for conn in client.server_connections:
                conn.shutdown()
            response = await queued.read_response()
            assert trio.current_time() == start  # at once, not after 100 s
            assert response.status == 503
            assert response.headers["Connection"] == "close"
            # The request in flight finishes normally.
            gate.open.set()
        assert results == [200]
        assert gate.prepared == 1


async def test_a_request_that_arrives_during_shutdown_does_not_queue(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate, max_concurrency=1, max_queue_time=100.0))])
    async with TestClient(app) as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/")
        await trio.testing.wait_all_tasks_blocked()
        late = await client.raw()
        await late.send(b"GET / HTTP/1.1\r\n")  # half a head when shutdown begins
        await trio.testing.wait_all_tasks_blocked()
        for conn in client.server_connections:
            conn.shutdown()
        start = trio.current_time()
        await late.send(b"Host: x\r\n\r\n")
        response = await late.read_response()
        assert trio.current_time() == start
        assert (response.status, response.headers["Connection"]) == (503, "close")
        gate.open.set()


async def test_raising_overloaded_sheds_with_retry_after() -> None:
    class H(RequestHandler):
        def get(self) -> None:
            self.set_header("X-Dropped", "yes")  # an error page starts clean
            raise Overloaded(retry_after=30)

    async with TestClient(Application([("/", H)])) as client:
        response = await client.get("/")
    assert (response.status, response.headers["Retry-After"]) == (503, "30")
    assert "X-Dropped" not in response.headers
    with pytest.raises(ValueError, match="retry_after must be 0 or more"):
        Overloaded(retry_after=-1)


# -- the server-wide limit ------------------------------------------------------------


async def test_limit_concurrency_through_the_test_client(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate)), ("/other", gated(gate))])
    config = ServerConfig(limit_concurrency=2)
    async with TestClient(app, config=config) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get, "/")
            nursery.start_soon(client.get, "/other")
            await trio.testing.wait_all_tasks_blocked()
            conn = await client.raw()
            await conn.send(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
            shed = await conn.read_response()
            assert (shed.status, shed.headers["Retry-After"]) == (503, "1")
            assert b"overloaded" in shed.body
            assert gate.prepared == 2  # the application never saw it
            gate.open.set()
        # The same connection is served once there is room.
        await conn.send(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await conn.read_response()).status == 200
    assert sum(line.endswith(" (shed)") for line in access_lines(caplog)) == 1


async def test_a_shed_503_is_spelled_like_every_other_response(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate = Gate()
    app = Application([("/", gated(gate))])
    async with TestClient(app, config=ServerConfig(limit_concurrency=1)) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get, "/")
            await trio.testing.wait_all_tasks_blocked()
            conn = await client.raw()
            await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            shed = await conn.receive_available()
            gate.open.set()
        ok = await client.raw()
        await ok.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = await ok.receive_available()
    assert shed.startswith(b"HTTP/1.1 503 ")
    names = [
        line.split(b":")[0] for line in shed.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    ]
    assert b"Server" in names and b"Retry-After" in names and b"Content-Type" in names
    # The same Server as a handler's response.
    server = [line for line in answered.split(b"\r\n") if line.startswith(b"Server:")]
    assert server and server[0] in shed


async def test_limit_concurrency_over_real_sockets() -> None:
    app = "tests.apps.overload_apps:app"
    async with serving(app, "--limit-concurrency", "1") as server:
        busy = await Client.connect(server.port)
        await busy.start("GET", "/hang")
        await server.wait_for("app: started GET /hang")
        client = await Client.connect(server.port)
        shed = await client.get("/?n=1")
        assert shed.status == 503
        assert shed.headers["retry-after"] == "1"
        # The client that holds the only slot leaves: its request is
        # cancelled, and the kept connection is served.
        await busy.stream.aclose()
        await server.wait_for("app: cancelled GET /hang")
        served = await client.get("/?n=2")
        assert (served.status, served.body) == (200, b"GET /?n=2")
        assert "app: started GET /?n=1" not in server.stderr
        server.signal(2)
        assert await server.finish() == 0
    server.assert_clean()
    assert re.search(r'"GET /\?n=1 HTTP/1\.1" 503 \d+ [\d.]+ms \(shed\)', server.stderr)


async def test_limit_concurrency_flag_is_checked() -> None:
    code, stderr = await run_trioweb("serve", f"{APP}:app", "--limit-concurrency", "0")
    assert code == 2
    assert "--limit-concurrency must be 1 or more" in stderr
