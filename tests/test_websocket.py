"""WebSocketHandler: both styles, the handshake through the handler path,
subprotocols, the origin check, protocol errors and the close."""

from __future__ import annotations

import logging
import struct
from typing import Any

import pytest
import trio
import trio.testing

import trioweb
from trioweb._ws_testing import WebSocketRejected
from trioweb.testing import TestClient

# -- the two styles ------------------------------------------------------------


class TornadoEcho(trioweb.WebSocketHandler):
    async def on_message(self, message: str | bytes) -> None:
        if message == "json":
            await self.write_message({"echo": "json", "n": 1})
        else:
            await self.write_message(message)


class NativeEcho(trioweb.WebSocketHandler):
    async def open(self) -> None:
        async for message in self:
            if message == "json":
                await self.write_message({"echo": "json", "n": 1})
            else:
                await self.write_message(message)


class SyncEcho(trioweb.WebSocketHandler):
    """Tornado's style with plain functions: the callbacks may be sync."""

    def open(self) -> None:
        self.seen: list[Any] = []

    def on_message(self, message: str | bytes) -> None:
        self.seen.append(message)
        self.application.settings["seen"] = self.seen


def make_app(**settings: Any) -> trioweb.Application:
    return trioweb.Application(
        [("/tornado", TornadoEcho), ("/native", NativeEcho), ("/sync", SyncEcho)],
        **settings,
    )


@pytest.mark.parametrize("path", ["/tornado", "/native"])
async def test_echo_text_binary_unicode_json_in_both_styles(path: str) -> None:
    async with (
        TestClient(make_app()) as client,
        client.websocket_connect(path) as ws,
    ):
        await ws.send_text("hello")
        assert await ws.receive_text() == "hello"
        await ws.send_bytes(b"\x00\xff\x10")
        assert await ws.receive_bytes() == b"\x00\xff\x10"
        await ws.send_text("日本語 ✓ 🎉")
        assert await ws.receive_text() == "日本語 ✓ 🎉"
        await ws.send_text("json")
        assert await ws.receive_json() == {"echo": "json", "n": 1}
    assert ws.close_code == 1000


@pytest.mark.parametrize("path", ["/tornado", "/native"])
async def test_fragmented_messages_are_joined(path: str) -> None:
    async with (
        TestClient(make_app()) as client,
        client.websocket_connect(path) as ws,
    ):
        await ws.send_frames("frag", "men", "ted ✓")
        assert await ws.receive_text() == "fragmented ✓"
        await ws.send_frames(b"\x01", b"", b"\x02\x03")
        assert await ws.receive_bytes() == b"\x01\x02\x03"


async def test_sync_callbacks_run_in_order() -> None:
    app = make_app()
    async with TestClient(app) as client, client.websocket_connect("/sync") as ws:
        for i in range(5):
            await ws.send_text(str(i))
    assert app.settings["seen"] == ["0", "1", "2", "3", "4"]


async def test_async_callbacks_run_one_at_a_time_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    class Slow(trioweb.WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            log.append(f"start {message}")
            await trio.sleep(1)
            log.append(f"end {message}")
            await self.write_message(message)

    app = trioweb.Application([("/", Slow)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("a")
        await ws.send_text("b")
        assert await ws.receive_text() == "a"
        assert await ws.receive_text() == "b"
    assert log == ["start a", "end a", "start b", "end b"]


async def test_receive_returns_one_message_and_open_gets_path_arguments() -> None:
    class Native(trioweb.WebSocketHandler):
        async def open(self, room: str) -> None:
            first = await self.receive()
            second = await self.receive()
            await self.write_message(f"{room}:{first}+{second!r}")

    app = trioweb.Application([(r"/room/(\w+)", Native)])
    async with TestClient(app) as client, client.websocket_connect("/room/r1") as ws:
        await ws.send_text("x")
        await ws.send_bytes(b"y")
        assert await ws.receive_text() == "r1:x+b'y'"
        # open() returned: the server closes the websocket.
        with pytest.raises(trioweb.WebSocketClosedError) as info:
            await ws.receive()
        assert info.value.code == 1000


async def test_server_close_with_code_and_reason() -> None:
    class Closer(trioweb.WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            await self.close(4001, "bye now")

    app = trioweb.Application([("/", Closer)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("x")
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
    assert (ws.close_code, ws.close_reason) == (4001, "bye now")


async def test_client_close_code_and_reason_reach_the_handler() -> None:
    seen: list[Any] = []

    class H(trioweb.WebSocketHandler):
        async def open(self) -> None:
            async for _ in self:
                pass
            seen.append(("loop ended", self.close_code, self.close_reason))

        def on_close(self) -> None:
            seen.append(("on_close", self.close_code))

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client:
        async with client.websocket_connect("/") as ws:
            await ws.send_text("x")
            await ws.close(4000, "done")
        assert ws.close_code == 4000  # the server echoes the client's code
    assert seen == [("loop ended", 4000, "done"), ("on_close", 4000)]


async def test_pings_reach_on_ping_and_are_answered() -> None:
    seen: list[bytes] = []

    class H(trioweb.WebSocketHandler):
        def on_ping(self, data: bytes) -> None:
            seen.append(data)

        async def on_message(self, message: str | bytes) -> None:
            await self.write_message(message)

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.ping(b"p1")
        await ws.send_text("after")
        assert await ws.receive_text() == "after"
    assert seen == [b"p1"]


async def test_server_ping_and_on_pong() -> None:
    pongs: list[bytes] = []

    class H(trioweb.WebSocketHandler):
        async def open(self) -> None:
            await self.ping(b"hi")

        def on_pong(self, data: bytes) -> None:
            pongs.append(data)

        async def on_message(self, message: str | bytes) -> None:
            await self.write_message(repr(pongs))

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("?")  # receive() answers the server's ping first
        await ws.receive_text()
        await ws.send_text("?")
        assert await ws.receive_text() == "[b'hi']"


async def test_write_message_after_close_raises_websocket_closed_error() -> None:
    outcome: list[Any] = []
    done = trio.Event()

    class H(trioweb.WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            await self.close()
            try:
                await self.write_message("late")
            except trioweb.WebSocketClosedError as exc:
                outcome.append(exc)
            done.set()

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("x")
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
        await done.wait()
    assert len(outcome) == 1
    assert isinstance(outcome[0], trioweb.StreamClosedError)


async def test_an_error_in_on_message_closes_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[int] = []

    class H(trioweb.WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            raise ZeroDivisionError("oops")

        def on_close(self) -> None:
            closed.append(1)

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("x")
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
    assert ws.close_code == 1011
    assert closed == [1]
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)


async def test_access_log_shows_101_the_duration_and_the_close_code(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="trioweb.access")
    async with (
        TestClient(make_app()) as client,
        client.websocket_connect("/native") as ws,
    ):
        await trio.sleep(2.5)
        await ws.close(4005)
    lines = [r.getMessage() for r in caplog.records if r.name == "trioweb.access"]
    line = next(line for line in lines if "/native" in line)
    assert '"GET /native HTTP/1.1" 101' in line
    assert "(websocket 4005)" in line
    duration = float(line.split("ms")[0].rsplit(" ", 1)[1])
    assert duration >= 2500


# -- the handshake -------------------------------------------------------------


GOOD_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request(**changes: str | None) -> bytes:
    fields = {
        "Host": "testserver",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": GOOD_KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"GET /native HTTP/1.1\r\n{lines}\r\n".encode()


async def test_the_101_response_follows_rfc_6455() -> None:
    async with TestClient(make_app()) as client:
        raw = await client.raw()
        await raw.send(request())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await raw.receive()
        await raw.aclose()
    text = head.decode().lower()
    assert text.startswith("http/1.1 101 switching protocols\r\n")
    # The RFC's own example key and answer.
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in text
    assert "upgrade: websocket" in text
    assert "connection: upgrade" in text
    assert "content-type" not in text


@pytest.mark.parametrize(
    ("changes", "status", "text"),
    [
        ({"Upgrade": None}, 400, 'Can "Upgrade" only to "WebSocket".'),
        ({"Upgrade": "h2c"}, 400, 'Can "Upgrade" only to "WebSocket".'),
        ({"Connection": "keep-alive, Upgrade"}, 101, ""),
        ({"Upgrade": "WebSocket, h2c"}, 101, ""),
        ({"Connection": "keep-alive"}, 400, '"Connection" must be "Upgrade".'),
        ({"Sec-WebSocket-Version": "8"}, 426, "version 13"),
        ({"Sec-WebSocket-Version": None}, 426, "version 13"),
        ({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key"),
        ({"Sec-WebSocket-Key": "not base64!"}, 400, "Sec-WebSocket-Key"),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "Sec-WebSocket-Key"),
    ],
)
async def test_bad_handshakes_are_refused(
    changes: dict[str, str | None], status: int, text: str
) -> None:
    async with TestClient(make_app()) as client:
        raw = await client.raw()
        await raw.send(request(**changes))
        data = b""
        while b"\r\n\r\n" not in data:
            data += await raw.receive()
        data += await raw.receive_available()
        await raw.aclose()
        # The server keeps serving.
        async with client.websocket_connect("/native") as ws:
            await ws.send_text("still")
            assert await ws.receive_text() == "still"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert text.encode() in body
    if status == 426:
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in head


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length", b"abc"),
        ("Transfer-Encoding", b"3\r\nabc\r\n0\r\n\r\n"),
    ],
)
async def test_a_handshake_with_a_body_is_refused_400(
    framing: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    value = "3" if framing == "Content-Length" else "chunked"
    async with TestClient(make_app()) as client:
        raw = await client.raw()
        await raw.send(request(**{framing: value}) + body)
        response = await raw.read_response()
        await raw.aclose()
        async with client.websocket_connect("/native") as ws:
            await ws.send_text("still")
            assert await ws.receive_text() == "still"
    assert response.status == 400
    assert response.body == b"A websocket handshake has no body.\n"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_http_1_0_upgrade_is_ignored_400() -> None:
    async with TestClient(make_app()) as client:
        raw = await client.raw()
        await raw.send(request().replace(b"HTTP/1.1", b"HTTP/1.0"))
        response = await raw.read_response()
        await raw.aclose()
    assert response.status == 400


async def test_a_plain_get_to_a_websocket_route_is_400() -> None:
    async with TestClient(make_app()) as client:
        response = await client.get("/native")
    assert response.status == 400
    assert response.body == b'Can "Upgrade" only to "WebSocket".\n'


async def test_post_to_a_websocket_route_is_405() -> None:
    async with TestClient(make_app()) as client:
        response = await client.post("/native", body=b"x")
    assert response.status == 405


async def test_websocket_connect_raises_with_the_refusal() -> None:
    async with TestClient(make_app()) as client:
        with pytest.raises(WebSocketRejected) as info:
            async with client.websocket_connect(
                "/native", headers={"Sec-WebSocket-Version": "7"}
            ):
                pass
    assert info.value.status_code == 426
    assert isinstance(info.value, trioweb.HTTPError)
    assert info.value.headers["Sec-WebSocket-Version"] == "13"


async def test_the_handshake_runs_prepare_cookies_and_current_user() -> None:
    order: list[str] = []

    class H(trioweb.WebSocketHandler):
        def initialize(self, tag: str) -> None:
            order.append(f"initialize {tag}")

        def get_current_user(self) -> Any:
            return self.get_signed_cookie("user")

        async def prepare(self) -> None:
            order.append(f"prepare {self.current_user!r}")
            self.set_cookie("seen", "1")

        @trioweb.authenticated
        async def get(self, *args: Any, **kwargs: Any) -> None:
            await super().get(*args, **kwargs)

        async def open(self) -> None:
            order.append("open")
            await self.write_message(self.current_user.decode())

    app = trioweb.Application(
        [("/ws", H, {"tag": "t"})], cookie_secret="s" * 32, login_url="/login"
    )
    async with TestClient(app) as client:
        # No user: @authenticated refuses the handshake (a GET: a redirect).
        with pytest.raises(WebSocketRejected) as info:
            async with client.websocket_connect("/ws"):
                pass
        assert info.value.status_code == 302
        cookie = trioweb.security.create_signed_value("s" * 32, "user", "ann")
        async with client.websocket_connect(
            "/ws", headers={"Cookie": f"user={cookie.decode()}"}
        ) as ws:
            assert await ws.receive_text() == "ann"
            assert "seen=1" in ws.headers["Set-Cookie"]
    assert order == [
        "initialize t",
        "prepare None",
        "initialize t",
        "prepare b'ann'",
        "open",
    ]


# -- subprotocols --------------------------------------------------------------


class Chat(trioweb.WebSocketHandler):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat.v2" if "chat.v2" in subprotocols else None

    async def open(self) -> None:
        await self.write_message(repr(self.selected_subprotocol))


async def test_a_subprotocol_is_selected() -> None:
    app = trioweb.Application([("/", Chat)])
    async with TestClient(app) as client:
        async with client.websocket_connect(
            "/", subprotocols=["chat.v1", "chat.v2"]
        ) as ws:
            assert ws.subprotocol == "chat.v2"
            assert await ws.receive_text() == "'chat.v2'"
        async with client.websocket_connect("/", subprotocols=["other"]) as ws:
            assert ws.subprotocol is None
            assert "Sec-WebSocket-Protocol" not in ws.headers
            assert await ws.receive_text() == "None"


async def test_selecting_a_subprotocol_not_offered_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Bad(trioweb.WebSocketHandler):
        def select_subprotocol(self, subprotocols: list[str]) -> str | None:
            return "mine"

    app = trioweb.Application([("/", Bad)])
    async with TestClient(app) as client:
        with pytest.raises(WebSocketRejected) as info:
            async with client.websocket_connect("/", subprotocols=["theirs"]):
                pass
    assert info.value.status_code == 500
    assert any("did not offer" in (r.exc_text or "") for r in caplog.records)


# -- the origin check ----------------------------------------------------------


class Permissive(NativeEcho):
    def check_origin(self, origin: str) -> bool:
        return origin == "https://friend.example"


@pytest.mark.parametrize(
    ("path", "origin", "allowed"),
    [
        ("/native", None, True),
        ("/native", "http://testserver", True),
        ("/native", "https://TestServer", True),
        ("/native", "http://evil.example", False),
        ("/native", "http://testserver.evil.example", False),
        ("/native", "null", False),
        ("/permissive", "https://friend.example", True),
        ("/permissive", "http://testserver", False),
    ],
)
async def test_the_origin_matrix(path: str, origin: str | None, allowed: bool) -> None:
    app = trioweb.Application([("/native", NativeEcho), ("/permissive", Permissive)])
    headers = {} if origin is None else {"Origin": origin}
    async with TestClient(app) as client:
        if allowed:
            async with client.websocket_connect(path, headers=headers) as ws:
                await ws.send_text("ok")
                assert await ws.receive_text() == "ok"
        else:
            with pytest.raises(WebSocketRejected) as info:
                async with client.websocket_connect(path, headers=headers):
                    pass
            assert info.value.status_code == 403


async def test_the_origin_check_runs_after_prepare() -> None:
    calls: list[str] = []

    class H(NativeEcho):
        def prepare(self) -> None:
            calls.append("prepare")

        def check_origin(self, origin: str) -> bool:
            calls.append("check_origin")
            return False

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client:
        with pytest.raises(WebSocketRejected):
            async with client.websocket_connect("/", headers={"Origin": "http://x"}):
                pass
    assert calls == ["prepare", "check_origin"]


async def test_xsrf_does_not_apply_to_the_handshake() -> None:
    app = trioweb.Application(
        [("/", NativeEcho)], cookie_secret="s" * 32, xsrf_cookies=True
    )
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_text("ok")
        assert await ws.receive_text() == "ok"


# -- protocol errors -----------------------------------------------------------


def frame(opcode: int, payload: bytes, *, masked: bool = True, rsv: int = 0) -> bytes:
    first = 0x80 | rsv | opcode
    mask = b"\x01\x02\x03\x04"
    if not masked:
        return bytes([first, len(payload)]) + payload
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + mask + data


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(0x1, b"hi", masked=False), 1002),  # a client frame must be masked
        (frame(0x3, b"hi"), 1002),  # a reserved opcode
        (frame(0x1, b"hi", rsv=0x40), 1002),  # RSV1 without an extension
        (frame(0x1, b"\xff\xfe"), 1007),  # invalid UTF-8 in a text message
        (frame(0x9, b"x" * 126)[:2] + b"\x00" * 10, 1002),  # a ping too long
    ],
)
async def test_protocol_errors_close_with_the_right_code(raw: bytes, code: int) -> None:
    closed: list[int] = []

    class H(NativeEcho):
        def on_close(self) -> None:
            closed.append(1)

    app = trioweb.Application([("/", H)])
    async with TestClient(app) as client, client.websocket_connect("/") as ws:
        await ws.send_raw(raw)
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
        await ws.server_done.wait()
    assert ws.close_code == code
    assert closed == [1]


async def test_invalid_utf8_split_across_frames_is_1007() -> None:
    app = make_app()
    async with TestClient(app) as client, client.websocket_connect("/native") as ws:
        first = frame(0x1, "é".encode()[:1])
        first = bytes([first[0] & 0x7F]) + first[1:]  # not the last frame
        await ws.send_raw(first + frame(0x0, b"\xff"))
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
    assert ws.close_code == 1007


async def test_a_close_frame_with_an_invalid_code_is_1002() -> None:
    async with (
        TestClient(make_app()) as client,
        client.websocket_connect("/native") as ws,
    ):
        await ws.send_raw(frame(0x8, struct.pack("!H", 999)))
        with pytest.raises(trioweb.WebSocketClosedError):
            await ws.receive()
    assert ws.close_code == 1002
