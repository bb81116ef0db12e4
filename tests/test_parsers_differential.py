"""The two parser backends, fed the same bytes, must agree: the same requests
accepted (method, target, version, headers, body, in order) and the same
status for the one refused. A disagreement is a bug in one of them -- and,
between a proxy and a server, how requests get smuggled.

The requests are built from pieces that parsers tend to disagree about
(odd whitespace, control bytes, duplicate and conflicting framing fields,
chunk lines, obs-fold, versions, target forms), then mutated, and split into
pieces at random points.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trioweb.server.headrules import check_head
from trioweb.server.parsers import (
    CLOSED,
    END,
    NEED_DATA,
    PAUSED,
    H11Parser,
    HttptoolsParser,
    ProtocolError,
    RequestHead,
)

LIMITS = (200, 400)  # max_request_line, max_header_size
BODY_LIMIT = 1000


def parse(backend: type[H11Parser | HttptoolsParser], pieces: list[bytes]) -> list[Any]:
    """What a connection engine would make of ``pieces``: the requests, and
    the refusal that ended them, if any."""
    parser = backend(*LIMITS)
    out: list[Any] = []
    body = b""
    try:
        for piece in [*pieces, b""]:
            parser.feed(piece)
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                if event is CLOSED:
                    return out
                if event is END:
                    out.append(("body", body))
                    body = b""
                    parser.next_request()
                elif type(event) is RequestHead:
                    check_head(event)
                    parser.limit_body(BODY_LIMIT)
                    out.append(("head", event.method, event.target, event.http_version))
                    out.append(("headers", event.headers))
                elif type(event) is bytes:
                    body += event
                    if len(body) > BODY_LIMIT:
                        return [*out, ("refused", 413)]
                else:
                    assert event is not PAUSED, "PAUSED right after next_request()"
                    raise AssertionError(event)
    except ProtocolError as exc:
        return [*out, ("refused", exc.status)]
    return [*out, ("incomplete",)]


METHODS = st.sampled_from(
    [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"CONNECT", b"PRI", b"BREW", b"-X"]
)
TARGETS = st.sampled_from(
    [b"/", b"/a?b=c", b"*", b"http://h/p", b"h:443", b"rel", b"/%00", b"/\xff"]
)
VERSIONS = st.sampled_from([b"1.1", b"1.0", b"1.2", b"2.0", b"0.9"])
NAMES = st.sampled_from(
    [
        b"Host",
        b"host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Content-Type",
        b"Expect",
        b"Connection",
        b"Upgrade",
        b"X-A",
        b"Bad Name",
        b"",
        b"X-A ",
    ]
)
VALUES = st.one_of(
    st.sampled_from(
        [
            b"x",
            b"5",
            b"0",
            b"2, 2",
            b"chunked",
            b"gzip",
            b"close",
            b"upgrade",
            b"100-continue",
            b" a ",
            b"\ta\t",
            b"a\x07b",
            b"a\rb",
            b"h:80",
            b"",
            b"a b",
        ]
    ),
    st.binary(max_size=8),
)
FIELDS = st.lists(
    st.tuples(NAMES, st.sampled_from([b": ", b":", b" : ", b":\t"]), VALUES),
    max_size=5,
)
CHUNK_LINES = st.sampled_from(
    [b"5", b"5;a", b"5;a=b", b"5;", b"5 ", b"5; a", b"05", b"0x5", b"5;a=\x01", b""]
)
LINE_ENDS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    end = draw(LINE_ENDS)
    head = b"%s %s HTTP/%s\r\n" % (draw(METHODS), draw(TARGETS), draw(VERSIONS))
    if draw(st.booleans()):
        head += b"Host: x\r\n"
    for name, sep, value in draw(FIELDS):
        head += (
            name
            + sep
            + value
            + (b"\r\n " if draw(st.integers(0, 9)) == 0 else b"")
            + end
        )
    body = b""
    if draw(st.booleans()):
        head += b"Transfer-Encoding: chunked\r\n"
        for _ in range(draw(st.integers(0, 2))):
            body += draw(CHUNK_LINES) + draw(LINE_ENDS) + b"hello\r\n"
        body += (
            b"0\r\n" + draw(st.sampled_from([b"", b"T: v\r\n", b"T v\r\n"])) + b"\r\n"
        )
    elif draw(st.booleans()):
        body = draw(st.binary(max_size=10))
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    data = b"".join(draw(st.lists(requests(), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(0, 2))):  # mutations
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = bytes([draw(st.sampled_from([0, 9, 10, 13, 32, 58, 59, 127, 255, 65]))])
        if op == "insert":
            data = data[:at] + byte + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + 1 :]
        else:
            data = data[:at] + byte + data[at + 1 :]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
@example(
    [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"]
)
@example([b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"])
def test_both_backends_agree_on_any_bytes(pieces: list[bytes]) -> None:
    pytest.importorskip("httptools")
    assert parse(H11Parser, pieces) == parse(HttptoolsParser, pieces)
