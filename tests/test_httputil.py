"""Tests for trioweb.httputil: pure functions, so plain synchronous tests."""

from __future__ import annotations

import copy
import datetime
import email.utils
import http.cookies
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioweb.httputil import (
    HTTPHeaders,
    etag_matches,
    format_set_cookie,
    format_timestamp,
    http_date,
    is_valid_header_name,
    is_valid_header_value,
    is_valid_host,
    parse_cookie,
    parse_http_date,
    qs_to_qsl,
    reason_phrase,
    split_host_and_port,
    split_target,
    to_unicode,
    url_concat,
    url_unescape,
    utf8,
)

# --------------------------------------------------------------------------
# utf8 / to_unicode / url_unescape
# --------------------------------------------------------------------------


def test_utf8() -> None:
    assert utf8("é") == b"\xc3\xa9"
    raw = b"\xff\x00"
    assert utf8(raw) is raw
    assert utf8(None) is None
    with pytest.raises(TypeError, match="int"):
        utf8(3)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        utf8(bytearray(b"x"))  # type: ignore[call-overload]


def test_to_unicode() -> None:
    assert to_unicode(b"\xc3\xa9") == "é"
    text = "abc"
    assert to_unicode(text) is text
    assert to_unicode(None) is None
    with pytest.raises(UnicodeDecodeError):
        to_unicode(b"\xff")
    with pytest.raises(TypeError, match="list"):
        to_unicode([])  # type: ignore[call-overload]


def test_url_unescape_plus_handling() -> None:
    assert url_unescape("a+b%20c%2B") == "a b c+"
    assert url_unescape("a+b%20c%2B", plus=False) == "a+b c+"
    assert url_unescape(b"a+b%2B") == "a b+"
    assert url_unescape(b"a+b%2B", plus=False) == "a+b+"


def test_url_unescape_to_bytes() -> None:
    assert url_unescape("%C3%A9+x", encoding=None) == b"\xc3\xa9 x"
    assert url_unescape("%C3%A9+x", encoding=None, plus=False) == b"\xc3\xa9+x"
    assert url_unescape(b"%ff+", encoding=None) == b"\xff "
    assert url_unescape(b"%ff+", None, False) == b"\xff+"


def test_url_unescape_encodings() -> None:
    assert url_unescape("%C3%A9") == "é"
    assert url_unescape(b"%C3%A9") == "é"
    assert url_unescape("%E9", encoding="latin-1") == "é"
    assert url_unescape(b"%E9", encoding="latin-1") == "é"
    # Undecodable bytes become the replacement character, not an exception.
    assert url_unescape("%FF") == "\ufffd"
    assert url_unescape(b"%FF") == "\ufffd"
    # A malformed escape stays as it is.
    assert url_unescape("100%zz") == "100%zz"
    assert url_unescape("100%", encoding=None) == b"100%"


# --------------------------------------------------------------------------
# HTTPHeaders
# --------------------------------------------------------------------------


def test_headers_case_insensitive_and_normalized() -> None:
    headers = HTTPHeaders()
    headers["content-TYPE"] = "text/html"
    assert headers["Content-Type"] == "text/html"
    assert headers["CONTENT-TYPE"] == "text/html"
    assert "content-type" in headers
    assert "Content-Length" not in headers
    not_a_name: object = 42
    assert not_a_name not in headers
    assert list(headers) == ["Content-Type"]
    assert headers.get("x-missing") is None
    assert headers.get("x-missing", "d") == "d"


def test_headers_keep_conventional_spellings() -> None:
    headers = HTTPHeaders({"etag": '"x"', "www-authenticate": "Basic"})
    headers.add("SEC-WEBSOCKET-ACCEPT", "k")
    assert list(headers) == ["ETag", "WWW-Authenticate", "Sec-WebSocket-Accept"]
    assert headers["ETag"] == '"x"'
    assert list(HTTPHeaders.from_raw([(b"etag", b'"y"')])) == ["ETag"]


def test_headers_multiple_values() -> None:
    headers = HTTPHeaders()
    headers.add("Set-Cookie", "a=1")
    headers.add("set-cookie", "b=2")
    headers.add("X-One", "1")
    assert headers["Set-Cookie"] == "a=1,b=2"
    assert headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert headers.get_list("X-One") == ["1"]
    assert headers.get_list("Absent") == []
    assert len(headers) == 2
    assert list(headers.get_all()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-One", "1"),
    ]
    # get_list returns a copy.
    headers.get_list("Set-Cookie").append("c=3")
    assert headers.get_list("Set-Cookie") == ["a=1", "b=2"]


def test_encoded_fields_are_get_all_in_latin1_every_time() -> None:
    headers = HTTPHeaders()
    headers.add("Set-Cookie", "a=1")
    headers.add("X-Caf\u00e9", "cr\u00e8me")
    headers.add("set-cookie", "b=2")
    expected = [
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"X-Caf\xe9", b"cr\xe8me"),
    ]
    assert headers.encoded_fields() == expected
    # The second time from the cache: the same bytes.
    assert headers.encoded_fields() == expected
    headers["X-Caf\u00e9"] = "autre"
    assert headers.encoded_fields()[-1] == (b"X-Caf\xe9", b"autre")
    headers["X-Beyond"] = "\u20ac"
    with pytest.raises(UnicodeEncodeError):
        headers.encoded_fields()


def test_headers_setitem_replaces_and_delitem_removes_all() -> None:
    headers = HTTPHeaders()
    headers.add("A", "1")
    headers.add("A", "2")
    headers["a"] = "3"
    assert headers.get_list("A") == ["3"]
    headers.add("A", "4")
    del headers["A"]
    assert "A" not in headers
    assert len(headers) == 0
    with pytest.raises(KeyError):
        del headers["A"]
    with pytest.raises(KeyError):
        headers["A"]


def test_headers_mutable_mapping_methods() -> None:
    headers = HTTPHeaders({"a": "1"})
    headers.update({"B": "2"}, c="3")
    assert dict(headers) == {"A": "1", "B": "2", "C": "3"}
    assert headers.pop("b") == "2"
    assert headers.setdefault("a", "x") == "1"
    assert headers.setdefault("d", "4") == "4"
    assert sorted(headers.items()) == [("A", "1"), ("C", "3"), ("D", "4")]


def test_headers_constructor_forms() -> None:
    assert HTTPHeaders({"x-a": "1"}).get_list("X-A") == ["1"]
    assert HTTPHeaders(x_a="1").get_list("X_a") == ["1"]
    pairs = HTTPHeaders([("A", "1"), ("a", "2"), ("B", "3")])
    assert pairs.get_list("A") == ["1", "2"]
    copied = HTTPHeaders(pairs)
    assert copied.get_list("A") == ["1", "2"]
    copied.add("A", "x")
    assert pairs.get_list("A") == ["1", "2"]
    with pytest.raises(TypeError, match="at most 1"):
        HTTPHeaders({}, {})


def test_headers_copy_is_independent() -> None:
    headers = HTTPHeaders()
    headers.add("A", "1")
    headers.add("A", "2")
    for duplicate in (headers.copy(), copy.copy(headers)):
        assert isinstance(duplicate, HTTPHeaders)
        assert duplicate.get_list("A") == ["1", "2"]
        duplicate.add("A", "3")
        duplicate["B"] = "x"
        assert headers.get_list("A") == ["1", "2"]
        assert "B" not in headers


def test_headers_repr_round_trips() -> None:
    headers = HTTPHeaders()
    headers.add("Set-Cookie", "a=1")
    headers.add("Set-Cookie", "b=2")
    headers["Host"] = "example.com"
    text = repr(headers)
    assert text == (
        "HTTPHeaders([('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'),"
        " ('Host', 'example.com')])"
    )
    rebuilt = eval(text, {"HTTPHeaders": HTTPHeaders})
    assert list(rebuilt.get_all()) == list(headers.get_all())


def test_headers_equality() -> None:
    a = HTTPHeaders({"Content-Type": "text/plain"})
    b = HTTPHeaders({"content-type": "text/plain"})
    assert a == b
    assert a == {"Content-Type": "text/plain"}
    b["Content-Type"] = "text/html"
    assert a != b


def test_headers_from_raw() -> None:
    raw = [
        (b"host", b"example.com"),
        (b"accept", b"text/html"),
        (b"accept", b"application/json"),
        (b"x-latin", b"caf\xe9"),
        (b"X-MiXeD", b"1"),
    ]
    headers = HTTPHeaders.from_raw(raw)
    assert headers["Host"] == "example.com"
    assert headers["Accept"] == "text/html,application/json"
    assert headers.get_list("accept") == ["text/html", "application/json"]
    # latin-1 decoding is lossless.
    assert headers["X-Latin"] == "café"
    assert headers["X-Latin"].encode("latin-1") == b"caf\xe9"
    assert list(headers) == ["Host", "Accept", "X-Latin", "X-Mixed"]
    assert HTTPHeaders.from_raw([]) == HTTPHeaders()
    # A generator works too.
    assert len(HTTPHeaders.from_raw(pair for pair in raw)) == 4


def test_headers_many_distinct_names() -> None:
    # More names than the normalization cache holds: still correct.
    headers = HTTPHeaders.from_raw((f"x-n{i}".encode(), b"v") for i in range(3000))
    assert len(headers) == 3000
    assert headers["X-N2999"] == "v"
    assert "x-n1500" in headers


_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#"
_header_names = st.text(_TOKEN_ALPHABET, min_size=1, max_size=12)
_header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=10,
)


@given(st.lists(st.tuples(_header_names, _header_values), max_size=20))
def test_headers_case_insensitivity_property(
    pairs: list[tuple[str, str]],
) -> None:
    headers = HTTPHeaders()
    for name, value in pairs:
        headers.add(name, value)
    distinct = {name.lower() for name, _ in pairs}
    assert len(headers) == len(distinct)
    for name, _ in pairs:
        expected = [v for n, v in pairs if n.lower() == name.lower()]
        for variant in (name, name.lower(), name.upper(), name.swapcase()):
            assert variant in headers
            assert headers.get_list(variant) == expected
            assert headers[variant] == ",".join(expected)
    # from_raw (lowercase bytes names, as h11 gives them) agrees with add().
    raw = [(n.lower().encode(), v.encode("latin-1")) for n, v in pairs]
    assert list(HTTPHeaders.from_raw(raw).get_all()) == list(headers.get_all())


# --------------------------------------------------------------------------
# Header validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Content-Type", "x", "X-Custom_1", "!#$%&'*+-.^_`|~", b"Host"]
)
def test_valid_header_names(name: str | bytes) -> None:
    assert is_valid_header_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "Bad Name", "Bad:Name", "a\r\nb", "a\x00", "é", "(x)", "a/b", b"", b"a b"],
)
def test_invalid_header_names(name: str | bytes) -> None:
    assert not is_valid_header_name(name)


@pytest.mark.parametrize(
    "value",
    ["", "text/html", "a\tb", "a  b", "café", "x" * 1000, b"bytes ok", b"\xe9"],
)
def test_valid_header_values(value: str | bytes) -> None:
    assert is_valid_header_value(value)


@pytest.mark.parametrize(
    "value",
    [
        "a\rb",
        "a\nb",
        "a\r\nSet-Cookie: x=1",
        "a\x00b",
        "a\x01b",
        "a\x1fb",
        "a\x7fb",
        "a\x0bb",
        "€",
        " leading",
        "trailing ",
        "trailing\t",
        b"a\r\nb",
        b"\x00",
        b" x",
    ],
)
def test_invalid_header_values(value: str | bytes) -> None:
    assert not is_valid_header_value(value)


# --------------------------------------------------------------------------
# Targets, hosts, status lines
# --------------------------------------------------------------------------


def test_split_target() -> None:
    assert split_target("/a?b=1") == ("/a", "b=1")
    assert split_target("/a") == ("/a", "")
    assert split_target("/a?") == ("/a", "")
    assert split_target("/a?b=1?c") == ("/a", "b=1?c")
    assert split_target("*") == ("*", "")


@pytest.mark.parametrize(
    ("netloc", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("a:8080", ("a", 8080)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:80", ("[::1]", 80)),
        ("[::1]", ("[::1]", None)),
        ("[::1]:", ("[::1]:", None)),
        ("::1", ("::1", None)),
        ("a:", ("a:", None)),
        (":80", (":80", None)),
        ("a:http", ("a:http", None)),
        ("a:\u0661", ("a:\u0661", None)),  # Arabic-Indic digit one
        ("a:65535", ("a", 65535)),
        ("a:65536", ("a:65536", None)),  # not a TCP port
        ("a:" + "1" * 5000, ("a:" + "1" * 5000, None)),  # int() would raise
        ("[::1]:" + "1" * 5000, ("[::1]:" + "1" * 5000, None)),
        ("", ("", None)),
    ],
)
def test_split_host_and_port(netloc: str, expected: tuple[str, int | None]) -> None:
    assert split_host_and_port(netloc) == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("example.com", True),
        ("example.com:8080", True),
        ("127.0.0.1:80", True),
        ("[::1]", True),
        ("[::1]:443", True),
        ("[fe80::1%25eth0]:80", True),
        ("a:", True),
        ("", True),
        ("a:65535", True),
        ("a:65536", False),
        ("a:" + "1" * 5000, False),
        ("[::1]:" + "1" * 5000, False),
        ("a:http", False),
        ("::1", False),
        ("a b", False),
        ("a/b", False),
        ("a@b", False),
        ("[::1", False),
        ("caf\u00e9.example", False),
    ],
)
def test_is_valid_host(value: str, valid: bool) -> None:
    assert is_valid_host(value) is valid


def test_reason_phrase() -> None:
    assert reason_phrase(200) == "OK"
    assert reason_phrase(404) == "Not Found"
    assert reason_phrase(418) == "I'm a Teapot"
    # RFC 9110's names, where Python's table has RFC 7231's or older ones.
    assert reason_phrase(413) == "Content Too Large"
    assert reason_phrase(416) == "Range Not Satisfiable"
    assert reason_phrase(422) == "Unprocessable Content"
    assert reason_phrase(429) == "Too Many Requests"
    assert reason_phrase(599) == "Unknown"
    assert reason_phrase(299) == "Unknown"


# --------------------------------------------------------------------------
# Query strings and form bodies
# --------------------------------------------------------------------------


def test_qs_to_qsl() -> None:
    qs = {"a": [b"1", b"2"], "b": [b"3"], "c": []}
    assert list(qs_to_qsl(qs)) == [("a", b"1"), ("a", b"2"), ("b", b"3")]
    assert list(qs_to_qsl({})) == []


def test_url_concat() -> None:
    assert url_concat("http://example.com/foo", {"c": "d"}) == (
        "http://example.com/foo?c=d"
    )
    assert url_concat("http://example.com/foo?a=b", {"c": "d"}) == (
        "http://example.com/foo?a=b&c=d"
    )
    assert url_concat("http://example.com/foo?a=b", [("c", "d"), ("c", "d2")]) == (
        "http://example.com/foo?a=b&c=d&c=d2"
    )
    assert url_concat("https://localhost/path?x", (("y", "y"),)) == (
        "https://localhost/path?x=&y=y"
    )
    assert url_concat("https://localhost/path?", {"y": "y", "z": "z"}) == (
        "https://localhost/path?y=y&z=z"
    )
    assert url_concat("https://localhost/path?r=1&t=2", []) == (
        "https://localhost/path?r=1&t=2"
    )
    assert url_concat("/p#frag", {"q": "a b&c"}) == "/p?q=a+b%26c#frag"
    assert url_concat("/p", {"n": 1}) == "/p?n=1"
    assert url_concat("/p?a=1", None) == "/p?a=1"
    with pytest.raises(TypeError, match="str"):
        url_concat("/p", "a=1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Cookies
# --------------------------------------------------------------------------


def test_parse_cookie() -> None:
    assert parse_cookie("a=1; b=2") == {"a": "1", "b": "2"}
    assert parse_cookie("a=1;b=2;  c = 3 ") == {"a": "1", "b": "2", "c": "3"}
    assert parse_cookie("") == {}
    assert parse_cookie(" ; ;") == {}
    assert parse_cookie("a=b=c") == {"a": "b=c"}
    assert parse_cookie("a=1; a=2") == {"a": "2"}
    # A field without '=' is a value with the empty name.
    assert parse_cookie("lonely") == {"": "lonely"}
    assert parse_cookie("a=") == {"a": ""}
    # Not valid by the RFC, but browsers send it; do not choke.
    assert parse_cookie("a=x y; b=\x00") == {"a": "x y", "b": "\x00"}


def test_parse_cookie_unquotes() -> None:
    assert parse_cookie('a="x=y"') == {"a": "x=y"}
    assert parse_cookie(r'a="q\"b\\c"') == {"a": 'q"b\\c'}
    assert parse_cookie(r'a="\303\251"') == {"a": "\xc3\xa9"}
    assert parse_cookie(r'a="\x"') == {"a": "x"}
    # Only a value fully in quotes is unquoted.
    assert parse_cookie('a="x') == {"a": '"x'}
    assert parse_cookie('a=x"') == {"a": 'x"'}
    assert parse_cookie('a="') == {"a": '"'}
    assert parse_cookie('a=""') == {"a": ""}


@pytest.mark.parametrize(
    "value",
    [
        "x=y",
        'q"b\\c',
        "path/with/slashes",
        "é",
        "\xff\x80",
        "2|1:0|10:1700000000|4:name|8:dmFsdWU=|abc",
        "(){}[]<>@?",
    ],
)
def test_cookie_quoting_matches_http_cookies(value: str) -> None:
    header = format_set_cookie("n", value, path=None)
    reference = http.cookies.SimpleCookie()
    reference["n"] = value
    assert header == reference["n"].OutputString()
    # And parse_cookie reads it back unchanged.
    assert parse_cookie(header) == {"n": value}


def test_format_set_cookie_defaults() -> None:
    assert format_set_cookie("a", "b") == "a=b; Path=/"
    assert format_set_cookie("a", "b", path=None) == "a=b"
    assert format_set_cookie("a", "b", path="") == "a=b"
    assert format_set_cookie("a", "x=y") == 'a="x=y"; Path=/'
    # Unlike http.cookies, an empty value is not written as "" (browsers
    # keep quotes as part of the value).
    assert format_set_cookie("a", "") == "a=; Path=/"


def test_format_set_cookie_all_attributes() -> None:
    header = format_set_cookie(
        "session",
        "abc",
        domain="example.com",
        expires=1359312200,
        path="/app",
        max_age=3600,
        httponly=True,
        secure=True,
        samesite="lax",
    )
    assert header == (
        "session=abc; expires=Sun, 27 Jan 2013 18:43:20 GMT; Path=/app;"
        " Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
    )
    # The stdlib reads the attributes back the same way.
    parsed = http.cookies.SimpleCookie()
    parsed.load(header)
    morsel = parsed["session"]
    assert morsel.value == "abc"
    assert morsel["domain"] == "example.com"
    assert morsel["path"] == "/app"
    assert morsel["max-age"] == "3600"
    assert morsel["samesite"] == "Lax"
    assert morsel["httponly"] and morsel["secure"]


def test_format_set_cookie_expiry_zero_and_datetime() -> None:
    assert format_set_cookie("a", "", expires=0, max_age=0) == (
        "a=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Max-Age=0"
    )
    when = datetime.datetime(2030, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    assert format_set_cookie("a", "b", expires=when) == (
        "a=b; expires=Mon, 06 May 2030 07:08:09 GMT; Path=/"
    )


@pytest.mark.parametrize("samesite", ["Strict", "strict", "STRICT", "Lax", "LAX"])
def test_format_set_cookie_samesite_canonical(samesite: str) -> None:
    header = format_set_cookie("a", "b", samesite=samesite)
    assert header.endswith("; SameSite=" + samesite.capitalize())


def test_format_set_cookie_samesite_none_needs_secure() -> None:
    assert format_set_cookie("a", "b", samesite="none", secure=True) == (
        "a=b; Path=/; Secure; SameSite=None"
    )
    with pytest.raises(ValueError, match="secure=True"):
        format_set_cookie("a", "b", samesite="None")


@pytest.mark.parametrize("samesite", ["", "Laxx", "no", "None;"])
def test_format_set_cookie_invalid_samesite(samesite: str) -> None:
    with pytest.raises(ValueError, match="samesite"):
        format_set_cookie("a", "b", samesite=samesite, secure=True)


@pytest.mark.parametrize(
    "name",
    ["", "a b", "a;b", "a,b", "a=b", "a\tb", "a\x00", "a\r\nb", "é", 'a"b', "a\x7f"],
)
def test_format_set_cookie_invalid_name(name: str) -> None:
    with pytest.raises(ValueError, match="invalid cookie name"):
        format_set_cookie(name, "v")


@pytest.mark.parametrize(
    "value",
    ["a b", "a;b", "a,b", "a\tb", "a\x00", "a\r\nSet-Cookie: x=1", "\x7f", "€"],
)
def test_format_set_cookie_invalid_value(value: str) -> None:
    with pytest.raises(ValueError, match="invalid value for cookie 'n'"):
        format_set_cookie("n", value)


@pytest.mark.parametrize("attribute", ["domain", "path"])
@pytest.mark.parametrize("bad", ["a;b", "a\r\nb", "a\x00", "a\x7f", "é"])
def test_format_set_cookie_invalid_attribute(attribute: str, bad: str) -> None:
    with pytest.raises(ValueError, match=f"invalid cookie {attribute}"):
        format_set_cookie("n", "v", **{attribute: bad})  # type: ignore[arg-type]


def test_format_set_cookie_path_with_space_allowed() -> None:
    assert format_set_cookie("a", "b", path="/a b") == "a=b; Path=/a b"


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------


def test_format_timestamp_types() -> None:
    expected = "Sun, 27 Jan 2013 18:43:20 GMT"
    ts = 1359312200
    assert format_timestamp(ts) == expected
    assert format_timestamp(ts + 0.999) == expected
    assert format_timestamp(time.gmtime(ts)) == expected
    assert format_timestamp(tuple(time.gmtime(ts))) == expected
    naive = datetime.datetime(2013, 1, 27, 18, 43, 20)
    assert format_timestamp(naive) == expected
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    aware = datetime.datetime(2013, 1, 27, 19, 43, 20, tzinfo=plus_one)
    assert format_timestamp(aware) == expected
    assert format_timestamp(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_timestamp(-0.5) == "Wed, 31 Dec 1969 23:59:59 GMT"
    with pytest.raises(TypeError, match="str"):
        format_timestamp("2013")  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=253402300799))
def test_format_timestamp_matches_email_utils(ts: int) -> None:
    assert format_timestamp(ts) == email.utils.formatdate(ts, usegmt=True)


def test_http_date() -> None:
    assert http_date(1359312200) == b"Sun, 27 Jan 2013 18:43:20 GMT"
    # Cached per whole second, but never stale across seconds.
    assert http_date(1359312200.9) == b"Sun, 27 Jan 2013 18:43:20 GMT"
    assert http_date(1359312201.0) == b"Sun, 27 Jan 2013 18:43:21 GMT"
    assert http_date(1359312200.5) == b"Sun, 27 Jan 2013 18:43:20 GMT"
    now = http_date()
    parsed = parse_http_date(now.decode())
    assert parsed is not None
    assert abs(parsed.timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 10:49:37 +0200",
    ],
)
def test_parse_http_date_forms(value: str) -> None:
    assert parse_http_date(value) == datetime.datetime(
        1994, 11, 6, 8, 49, 37, tzinfo=datetime.UTC
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
    ],
)
def test_parse_http_date_invalid(value: str) -> None:
    assert parse_http_date(value) is None


@given(st.integers(min_value=0, max_value=253402300799))
def test_http_dates_round_trip(ts: int) -> None:
    parsed = parse_http_date(format_timestamp(ts))
    assert parsed is not None
    assert parsed.tzinfo is datetime.UTC
    assert parsed.timestamp() == ts


# --------------------------------------------------------------------------
# Entity tags
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("if_none_match", "etag", "expected"),
    [
        ('"abc"', '"abc"', True),
        ('"abc"', '"abd"', False),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('W/"abc"', 'W/"abc"', True),
        ('"x", "abc"', '"abc"', True),
        ('"x",W/"abc" , "y"', '"abc"', True),
        ('"x", "y"', '"abc"', False),
        ("*", '"anything"', True),
        (" * ", 'W/"anything"', True),
        ("*", "", False),
        ('"abc"', "abc", True),
        ('""', '""', True),
        ("", '"abc"', False),
        ("abc", '"abc"', False),
        ('"a,b"', '"a,b"', True),
        ('"ABC"', '"abc"', False),
    ],
)
def test_etag_matches(if_none_match: str, etag: str, expected: bool) -> None:
    assert etag_matches(if_none_match, etag) is expected
