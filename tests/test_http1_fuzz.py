"""Whatever bytes a client sends, the engine answers with well-formed HTTP
responses or closes quietly; it never crashes, never hangs, never logs an
internal error.

Also: the head limits give the same verdict however the head is split.
"""

from __future__ import annotations

import itertools
import logging

import h11
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trioweb.server.config import ServerConfig
from trioweb.server.http1 import Exchange
from trioweb.testing import TestClient

CONFIG = ServerConfig(
    max_request_line=60, max_header_size=120, max_headers=4, max_body_size=20
)


class Answer:
    """Reads the body, answers 200 with an empty body (same for HEAD)."""

    async def handle_exchange(self, exchange: Exchange) -> None:
        await exchange.read_body()
        await exchange.send_response(200, [(b"content-length", b"0")])


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _responses(data: bytes) -> list[h11.Response]:
    """Parse everything the server sent before closing as a sequence of
    complete responses; h11 raises on anything malformed."""
    responses = []
    while data:
        try:
            parser, head = _one_response(data, "GET")
        except h11.RemoteProtocolError:
            # The answer to a HEAD request (a refused one too) has no body.
            parser, head = _one_response(data, "HEAD")
        responses.append(head)
        closes = b"close" in dict(head.headers).get(b"connection", b"")
        data = parser.trailing_data[0]
        if closes:
            assert data == b"", "bytes after a Connection: close response"
    return responses


def _one_response(data: bytes, method: str) -> tuple[h11.Connection, h11.Response]:
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    parser.send(h11.EndOfMessage())
    parser.receive_data(data)
    parser.receive_data(b"")  # the server has closed
    head = None
    while True:
        event = parser.next_event()
        assert event is not h11.NEED_DATA
        if type(event) is h11.Response:
            head = event
        elif type(event) in (h11.EndOfMessage, h11.ConnectionClosed):
            break
    assert head is not None, data
    return parser, head


_eol = st.sampled_from([b"\r\n"] * 6 + [b"\n", b"\r", b" "])
_method = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS", b"G(T", b"", b"\x00"]),
    st.sampled_from([b"GET", b"POST"]),
    st.binary(max_size=6),
)
_target = st.one_of(
    st.sampled_from([b"/", b"*", b"/a?b=c", b"http://h/p", b"/" + b"x" * 70]),
    st.binary(max_size=12),
)
_version = st.sampled_from(
    [
        b"HTTP/1.1",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.2",
        b"HTTP/1",
        b"http/1.1",
        b"HTTP/11",
        b"",
    ]
)
_name = st.one_of(
    st.sampled_from(
        [
            b"Host",
            b"Content-Length",
            b"Transfer-Encoding",
            b"Expect",
            b"Connection",
            b"X-A",
            b"Bad Name",
            b"",
        ]
    ),
    st.binary(max_size=8),
)
_value = st.one_of(
    st.sampled_from(
        [
            b"x",
            b"0",
            b"3",
            b"25",
            b"-1",
            b"1, 2",
            b"chunked",
            b"gzip, chunked",
            b"identity",
            b"100-continue",
            b"close",
            b"keep-alive",
            b"v" * 130,
        ]
    ),
    st.binary(max_size=10),
)
_body = st.one_of(
    st.sampled_from(
        [b"", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"ff\r\n" + b"y" * 30]
    ),
    st.binary(max_size=30),
)


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    eol = draw(_eol)
    head = draw(_method) + b" " + draw(_target) + b" " + draw(_version) + eol
    for name, value in draw(st.lists(st.tuples(_name, _value), max_size=6)):
        head += name + b": " + value + draw(_eol)
    return head + draw(_eol) + draw(_body)


GOOD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
_traffic = st.tuples(
    # Sometimes after a good request, so the garbage is pipelined.
    st.sampled_from([b"", GOOD]),
    st.one_of(
        st.binary(max_size=80),
        _requests(),
        st.lists(_requests(), min_size=2, max_size=3).map(b"".join),
    ),
).map(b"".join)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=_traffic, cuts=st.lists(st.integers(0, 400), max_size=3))
async def test_any_bytes_get_valid_responses_or_a_quiet_close(
    autojump_clock: trio.abc.Clock, data: bytes, cuts: list[int]
) -> None:
    errors = ListHandler()
    logger = logging.getLogger("trioweb")
    logger.addHandler(errors)
    try:
        async with TestClient(Answer(), config=CONFIG) as client:
            raw = await client.raw()
            bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
            try:
                for start, end in itertools.pairwise(bounds):
                    await raw.send(data[start:end])
                await trio.testing.wait_all_tasks_blocked()
                if not raw.server_done.is_set():
                    # Whatever was incomplete stays so: the server must end
                    # the connection on its own, by timeout if need be.
                    await trio.sleep(CONFIG.header_timeout + CONFIG.body_timeout)
            except trio.BrokenResourceError:
                pass  # the server refused and closed while we were sending
            with trio.fail_after(1):
                received = await raw.receive_until_closed()
                await raw.server_done.wait()
        for response in _responses(received):
            if response.status_code >= 400:
                assert (b"connection", b"close") in response.headers
    finally:
        logger.removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


# -- the head limits do not depend on how the head is split --------------------------

LIMITS = ServerConfig(max_request_line=30, max_header_size=40)
LINE_AT_LIMIT = b"GET /" + b"a" * 16 + b" HTTP/1.1"  # 30 bytes
FIELDS_AT_LIMIT = b"Host: x\r\nX: " + b"v" * 26 + b"\r\n"  # 40 bytes


HEAD_AT_LIMITS = LINE_AT_LIMIT + b"\r\n" + FIELDS_AT_LIMIT + b"\r\n"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (HEAD_AT_LIMITS, 200),
        # Bare LF line ends are refused, split or not (RFC 9112 2.2 allows
        # either; parsers that disagree on them enable request smuggling).
        (HEAD_AT_LIMITS.replace(b"\r\n", b"\n"), 400),
        (HEAD_AT_LIMITS.replace(b"GET /", b"GET /b"), 414),
        (HEAD_AT_LIMITS.replace(b"X: ", b"X: w"), 431),
    ],
    ids=["at-limits", "at-limits-bare-lf", "line-over", "fields-over"],
)
async def test_head_limits_hold_wherever_the_head_is_split(
    head: bytes, status: int
) -> None:
    assert len(LINE_AT_LIMIT) == LIMITS.max_request_line
    assert len(FIELDS_AT_LIMIT) == LIMITS.max_header_size
    async with TestClient(Answer(), config=LIMITS) as client:
        for cut in range(len(head) + 1):
            raw = await client.raw()
            await raw.send(head[:cut])
            await trio.testing.wait_all_tasks_blocked()
            if not raw.server_done.is_set():
                await raw.send(head[cut:])
            r = await raw.read_response()
            assert r.status == status, cut
            await raw.aclose()
