"""Forms, header parameters, JSON and cookies: the pure parsers (trioweb.forms)
and what a handler sees of them through the TestClient."""

from __future__ import annotations

import json
import logging
import tracemalloc
import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linear import assert_linear, python_lines

from trioweb import Application, HTTPError, HTTPServerRequest, RequestHandler, forms
from trioweb.forms import (
    is_json_type,
    media_type,
    parse_header_parameters,
    parse_json,
    parse_urlencoded,
)
from trioweb.httputil import HTTPHeaders, parse_cookie
from trioweb.testing import TestClient

# -- urlencoded forms and query strings: trioweb.forms.parse_urlencoded --------------


def test_parse_urlencoded_values() -> None:
    assert parse_urlencoded(b"a=1&a=2&b=x+y&c&d=%41%zz") == {
        "a": [b"1", b"2"],
        "b": [b"x y"],
        "c": [b""],
        "d": [b"A%zz"],
    }
    assert parse_urlencoded(b"") == {}
    assert parse_urlencoded(b"&&&a=1&&") == {"a": [b"1"]}
    assert parse_urlencoded(b"caf%C3%A9=%C3%A9") == {"caf\xc3\xa9": ["é".encode()]}


def test_parse_urlencoded_escapes_and_plus() -> None:
    assert parse_urlencoded(b"a%20b=c%2Bd+e") == {"a b": [b"c+d e"]}
    assert parse_urlencoded(b"a+b=1") == {"a b": [b"1"]}
    assert parse_urlencoded(b"x=%zz%") == {"x": [b"%zz%"]}
    assert parse_urlencoded(b"x=a=b") == {"x": [b"a=b"]}
    assert parse_urlencoded(b"x=1;y=2") == {"x": [b"1;y=2"]}


def test_parse_urlencoded_keeps_any_byte() -> None:
    result = parse_urlencoded(b"name=%FF%FE&%E9t%C3%A9=1")
    assert result["name"] == [b"\xff\xfe"]
    # Names are latin-1 decoded: the raw bytes come back with encode().
    names = [name for name in result if name != "name"]
    assert [name.encode("latin-1") for name in names] == [b"\xe9t\xc3\xa9"]
    assert parse_urlencoded(b"\xe9=\xff") == {"\xe9": [b"\xff"]}


@given(st.text(alphabet="ab=&+%20z\xe9;\xff", max_size=30))
def test_parse_urlencoded_agrees_with_the_stdlib(qs: str) -> None:
    # The stdlib, told to use latin-1, is the reference Tornado builds on.
    reference = urllib.parse.parse_qs(
        qs, keep_blank_values=True, encoding="latin-1", errors="strict"
    )
    expected = {k: [v.encode("latin-1") for v in vs] for k, vs in reference.items()}
    assert parse_urlencoded(qs.encode("latin-1")) == expected


@given(
    st.lists(
        st.sampled_from(
            [
                b"%",
                b"\\",
                b"x",
                b"N{",
                b"u",
                b"\r\n",
                b"\xff",
                b"4",
                b"1",
                b"aF",
                b"=",
                b"+",
                b"\x00",
            ]
        ),
        max_size=20,
    )
)
def test_escapes_decode_as_the_stdlib_does(pieces: list[bytes]) -> None:
    # What the C decoder could get wrong: stray "%", backslashes (which it
    # uses itself), Python escape letters, any byte.
    data = b"".join(pieces)
    value = data.replace(b"&", b"").partition(b"=")[2] or b""
    field = b"v=" + value
    expected = urllib.parse.unquote_to_bytes(value.replace(b"+", b" "))
    assert parse_urlencoded(field) == {"v": [expected]}


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from([b"%", b"=", b"4", b"1", b"aF", b"z", b"\xff"]), max_size=30
    ),
    st.integers(min_value=3, max_value=8),
)
def test_escapes_decode_the_same_whatever_the_chunk_size(
    pieces: list[bytes], chunk: int
) -> None:
    # The decoder works in chunks cut where no escape straddles the cut.
    data = b"".join(pieces)
    saved = forms._UNQUOTE_CHUNK
    forms._UNQUOTE_CHUNK = chunk
    try:
        decoded = forms._unquote(data)
    finally:
        forms._UNQUOTE_CHUNK = saved
    assert decoded == urllib.parse.unquote_to_bytes(data)


@pytest.mark.parametrize("escape", [b"%", b"%41", b"%z"])
def test_decoding_escapes_needs_no_memory_per_escape(escape: bytes) -> None:
    # urllib kept a list entry per "%" (2 GB for a 10 MiB body of them).
    data = escape * (1024 * 1024 // len(escape))
    tracemalloc.start()
    try:
        decoded = forms._unquote(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded == urllib.parse.unquote_to_bytes(data)
    assert peak < 3 * len(data)  # the pieces and their join


@pytest.mark.parametrize("escape", [b"%41", b"%", b"%z", b"\\%4"])
def test_escapes_are_decoded_with_no_python_code_per_escape(escape: bytes) -> None:
    # urllib's unquote_to_bytes runs Python for every "%": a 10 MiB body
    # of them cost 3 s (valid escapes) to 14 s (bare "%") of CPU.
    def parse(n: int) -> int:
        data = b"a=" + escape * n + b"&" + escape * n + b"=b"
        return python_lines(parse_urlencoded, data)

    assert parse(10_000) == parse(10)


@pytest.mark.parametrize("extra_separators", [False, True])
def test_parse_urlencoded_cap(extra_separators: bool) -> None:
    sep = b"&&" if extra_separators else b"&"
    at_limit = sep.join(b"f%d=v" % i for i in range(10))
    assert len(parse_urlencoded(at_limit, 10)) == 10
    with pytest.raises(HTTPError) as info:
        parse_urlencoded(at_limit + b"&one=more", 10, what="query string")
    assert info.value.status_code == 400
    assert info.value.reason is not None
    assert "max_form_fields=10" in info.value.reason
    assert "query string" in info.value.reason


def test_parse_urlencoded_stops_at_the_cap() -> None:
    # Issue 8, item 5: a 10 MiB body of "a&" was parsed whole (seconds of
    # CPU, 80-177 MiB). Past the cap nothing more is parsed or allocated:
    # splitting it would take over 40 MiB for the list alone.
    body = b"a&" * (5 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(HTTPError) as info:
            parse_urlencoded(body, 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.status_code == 400
    assert peak < 1024 * 1024, f"parsing allocated {peak} bytes"


@pytest.mark.parametrize(
    "make",
    [
        lambda n: b"a&" * n,
        lambda n: b"&" * n,
        lambda n: b"a=" * n,
        lambda n: b"%" * n,
        lambda n: b"a%41=%42&" * n,
    ],
)
def test_parse_urlencoded_is_linear(make: Any) -> None:
    assert_linear(lambda data: parse_urlencoded(data, 10**9), make)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=20))
def test_parse_urlencoded_random_input(data: bytes, cap: int) -> None:
    try:
        result = parse_urlencoded(data, cap)
    except HTTPError as exc:
        assert exc.status_code == 400
    else:
        assert sum(len(v) for v in result.values()) <= cap


# -- header parameters -------------------------------------------------------------


def test_parse_header_parameters() -> None:
    assert parse_header_parameters("text/html") == ("text/html", {})
    assert parse_header_parameters(
        'Form-Data; Name="f"; filename="a \\"b\\".txt";x=1 ; y'
    ) == ("form-data", {"name": "f", "filename": 'a "b".txt', "x": "1", "y": ""})
    assert parse_header_parameters('a; q="x;y"; z=2') == ("a", {"q": "x;y", "z": "2"})
    assert parse_header_parameters("multipart/form-data; boundary=--abc") == (
        "multipart/form-data",
        {"boundary": "--abc"},
    )


def test_rfc5987_parameters_are_decoded_and_win() -> None:
    _, params = parse_header_parameters(
        "attachment; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20f.txt"
    )
    assert params["filename"] == "naïve f.txt"
    _, params = parse_header_parameters("a; filename*=iso-8859-1'en'%E9t%E9")
    assert params["filename"] == "été"
    # An undecodable one is ignored; the plain parameter stays.
    _, params = parse_header_parameters("a; filename=x; filename*=nonsense")
    assert params["filename"] == "x"
    _, params = parse_header_parameters("a; filename=x; filename*=bogus-cs''%FF")
    assert params["filename"] == "x"


@pytest.mark.parametrize(
    "charset", ["utf-8\x00", "unicode_escape", "utf-7", "punycode", "base64", "latin1"]
)
def test_rfc5987_charsets_other_than_utf8_and_latin1_are_ignored(
    charset: str,
) -> None:
    # RFC 8187 names two charsets: any other Python codec is not the
    # client's to choose (and a NUL in the name made decode() raise).
    _, params = parse_header_parameters(f"a; filename=x; filename*={charset}''%41")
    assert params["filename"] == "x"


def test_rfc5987_charset_is_case_insensitive() -> None:
    _, params = parse_header_parameters("a; filename*=Utf-8''%C3%A9")
    assert params["filename"] == "é"
    _, params = parse_header_parameters("a; filename*=ISO-8859-1''%E9")
    assert params["filename"] == "é"


async def test_multipart_filename_with_a_nul_in_its_charset_is_not_a_500() -> None:
    class Up(RequestHandler):
        def post(self) -> None:
            self.write(
                {n: [f.filename for f in fs] for n, fs in self.request.files.items()}
            )

    body = (
        b"--b\r\nContent-Disposition: form-data; name=f; filename=plain.txt; "
        b"filename*=utf-8\x00''%41\r\n\r\ndata\r\n--b--\r\n"
    )
    async with TestClient(Application([("/up", Up)])) as client:
        r = await client.post(
            "/up",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    assert r.status == 200
    assert r.json() == {"f": ["plain.txt"]}


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "a" + '; a="' * n,
        lambda n: "a" + '; a="\\' * n,
        lambda n: "a" + ";" * n,
        lambda n: "a" + "; " * n + "=",
        lambda n: "a; b=" + '"' * n,
        lambda n: "a; b=" + "\\" * n,
        lambda n: "a" + "; x*=utf-8''%" * n,
        lambda n: 'a; b="' + '\\"' * n,
    ],
)
def test_parse_header_parameters_is_linear(make: Any) -> None:
    assert_linear(parse_header_parameters, make, n=200)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_header_parameters_never_raises(value: str) -> None:
    main, params = parse_header_parameters(value)
    assert main == main.lower()
    assert all(name == name.lower() for name in params)


def test_media_type_and_json_types() -> None:
    assert media_type(" Text/HTML ; charset=utf-8") == "text/html"
    assert is_json_type("application/json")
    assert is_json_type("Application/JSON; charset=utf-8")
    assert is_json_type("application/problem+json")
    assert not is_json_type("text/plain")
    assert not is_json_type("+json")
    assert not is_json_type("")


# -- JSON ------------------------------------------------------------------------


def test_parse_json() -> None:
    assert parse_json(b'{"a": [1, 2, {"b": null}]}', "application/json") == {
        "a": [1, 2, {"b": None}]
    }
    assert parse_json(b'"caf\xc3\xa9"', "application/vnd.x+json") == "café"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{}", "text/plain", 415),
        (b"{}", "", 415),
        (b"{", "application/json", 400),
        (b"", "application/json", 400),
        (b'"\xff"', "application/json", 400),
        (b"NaN-ish", "application/json", 400),
    ],
)
def test_parse_json_errors(body: bytes, content_type: str, status: int) -> None:
    with pytest.raises(HTTPError) as info:
        parse_json(body, content_type)
    assert info.value.status_code == status
    assert info.value.reason


def test_parse_json_depth_cap() -> None:
    at_limit = b"[" * 64 + b"]" * 64
    assert parse_json(at_limit, "application/json", 64) is not None
    # Many brackets but shallow: fine.
    assert len(parse_json(b"[" + b"[]," * 200 + b"[]]", "application/json", 64)) == 201
    for body in (
        b"[" * 65 + b"]" * 65,
        b'{"a":' * 65 + b"1" + b"}" * 65,
        # Deep enough for the C decoder's recursion limit: a 400, not a
        # RecursionError.
        b"[" * 100_000 + b"]" * 100_000,
    ):
        with pytest.raises(HTTPError) as info:
            parse_json(body, "application/json", 64)
        assert info.value.status_code == 400
        assert "max_json_depth=64" in (info.value.reason or "")


@pytest.mark.parametrize(
    "make",
    [
        lambda n: b"[" * n + b"]" * n,
        lambda n: b"[" + b"[[[]]]," * n + b"1]",
        lambda n: b'"' + b"\\u0041" * n + b'"',
        lambda n: b"[" * n,
    ],
)
def test_parse_json_is_linear(make: Any) -> None:
    # A depth limit below the smallest input's nesting: both sizes take the
    # same path (past the limit). With 64, a busy machine shrank the small
    # input under the limit, and timed a cheap success against a walk.
    assert_linear(lambda body: parse_json(body, "application/json", 4), make)


def test_too_deep_json_is_refused_before_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The depth is measured on the bytes: a body over the limit never
    # reaches the decoder, so none of its objects is made.
    def loads(text: str) -> Any:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(json, "loads", loads)
    for body in (b"[" * 65 + b"]" * 65, b'[{"a":' * 40 + b"1" + b"}]" * 40):
        with pytest.raises(HTTPError) as info:
            parse_json(body, "application/json", 64)
        assert "max_json_depth=64" in (info.value.reason or "")


def test_the_depth_check_runs_no_python_code_per_container() -> None:
    # Ten megabytes of "[]," is 3.5 million containers: walking them in
    # Python after the parse cost several times the parse (over 10 s).
    def parse(body: bytes) -> None:
        parse_json(body, "application/json", 64)

    def flat(n: int) -> bytes:
        return b"[" + b"[]," * n + b"{}]"

    def towers(n: int) -> bytes:  # each 65 deep: refused
        return b"[" + (b"[" * 64 + b"]" * 64 + b",") * n + b"1]"

    # Both sizes within one 16 KiB window (there is Python per window).
    assert python_lines(parse, flat(5_000)) == python_lines(parse, flat(100))
    assert python_lines(parse, towers(100)) == python_lines(parse, towers(1))


def test_the_depth_check_needs_no_memory_per_string() -> None:
    # Splitting a whole body of '"ab"ab...' at its quotes made an object
    # per string: 200 MB for 10 MiB, for a body json.loads refuses at once.
    body = b"[" * 65 + b'"ab' * 1_000_000
    tracemalloc.start()
    try:
        assert forms._nesting(body, 64) > 64
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(body) // 4  # what one window's pieces take


_json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab,:\u00e9'),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet='[{"\\', max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def _reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return 0
    return 1 + max(map(_reference_depth, value), default=0)


@settings(max_examples=100, deadline=None)
@given(_json_values, st.integers(min_value=1, max_value=9))
def test_the_depth_is_the_same_whatever_the_window(value: Any, window: int) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    saved = forms._NESTING_WINDOW
    forms._NESTING_WINDOW = window
    try:
        measured = forms._nesting(body, 1000)
    finally:
        forms._NESTING_WINDOW = saved
    assert measured == _reference_depth(value)


@settings(max_examples=300, deadline=None)
@given(_json_values, st.sampled_from([None, 1]))
def test_the_depth_measured_on_the_bytes_is_the_real_one(
    value: Any, indent: int | None
) -> None:
    body = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    assert forms._nesting(body, 1000) == _reference_depth(value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parse_json_random_input(body: bytes) -> None:
    try:
        parse_json(body, "application/json")
    except HTTPError as exc:
        assert exc.status_code == 400


# -- cookies and repeated headers ----------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "a=1; " * n,
        lambda n: '"' * n,
        lambda n: 'a="' + "\\" * n + '"',
        lambda n: 'a="' + "\\0" * n + '"',
        lambda n: ";" * n,
        lambda n: "=" * n,
    ],
)
def test_parse_cookie_is_linear(make: Any) -> None:
    assert_linear(parse_cookie, make)


def test_repeated_headers_are_linear() -> None:
    def build(n: int) -> list[tuple[bytes, bytes]]:
        return [(b"cookie", b"a=1")] * n

    def parse(raw: list[tuple[bytes, bytes]]) -> None:
        headers = HTTPHeaders.from_raw(raw)
        "; ".join(headers.get_list("Cookie"))
        headers.get("Cookie")

    assert_linear(parse, build)


# -- through a handler -----------------------------------------------------------------


class Args(RequestHandler):
    async def get(self) -> None:
        self.write({k: len(v) for k, v in self.request.arguments.items()})

    async def post(self) -> None:
        self.write({k: len(v) for k, v in self.request.arguments.items()})


class Ignores(RequestHandler):
    async def get(self) -> None:
        self.write("fine")

    async def post(self) -> None:
        self.write({"body": len(self.request.body)})


def form_app(**settings: Any) -> Application:
    return Application([("/args", Args), ("/ignores", Ignores)], **settings)


async def test_query_fields_at_the_cap_pass_and_one_more_is_400(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = [(f"f{i}", "v") for i in range(5)]
    async with TestClient(form_app(max_form_fields=5)) as client:
        r = await client.get("/args", params=fields)
        assert r.status == 200
        assert len(r.json()) == 5
        caplog.clear()
        r = await client.get("/args", params=[*fields, ("x", "y")])
        assert r.status == 400
        assert "max_form_fields=5" in r.text
        assert "max_form_fields=5" in r.reason
        # Server still serving.
        assert (await client.get("/args")).status == 200
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


async def test_body_fields_at_the_cap_pass_and_one_more_is_400() -> None:
    fields = [(f"f{i}", "v") for i in range(5)]
    async with TestClient(form_app(max_form_fields=5)) as client:
        r = await client.post("/args", data=fields)
        assert r.status == 200
        assert len(r.json()) == 5
        r = await client.post("/args", data=[*fields, ("x", "y")])
        assert r.status == 400
        assert "max_form_fields=5" in r.text


async def test_default_cap_is_1000() -> None:
    async with TestClient(form_app()) as client:
        r = await client.post("/args", body=b"a&" * 1000 + b"b", headers=_FORM)
        assert r.status == 400
        r = await client.post("/args", body=b"a&" * 999 + b"b", headers=_FORM)
        assert r.status == 200


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_forms_are_parsed_only_when_asked_for() -> None:
    # Issue 8, item 5: every handler parsed urlencoded bodies (and query
    # strings) eagerly. A handler that never asks for arguments pays
    # nothing, and a request over the cap is refused only by one that asks.
    body = b"a&" * (2 * 1024 * 1024)
    query = "&".join(["q"] * 1500)
    async with TestClient(form_app()) as client:
        r = await client.post("/ignores?" + query, body=body, headers=_FORM)
        assert r.status == 200
        assert r.json() == {"body": len(body)}
        assert (await client.get("/ignores?" + query)).status == 200
        r = await client.post("/args", body=body, headers=_FORM)
        assert r.status == 400
        assert (await client.get("/args?" + query)).status == 400


async def test_lazy_arguments_are_parsed_once_and_can_be_replaced() -> None:
    seen: dict[str, Any] = {}

    class Handler(RequestHandler):
        async def post(self) -> None:
            request = self.request
            first = request.body_arguments
            seen["same"] = request.body_arguments is first
            request.query_arguments = {"q": [b"new"]}
            seen["merged"] = sorted(request.arguments)
            self.write("ok")

    app = Application([("/", Handler)])
    async with TestClient(app) as client:
        r = await client.post("/?old=1", data={"b": "1"})
    assert r.status == 200
    assert seen == {"same": True, "merged": ["b", "q"]}


async def test_json_through_a_handler() -> None:
    class Handler(RequestHandler):
        async def post(self) -> None:
            self.write({"got": self.request.json()})

    app = Application([("/", Handler)], max_json_depth=3)
    async with TestClient(app) as client:
        r = await client.post("/", json={"a": [1, {"b": 2}]})
        assert r.json() == {"got": {"a": [1, {"b": 2}]}}
        r = await client.post("/", json={"a": [[[1]]]})
        assert r.status == 400
        assert "max_json_depth=3" in r.text
        r = await client.post("/", body=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status == 415
        r = await client.post(
            "/", body=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert r.status == 400
        assert "Invalid JSON" in r.text
        r = await client.post(
            "/", body=b'"\xff"', headers={"Content-Type": "application/json"}
        )
        assert r.status == 400
        assert "UTF-8" in r.text
        r = await client.post(
            "/",
            body=json.dumps([1]).encode(),
            headers={"Content-Type": "application/ld+json"},
        )
        assert r.json() == {"got": [1]}


@settings(max_examples=60, deadline=None)
@given(
    query=st.binary(max_size=80),
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/json",
            "multipart/form-data; boundary=b",
            "multipart/form-data",
            "text/plain",
        ]
    ),
)
async def test_random_input_never_gives_a_500(
    query: bytes, body: bytes, content_type: str
) -> None:
    class Handler(RequestHandler):
        async def post(self) -> None:
            self.request.arguments  # noqa: B018 (parses)
            self.request.files  # noqa: B018
            if "json" in content_type:
                self.request.json()
            self.write("ok")

    from urllib.parse import quote_from_bytes

    app = Application([("/", Handler)], max_form_fields=5, max_multipart_parts=3)
    async with TestClient(app) as client:
        r = await client.post(
            "/?" + quote_from_bytes(query, safe="&=+%"),
            body=body,
            headers={"Content-Type": content_type},
        )
    assert r.status in (200, 400, 415), r.text


def test_the_linear_check_catches_a_quadratic_parser() -> None:
    def quadratic(data: bytes) -> None:
        for i in range(len(data)):
            data[:i].count(b"x")

    with pytest.raises(AssertionError, match="not linear"):
        assert_linear(quadratic, lambda n: b"x" * n)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))
    .map(str.strip)
    .filter(bool)
)
async def test_random_cookie_headers_never_fail_a_request(header: str) -> None:
    class Handler(RequestHandler):
        def get(self) -> None:
            self.write({k: m.value for k, m in self.request.cookies.items()})

    async with TestClient(Application([("/", Handler)])) as client:
        r = await client.get("/", headers={"Cookie": header})
    assert r.status == 200


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "; ".join(f"c{i}=v" for i in range(n)),
        lambda n: "a=" + '"' + "\\\\" * n + '"',
        lambda n: "; ".join(["expires=1"] * n),
    ],
)
def test_request_cookies_are_linear(make: Any) -> None:
    def cookies(header: str) -> None:
        request = HTTPServerRequest(
            method="GET",
            uri="/",
            path="/",
            query="",
            version="HTTP/1.1",
            headers=HTTPHeaders({"Cookie": header}),
            remote_ip="127.0.0.1",
            protocol="http",
            host="h",
            host_name="h",
        )
        request.cookies  # noqa: B018 (parses)

    assert_linear(cookies, make)
