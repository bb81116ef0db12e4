"""WebSocket limits and liveness: message size, compression (and its bomb),
pings, the bounded outgoing side, the close handshake, disconnects,
shutdown, and random frames."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from typing import Any

import pytest
import trio
import trio.testing
from helpers import not_reading
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trioweb
from trioweb.server._hangup import hangup_watcher
from trioweb.testing import TestClient

MiB = 1024 * 1024


class Echo(trioweb.WebSocketHandler):
    async def on_message(self, message: str | bytes) -> None:
        await self.write_message(message)


class Small(Echo):
    max_message_size = 10


class Compressed(Echo):
    def get_compression_options(self) -> dict[str, Any]:
        return {}


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """A masked client frame of any length."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", n)
    mask = b"\x0f\x1e\x2d\x3c"
    # XOR with a repeated key, quickly: as big integers.
    key = (mask * (n // 4 + 1))[:n]
    data = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
        n, "big"
    )
    return head + mask + data


# -- message size --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "settings_", "limit"),
    [("/small", {}, 10), ("/echo", {"websocket_max_message_size": 100}, 100)],
)
async def test_a_message_over_the_limit_closes_1009(
    path: str, settings_: dict[str, Any], limit: int
) -> None:
    app = trioweb.Application([("/small", Small), ("/echo", Echo)], **settings_)
    async with TestClient(app) as client, client.websocket_connect(path) as ws:
        await ws.send_text("x" * limit)
        assert await ws.receive_text() == "x" * limit
        await ws.send_frames("x" * (limit // 2), "x" * (limit // 2 + 1))
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
    assert ws.close_code == 1009


async def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    app = trioweb.Application([("/", Small)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/") as ws:
            await ws.send_text("é" * 5)  # 10 bytes: at the limit
            assert await ws.receive_text() == "é" * 5
        async with client.websocket_connect("/") as ws:
            await ws.send_text("é" * 6)  # 6 characters, 12 bytes
            with pytest.raises(trioweb.WebSocketClosedError):
                await ws.receive()
    assert ws.close_code == 1009


async def test_the_default_limit_is_one_mebibyte() -> None:
    app = trioweb.Application([("/", Echo)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/") as ws:
            await ws.send_bytes(b"x" * MiB)
            assert len(await ws.receive_bytes()) == MiB
        async with client.websocket_connect("/") as ws:
            await ws.send_bytes(b"x" * (MiB + 1))
            with pytest.raises(trioweb.WebSocketClosedError):
                await ws.receive()
    assert ws.close_code == 1009


def fragmented(opcode: int, payloads: list[bytes]) -> bytes:
    """One message as raw frames: ``payloads[0]`` with ``opcode``, the rest
    as continuations, the last one final."""
    last = len(payloads) - 1
    return b"".join(
        frame(opcode if i == 0 else 0, payload, fin=i == last)
        for i, payload in enumerate(payloads)
    )


@pytest.mark.parametrize(("opcode", "first"), [(1, "é"), (2, "b")])
async def test_a_message_may_have_only_so_many_fragments(
    opcode: int, first: str
) -> None:
    from trioweb._wssession import max_fragments

    cap = max_fragments(MiB)
    assert cap == 4096
    assert max_fragments(64 * MiB) == 64 * 1024
    app = trioweb.Application([("/", Echo)], websocket_ping_interval=0)
    async with TestClient(app) as client:
        async with client.websocket_connect("/") as ws:
            # At the cap: empty frames are legal, and the message is whole.
            parts = [first.encode()] + [b""] * (cap - 2) + [b"!"]
            await ws.send_raw(fragmented(opcode, parts))
            expected = first + "!"
            assert await ws.receive() == (
                expected if opcode == 1 else expected.encode()
            )
            # The next message starts counting afresh.
            await ws.send_raw(fragmented(opcode, [b"a", b"b"]))
            assert await ws.receive() == ("ab" if opcode == 1 else b"ab")
        async with client.websocket_connect("/") as ws:
            # One frame more (far under the size limit): closed 1009.
            parts = [first.encode()] + [b""] * (cap - 1) + [b"!"]
            await ws.send_raw(fragmented(opcode, parts))
            with pytest.raises(trioweb.WebSocketClosedError):
                await ws.receive()
    assert ws.close_code == 1009
    assert ws.close_reason == f"message in more than {cap} frames"


@pytest.mark.parametrize(
    "flood",
    [
        frame(0xA, b"") * 5000,  # unsolicited pongs: nothing to answer
        # A message of 4000 empty fragments (under the cap).
        frame(0x1, b"", fin=False)
        + frame(0x0, b"", fin=False) * 3998
        + frame(0x0, b"", fin=True),
    ],
)
async def test_a_flood_of_tiny_frames_lets_other_tasks_run(
    flood: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One read holds thousands of six-byte frames, most of which reach no
    # checkpoint; the reader yields every few dozen, so the rest of the
    # server runs meanwhile. Each frame handled notes how often another
    # task has run so far: a long run of the same count is a stretch of
    # frames during which nothing else could.
    from trioweb._wssession import Session

    ticks = 0
    seen: list[int] = []
    handle = Session._handle

    async def counting(self: Session, event: Any) -> bool:
        seen.append(ticks)
        return await handle(self, event)

    monkeypatch.setattr(Session, "_handle", counting)

    async def spin() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    app = trioweb.Application([("/", Echo)], websocket_ping_interval=0)
    async with TestClient(app) as client, trio.open_nursery() as nursery:
        async with client.websocket_connect("/") as ws:
            nursery.start_soon(spin)
            await ws.send_raw(flood + frame(0x1, b"done"))
            if flood.startswith(frame(0x1, b"", fin=False)):
                assert await ws.receive() == ""  # the fragmented message
            assert await ws.receive() == "done"
        nursery.cancel_scope.cancel()
    assert len(seen) > 4000
    # trio may run the other task before the reader in one batch and after
    # it in the next: two yields' worth of frames can share a count.
    longest = max(seen.count(tick) for tick in set(seen))
    assert longest <= 2 * 64


# -- compression ---------------------------------------------------------------


async def test_compression_is_negotiated_and_messages_round_trip() -> None:
    app = trioweb.Application([("/c", Compressed), ("/plain", Echo)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/c", compression=True) as ws:
            assert ws.headers["Sec-WebSocket-Extensions"].startswith(
                "permessage-deflate"
            )
            for message in ["a" * 1000, "héllo", "a" * 1000]:
                await ws.send_text(message)
                assert await ws.receive_text() == message
            await ws.send_bytes(bytes(range(256)) * 10)
            assert await ws.receive_bytes() == bytes(range(256)) * 10
        # Not offered by the client, or not enabled by the handler: off.
        async with client.websocket_connect("/c") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.headers
            await ws.send_text("plain")
            assert await ws.receive_text() == "plain"
        async with client.websocket_connect("/plain", compression=True) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.headers


async def test_compression_options_are_applied_and_unknown_ones_refused() -> None:
    class Fast(Echo):
        def get_compression_options(self) -> dict[str, Any]:
            return {"compression_level": 1, "mem_level": 5}

    class Typo(Echo):
        def get_compression_options(self) -> dict[str, Any]:
            return {"level": 1}

    app = trioweb.Application([("/fast", Fast), ("/typo", Typo)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/fast", compression=True) as ws:
            await ws.send_text("z" * 5000)
            assert await ws.receive_text() == "z" * 5000
        with pytest.raises(trioweb.HTTPError) as info:
            async with client.websocket_connect("/typo", compression=True):
                pass
    assert info.value.status_code == 500


def deflate_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\0" * MiB
    out = [compressor.compress(block) for _ in range(size // MiB)]
    out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out)[:-4]


async def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    # 64 MiB of zeros in ~64 KiB: inflated whole, it would allocate 64 MiB.
    bomb = frame(0x2, deflate_bomb(64 * MiB), rsv1=True)
    assert len(bomb) < 128 * 1024
    app = trioweb.Application([("/", Compressed)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/", compression=True) as ws:
            tracemalloc.start()
            try:
                await ws.send_raw(bomb)
                with pytest.raises(trioweb.WebSocketClosedError):
                    await ws.receive()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert ws.close_code == 1009
        assert peak < 8 * MiB, peak
        # A message within the limit still inflates fine.
        async with client.websocket_connect("/", compression=True) as ws:
            await ws.send_bytes(b"\0" * (MiB - 1))
            assert await ws.receive_bytes() == b"\0" * (MiB - 1)


# -- pings ---------------------------------------------------------------------


class Quiet(trioweb.WebSocketHandler):
    closed: list[float]

    async def open(self) -> None:
        await trio.sleep_forever()

    def on_close(self) -> None:
        self.settings["closed"].append(trio.current_time())


async def test_an_unanswered_ping_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed: list[float] = []
    app = trioweb.Application(
        [("/", Quiet)],
        closed=closed,
        websocket_ping_interval=10,
        websocket_ping_timeout=5,
    )
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        start = trio.current_time()
        # This client never reads, so never answers the ping.
        with trio.fail_after(100):
            await ws.server_done.wait()
    assert closed
    assert closed[0] - start == pytest.approx(15, abs=0.5)


async def test_an_answered_ping_keeps_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed: list[float] = []
    app = trioweb.Application([("/", Quiet)], closed=closed, websocket_ping_interval=10)
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        # receive() answers each ping while it waits.
        with trio.move_on_after(200):
            await ws.receive()
        assert not closed
        assert not ws.server_done.is_set()


async def test_ping_defaults_are_twenty_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed: list[float] = []
    app = trioweb.Application([("/", Quiet)], closed=closed)
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        start = trio.current_time()
        await ws.server_done.wait()
    assert closed[0] - start == pytest.approx(40, abs=0.5)


async def test_pings_can_be_turned_off(autojump_clock: trio.testing.MockClock) -> None:
    class NoPing(Quiet):
        ping_interval = 0

    closed: list[float] = []
    app = trioweb.Application([("/", NoPing)], closed=closed)
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await trio.sleep(1000)
        assert not closed
        await ws.close()


# -- the outgoing side ---------------------------------------------------------


async def test_a_client_that_does_not_read_blocks_write_message_then_is_aborted(
    autojump_clock: trio.testing.MockClock, transport: str | None
) -> None:
    sent: list[int] = []
    outcome: list[Any] = []
    closes: list[int] = []

    class Firehose(trioweb.WebSocketHandler):
        async def open(self) -> None:
            try:
                while True:
                    await self.write_message(b"x" * 1000)
                    sent.append(1)
            except trioweb.WebSocketClosedError as exc:
                outcome.append((trio.current_time(), exc))
                raise

        def on_close(self) -> None:
            closes.append(1)

    app = trioweb.Application([("/", Firehose)])
    config = trioweb.ServerConfig(write_timeout=7)
    async with (
        TestClient(app, config=config, **not_reading(transport)) as client,
        client.websocket_connect("/") as ws,
    ):
        await ws.receive_bytes()
        await trio.testing.wait_all_tasks_blocked()
        # Blocked: nothing more goes out while the client does not read.
        count = len(sent)
        start = trio.current_time()
        await trio.sleep(5)
        assert len(sent) == count
        assert not outcome
        await ws.server_done.wait()
    assert len(outcome) == 1
    assert outcome[0][0] - start == pytest.approx(7, abs=0.5)
    assert "write timed out" in str(outcome[0][1])
    assert closes == [1]


# -- the close handshake -------------------------------------------------------


async def test_the_close_handshake_has_a_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Closer(trioweb.WebSocketHandler):
        close_timeout = 3

        async def open(self) -> None:
            await self.close(1000)

    app = trioweb.Application([("/", Closer)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        start = trio.current_time()
        # The client never answers the close frame.
        await ws.server_done.wait()
        assert trio.current_time() - start == pytest.approx(3, abs=0.5)


async def test_pings_after_the_close_do_not_move_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[float] = []

    class Closer(trioweb.WebSocketHandler):
        close_timeout = 3

        async def open(self) -> None:
            await self.close(1000)
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                cancelled.append(trio.current_time() - start)
                raise

    app = trioweb.Application([("/", Closer)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        start = trio.current_time()
        pings = 0

        async def ping_every_second() -> None:
            nonlocal pings
            # The client never answers the close, but keeps talking.
            while True:
                await ws.ping(b"p")
                pings += 1
                await trio.sleep(1)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ping_every_second)
                await ws.server_done.wait()
                nursery.cancel_scope.cancel()
        assert trio.current_time() - start == pytest.approx(3, abs=0.5)
    assert pings >= 3
    assert len(cancelled) == 1
    assert cancelled[0] == pytest.approx(3, abs=0.5)


# -- the client goes away ------------------------------------------------------


@pytest.mark.parametrize("style", ["native", "tornado"])
async def test_a_disconnect_cancels_the_handler_and_on_close_runs_once(
    style: str, autojump_clock: trio.testing.MockClock
) -> None:
    events: list[str] = []
    started = trio.Event()

    class Native(trioweb.WebSocketHandler):
        async def open(self) -> None:
            try:
                started.set()
                await trio.sleep_forever()
            except trio.Cancelled:
                events.append(f"cancelled at {trio.current_time() - start:g}")
                raise

        def on_close(self) -> None:
            events.append("on_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    class Tornado(Native):
        async def open(self) -> None:
            pass

        async def on_message(self, message: str | bytes) -> None:
            await Native.open(self)

    app = trioweb.Application([("/n", Native), ("/t", Tornado)])
    path = "/n" if style == "native" else "/t"
    async with TestClient(app) as client, client.websocket_connect(path) as ws:
        if style == "tornado":
            await ws.send_text("go")
        await started.wait()
        await trio.sleep(3)
        start = trio.current_time()
        await ws.abort()
    # At once: not when a ping or close deadline would have ended it.
    assert events == ["cancelled at 0", "on_close", "on_finish"]


async def test_a_disconnect_is_seen_while_the_reader_waits_for_the_app(
    autojump_clock: trio.testing.MockClock, transport: str
) -> None:
    # The application is busy with a message while the client sends more
    # than the queue holds: the reader stops reading (backpressure), so it
    # cannot read the close. Over TCP the kernel still says the client
    # left: the handler is cancelled at once, not held for as long as the
    # application is busy. (Memory streams cannot say so: there the first
    # ping, which fails, ends it.)
    events: list[str] = []
    started = trio.Event()

    class Busy(trioweb.WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                events.append(f"cancelled at {trio.current_time() - start:g}")
                raise

        def on_close(self) -> None:
            events.append("on_close")

    app = trioweb.Application([("/", Busy)])
    start = 0.0
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        # In one write: small writes one after the other may still be in
        # the client's kernel (not yet sent) when it closes, and its FIN
        # behind them.
        await ws.send_raw(b"".join(frame(0x1, b"m%d" % i) for i in range(60)))
        await started.wait()
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await ws.abort()
    seen = 0 if transport == "tcp" else 20
    assert events == [f"cancelled at {seen}", "on_close"]


async def test_a_clean_close_ends_the_loop_and_cancels_other_work(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []
    started = trio.Event()

    class Busy(trioweb.WebSocketHandler):
        async def open(self) -> None:
            try:
                started.set()
                await trio.sleep_forever()
            except trio.Cancelled:
                events.append(f"cancelled at {trio.current_time() - start:g}")
                raise

        def on_close(self) -> None:
            events.append(f"on_close {self.close_code}")

    app = trioweb.Application([("/", Busy)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await started.wait()
        start = trio.current_time()
        await ws.close(1000)
    assert events == ["cancelled at 0", "on_close 1000"]


# -- graceful shutdown ---------------------------------------------------------


async def test_shutdown_sends_1001_and_the_handler_ends() -> None:
    events: list[str] = []

    class Listener(trioweb.WebSocketHandler):
        async def open(self) -> None:
            async for _ in self:
                pass
            events.append("loop ended")

        def on_close(self) -> None:
            events.append("on_close")

    app = trioweb.Application([("/", Listener)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("x")
        await trio.testing.wait_all_tasks_blocked()
        for conn in client.server_connections:
            conn.shutdown()
        with pytest.raises(trioweb.WebSocketClosedError) as info:
            await ws.receive()
        assert info.value.code == 1001
        await ws.server_done.wait()
    assert ws.close_reason == "server shutting down"
    assert events == ["loop ended", "on_close"]


async def test_shutdown_does_not_wait_forever_for_a_silent_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = trioweb.Application([("/", Quiet)], closed=[])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        for conn in client.server_connections:
            conn.shutdown()
        # The client never answers the 1001: the close timeout (5 s) ends it.
        await ws.server_done.wait()
        assert trio.current_time() - start == pytest.approx(5, abs=0.5)
    assert app.settings["closed"]


# -- random frames -------------------------------------------------------------


def all_tasks() -> set[trio.lowlevel.Task]:
    tasks = set()
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        tasks.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return tasks


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 15),
            st.binary(max_size=200),
            st.booleans(),
            st.booleans(),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.binary(max_size=30),
)
def test_random_frames_never_crash_the_server_or_leak_a_task(
    frames: list[tuple[int, bytes, bool, bool, bool]], junk: bytes
) -> None:
    class H(Echo):
        def get_compression_options(self) -> dict[str, Any]:
            return {}

    async def main() -> None:
        app = trioweb.Application([("/", H)], cleanup_timeout=1)
        data = b"".join(
            frame(op, payload, fin=fin, rsv1=rsv1)
            if masked
            else frame(op, b"", fin=fin, rsv1=rsv1)[:1]
            + bytes([len(payload[:125])])
            + payload[:125]
            for op, payload, fin, rsv1, masked in frames
        )
        # The run's hang-up watcher (trioweb.server._hangup) is started by the first
        # plain-TCP connection and serves the whole run, by design: start it
        # first, so that what is counted is what the connections start.
        hangup_watcher()
        before = all_tasks()
        with trio.fail_after(30):
            async with TestClient(app) as client:
                async with client.websocket_connect("/", compression=True) as ws:
                    await ws.send_raw(data + junk)
                    with trio.move_on_after(1):
                        try:
                            while True:
                                await ws.receive()
                        except trioweb.WebSocketClosedError:
                            pass
                    # Bounded, however the server took the frames.
                    await ws.abort()
                # The server still serves.
                async with client.websocket_connect("/") as ws:
                    await ws.send_text("ok")
                    assert await ws.receive_text() == "ok"
        # Every task the connections started is gone.
        assert all_tasks() == before

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# -- impossible limits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_message_size", 0),
        ("max_message_size", 1.5),
        ("ping_interval", -1),
        ("ping_timeout", 0),
        ("close_timeout", "5"),
    ],
)
def test_an_impossible_class_limit_fails_when_the_class_is_defined(
    name: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=f"Bad.{name} must be"):
        type("Bad", (Echo,), {name: value})


async def test_an_impossible_setting_is_a_500_before_the_handshake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = trioweb.Application([("/", Echo)], websocket_ping_timeout=-1)
    async with TestClient(app) as client:
        with pytest.raises(trioweb.HTTPError) as info:
            async with client.websocket_connect("/"):
                pass
    assert info.value.status_code == 500
    assert any(
        "the websocket_ping_timeout setting must be" in (r.exc_text or "")
        for r in caplog.records
    )
