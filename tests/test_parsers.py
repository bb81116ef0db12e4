"""The request parser backends, through their sans-I/O interface."""

import importlib.util
import sys

import pytest

import trioweb.server.parsers
from trioweb.server.config import ServerConfig
from trioweb.server.parsers import (
    CLOSED,
    END,
    NEED_DATA,
    H11Parser,
    ProtocolError,
    RequestHead,
    make_parser,
)


def test_request_events_and_pipelined_bytes_wait_for_next_request() -> None:
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
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
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END
    assert parser.next_request() == b""
    assert parser.buffered() == b""
    assert parser.next_event() is NEED_DATA


def test_eof_between_requests_is_closed() -> None:
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
    parser.feed(b"")
    assert parser.next_event() is CLOSED


def test_malformed_input_raises_protocol_error_with_status() -> None:
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
    parser.feed(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nHost: h\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 501
    parser = H11Parser(max_request_line=1024, max_header_size=1024)
    with pytest.raises(ProtocolError) as info:
        # The head meter refuses the malformed line as it arrives.
        parser.feed(b"NOT HTTP\r\n\r\n")
        parser.next_event()
    assert info.value.status == 400


def test_explicit_backends_and_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(make_parser(ServerConfig(http="h11"))) is H11Parser
    monkeypatch.setattr(trioweb.server.parsers, "httptools_available", lambda: False)
    assert type(make_parser(ServerConfig(http="auto"))) is H11Parser
    # As when httptools is not installed at all:
    monkeypatch.setitem(sys.modules, "httptools", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install httptools"):
        ServerConfig(http="httptools")


def test_a_missing_httptools_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # trioweb is not on PyPI: `pip install 'trioweb[fast]'` would not work.
    monkeypatch.setattr(trioweb.server.parsers, "httptools_available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        trioweb.server.parsers.resolve_backend("httptools")
    assert "pip install httptools (the [fast] extra of trioweb)" in str(info.value)
    assert "trioweb[" not in str(info.value)


def test_an_unknown_backend_name_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        ServerConfig(http="llhttp")


@pytest.mark.parametrize("backend", ["h11", "httptools"])
def test_a_body_of_many_tiny_chunks_comes_out_in_one_piece(backend: str) -> None:
    # One event per chunk would cost the handler's loop a round trip per
    # byte: a client could make the server do 200,000 of them without ever
    # letting another connection run. What is buffered comes out whole.
    pytest.importorskip(backend)
    parser = make_parser(ServerConfig(http=backend))
    chunks = b"".join(b"1\r\n%c\r\n" % (97 + i % 26) for i in range(5000))
    parser.feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\nX-Trailer: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert isinstance(parser.next_event(), RequestHead)
    body = parser.next_event()
    assert body == bytes(97 + i % 26 for i in range(5000))
    assert parser.next_event() is END
    parser.next_request()
    after = parser.next_event()
    assert isinstance(after, RequestHead) and after.target == b"/next"


@pytest.mark.parametrize("backend", ["h11", "httptools"])
def test_chunk_data_is_handed_over_before_a_missing_end(backend: str) -> None:
    # The pieces that arrived are the reader's before the peer's early close
    # is reported (the next read).
    pytest.importorskip(backend)
    parser = make_parser(ServerConfig(http=backend))
    parser.feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde"
    )
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"abcde"
    parser.feed(b"")
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 400


httptools = pytest.importorskip("httptools")


def _events(parser: object) -> list[object]:
    events = []
    while (event := parser.next_event()) is not NEED_DATA:  # type: ignore[attr-defined]
        events.append(event)
        if event is END:
            parser.next_request()  # type: ignore[attr-defined]
    return events


def test_httptools_serves_pipelined_requests_before_a_bad_one() -> None:
    from trioweb.server.parsers import HttptoolsParser

    parser = HttptoolsParser(max_request_line=1024, max_header_size=1024)
    parser.feed(
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        b"NOT A REQUEST\r\n\r\n"
    )
    heads = []
    with pytest.raises(ProtocolError) as info:
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, RequestHead):
                heads.append(event.target)
            elif event is END:
                parser.next_request()
    assert heads == [b"/a", b"/b"]
    assert info.value.status == 400


def test_httptools_limits_the_head_whatever_the_split() -> None:
    from trioweb.server.parsers import HttptoolsParser

    head = b"GET /" + b"a" * 40 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    for cut in range(1, len(head)):
        parser = HttptoolsParser(max_request_line=30, max_header_size=100)
        with pytest.raises(ProtocolError) as info:
            parser.feed(head[:cut])
            parser.feed(head[cut:])
            _events(parser)
        assert info.value.status == 414, cut


def test_httptools_parses_one_request_at_a_time() -> None:
    from trioweb.server.parsers import HttptoolsParser

    parser = HttptoolsParser(max_request_line=1024, max_header_size=1024)
    parser.feed(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(3)))
    first = parser.next_event()
    assert isinstance(first, RequestHead) and first.target == b"/0"
    assert parser.next_event() is END
    # The pipelined requests wait unparsed (bounded by what was received),
    # not as a queue of parsed events.
    assert parser.buffered().startswith(b"GET /1 ")
    parser.next_request()
    second = parser.next_event()
    assert isinstance(second, RequestHead) and second.target == b"/1"
