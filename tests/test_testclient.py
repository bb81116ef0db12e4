"""TestClient: requests, responses, connections, streaming, raw bytes, aborts."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trioweb import Application, HTTPError, RequestHandler, ServerConfig
from trioweb.testing import MemoryTransport, Response, ServerDisconnected, TestClient


class Mirror(RequestHandler):
    """Answers with what it received."""

    async def _mirror(self) -> None:
        self.write(
            {
                "method": self.request.method,
                "uri": self.request.uri,
                "headers": list(self.request.headers.get_all()),
                "body": self.request.body.decode("latin-1"),
                "args": {
                    k: [v.decode() for v in vs]
                    for k, vs in self.request.arguments.items()
                },
            }
        )

    get = post = put = patch = delete = options = _mirror


def mirror_app() -> Application:
    return Application([(r"/.*", Mirror)])


def header(r: Any, name: str) -> str | None:
    for key, value in r.json()["headers"]:
        if key.lower() == name.lower():
            return str(value)
    return None


# -- responses -------------------------------------------------------------------------


async def test_response_fields() -> None:
    class Teapot(RequestHandler):
        async def get(self) -> None:
            self.set_status(418)
            self.set_header("X-Custom", "yes")
            self.add_header("X-Multi", "1")
            self.add_header("X-Multi", "2")
            self.write({"k": "é"})

    async with TestClient(Application([(r"/", Teapot)])) as client:
        r = await client.get("/")
    assert isinstance(r, Response)
    assert r.status == 418
    assert r.reason == "I'm a Teapot"
    assert isinstance(r, httpx.Response)
    assert r.status_code == 418
    assert r.reason_phrase == "I'm a Teapot"
    assert r.http_version == "HTTP/1.1"
    assert isinstance(r.headers, httpx.Headers)
    assert r.headers["x-custom"] == "yes"
    assert r.headers.get_list("X-Multi") == ["1", "2"]
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.headers["Content-Length"] == str(len(r.body))
    assert "Date" in r.headers
    assert r.body == json.dumps({"k": "é"}).encode()
    assert r.text == json.dumps({"k": "é"})
    assert r.json() == {"k": "é"}


async def test_text_is_utf8() -> None:
    class Utf8(RequestHandler):
        async def get(self) -> None:
            self.write("héllo ✓")

    async with TestClient(Application([(r"/", Utf8)])) as client:
        r = await client.get("/")
    assert r.body == "héllo ✓".encode()
    assert r.text == "héllo ✓"


async def test_every_method_helper() -> None:
    async with TestClient(mirror_app()) as client:
        for method in ("get", "post", "put", "patch", "delete", "options"):
            r = await getattr(client, method)("/m")
            assert r.json()["method"] == method.upper()
        r = await client.head("/m")
        assert r.status == 200
        assert r.body == b""
        assert int(r.headers["Content-Length"]) > 0
        r = await client.request("POST", "/generic")
        assert r.json()["method"] == "POST"


# -- request options -------------------------------------------------------------------


async def test_params_as_dict_or_pairs_and_added_to_an_existing_query() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.get("/p", params={"a": "1", "b": "x y&z"})
        assert r.json()["uri"] == "/p?a=1&b=x+y%26z"
        assert r.json()["args"] == {"a": ["1"], "b": ["x y&z"]}
        r = await client.get("/p?z=0", params=[("a", "1"), ("a", "2")])
        assert r.json()["args"] == {"z": ["0"], "a": ["1", "2"]}


async def test_default_host_and_custom_headers() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.get("/")
        assert header(r, "Host") == "testserver"
        r = await client.get("/", headers={"X-A": "1", "host": "other:81"})
        assert header(r, "Host") == "other:81"
        assert header(r, "X-A") == "1"
        r = await client.get("/", headers=[("X-B", "1"), ("X-B", "2")])
        assert [v for k, v in r.json()["headers"] if k == "X-B"] == ["1", "2"]
    async with TestClient(mirror_app(), host="example.com") as client:
        r = await client.get("/")
        assert header(r, "Host") == "example.com"


async def test_body_as_bytes_or_str() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.post("/", body=b"raw\x00bytes")
        assert r.json()["body"] == "raw\x00bytes"
        assert header(r, "Content-Length") == "9"
        assert header(r, "Content-Type") is None
        r = await client.put("/", body="tëxt")
        assert r.json()["body"] == "tëxt".encode().decode("latin-1")
        r = await client.post("/", body=b"")
        assert header(r, "Content-Length") == "0"


async def test_data_is_form_encoded() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.post("/", data={"a": "1 2", "b": ["x", "y"]})
    assert header(r, "Content-Type") == "application/x-www-form-urlencoded"
    assert r.json()["body"] == "a=1+2&b=x&b=y"
    assert r.json()["args"] == {"a": ["1 2"], "b": ["x", "y"]}


async def test_json_body() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.post("/", json={"a": [1, None]})
        assert header(r, "Content-Type") == "application/json"
        assert json.loads(r.json()["body"]) == {"a": [1, None]}
        # An explicit Content-Type wins.
        r = await client.post(
            "/", json=[1], headers={"Content-Type": "application/vnd.x+json"}
        )
        assert header(r, "Content-Type") == "application/vnd.x+json"
        assert r.json()["body"] == "[1]"


# -- connections -----------------------------------------------------------------------


async def test_one_keep_alive_connection_serves_many_requests() -> None:
    async with TestClient(mirror_app()) as client:
        for i in range(5):
            r = await client.get(f"/{i}")
            assert r.status == 200
            assert "Connection" not in r.headers
        await client.post("/", data={"a": "1"})
        await client.get("/missing-is-still-keep-alive")
        assert len(client.server_connections) == 1


async def test_a_new_connection_after_the_server_closes() -> None:
    async with TestClient(mirror_app()) as client:
        await client.get("/")
        r = await client.get("/", headers={"Connection": "close"})
        assert r.status == 200
        assert r.headers["Connection"] == "close"
        assert len(client.server_connections) == 1
        r = await client.get("/")
        assert r.status == 200
        assert len(client.server_connections) == 2


async def test_max_requests_per_connection_from_config() -> None:
    config = ServerConfig(max_requests_per_connection=2)
    async with TestClient(mirror_app(), config=config) as client:
        for _ in range(5):
            assert (await client.get("/")).status == 200
        assert len(client.server_connections) == 3


async def test_an_idle_connection_times_out_and_the_client_reconnects(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(mirror_app()) as client:
        await client.get("/")
        await trio.sleep(ServerConfig().keep_alive_timeout + 1)
        # The server closed the idle connection; the client notices.
        r = await client.get("/")
        assert r.status == 200
        assert len(client.server_connections) == 2


async def test_config_limits_apply() -> None:
    config = ServerConfig(max_body_size=10)
    async with TestClient(mirror_app(), config=config) as client:
        r = await client.post("/", body=b"x" * 11)
        assert r.status == 413
        r = await client.post("/", body=b"x" * 10)
        assert r.status == 200


async def test_the_client_must_be_entered() -> None:
    client = TestClient(mirror_app())
    with pytest.raises(RuntimeError, match="async with TestClient"):
        await client.get("/")


async def test_lifespan_can_be_skipped() -> None:
    ran: list[str] = []

    async def startup() -> None:
        ran.append("startup")

    app = Application([(r"/", Mirror)], on_startup=[startup])
    async with TestClient(app, lifespan=False) as client:
        assert (await client.get("/")).status == 200
    assert ran == []


async def test_client_address_is_what_the_app_sees() -> None:
    class Ip(RequestHandler):
        async def get(self) -> None:
            self.write(self.request.remote_ip)

    app = Application([(r"/", Ip)])
    async with TestClient(app, client_address=("192.0.2.7", 1234)) as client:
        assert (await client.get("/")).text == "192.0.2.7"


async def test_no_client_address_as_for_a_unix_socket_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Ip(RequestHandler):
        async def get(self) -> None:
            self.write(repr(self.request.remote_ip))

    caplog.set_level("INFO", logger="trioweb.access")
    async with TestClient(Application([(r"/", Ip)]), client_address=None) as client:
        assert (await client.get("/")).text == "''"
    assert [r.getMessage().split(" ")[0] for r in caplog.records] == ["-"]


async def test_leaving_the_client_cancels_what_is_still_running(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    class Forever(RequestHandler):
        async def get(self) -> None:
            events.append("started")
            try:
                await trio.sleep_forever()
            finally:
                events.append("finally")

    async def shutdown() -> None:
        events.append("shutdown")

    app = Application([(r"/", Forever)], on_shutdown=[shutdown])
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await trio.sleep(1)
        start = trio.current_time()
    assert trio.current_time() == start  # no waiting for the handler
    assert events == ["started", "finally", "shutdown"]


async def test_works_under_autojump_clock(autojump_clock: trio.abc.Clock) -> None:
    class Sleepy(RequestHandler):
        async def get(self) -> None:
            await trio.sleep(100)
            self.write("awake")

    async with TestClient(Application([(r"/", Sleepy)])) as client:
        start = trio.current_time()
        r = await client.get("/")
        assert r.text == "awake"
        assert trio.current_time() - start == pytest.approx(100)


# -- stream() --------------------------------------------------------------------------


async def test_stream_reads_a_flushed_response_piece_by_piece() -> None:
    go_on = trio.Event()

    class Flusher(RequestHandler):
        async def get(self) -> None:
            self.write("first ")
            await self.flush()
            await go_on.wait()
            self.write("second")
            await self.flush()
            self.write(" third")

    async with TestClient(Application([(r"/", Flusher)])) as client:
        async with client.stream("GET", "/") as r:
            assert r.status == 200
            assert r.reason == "OK"
            assert r.headers["Transfer-Encoding"] == "chunked"
            # The handler is blocked: only what it flushed has arrived.
            assert await r.receive() == b"first "
            go_on.set()
            assert await r.receive() == b"second"
            assert await r.read() == b" third"
            assert r.complete
            assert await r.receive() == b""
        # The connection is reused after a complete streamed response.
        assert (await client.get("/")).status == 200
        assert len(client.server_connections) == 1


async def test_stream_iter_bytes() -> None:
    class Chunks(RequestHandler):
        async def get(self) -> None:
            for i in range(3):
                self.write(f"{i}")
                await self.flush()

    async with (
        TestClient(Application([(r"/", Chunks)])) as client,
        client.stream("GET", "/") as r,
    ):
        chunks = [c async for c in r.iter_bytes()]
    assert b"".join(chunks) == b"012"
    assert len(chunks) == 3


async def test_leaving_stream_early_is_a_disconnect(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    class Endless(RequestHandler):
        async def get(self) -> None:
            try:
                while True:
                    self.write("tick\n")
                    await self.flush()
                    await trio.sleep(1)
            finally:
                events.append("finally")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

    async with TestClient(Application([(r"/", Endless)])) as client:
        async with client.stream("GET", "/") as r:
            assert await r.receive() == b"tick\n"
        # stream() returned after the server side saw the client leave.
        assert events == ["finally", "on_connection_close"]
        # The next request gets a fresh connection.
        async with client.stream("GET", "/") as r:
            assert await r.receive() == b"tick\n"
        assert len(client.server_connections) == 2


# -- raw() -----------------------------------------------------------------------------


async def test_raw_request_and_parsed_response() -> None:
    async with TestClient(mirror_app()) as client:
        conn = await client.raw()
        await conn.send(b"GET /raw?x=1 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 200
        assert r.json()["uri"] == "/raw?x=1"
        assert ["X-Y", "z"] in r.json()["headers"]
        await conn.aclose()


async def test_raw_pipelined_requests_sent_in_pieces() -> None:
    async with TestClient(mirror_app()) as client:
        conn = await client.raw()
        data = (
            b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        for i in range(0, len(data), 7):
            await conn.send(data[i : i + 7])
        first = await conn.read_response()
        second = await conn.read_response("POST")
        third = await conn.read_response()
        assert [first.json()["uri"], second.json()["uri"], third.json()["uri"]] == [
            "/one",
            "/two",
            "/three",
        ]
        assert second.json()["body"] == "abc"
        assert third.headers["Connection"] == "close"
        assert await conn.receive_until_closed() == b""
        with trio.fail_after(1):
            await conn.server_done.wait()


async def test_raw_malformed_request_is_400_and_close() -> None:
    async with TestClient(mirror_app()) as client:
        conn = await client.raw()
        await conn.send(b"NOT HTTP AT ALL\r\n\r\n")
        data = await conn.receive_until_closed()
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data.lower()


async def test_raw_half_close_then_read() -> None:
    async with TestClient(mirror_app()) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 200
        await conn.send_eof()
        assert await conn.receive_until_closed() == b""


# -- abort() ---------------------------------------------------------------------------


async def test_abort_runs_the_handlers_cleanup_before_returning(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    class Forever(RequestHandler):
        async def get(self) -> None:
            events.append("started")
            try:
                await trio.sleep_forever()
            finally:
                events.append("finally")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

        def on_finish(self) -> None:
            events.append("on_finish")

    async with TestClient(Application([(r"/", Forever)])) as client:
        start = trio.current_time()
        received = await client.abort("GET", "/", after=2.5)
        assert trio.current_time() - start == pytest.approx(2.5)
        assert received == b""
        assert events == ["started", "finally", "on_connection_close", "on_finish"]
        # The client is still usable.
        await client.abort("GET", "/")
        assert events[-1] == "on_finish"


async def test_abort_returns_what_was_sent_before_leaving(
    autojump_clock: trio.abc.Clock,
) -> None:
    closed = trio.Event()

    class Partial(RequestHandler):
        async def post(self) -> None:
            self.write("partial " + self.get_body_argument("a"))
            await self.flush()
            await trio.sleep(10)
            self.write("never")

        def on_connection_close(self) -> None:
            closed.set()

    async with TestClient(Application([(r"/", Partial)])) as client:
        received = await client.abort("POST", "/", after=1, data={"a": "x"})
        assert closed.is_set()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial x" in received
    assert b"never" not in received


async def test_abort_rejects_unknown_arguments() -> None:
    async with TestClient(mirror_app()) as client:
        with pytest.raises(TypeError, match="bogus"):
            await client.abort("GET", "/", bogus=1)


async def test_concurrent_requests_from_two_tasks(
    autojump_clock: trio.abc.Clock,
) -> None:
    notified = trio.Event()

    class Wait(RequestHandler):
        async def get(self) -> None:
            await notified.wait()
            self.write("waited")

    class Notify(RequestHandler):
        async def get(self) -> None:
            notified.set()
            self.write("notified")

    results: dict[str, str] = {}
    app = Application([(r"/wait", Wait), (r"/notify", Notify)])
    async with TestClient(app) as client:

        async def fetch(path: str) -> None:
            results[path] = (await client.get(path)).text

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch, "/wait")
            await trio.sleep(1)
            nursery.start_soon(fetch, "/notify")
    assert results == {"/wait": "waited", "/notify": "notified"}


# -- httpx's API -----------------------------------------------------------------------


class Login(RequestHandler):
    async def post(self) -> None:
        if self.get_body_argument("password") != "sesame":
            raise HTTPError(403)
        self.set_cookie("user", self.get_body_argument("name"))
        await self.redirect("/me")


class Me(RequestHandler):
    async def get(self) -> None:
        user = self.get_cookie("user")
        if user is None:
            raise HTTPError(401)
        self.write({"user": user})


class Logout(RequestHandler):
    async def post(self) -> None:
        self.clear_cookie("user")


def login_app() -> Application:
    return Application([("/login", Login), ("/me", Me), ("/logout", Logout)])


async def test_the_cookie_jar_keeps_a_login_across_requests() -> None:
    async with TestClient(login_app()) as client:
        assert (await client.get("/me")).status_code == 401
        r = await client.post("/login", data={"name": "ann", "password": "sesame"})
        assert r.status_code == 302
        assert client.cookies["user"] == "ann"
        # The next requests send the cookie without being told to.
        r = await client.get("/me")
        assert r.json() == {"user": "ann"}
        await client.post("/logout")
        assert "user" not in client.cookies
        assert (await client.get("/me")).status_code == 401


async def test_follow_redirects_lands_on_the_target() -> None:
    async with TestClient(login_app()) as client:
        r = await client.post(
            "/login",
            data={"name": "bob", "password": "sesame"},
            follow_redirects=True,
        )
        assert r.status_code == 200
        assert r.url == "http://testserver/me"
        assert r.json() == {"user": "bob"}
        assert [h.status_code for h in r.history] == [302]
    # Set on the client, it applies to every request.
    async with TestClient(login_app(), follow_redirects=True) as client:
        r = await client.post("/login", data={"name": "cy", "password": "sesame"})
        assert r.json() == {"user": "cy"}


async def test_auth_sends_basic_credentials() -> None:
    class Protected(RequestHandler):
        async def get(self) -> None:
            scheme, _, encoded = self.request.headers.get(
                "Authorization", ""
            ).partition(" ")
            if scheme != "Basic":
                self.set_header("WWW-Authenticate", 'Basic realm="x"')
                raise HTTPError(401)
            self.write(base64.b64decode(encoded).decode())

    async with TestClient(Application([("/", Protected)])) as client:
        assert (await client.get("/")).status_code == 401
        r = await client.get("/", auth=("ann", "pw"))
        assert r.text == "ann:pw"
    async with TestClient(Application([("/", Protected)]), auth=("bob", "pw")) as c:
        assert (await c.get("/")).text == "bob:pw"


async def test_json_and_content_as_httpx_takes_them() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.post("/", json={"a": [1, 2]})
        assert json.loads(r.json()["body"]) == {"a": [1, 2]}
        r = await client.put("/", content=b"raw")
        assert r.json()["body"] == "raw"
        with pytest.raises(TypeError, match="not both"):
            await client.post("/", content=b"a", body=b"b")


async def test_files_are_sent_as_multipart() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.post("/", files={"upload": ("notes.txt", b"hello\n")})
    content_type = header(r, "Content-Type") or ""
    assert content_type.startswith("multipart/form-data; boundary=")
    body = r.json()["body"]
    assert 'name="upload"; filename="notes.txt"' in body
    assert "\r\n\r\nhello\n\r\n--" in body


async def test_a_transfer_encoding_header_makes_a_bytes_body_chunked() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.put(
            "/", body=b"a" * 10, headers={"Transfer-Encoding": "chunked"}
        )
    assert r.json()["body"] == "a" * 10
    assert header(r, "Transfer-Encoding") == "chunked"
    assert header(r, "Content-Length") is None


async def test_a_streamed_request_body_arrives_chunked() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"two ", b"three"):
            yield piece

    async with TestClient(mirror_app()) as client:
        r = await client.post("/", content=pieces())
    assert header(r, "Transfer-Encoding") == "chunked"
    assert r.json()["body"] == "one two three"


async def test_aiter_bytes_streams_with_httpx_api(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Ticks(RequestHandler):
        async def get(self) -> None:
            for i in range(3):
                self.write(f"tick {i}\n")
                await self.flush()
                await trio.sleep(1)

    async with TestClient(Application([("/", Ticks)])) as client:
        start = trio.current_time()
        async with client.stream("GET", "/") as r:
            assert r.status_code == 200
            lines = [
                (line, trio.current_time() - start) async for line in r.aiter_lines()
            ]
    assert lines == [
        ("tick 0", 0),
        ("tick 1", pytest.approx(1)),
        ("tick 2", pytest.approx(2)),
    ]


async def test_body_is_raw_and_content_is_decoded() -> None:
    packed = gzip.compress(b"unpacked")

    class Gzipped(RequestHandler):
        async def get(self) -> None:
            self.set_header("Content-Encoding", "gzip")
            self.write(packed)

    async with TestClient(Application([("/", Gzipped)])) as client:
        r = await client.get("/")
    assert r.body == packed
    assert r.content == b"unpacked"
    # A raw connection's response is the wire's: nothing is decoded.
    async with TestClient(Application([("/", Gzipped)])) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = await conn.read_response()
    assert raw.body == raw.content == packed


async def test_headers_also_have_tornados_get_all() -> None:
    class Tagged(RequestHandler):
        async def get(self) -> None:
            self.set_header("ETag", '"1"')
            self.add_header("X-Multi", "a")
            self.add_header("X-Multi", "b")

    async with TestClient(Application([("/", Tagged)])) as client:
        r = await client.get("/")
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = await conn.read_response()
    for response in (r, raw):
        pairs = list(response.headers.get_all())
        assert ("Content-Type", "text/html; charset=UTF-8") in pairs
        assert [v for k, v in pairs if k == "X-Multi"] == ["a", "b"]
        assert response.headers["etag"] == '"1"'


async def test_no_httpx_default_headers_are_sent() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.get("/")
    assert [name for name, _ in r.json()["headers"]] == ["Host"]
    async with TestClient(mirror_app(), headers={"User-Agent": "me"}) as client:
        r = await client.get("/")
    assert header(r, "User-Agent") == "me"


async def test_the_method_and_path_are_sent_as_written() -> None:
    async with TestClient(mirror_app()) as client:
        r = await client.get("/a/../b/./c")
        assert r.json()["uri"] == "/a/../b/./c"
        r = await client.get("/q?z=1", params={"a": "2"})
        assert r.json()["uri"] == "/q?z=1&a=2"
        # The method too (methods are case-sensitive): "get" is not one a
        # RequestHandler supports.
        r = await client.request("get", "/")
        assert r.status_code == 405
        # What cannot be sent as written is percent-encoded, as httpx does.
        r = await client.get("/a b/é")
        assert r.json()["uri"] == "/a%20b/%C3%A9"
        # httpx's own request extension does the same for any client.
        r = await client.get("/x", extensions={"target": b"/raw/../target"})
        assert r.json()["uri"] == "/raw/../target"


@pytest.mark.memory_only("cuts one direction of a memory stream pair")
async def test_a_connection_closed_without_an_answer_is_an_httpx_error() -> None:
    def dead_pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        client, server = trio.testing.memory_stream_pair()
        # Nothing the client sends arrives: the server reads EOF and closes.
        client.send_stream.close()
        return client, server

    async with TestClient(mirror_app(), stream_pair=dead_pair) as client:
        with pytest.raises(ServerDisconnected, match="without a response") as info:
            await client.get("/")
    assert isinstance(info.value, httpx.RemoteProtocolError)
    assert isinstance(info.value, ConnectionError)


async def test_memory_transport_under_a_plain_httpx_client() -> None:
    ran: list[str] = []

    async def startup() -> None:
        ran.append("startup")

    app = Application([("/login", Login), ("/me", Me)], on_startup=[startup])
    transport = MemoryTransport(app, client_address=("192.0.2.1", 1))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as client:
        assert ran == ["startup"]
        r = await client.post(
            "/login",
            data={"name": "dee", "password": "sesame"},
            follow_redirects=True,
        )
        assert r.json() == {"user": "dee"}
        assert len(transport.server_connections) == 1
