"""The h11 backend reads heads with h11's reader, not an ``h11.Connection``.

The reader (``h11._readers``) is private to h11: these tests fail if a new
h11 changes it, and check that the public fallback the backend then uses
reads every request alike.
"""

from __future__ import annotations

import gc

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.test_parsers_differential import parse, streams
from trioweb.server import h11parser
from trioweb.server.headmeter import HeadMeter
from trioweb.server.parsers import (
    END,
    NEED_DATA,
    PAUSED,
    H11Parser,
    ProtocolError,
    RequestHead,
)


def test_the_private_head_reader_is_in_use() -> None:
    # If this fails, h11 changed its private reader (or how it reads): the
    # backend has fallen back to the public API, correct but slower. Update
    # _read_head_private, or pin h11.
    assert h11parser._read_head is h11parser._read_head_private


def _read(reader: h11parser.Callable[[bytes], h11parser._Head], head: bytes) -> object:
    try:
        return reader(head)
    except h11parser.h11.ProtocolError as exc:
        return ("refused", exc.error_status_hint, str(exc))


_TOKEN = st.text("!#$%&'*+-.^_`|~09AZaz", min_size=1, max_size=6).map(str.encode)
_VALUE = st.binary(max_size=12).map(
    # What the head meter lets through: HTAB, SP, VCHAR, obs-text.
    lambda value: bytes(b for b in value if b == 9 or 32 <= b != 127)
)
_HEADS = st.builds(
    lambda method, target, version, fields: (
        b"%s %s HTTP/%s\r\n%s\r\n"
        % (method, target, version, b"".join(b"%s:%s\r\n" % f for f in fields))
    ),
    st.one_of(_TOKEN, st.sampled_from([b"GET", b"POST", b"OPTIONS"])),
    st.sampled_from([b"/", b"/a?b", b"*", b"http://h/p", b"/\xff", b"/%00"]),
    st.sampled_from([b"1.1", b"1.0", b"1.9"]),
    st.lists(
        st.tuples(
            st.one_of(
                _TOKEN,
                st.sampled_from(
                    [b"Host", b"content-length", b"Transfer-Encoding", b"Upgrade"]
                ),
            ),
            st.one_of(
                _VALUE,
                st.sampled_from(
                    [
                        b" 5",
                        b"5, 5",
                        b"5,,5",
                        b"5, 6",
                        b" 5 ,5\t",
                        b"0" * 21,
                        b"",
                        b"chunked",
                        b" Chunked ",
                        b"chunked, chunked",
                    ]
                ),
            ),
        ),
        max_size=5,
    ),
)


@settings(max_examples=1000, deadline=None)
@given(_HEADS)
def test_both_head_readers_read_any_head_alike(head: bytes) -> None:
    # Given whole heads that the head meter let through, as in the parser.
    meter = HeadMeter()
    meter.feed(head)
    assume(meter.error is None)
    assert _read(h11parser._read_head_private, head) == _read(
        h11parser._read_head_public, head
    )


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
def test_the_public_fallback_parses_any_bytes_alike(pieces: list[bytes]) -> None:
    fast = parse(H11Parser, pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(h11parser, "_read_head", h11parser._read_head_public)
        assert parse(H11Parser, pieces) == fast


def test_a_broken_private_reader_falls_back_to_the_public_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(h11parser, "_h11_request_line")
    assert h11parser._pick_head_reader() is h11parser._read_head_public


def _parser(data: bytes) -> H11Parser:
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
    parser.feed(data)
    return parser


def test_a_content_length_body_is_cut_from_what_follows() -> None:
    parser = _parser(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"ab"
    assert parser.next_event() is NEED_DATA
    parser.feed(b"cdeGET /2 HTTP/1.1\r\n")
    assert parser.next_event() == b"cde"
    assert parser.next_event() is END
    assert parser.buffered() == b"GET /2 HTTP/1.1\r\n"
    assert parser.next_request() == b"GET /2 HTTP/1.1\r\n"
    assert parser.next_event() is NEED_DATA


def test_an_eof_inside_a_body_is_refused_as_h11_does() -> None:
    parser = _parser(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    parser.feed(b"")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"ab"
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 400
    assert "received 2 bytes, expected 5" in info.value.detail
    # A parser that refused keeps refusing.
    with pytest.raises(ProtocolError):
        parser.next_event()


@pytest.mark.parametrize(
    ("fields", "after_end"),
    [
        (b"", PAUSED),  # a pipelined request waits
        (b"Upgrade: websocket\r\nConnection: upgrade\r\n", PAUSED),
        # Nothing may follow a request that ends its connection.
        (b"Connection: close\r\n", 400),
    ],
)
def test_after_a_request_h11s_rules_hold_until_next_request(
    fields: bytes, after_end: object
) -> None:
    parser = _parser(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\nmore")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END
    if after_end == 400:
        with pytest.raises(ProtocolError) as info:
            parser.next_event()
        assert info.value.status == 400
    else:
        assert parser.next_event() is after_end
        assert parser.leftover() == b"more"


def test_a_space_before_the_request_line_is_refused_before_the_line_ends() -> None:
    with pytest.raises(ProtocolError) as info:
        _parser(b" GET / HTT").next_event()
    assert (info.value.status, info.value.detail) == (400, "illegal request line")


@given(st.binary(max_size=40))
def test_any_bytes_after_a_head_are_the_next_requests(tail: bytes) -> None:
    parser = _parser(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" + tail)
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END
    assert parser.buffered() == tail


def test_an_idle_parser_keeps_nothing_of_the_last_request() -> None:
    parser = _parser(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n")
    head = parser.next_event()
    assert isinstance(head, RequestHead)
    assert parser.next_event() is END
    assert any(ref is head.headers for ref in gc.get_referents(parser))
    parser.next_request()
    assert not any(ref is head.headers for ref in gc.get_referents(parser))
