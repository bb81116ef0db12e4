"""Protocol hardening: requests that parsers disagree about, or that let a
client forge what the application trusts. Each case runs on both parser
backends (tests/conftest.py), which must give the same answer.

The table of refusals is in docs/server.md; the rules themselves live in
trioweb/server/headrules.py (the parsed head), trioweb/server/parsers.py (HeadMeter: the
raw head) and trioweb/server/chunked.py (chunked bodies).
"""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

from trioweb.server.http1 import Exchange
from trioweb.testing import RawConnection, Response, TestClient

pytestmark = pytest.mark.usefixtures("no_tracebacks")


class Echo:
    """Answers with what it saw: method, target, version, headers, body."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, list[tuple[bytes, bytes]], bytes]] = []

    async def handle_exchange(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        self.seen.append(
            (
                exchange.method,
                exchange.target,
                exchange.http_version,
                exchange.headers,
                body,
            )
        )
        await exchange.send_response(200, [(b"content-length", b"2")], b"ok")


async def _send(client: TestClient, data: bytes) -> RawConnection:
    raw = await client.raw()
    await raw.send(data)
    return raw


async def _refused(
    client: TestClient, raw: RawConnection, status: int, method: str = "GET"
) -> Response:
    r = await raw.read_response(method)
    assert r.status == status, r
    assert r.headers["Connection"] == "close"
    assert await raw.receive_until_closed() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert raw.server_done.is_set()
    return r


async def refused(data: bytes, status: int) -> Echo:
    """``data`` is answered ``status`` and the connection closed; the app
    never saw the request."""
    app = Echo()
    async with TestClient(app) as client:
        raw = await _send(client, data)
        method = data.split(b" ", 1)[0].decode()
        await _refused(client, raw, status, "HEAD" if method == "HEAD" else "GET")
    assert app.seen == []
    return app


async def served(data: bytes, responses: int = 1) -> Echo:
    """``data`` gets ``responses`` 200 responses on a connection that stays
    open; returns what the app saw."""
    app = Echo()
    async with TestClient(app) as client:
        raw = await _send(client, data)
        for _ in range(responses):
            r = await raw.read_response()
            assert r.status == 200, r
            assert "Connection" not in r.headers
        await raw.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
    assert len(app.seen) == responses + 1
    return app


# -- 1. trailers never reach the request headers ---------------------------------

TRAILERS = (
    b"POST /p HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n"
    b"X-Injected: yes\r\nAuthorization: Bearer forged\r\nHost: evil.example\r\n\r\n"
)


async def test_trailer_fields_are_dropped_not_merged_into_the_headers() -> None:
    app = await served(TRAILERS)
    _, target, _, headers, body = app.seen[0]
    assert (target, body) == ("/p", b"hello")
    assert headers == [(b"host", b"good.example"), (b"transfer-encoding", b"chunked")]


async def test_trailers_through_the_web_layer_cannot_forge_host_or_auth() -> None:
    import trioweb

    seen: list[tuple[str, str | None]] = []

    class Handler(trioweb.RequestHandler):
        async def post(self) -> None:
            seen.append((self.request.host, self.request.headers.get("Authorization")))
            self.write("ok")

    async with TestClient(trioweb.Application([("/p", Handler)])) as client:
        raw = await _send(client, TRAILERS)
        assert (await raw.read_response()).status == 200
    assert seen == [("good.example", None)]


@pytest.mark.parametrize(
    "trailer",
    [b"Bad Name: x\r\n", b"X: a\x07b\r\n", b" folded\r\n", b"NoColon\r\n"],
)
async def test_a_malformed_trailer_is_400(trailer: bytes) -> None:
    await refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\na\r\n0\r\n" + trailer + b"\r\n",
        400,
    )


async def test_a_trailer_section_past_the_header_limit_is_431() -> None:
    await refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\na\r\n0\r\n" + (b"X-Pad: " + b"a" * 2000 + b"\r\n") * 9 + b"\r\n",
        # 9 fields of 2 KiB: past the default 16 KiB max_header_size.
        431,
    )


# -- 2. duplicate Host and Content-Length ------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        b"Host: localhost\r\nHost: evil.example.com\r\n",
        b"Host: localhost\r\nHost: localhost\r\n",
    ],
)
async def test_more_than_one_host_is_400(fields: bytes) -> None:
    await refused(b"GET / HTTP/1.1\r\n" + fields + b"\r\n", 400)


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 2\r\nContent-Length: 2\r\n",
        b"Content-Length: 2\r\ncontent-length: 2\r\n",
        b"Content-Length: 2, 2\r\n",
        b"Content-Length: 2\r\nContent-Length: 3\r\n",
    ],
)
async def test_duplicate_content_length_is_400_even_when_identical(
    fields: bytes,
) -> None:
    await refused(b"POST / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\nab", 400)


# -- 3. whitespace around field values -------------------------------------------


async def test_whitespace_around_a_field_value_is_not_part_of_it() -> None:
    app = await served(b"GET / HTTP/1.1\r\nHost: x\r\nX-Value:\t abc \t\r\n\r\n")
    assert app.seen[0][3] == [(b"host", b"x"), (b"x-value", b"abc")]


async def test_expect_100_continue_with_trailing_space_gets_its_100() -> None:
    async with TestClient(Echo()) as client:
        raw = await _send(
            client,
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue \r\n"
            b"Content-Length: 2\r\n\r\n",
        )
        assert await raw.receive() == b"HTTP/1.1 100 Continue\r\n\r\n"
        await raw.send(b"ab")
        assert (await raw.read_response()).status == 200


# -- 4. Upgrade is ignored unless the app accepts it -----------------------------


@pytest.mark.parametrize("protocol", [b"websocket", b"h2c"])
async def test_an_upgrade_the_app_ignores_is_an_ordinary_request(
    protocol: bytes,
) -> None:
    app = await served(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: "
        + protocol
        + b"\r\n\r\n"
    )
    assert (b"upgrade", protocol) in app.seen[0][3]


async def test_an_upgrade_request_body_is_read_as_a_body_not_a_request() -> None:
    # llhttp hands the bytes after an upgrade request's head back as another
    # protocol's: here they would have been a second, smuggled request.
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    app = await served(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUPGRADE: h2c\r\n"
        b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    )
    assert app.seen[0][4] == smuggled
    assert [seen[1] for seen in app.seen] == ["/", "/after"]


async def test_a_field_named_like_the_internal_upgrade_alias_stays_as_sent() -> None:
    # The httptools backend hides Upgrade from llhttp under another name; a
    # client's own field of that name must not come out as Upgrade (which a
    # proxy in front would have stripped).
    app = await served(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Trioweb-Upgrade: websocket\r\n"
        b"Upgrade: h2c\r\nConnection: upgrade\r\n\r\n"
    )
    headers = app.seen[0][3]
    assert (b"x-trioweb-upgrade", b"websocket") in headers
    assert [v for n, v in headers if n == b"upgrade"] == [b"h2c"]


# -- 5. any token is a method ----------------------------------------------------


@pytest.mark.parametrize("method", [b"-BLARGH", b"BREW", b"PRI", b"SOURCE", b"get"])
async def test_a_token_method_reaches_the_app(method: bytes) -> None:
    app = await served(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert app.seen[0][0] == method.decode()


async def test_an_unknown_method_gets_405_from_a_request_handler() -> None:
    import trioweb

    class Handler(trioweb.RequestHandler):
        async def get(self) -> None:
            self.write("ok")

    async with TestClient(trioweb.Application([("/", Handler)])) as client:
        raw = await _send(client, b"-BLARGH / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await raw.read_response()
    assert r.status == 405
    assert "GET" in r.headers["Allow"]


# -- 6. obs-fold -----------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        # A front end that does not unfold sees one request with a body;
        # unfolding sees two requests.
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nFoo: bar\r\n"
        b" Content-Length: 38\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nFoo: bar\r\n\tbaz\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
    ],
)
async def test_obs_fold_is_400(head: bytes) -> None:
    await refused(head + b"GET /bye HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)


# -- 7 and 13. chunk lines -------------------------------------------------------

CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "body",
    [
        b"2;\r\nab\r\n0\r\n\r\n",  # an empty extension
        b"a \r\n0123456789\r\n0\r\n\r\n",  # a space after the size
        b"5;a=\x01\r\nhello\r\n0\r\n\r\n",  # a control character
        b"5; some\r\nhello\r\n0\r\n\r\n",  # whitespace before the extension
        b"5 ;a\r\nhello\r\n0\r\n\r\n",
        b"5;a =b\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",  # a bare LF
        b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the data
        b"5\r\nhello\r\n0\r\nX: y\n\r\n",
        b"\r\n5\r\nhello\r\n0\r\n\r\n",
        b"5" + b";a" * 3000 + b"\r\nhello\r\n0\r\n\r\n",  # a line too long
    ],
)
async def test_malformed_chunk_lines_are_400(body: bytes) -> None:
    await refused(CHUNKED + body, 400)


@pytest.mark.parametrize(
    "body",
    [
        b"5;name\r\nhello\r\n0\r\n\r\n",
        b'5;name=value;q="quoted \\" string"\r\nhello\r\n0\r\n\r\n',
        b"00005\r\nhello\r\n000\r\n\r\n",
        b"5\r\nhe",  # split: the rest follows
        b"5\r\nhello\r\n0;ext=1\r\nX-Trailer: ok\r\n\r\n",
        b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    ],
)
async def test_well_formed_chunk_lines_are_accepted(body: bytes) -> None:
    app = Echo()
    async with TestClient(app) as client:
        raw = await _send(client, CHUNKED + body)
        if body == b"5\r\nhe":
            await trio.testing.wait_all_tasks_blocked()
            await raw.send(b"llo\r\n0\r\n\r\n")
        assert (await raw.read_response()).status == 200
    assert app.seen[0][4] in (b"hello", b"0123456789" * 2)


@pytest.mark.parametrize("size", [b"10000000000000005", b"f" * 40, b"a00001"])
async def test_a_chunk_larger_than_the_body_limit_is_413_at_once(
    size: bytes,
) -> None:
    # Only the size line arrives: the answer must not wait for the data.
    await refused(CHUNKED + size + b"\r\nhello", 413)


async def test_a_request_pipelined_after_a_chunked_one_has_its_head_checked() -> None:
    app = Echo()
    async with TestClient(app) as client:
        raw = await _send(
            client,
            CHUNKED + b"5\r\nhello\r\n0\r\n\r\nGET  /  HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        assert (await raw.read_response()).status == 200
        await _refused(client, raw, 400)
    assert len(app.seen) == 1


async def test_requests_pipelined_after_a_chunked_one_are_served_in_order() -> None:
    app = await served(
        CHUNKED
        + b"5\r\nhello\r\n0\r\n\r\n"
        + b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        + CHUNKED.replace(b"POST /", b"POST /3")
        + b"1\r\na\r\n0\r\n\r\n",
        responses=3,
    )
    assert [(s[1], s[4]) for s in app.seen] == [
        ("/", b"hello"),
        ("/2", b""),
        ("/3", b"a"),
        ("/after", b""),
    ]


# -- 8. control characters and Host syntax ---------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        b"X-A: a\x07b",
        b"X-A: a\x7fb",
        b"X-A: a\x00b",
        b"X-A: a\x1bb",
        b"X-A: a\rb",
        b"X-A: a\x0bb",
    ],
)
async def test_control_characters_in_a_field_value_are_400(field: bytes) -> None:
    await refused(b"GET / HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n", 400)


async def test_a_tab_and_obs_text_in_a_field_value_are_accepted() -> None:
    app = await served(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\xe9\r\n\r\n")
    assert (b"x-a", b"a\tb\xe9") in app.seen[0][3]


@pytest.mark.parametrize(
    "host",
    [
        b"a b/c",
        b"a/b",
        b"user@host",
        b"host:80:80",
        b"host:http",
        b"a:" + b"9" * 5000,
        b"[::1",
        b"h\xe9",
    ],
)
async def test_a_malformed_host_is_400(host: bytes) -> None:
    await refused(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400)


@pytest.mark.parametrize(
    "host",
    [b"example.com", b"example.com:8080", b"[::1]:80", b"127.0.0.1", b"", b"xn--e1a.b"],
)
async def test_a_well_formed_host_is_accepted(host: bytes) -> None:
    app = await served(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert (b"host", host) in app.seen[0][3]


# -- 9. versions -----------------------------------------------------------------


@pytest.mark.parametrize("version", [b"1.2", b"1.9"])
async def test_a_higher_minor_version_is_served_as_http11(version: bytes) -> None:
    app = await served(b"GET / HTTP/" + version + b"\r\nHost: x\r\n\r\n")
    assert app.seen[0][2] == "1.1"


@pytest.mark.parametrize("version", [b"2.0", b"0.9", b"3.1", b"9.9"])
async def test_another_major_version_is_505(version: bytes) -> None:
    await refused(b"GET / HTTP/" + version + b"\r\nHost: x\r\n\r\n", 505)


# -- 10 and 11. request-target forms, CONNECT ------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"GET * HTTP/1.1",
        b"PRI * HTTP/1.1",
        b"POST * HTTP/1.1",
        b"GET example.com:443 HTTP/1.1",
        b"GET foo/bar HTTP/1.1",
        b"GET ?q HTTP/1.1",
    ],
)
async def test_a_target_in_the_wrong_form_is_400(line: bytes) -> None:
    await refused(line + b"\r\nHost: x\r\n\r\n", 400)


@pytest.mark.parametrize(
    ("line", "target"),
    [
        (b"OPTIONS * HTTP/1.1", "*"),
        (b"GET http://x/path?q=1 HTTP/1.1", "http://x/path?q=1"),
        (b"GET /a/b?c HTTP/1.1", "/a/b?c"),
    ],
)
async def test_targets_in_the_right_form_reach_the_app(
    line: bytes, target: str
) -> None:
    app = await served(line + b"\r\nHost: x\r\n\r\n")
    assert app.seen[0][1] == target


async def test_connect_is_501_and_its_body_is_never_read() -> None:
    app = await refused(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
        b"Content-Length: 38\r\n\r\nGET /bye HTTP/1.1\r\nHost: localhost\r\n\r\n",
        501,
    )
    assert app.seen == []


# -- 12. duplicate Content-Type --------------------------------------------------


async def test_more_than_one_content_type_is_400() -> None:
    await refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n"
        b"Content-Length: 0\r\n\r\n",
        400,
    )


# -- client input never reaches an unguarded int() --------------------------------


@pytest.mark.parametrize("length", [b"0" * 4999 + b"5", b"9" * 5000, b"0" * 19 + b"5"])
async def test_a_long_content_length_is_400_not_a_crash(length: bytes) -> None:
    await refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n", 400
    )


async def test_a_zero_padded_content_length_within_19_digits_is_accepted() -> None:
    app = await served(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0005\r\n\r\nhello"
    )
    assert app.seen[0][4] == b"hello"


# -- the same answers over real sockets ------------------------------------------

OVER_TCP = [
    pytest.param(TRAILERS, 200, id="trailers"),
    pytest.param(
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nFoo: bar\r\n"
        b" Content-Length: 38\r\n\r\n",
        400,
        id="obs-fold",
    ),
    pytest.param(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, id="connect"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="duplicate-host"
    ),
    pytest.param(CHUNKED + b"2;\r\nab\r\n0\r\n\r\n", 400, id="empty-chunk-ext"),
]


@pytest.mark.parametrize(("data", "status"), OVER_TCP)
async def test_the_answers_are_the_same_over_real_sockets(
    http_backend: str, data: bytes, status: int
) -> None:
    # The engine reads a memory stream and a TCP socket through the same
    # code; this holds the socket path to the memory-stream answers above.
    from trioweb import ServerConfig, serve

    app = Echo()
    trigger = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            config = ServerConfig(port=0, graceful_timeout=0.2)
            addresses = await nursery.start(
                functools.partial(serve, app, config, shutdown_trigger=trigger)
            )
            port = addresses[0][1]
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(data)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    received += chunk
            trigger.set()
    assert received.startswith(b"HTTP/1.1 %d " % status), received[:80]
    if status == 200:
        # Trailers never became headers, over TCP either.
        _, _, headers, _ = app.seen[0][1:]
        assert headers == [
            (b"host", b"good.example"),
            (b"transfer-encoding", b"chunked"),
        ]
    else:
        assert app.seen == []
