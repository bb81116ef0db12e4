"""The response writer: framing rules and head validation (pure, no I/O)."""

import pytest

from trioweb.server import writer
from trioweb.server.writer import CHUNKED, CLOSE_DELIMITED, LENGTH, NO_BODY, encode_head


def _head(
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    reason: bytes = b"OK",
    head_request: bool = False,
    http11: bool = True,
    close: bool = False,
    date: bytes | None = None,
) -> tuple[bytes, int, int, bool]:
    return encode_head(
        status,
        reason,
        headers or [],
        head_request=head_request,
        http11=http11,
        close=close,
        date=date,
    )


def test_content_length_frames_by_length() -> None:
    head, framing, length, close = _head(headers=[(b"Content-Length", b"5")])
    assert head == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert (framing, length, close) == (LENGTH, 5, False)


def test_unknown_length_is_chunked_on_http11_and_close_delimited_on_http10() -> None:
    head, framing, _, close = _head()
    assert framing == CHUNKED and not close
    assert b"Transfer-Encoding: chunked\r\n" in head
    head, framing, _, close = _head(http11=False)
    assert framing == CLOSE_DELIMITED and close
    assert b"transfer-encoding" not in head.lower()
    assert head.endswith(b"Connection: close\r\n\r\n")


def test_head_keeps_content_length_but_sends_no_body() -> None:
    head, framing, length, _ = _head(
        headers=[(b"content-length", b"12")], head_request=True
    )
    assert framing == NO_BODY and length == -1
    assert b"content-length: 12\r\n" in head


@pytest.mark.parametrize("status", [204, 304, 101])
def test_bodyless_statuses(status: int) -> None:
    head, framing, _, _ = _head(status, [(b"Content-Length", b"3")])
    assert framing == NO_BODY
    # 204 and 1xx must not carry Content-Length; 304 may describe the
    # representation's length.
    assert (b"Content-Length" in head) == (status == 304)


def test_close_is_added_once_and_reported() -> None:
    head, _, _, close = _head(headers=[(b"Connection", b"close")], close=True)
    assert close and head.lower().count(b"connection: close") == 1
    head, _, _, close = _head(headers=[(b"Connection", b"close")])
    assert close, "the application's own Connection: close is honoured"


def test_chunked_requested_with_length_drops_the_length() -> None:
    head, framing, length, _ = _head(
        headers=[(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")]
    )
    assert framing == CHUNKED and length == -1
    assert b"Content-Length" not in head


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(b"X", b"a\r\nInjected: yes")], b"OK"),
        ([(b"X", b"a\nb")], b"OK"),
        ([(b"X", b"nul\x00")], b"OK"),
        ([(b"Bad Name", b"v")], b"OK"),
        ([(b"X", b" leading space")], b"OK"),
        ([], b"OK\r\nInjected: yes"),
        ([(b"Transfer-Encoding", b"gzip")], b"OK"),
        ([(b"Content-Length", b"-1")], b"OK"),
        ([(b"Content-Length", b"abc")], b"OK"),
        # int() takes these; a Content-Length is plain ASCII digits only.
        ([(b"Content-Length", b"+10")], b"OK"),
        ([(b"Content-Length", b"1_0")], b"OK"),
        ([(b"Content-Length", b" 10")], b"OK"),
        ([(b"Content-Length", b"\xd9\xa1")], b"OK"),
        ([(b"Content-Length", b"9" * 5000)], b"OK"),
    ],
)
def test_invalid_heads_raise_before_anything_is_written(
    headers: list[tuple[bytes, bytes]], reason: bytes
) -> None:
    with pytest.raises(ValueError):
        _head(headers=headers, reason=reason)


def test_invalid_status_raises() -> None:
    with pytest.raises(ValueError):
        _head(status=1000)


def test_chunk_encoding() -> None:
    assert writer.chunk(b"") == b""
    assert writer.chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert writer.LAST_CHUNK == b"0\r\n\r\n"


def test_added_headers_have_conventional_names() -> None:
    head, _, _, _ = _head(close=True, date=b"Wed, 02 Dec 2026 08:00:00 GMT")
    lines = head.split(b"\r\n")[1:-2]
    assert lines == [
        b"Date: Wed, 02 Dec 2026 08:00:00 GMT",
        b"Transfer-Encoding: chunked",
        b"Connection: close",
    ]
    head, _, _, _ = _head(head_request=True)
    assert b"Transfer-Encoding: chunked\r\n" in head


@pytest.mark.parametrize("name", [b"Date", b"date", b"DATE"])
def test_the_applications_date_replaces_the_servers(name: bytes) -> None:
    mine = b"Thu, 01 Jan 2026 00:00:00 GMT"
    head, _, _, _ = _head(
        headers=[(name, mine), (b"Content-Length", b"0")],
        date=b"Wed, 02 Dec 2026 08:00:00 GMT",
    )
    assert head.lower().count(b"date:") == 1
    assert name + b": " + mine + b"\r\n" in head


# -- field lines validated once (the writer keeps them by (name, value)) --------


def test_a_repeated_head_is_encoded_the_same_every_time() -> None:
    headers = [
        (b"Server", b"trioweb/0.1"),
        (b"Content-Type", b"text/plain"),
        (b"Date", b"Thu, 01 Jan 2026 00:00:00 GMT"),
        (b"Content-Length", b"2"),
    ]
    first = _head(headers=headers, date=b"Wed, 02 Dec 2026 08:00:00 GMT")
    # Again, now that the plain lines are known: the application's Date
    # still replaces the server's, and the length still frames the body.
    assert _head(headers=headers, date=b"Wed, 02 Dec 2026 08:00:00 GMT") == first
    head, framing, length, _ = first
    assert head.lower().count(b"date:") == 1
    assert (framing, length) == (LENGTH, 2)
    # A 204 with the same (known) lines still drops its Content-Length.
    head, framing, _, _ = _head(204, headers=headers)
    assert framing == NO_BODY
    assert b"Content-Length" not in head


def test_known_lines_do_not_let_a_bad_one_through() -> None:
    good = (b"X-Thing", b"fine")
    _head(headers=[good])
    with pytest.raises(ValueError, match="X-Thing"):
        _head(headers=[good, (b"X-Thing", b"fine\r\nInjected: yes")])
    # Pairs that cannot be kept (a list, bytearrays) are checked every time.
    for pair in ([b"X", b"ok"], (bytearray(b"X"), bytearray(b"ok"))):
        head, _, _, _ = _head(headers=[pair])  # type: ignore[list-item]
        assert b"X: ok\r\n" in head
    with pytest.raises(ValueError):
        _head(headers=[[b"X", b"a\nb"]])  # type: ignore[list-item]


def test_the_known_lines_are_bounded() -> None:
    for n in range(3 * writer._VALID_LINES_SIZE):
        _head(headers=[(b"ETag", b'"%d"' % n)])
    assert len(writer._valid_lines) <= writer._VALID_LINES_SIZE


def test_request_ids_are_not_kept_as_known_lines() -> None:
    # Each is unique to its request: keeping them would only push out the
    # lines that repeat (and hold memory for nothing).
    repeated = (b"X-Thing", b"same")
    _head(headers=[repeated])
    for n in range(2 * writer._VALID_LINES_SIZE):
        head, _, _, _ = _head(headers=[(b"X-Request-Id", b"%032x" % n), repeated])
        assert b"X-Request-Id: %032x\r\n" % n in head
    assert all(name.lower() != b"x-request-id" for name, _ in writer._valid_lines)
    assert repeated in writer._valid_lines
