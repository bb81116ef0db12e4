"""The h11 request parser backend, through its sans-I/O interface."""

import pytest

from trioweb.parsers import (
    CLOSED,
    END,
    NEED_DATA,
    H11Parser,
    ProtocolError,
    RequestHead,
)


def test_request_events_and_pipelined_bytes_wait_for_next_request() -> None:
    parser = H11Parser(max_head=1024)
    assert parser.next_event() is NEED_DATA
    parser.feed(
        b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    head = parser.next_event()
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.http_version) == (b"POST", b"/a?x=1", b"1.1")
    assert head.headers == [(b"host", b"h"), (b"content-length", b"3")]
    assert parser.next_event() == b"abc"
    assert parser.next_event() is END
    rest = parser.next_request()
    assert rest.startswith(b"GET /b")
    second = parser.next_event()
    assert isinstance(second, RequestHead) and second.target == b"/b"


def test_idle_parser_holds_no_connection_state_until_bytes_arrive() -> None:
    parser = H11Parser(max_head=1024)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END
    assert parser.next_request() == b""
    assert parser.buffered() == b""
    assert parser.next_event() is NEED_DATA


def test_eof_between_requests_is_closed() -> None:
    parser = H11Parser(max_head=1024)
    parser.feed(b"")
    assert parser.next_event() is CLOSED


def test_malformed_input_raises_protocol_error_with_status() -> None:
    parser = H11Parser(max_head=1024)
    parser.feed(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nHost: h\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 501
    parser = H11Parser(max_head=1024)
    parser.feed(b"NOT HTTP\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 400
