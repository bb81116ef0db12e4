"""The request a handler sees, its argument getters, and cookies."""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import re
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from trioweb import Application, HTTPServerRequest, MissingArgumentError, RequestHandler
from trioweb.handler_arguments import _remove_control_chars
from trioweb.httputil import HTTPHeaders
from trioweb.testing import TestClient

Body = Callable[[RequestHandler], Any]


def app_for(
    get: Body | None = None,
    post: Body | None = None,
    pattern: str = r"/.*",
    **settings: Any,
) -> Application:
    """An app whose one handler runs ``get``/``post`` and writes the result
    (a dict as JSON, a str as text; None writes nothing)."""

    class Handler(RequestHandler):
        async def _answer(self, body: Body | None) -> None:
            assert body is not None
            result = body(self)
            if result is not None:
                self.write(result)

        async def get(self) -> None:
            await self._answer(get)

        async def post(self) -> None:
            await self._answer(post)

    return Application([(pattern, Handler)], **settings)


async def fetch(app: Application, method: str, path: str, **kwargs: Any) -> Any:
    async with TestClient(app) as client:
        return await client.request(method, path, **kwargs)


# -- the request object ----------------------------------------------------------------


async def test_request_fields() -> None:
    seen: dict[str, Any] = {}

    def look(h: RequestHandler) -> None:
        r = h.request
        seen.update(
            request=r,
            method=r.method,
            uri=r.uri,
            path=r.path,
            query=r.query,
            version=r.version,
            host=r.host,
            host_name=r.host_name,
            remote_ip=r.remote_ip,
            protocol=r.protocol,
            full_url=r.full_url(),
        )

    app = app_for(get=look)
    async with TestClient(app, host="Example.COM:8080") as client:
        r = await client.get("/a%20b/c", params=[("x", "1"), ("y", "two words")])
    assert r.status == 200
    assert isinstance(seen.pop("request"), HTTPServerRequest)
    assert seen == {
        "method": "GET",
        "uri": "/a%20b/c?x=1&y=two+words",
        "path": "/a%20b/c",
        "query": "x=1&y=two+words",
        "version": "HTTP/1.1",
        "host": "Example.COM:8080",
        "host_name": "example.com",
        "remote_ip": "127.0.0.1",
        "protocol": "http",
        "full_url": "http://Example.COM:8080/a%20b/c?x=1&y=two+words",
    }


async def test_remote_ip_is_the_client_address() -> None:
    app = app_for(get=lambda h: h.request.remote_ip)
    async with TestClient(app, client_address=("10.1.2.3", 4567)) as client:
        assert (await client.get("/")).text == "10.1.2.3"


async def test_request_without_a_query() -> None:
    app = app_for(
        get=lambda h: {
            "query": h.request.query,
            "args": {
                k: [v.decode() for v in vs] for k, vs in h.request.arguments.items()
            },
        }
    )
    r = await fetch(app, "GET", "/plain")
    assert r.json() == {"query": "", "args": {}}


async def test_headers_are_a_case_insensitive_multidict() -> None:
    def look(h: RequestHandler) -> dict[str, Any]:
        headers = h.request.headers
        assert isinstance(headers, HTTPHeaders)
        return {
            "lower": headers["x-thing"],
            "upper": headers["X-THING"],
            "list": headers.get_list("X-Thing"),
            "in": "x-THING" in headers,
            "missing": headers.get("X-Missing", "default"),
        }

    r = await fetch(
        app_for(get=look), "GET", "/", headers=[("X-Thing", "a"), ("x-thing", "b")]
    )
    assert r.json() == {
        "lower": "a,b",
        "upper": "a,b",
        "list": ["a", "b"],
        "in": True,
        "missing": "default",
    }


async def test_http10_request_without_host_uses_the_server_address() -> None:
    app = app_for(get=lambda h: f"{h.request.version} {h.request.host}")
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.0\r\n\r\n")
        r = await conn.read_response()
    assert r.status == 200
    assert r.body == b"HTTP/1.0 127.0.0.1:80"


async def test_body_is_the_raw_bytes_and_json_is_readable() -> None:
    app = app_for(post=lambda h: {"got": json.loads(h.request.body)})
    r = await fetch(app, "POST", "/", json={"a": [1, 2], "b": "é"})
    assert r.json() == {"got": {"a": [1, 2], "b": "é"}}

    app = app_for(
        post=lambda h: {"len": len(h.request.body), "args": h.request.arguments}
    )
    r = await fetch(
        app,
        "POST",
        "/",
        body=b"\x00\xff raw",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.json() == {"len": 6, "args": {}}


async def test_body_is_empty_for_a_get() -> None:
    app = app_for(get=lambda h: repr(h.request.body))
    assert (await fetch(app, "GET", "/")).text == "b''"


async def test_chunked_request_body_is_read() -> None:
    app = app_for(post=lambda h: h.get_body_argument("a"))
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(
            b"POST / HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"3\r\na=h\r\n4\r\nello\r\n0\r\n\r\n"
        )
        r = await conn.read_response("POST")
    assert (r.status, r.body) == (200, b"hello")


async def test_query_body_and_merged_arguments() -> None:
    def look(h: RequestHandler) -> dict[str, Any]:
        r = h.request

        def dec(d: dict[str, list[bytes]]) -> dict[str, list[str]]:
            return {k: [v.decode() for v in vs] for k, vs in d.items()}

        return {
            "query": dec(r.query_arguments),
            "body": dec(r.body_arguments),
            "all": dec(r.arguments),
        }

    r = await fetch(
        app_for(post=look),
        "POST",
        "/",
        params=[("a", "q1"), ("b", "q")],
        data=[("a", "b1"), ("a", "b2"), ("c", "x y")],
    )
    assert r.json() == {
        "query": {"a": ["q1"], "b": ["q"]},
        "body": {"a": ["b1", "b2"], "c": ["x y"]},
        "all": {"a": ["q1", "b1", "b2"], "b": ["q"], "c": ["x y"]},
    }


async def test_body_arguments_need_the_form_content_type() -> None:
    app = app_for(post=lambda h: {"body": list(h.request.body_arguments)})
    r = await fetch(
        app, "POST", "/", body=b"a=1", headers={"Content-Type": "text/plain"}
    )
    assert r.json() == {"body": []}
    r = await fetch(
        app,
        "POST",
        "/",
        body=b"a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert r.json() == {"body": ["a"]}


async def test_request_time_uses_trios_clock(autojump_clock: trio.abc.Clock) -> None:
    class Slow(RequestHandler):
        async def get(self) -> None:
            before = self.request.request_time()
            await trio.sleep(2)
            self.write({"before": before, "after": self.request.request_time()})

    async with TestClient(Application([(r"/", Slow)])) as client:
        r = await client.get("/")
    assert r.json()["before"] == pytest.approx(0, abs=0.01)
    assert r.json()["after"] == pytest.approx(2, abs=0.01)


async def test_request_repr_names_the_request() -> None:
    app = app_for(get=lambda h: repr(h.request))
    text = (await fetch(app, "GET", "/x?y=1")).text
    assert "method='GET'" in text
    assert "uri='/x?y=1'" in text


# -- get_argument and friends ----------------------------------------------------------


async def test_get_argument_last_value_wins_and_get_arguments_has_all() -> None:
    app = app_for(
        get=lambda h: {"one": h.get_argument("a"), "all": h.get_arguments("a")}
    )
    r = await fetch(app, "GET", "/", params=[("a", "1"), ("a", "2"), ("a", "3")])
    assert r.json() == {"one": "3", "all": ["1", "2", "3"]}


async def test_get_argument_merges_query_and_body() -> None:
    app = app_for(
        post=lambda h: {
            "arg": h.get_argument("a"),
            "args": h.get_arguments("a"),
            "query": h.get_query_argument("a"),
            "queries": h.get_query_arguments("a"),
            "body": h.get_body_argument("a"),
            "bodies": h.get_body_arguments("a"),
            "only_query": h.get_body_argument("q", "absent"),
            "only_body": h.get_query_argument("b", None),
        }
    )
    r = await fetch(
        app,
        "POST",
        "/",
        params=[("a", "q1"), ("q", "x")],
        data=[("a", "b1"), ("a", "b2"), ("b", "y")],
    )
    assert r.json() == {
        "arg": "b2",
        "args": ["q1", "b1", "b2"],
        "query": "q1",
        "queries": ["q1"],
        "body": "b2",
        "bodies": ["b1", "b2"],
        "only_query": "absent",
        "only_body": None,
    }


async def test_missing_argument_default_and_empty_list() -> None:
    app = app_for(
        get=lambda h: {
            "default": h.get_argument("nope", "dflt"),
            "none": h.get_argument("nope", None),
            "list": h.get_arguments("nope"),
            "q": h.get_query_arguments("nope"),
            "b": h.get_body_arguments("nope"),
        }
    )
    r = await fetch(app, "GET", "/")
    assert r.json() == {"default": "dflt", "none": None, "list": [], "q": [], "b": []}


@pytest.mark.parametrize(
    "getter", ["get_argument", "get_query_argument", "get_body_argument"]
)
async def test_missing_required_argument_is_400(
    getter: str, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    def look(h: RequestHandler) -> None:
        try:
            getattr(h, getter)("needed")
        except MissingArgumentError as exc:
            raised.append(exc)
            raise

    with caplog.at_level(logging.WARNING, logger="trioweb.error"):
        r = await fetch(app_for(get=look), "GET", "/")
    assert r.status == 400
    assert r.reason == "Bad Request"
    assert raised[0].arg_name == "needed"  # type: ignore[attr-defined]
    assert "Missing argument needed" in caplog.text


async def test_an_empty_value_is_present_not_missing() -> None:
    app = app_for(get=lambda h: {"a": h.get_argument("a"), "b": h.get_argument("b")})
    r = await fetch(app, "GET", "/?a=&b")
    assert r.json() == {"a": "", "b": ""}


async def test_arguments_are_stripped_unless_asked_not_to() -> None:
    app = app_for(
        get=lambda h: {
            "strip": h.get_argument("a"),
            "keep": h.get_argument("a", strip=False),
            "all_keep": h.get_arguments("a", strip=False),
            "q_keep": h.get_query_argument("a", strip=False),
        }
    )
    r = await fetch(app, "GET", "/", params={"a": "  padded\t\n"})
    assert r.json() == {
        "strip": "padded",
        "keep": "  padded\t\n",
        "all_keep": ["  padded\t\n"],
        "q_keep": "  padded\t\n",
    }


async def test_control_characters_become_spaces() -> None:
    # Tornado's set: [\x00-\x08\x0e-\x1f]. Tab, LF, VT, FF and CR stay.
    app = app_for(get=lambda h: {"v": h.get_argument("a", strip=False)})
    value = "a\x00b\x08c\td\ne\x0bf\x0cg\rh\x0ei\x1fj\x7fk"
    r = await fetch(app, "GET", "/", params={"a": value})
    assert r.json() == {"v": "a b c\td\ne\x0bf\x0cg\rh i j\x7fk"}


@given(st.text(alphabet="a\x00\x01\x08\t\n\x0b\x0e\x1f\x7f é\ud800日", max_size=30))
def test_control_characters_are_replaced_as_tornado_does(text: str) -> None:
    # The C version agrees with Tornado's substitution, whatever the text
    # (a decode_argument override may return surrogates).
    assert _remove_control_chars(text) == re.sub(r"[\x00-\x08\x0e-\x1f]", " ", text)


@pytest.mark.parametrize("unit", ["\x01", "a\x1f"])
def test_control_characters_are_replaced_in_one_pass(unit: str) -> None:
    # A regular expression substitution kept a list entry per match and
    # took 1.5 s of CPU for a 10 MiB value of control characters; the
    # translation allocates the result and nothing per character.
    text = unit * 1_000_000
    tracemalloc.start()
    try:
        replaced = _remove_control_chars(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert replaced == unit.replace("\x01", " ").replace("\x1f", " ") * 1_000_000
    assert peak < 1.5 * len(text)


async def test_arguments_are_utf8_decoded() -> None:
    app = app_for(post=lambda h: {"q": h.get_argument("q"), "b": h.get_argument("b")})
    r = await fetch(app, "POST", "/", params={"q": "café"}, data={"b": "日本"})
    assert r.json() == {"q": "café", "b": "日本"}


async def test_argument_names_are_latin1_strings() -> None:
    app = app_for(get=lambda h: {"names": sorted(h.request.arguments)})
    r = await fetch(app, "GET", "/?a%20b=1&c+d=2")
    assert r.json() == {"names": ["a b", "c d"]}


@pytest.mark.parametrize(
    "getter", ["get_argument", "get_arguments", "get_query_argument"]
)
async def test_invalid_utf8_in_an_argument_is_400(getter: str) -> None:
    app = app_for(get=lambda h: {"v": getattr(h, getter)("a")})
    async with TestClient(app) as client:
        r = await client.get("/?a=%FF%FE")
        assert r.status == 400
        r = await client.get("/?a=ok")
        assert r.status == 200


async def test_invalid_utf8_in_a_body_argument_is_400() -> None:
    app = app_for(post=lambda h: {"v": h.get_body_argument("a")})
    r = await fetch(
        app,
        "POST",
        "/",
        body=b"a=%C3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 400


async def test_invalid_utf8_is_fine_while_nobody_asks_for_it() -> None:
    app = app_for(get=lambda h: {"b": h.get_argument("b")})
    r = await fetch(app, "GET", "/?a=%FF&b=ok")
    assert (r.status, r.json()) == (200, {"b": "ok"})


async def test_decode_argument_can_be_overridden() -> None:
    calls: list[tuple[bytes, str | None]] = []

    class Latin1(RequestHandler):
        def decode_argument(self, value: bytes, name: str | None = None) -> str:
            calls.append((value, name))
            return value.decode("latin-1").upper()

        async def get(self, path_arg: str) -> None:
            self.write({"path": path_arg, "a": self.get_argument("a")})

    app = Application([(r"/p/(.*)", Latin1)])
    async with TestClient(app) as client:
        r = await client.get("/p/%E9t%E9?a=caf%E9")
    assert r.json() == {"path": "ÉTÉ", "a": "CAFÉ"}
    assert calls == [(b"\xe9t\xe9", None), (b"caf\xe9", "a")]


async def test_decode_argument_may_return_bytes() -> None:
    # Tornado allows decode_argument() to return bytes: the control-character
    # clean-up is skipped then, and strip() still applies.
    class Raw(RequestHandler):
        def decode_argument(self, value: bytes, name: str | None = None) -> Any:
            return value

        async def get(self) -> None:
            got = self.get_argument("a")
            keep = self.get_arguments("a", strip=False)
            self.write({"a": repr(got), "keep": [repr(v) for v in keep]})

    async with TestClient(Application([(r"/", Raw)])) as client:
        r = await client.get("/?a=+%FF%01+")
    assert r.status == 200
    assert r.json() == {"a": repr(b"\xff\x01"), "keep": [repr(b" \xff\x01 ")]}


async def test_decode_argument_gets_the_name_for_keyword_path_args() -> None:
    names: list[str | None] = []

    class Named(RequestHandler):
        def decode_argument(self, value: bytes, name: str | None = None) -> str:
            names.append(name)
            return super().decode_argument(value, name)

        async def get(self, slug: str) -> None:
            self.write(slug)

    async with TestClient(Application([(r"/(?P<slug>.+)", Named)])) as client:
        assert (await client.get("/hello")).text == "hello"
    assert names == ["slug"]


# -- cookies ---------------------------------------------------------------------------


async def test_request_cookies_and_get_cookie() -> None:
    def look(h: RequestHandler) -> dict[str, Any]:
        return {
            "a": h.get_cookie("a"),
            "quoted": h.get_cookie("quoted"),
            "missing": h.get_cookie("missing"),
            "default": h.get_cookie("missing", "dflt"),
            "morsel": h.request.cookies["a"].value,
            "names": sorted(h.request.cookies),
        }

    r = await fetch(
        app_for(get=look),
        "GET",
        "/",
        headers={"Cookie": 'a=1; quoted="x y\\"z"; b=2'},
    )
    assert r.json() == {
        "a": "1",
        "quoted": 'x y"z',
        "missing": None,
        "default": "dflt",
        "morsel": "1",
        "names": ["a", "b", "quoted"],
    }


async def test_a_malformed_cookie_header_is_not_an_error() -> None:
    app = app_for(get=lambda h: {"ok": h.get_cookie("ok"), "n": len(h.request.cookies)})
    r = await fetch(app, "GET", "/", headers={"Cookie": "ok=1; ;; =; expires=x; b@d=2"})
    assert r.status == 200
    assert r.json()["ok"] == "1"


def set_cookie_headers(r: Any) -> list[str]:
    return list(r.headers.get_list("Set-Cookie"))


async def test_set_cookie_plain() -> None:
    app = app_for(get=lambda h: h.set_cookie("name", "value"))
    r = await fetch(app, "GET", "/")
    assert set_cookie_headers(r) == ["name=value; Path=/"]


async def test_set_cookie_with_every_attribute() -> None:
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

    def set_it(h: RequestHandler) -> None:
        h.set_cookie(
            "sid",
            "abc",
            domain="example.com",
            expires=when,
            path="/app",
            max_age=3600,
            httponly=True,
            secure=True,
            samesite="lax",
        )

    r = await fetch(app_for(get=set_it), "GET", "/")
    (header,) = set_cookie_headers(r)
    parts = header.split("; ")
    assert parts[0] == "sid=abc"
    assert set(parts[1:]) == {
        "expires=Wed, 02 Jan 2030 03:04:05 GMT",
        "Path=/app",
        "Domain=example.com",
        "Max-Age=3600",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
    }


async def test_set_cookie_expires_as_a_timestamp() -> None:
    app = app_for(get=lambda h: h.set_cookie("a", "b", expires=0))
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    assert "expires=Thu, 01 Jan 1970 00:00:00 GMT" in header


async def test_set_cookie_expires_days() -> None:
    app = app_for(get=lambda h: h.set_cookie("a", "b", expires_days=10))
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    expires = next(p for p in header.split("; ") if p.startswith("expires="))
    when = email.utils.parsedate_to_datetime(expires.removeprefix("expires="))
    delta = when - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=9, hours=23) < delta <= datetime.timedelta(days=10)


async def test_set_cookie_quotes_values_that_need_it_and_round_trips() -> None:
    app = app_for(get=lambda h: h.set_cookie("a", 'x="y"/z\\é'))
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    value = header.split("; ")[0].removeprefix("a=")
    assert value.startswith('"')
    # The browser sends it back as is; get_cookie gives the original.
    app = app_for(get=lambda h: {"a": h.get_cookie("a")})
    r = await fetch(app, "GET", "/", headers={"Cookie": f"a={value}"})
    assert r.json() == {"a": 'x="y"/z\\é'}


async def test_set_cookie_bytes_value_is_utf8_as_in_tornado() -> None:
    # Regression: bytes were decoded as latin-1, so b"caf\xc3\xa9" came back
    # from the browser as "cafÃ©" instead of "café".
    app = app_for(get=lambda h: h.set_cookie("a", "café".encode()))
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    value = header.split("; ")[0].removeprefix("a=")
    app = app_for(get=lambda h: {"a": h.get_cookie("a")})
    r = await fetch(app, "GET", "/", headers={"Cookie": f"a={value}"})
    assert r.json() == {"a": "café"}


async def test_setting_the_same_cookie_twice_sends_one_header() -> None:
    def set_it(h: RequestHandler) -> None:
        h.set_cookie("a", "1")
        h.set_cookie("b", "2")
        h.set_cookie("a", "3", path="/x")

    r = await fetch(app_for(get=set_it), "GET", "/")
    assert sorted(set_cookie_headers(r)) == ["a=3; Path=/x", "b=2; Path=/"]


async def test_cookies_are_sent_with_a_flushed_response() -> None:
    class Flusher(RequestHandler):
        async def get(self) -> None:
            self.set_cookie("early", "1")
            self.write("a")
            await self.flush()
            self.write("b")

    async with TestClient(Application([(r"/", Flusher)])) as client:
        r = await client.get("/")
    assert r.text == "ab"
    assert set_cookie_headers(r) == ["early=1; Path=/"]


async def test_clear_cookie() -> None:
    app = app_for(
        get=lambda h: h.clear_cookie("sid", path="/app", domain="example.com")
    )
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    parts = header.split("; ")
    assert parts[0] == "sid="
    assert "Max-Age=0" in parts
    assert "Path=/app" in parts
    assert "Domain=example.com" in parts
    expires = next(p for p in parts if p.startswith("expires="))
    when = email.utils.parsedate_to_datetime(expires.removeprefix("expires="))
    assert when < datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=300)


async def test_clear_cookie_after_set_cookie_sends_only_the_clear() -> None:
    def both(h: RequestHandler) -> None:
        h.set_cookie("a", "1")
        h.clear_cookie("a")

    (header,) = set_cookie_headers(await fetch(app_for(get=both), "GET", "/"))
    assert header.startswith("a=; ")
    assert "Max-Age=0" in header


async def test_clear_cookie_passes_secure_and_samesite_through() -> None:
    app = app_for(get=lambda h: h.clear_cookie("a", secure=True, samesite="None"))
    (header,) = set_cookie_headers(await fetch(app, "GET", "/"))
    assert "Secure" in header.split("; ")
    assert "SameSite=None" in header.split("; ")


async def test_clear_cookie_refuses_expiry_arguments() -> None:
    errors: list[BaseException] = []

    def clear(h: RequestHandler) -> None:
        try:
            h.clear_cookie("a", expires_days=3)
        except TypeError as exc:
            errors.append(exc)

    await fetch(app_for(get=clear), "GET", "/")
    assert len(errors) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "bad name", "value": "v"},
        {"name": "semi;colon", "value": "v"},
        {"name": "", "value": "v"},
        {"name": "a", "value": "new\r\nline"},
        {"name": "a", "value": "semi;colon"},
        {"name": "a", "value": "sp ace"},
        {"name": "a", "value": "v", "domain": "example.com; evil=1"},
        {"name": "a", "value": "v", "path": "/\r\nX: y"},
        {"name": "a", "value": "v", "samesite": "sometimes"},
        {"name": "a", "value": "v", "samesite": "None"},  # without secure
    ],
)
async def test_invalid_cookies_raise_value_error(
    kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []

    def caught(h: RequestHandler) -> str:
        try:
            h.set_cookie(**kwargs)
        except ValueError as exc:
            errors.append(exc)
        return "ok"

    r = await fetch(app_for(get=caught), "GET", "/")
    assert (r.status, len(errors)) == (200, 1)
    assert set_cookie_headers(r) == []

    # Uncaught, it is a handler bug: a 500 with no cookie sent.
    r = await fetch(app_for(get=lambda h: h.set_cookie(**kwargs)), "GET", "/")
    assert r.status == 500
    assert set_cookie_headers(r) == []
    assert "ValueError" in caplog.text


async def test_several_cookie_fields_are_one_list() -> None:
    # Regression: repeated Cookie fields were joined with "," so "a" read as
    # "1,b=2" and "b" was lost.
    app = app_for(get=lambda h: {"a": h.get_cookie("a"), "b": h.get_cookie("b")})
    r = await fetch(app, "GET", "/", headers=[("Cookie", "a=1"), ("Cookie", "b=2")])
    assert r.json() == {"a": "1", "b": "2"}


async def test_set_cookie_after_the_headers_were_sent_raises() -> None:
    # Regression: the cookie was silently dropped.
    errors: list[BaseException] = []

    class Late(RequestHandler):
        async def get(self) -> None:
            self.write("body")
            await self.flush()
            for call in (
                lambda: self.set_cookie("late", "1"),
                lambda: self.clear_cookie("late"),
            ):
                try:
                    call()
                except RuntimeError as exc:
                    errors.append(exc)

    async with TestClient(Application([(r"/", Late)])) as client:
        r = await client.get("/")
    assert (r.status, r.text) == (200, "body")
    assert set_cookie_headers(r) == []
    assert len(errors) == 2
    assert "headers were already sent" in str(errors[0])


async def test_absolute_form_target_is_routed_by_its_path() -> None:
    # Regression: "GET http://host/a" was routed as the path "http://host/a"
    # (a 404), though RFC 9112 3.2.2 says a server must accept it.
    app = app_for(
        get=lambda h: {
            "uri": h.request.uri,
            "path": h.request.path,
            "query": h.request.query,
            "host": h.request.host,
            "host_name": h.request.host_name,
            "a": h.get_argument("a"),
            "full_url": h.request.full_url(),
        },
        pattern=r"/x/.*",
    )
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(
            b"GET http://Example.com:8080/x/y?a=1 HTTP/1.1\r\nHost: ignored\r\n\r\n"
        )
        r = await conn.read_response()
    assert r.status == 200
    assert r.json() == {
        "uri": "/x/y?a=1",
        "path": "/x/y",
        "query": "a=1",
        "host": "Example.com:8080",
        "host_name": "example.com",
        "a": "1",
        "full_url": "http://Example.com:8080/x/y?a=1",
    }


async def test_absolute_form_without_a_path_is_the_root() -> None:
    app = app_for(get=lambda h: {"uri": h.request.uri, "host": h.request.host})
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(b"GET http://h.example?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = await conn.read_response()
    assert r.json() == {"uri": "/?q=1", "host": "h.example"}


# -- a Host that is not host[:port] ---------------------------------------------


@pytest.mark.parametrize("http_backend", ["h11", "httptools"], indirect=True)
@pytest.mark.parametrize(
    "host",
    [
        pytest.param(b"a:" + b"1" * 5000, id="5000-digit-port"),
        pytest.param(b"a:65536", id="port-out-of-range"),
        pytest.param(b"a:http", id="port-not-digits"),
        pytest.param(b"::1", id="ipv6-without-brackets"),
        pytest.param(b"a/b", id="slash"),
    ],
)
async def test_a_malformed_host_is_a_400_and_nothing_is_logged_as_an_error(
    http_backend: str, host: bytes, no_tracebacks: None
) -> None:
    # Regression: int() of a 5,000-digit port raised (Python refuses more
    # than 4,300 digits): a 500 and an ERROR traceback, on both backends.
    seen: list[str] = []
    app = app_for(get=lambda h: seen.append(h.request.host) or "reached")
    async with TestClient(app) as client:
        conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        r = await conn.read_response()
        assert r.status == 400
        # The server goes on serving (the engine refuses what is not
        # host[:port] syntax and closes; the web layer refuses a port past
        # 65535 and keeps the connection).
        if r.headers.get("Connection") == "close":
            conn = await client.raw()
        await conn.send(b"GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n")
        assert (await conn.read_response()).status == 200
    assert seen == ["example.com:80"]


@pytest.mark.parametrize(
    ("host", "host_name"),
    [
        ("[::1]:8080", "[::1]"),
        ("127.0.0.1:0", "127.0.0.1"),
        ("xn--caf-dma.example:00443", "xn--caf-dma.example"),
        ("a:", "a:"),  # an empty port is allowed (RFC 3986 3.2.3)
    ],
)
async def test_well_formed_hosts_are_served(host: str, host_name: str) -> None:
    app = app_for(get=lambda h: h.request.host_name)
    async with TestClient(app, host=host) as client:
        r = await client.get("/")
    assert (r.status, r.text) == (200, host_name)


async def test_an_absolute_form_target_with_a_bad_port_is_a_400(
    no_tracebacks: None,
) -> None:
    app = app_for(get=lambda h: "reached")
    async with TestClient(app) as client:
        conn = await client.raw()
        target = b"http://a:" + b"9" * 5000 + b"/"
        await conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await conn.read_response()).status == 400
