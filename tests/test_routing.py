"""Tests for trioweb.routing: matching, host groups, reverse_url, rule errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trioweb.routing import RouteMatch, Router, URLSpec, url


class MainHandler:
    pass


class UserHandler:
    pass


class OtherHandler:
    pass


class HostHandler:
    pass


def router(*rules: Any, host: str = ".*$") -> Router:
    r = Router()
    r.add_rules(host, rules)
    return r


def find(r: Router, path: str, host: str = "example.com") -> RouteMatch:
    found = r.find(host, path)
    assert found is not None, f"no rule matched {path!r} on {host!r}"
    return found


# -- rule forms -------------------------------------------------------------


def test_rule_forms() -> None:
    db = object()
    r = router(
        (r"/two", MainHandler),
        (r"/three", UserHandler, {"db": db}),
        (r"/four", OtherHandler, {"x": 1}, "four"),
        url(r"/url", HostHandler, {"y": 2}, name="url"),
        [r"/list", MainHandler],
    )
    two = find(r, "/two").spec
    assert (two.handler_class, two.kwargs, two.name) == (MainHandler, {}, None)
    three = find(r, "/three").spec
    assert three.handler_class is UserHandler
    assert three.kwargs["db"] is db
    four = find(r, "/four").spec
    assert (four.handler_class, four.kwargs, four.name) == (
        OtherHandler,
        {"x": 1},
        "four",
    )
    spec = find(r, "/url").spec
    assert (spec.handler_class, spec.kwargs, spec.name) == (
        HostHandler,
        {"y": 2},
        "url",
    )
    assert find(r, "/list").spec.handler_class is MainHandler
    assert r.named("four") is four
    assert r.named("url") is spec
    assert r.named("nope") is None


def test_urlspec_appends_dollar_to_string_patterns() -> None:
    assert URLSpec(r"/a", MainHandler).regex.pattern == "/a$"
    assert URLSpec(r"/a$", MainHandler).regex.pattern == "/a$"
    # An escaped dollar is literal text, so it still needs the anchor.
    assert URLSpec(r"/a\$", MainHandler).regex.pattern == r"/a\$$"
    compiled = re.compile(r"/b")
    assert URLSpec(compiled, MainHandler).regex is compiled


def test_no_match_returns_none() -> None:
    r = router((r"/", MainHandler))
    assert r.find("example.com", "/missing") is None
    assert Router().find("example.com", "/") is None


# -- matching ---------------------------------------------------------------


def test_first_match_wins() -> None:
    r = router(
        (r"/user/me", OtherHandler),
        (r"/user/([^/]+)", UserHandler),
        (r"/user/(.*)", MainHandler),
    )
    assert find(r, "/user/me").spec.handler_class is OtherHandler
    assert find(r, "/user/bob").spec.handler_class is UserHandler
    assert find(r, "/user/a/b").spec.handler_class is MainHandler


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        (r"/a", "/a", True),
        (r"/a", "/ab", False),
        (r"/a", "/a/", False),
        (r"/a", "x/a", False),
        (r"/a/?", "/a/", True),
        (r"/(\d+)", "/12x", False),
        # Alternation is anchored as a whole, not just its last branch.
        (r"/a|/b", "/a", True),
        (r"/a|/b", "/b", True),
        (r"/a|/b", "/abc", False),
        # '$' would also match before a trailing newline; the path must end.
        (r"/a$", "/a\n", False),
        (re.compile(r"/c"), "/c", True),
        (re.compile(r"/c"), "/cd", False),
    ],
)
def test_patterns_are_anchored(
    pattern: str | re.Pattern[str], path: str, matches: bool
) -> None:
    r = router((pattern, MainHandler))
    assert (r.find("h", path) is not None) is matches
    assert (URLSpec(pattern, MainHandler).match(path) is not None) is matches


def test_positional_groups() -> None:
    r = router((r"/(\d+)/([a-z]+)", UserHandler))
    m = find(r, "/2024/news")
    assert m.path_args == [b"2024", b"news"]
    assert m.path_kwargs == {}


def test_named_groups_only_kwargs() -> None:
    r = router((r"/(?P<year>\d+)/(?P<slug>[a-z]+)", UserHandler))
    m = find(r, "/2024/news")
    assert m.path_args == []
    assert m.path_kwargs == {"year": b"2024", "slug": b"news"}


def test_no_groups_empty_args() -> None:
    m = find(router((r"/x.txt", MainHandler)), "/x.txt")
    assert (m.path_args, m.path_kwargs) == ([], {})


def test_groups_are_percent_decoded_with_plus_kept() -> None:
    r = router(
        (r"/p/([^/]+)", UserHandler),
        (r"/n/(?P<name>.+)", OtherHandler),
    )
    assert find(r, "/p/a%20b+c").path_args == [b"a b+c"]
    # An encoded slash does not split the segment; it decodes to '/'.
    assert find(r, "/p/a%2Fb").path_args == [b"a/b"]
    # Non-ASCII arrives as UTF-8 bytes, for the handler to decode.
    assert find(r, "/p/caf%C3%A9").path_args == ["café".encode()]
    # Bytes that are not UTF-8 survive untouched.
    assert find(r, "/n/%FF%00").path_kwargs == {"name": b"\xff\x00"}


def test_pattern_matches_raw_path() -> None:
    # The pattern sees the encoded path: "%20", not " ".
    r = router((r"/a%20b", MainHandler), (r"/(.*)", OtherHandler))
    assert find(r, "/a%20b").spec.handler_class is MainHandler
    assert find(r, "/a b").spec.handler_class is OtherHandler


def test_optional_groups_are_none() -> None:
    r = router(
        (r"/p/(\d+)?", UserHandler),
        (r"/n(?:/(?P<page>\d+))?", OtherHandler),
    )
    assert find(r, "/p/").path_args == [None]
    assert find(r, "/p/7").path_args == [b"7"]
    assert find(r, "/n").path_kwargs == {"page": None}
    assert find(r, "/n/3").path_kwargs == {"page": b"3"}


def test_each_match_has_its_own_containers() -> None:
    r = router((r"/lit", MainHandler), (r"/(\d+)", UserHandler))
    for path in ("/lit", "/1"):
        first = find(r, path)
        first.path_args.append(b"junk")
        first.path_kwargs["junk"] = b"junk"
        second = find(r, path)
        assert b"junk" not in second.path_args
        assert "junk" not in second.path_kwargs


# -- literal fast path keeps rule order ---------------------------------------


def test_regex_before_literal_wins() -> None:
    r = router(
        (r"/(about|help)", OtherHandler),
        (r"/about", MainHandler),
        (r"/help", MainHandler),
        (r"/contact", MainHandler),
    )
    m = find(r, "/about")
    assert m.spec.handler_class is OtherHandler
    assert m.path_args == [b"about"]
    assert find(r, "/help").path_args == [b"help"]
    assert find(r, "/contact").spec.handler_class is MainHandler


def test_literal_before_regex_wins() -> None:
    r = router(
        (r"/about", MainHandler),
        (r"/(.*)", OtherHandler),
        (r"/contact", UserHandler),  # shadowed by the catch-all
    )
    assert find(r, "/about").spec.handler_class is MainHandler
    assert find(r, "/contact").spec.handler_class is OtherHandler
    assert find(r, "/contact").path_args == [b"contact"]


def test_duplicate_literal_first_wins() -> None:
    r = router((r"/same", MainHandler), (r"/same", OtherHandler))
    assert find(r, "/same").spec.handler_class is MainHandler


def test_escaped_literal() -> None:
    r = router((r"/a\.b", MainHandler), (r"/(.*)", OtherHandler))
    assert find(r, "/a.b").spec.handler_class is MainHandler
    assert find(r, "/aXb").spec.handler_class is OtherHandler


def test_regex_semantics_survive_the_fast_path() -> None:
    # An unescaped dot is any character (as re says), not a literal dot...
    r = router((r"/favicon.ico", MainHandler))
    assert find(r, "/faviconXico").spec.handler_class is MainHandler
    # ...and a case-insensitive pattern matches any case.
    r = router((re.compile(r"/About", re.IGNORECASE), MainHandler))
    assert find(r, "/about").spec.handler_class is MainHandler
    assert find(r, "/ABOUT").spec.handler_class is MainHandler


# -- host groups ------------------------------------------------------------


def test_specific_host_checked_before_wildcard_given_first() -> None:
    r = Router()
    r.add_rules(".*$", [(r"/", MainHandler)])
    r.add_rules(r"api\.example\.com", [(r"/", HostHandler)])
    assert find(r, "/", "api.example.com").spec.handler_class is HostHandler
    assert find(r, "/", "www.example.com").spec.handler_class is MainHandler


def test_host_case_insensitive_and_anchored() -> None:
    # (The port is gone before routing: the router gets request.host_name.)
    r = Router()
    r.add_rules(".*$", [(r"/", MainHandler)])
    r.add_rules(r"api\.example\.com", [(r"/", HostHandler)])
    for host in ("api.example.com", "API.Example.COM", "Api.example.com"):
        assert find(r, "/", host).spec.handler_class is HostHandler, host
    # The host pattern is anchored: no prefix or suffix matches.
    for host in ("api.example.com.evil", "xapi.example.com", ""):
        assert find(r, "/", host).spec.handler_class is MainHandler, host


def test_ipv6_host() -> None:
    r = Router()
    r.add_rules(".*$", [(r"/", MainHandler)])
    r.add_rules(r"\[::1\]", [(r"/", HostHandler)])
    assert find(r, "/", "[::1]").spec.handler_class is HostHandler


def test_fall_through_to_next_matching_host_group() -> None:
    r = Router()
    r.add_rules(".*$", [(r"/", MainHandler), (r"/only-main", MainHandler)])
    r.add_rules(r"(www\.)?example\.com", [(r"/shop", HostHandler)])
    r.add_rules(r".*\.com", [(r"/blog", OtherHandler), (r"/shop", UserHandler)])
    assert find(r, "/shop", "example.com").spec.handler_class is HostHandler
    assert find(r, "/blog", "www.example.com").spec.handler_class is OtherHandler
    assert find(r, "/only-main", "example.com").spec.handler_class is MainHandler
    assert find(r, "/shop", "other.com").spec.handler_class is UserHandler
    assert r.find("example.org", "/shop") is None


def test_later_groups_in_order_added() -> None:
    r = Router()
    r.add_rules(".*$", [(r"/x", MainHandler)])
    r.add_rules(r".*", [(r"/x", OtherHandler)])  # another catch-all, added later
    r.add_rules(r"a\.com", [(r"/x", HostHandler)])
    # Later groups go ahead of the first catch-all, in the order added.
    assert find(r, "/x", "a.com").spec.handler_class is OtherHandler


def test_only_first_group_is_moved_last() -> None:
    r = Router()
    r.add_rules(r"a\.com", [(r"/x", HostHandler)])
    r.add_rules(".*$", [(r"/x", MainHandler)])
    r.add_rules(r".*", [(r"/x", OtherHandler)])
    assert find(r, "/x", "a.com").spec.handler_class is HostHandler
    assert find(r, "/x", "b.com").spec.handler_class is MainHandler


def test_bad_host_pattern() -> None:
    r = Router()
    with pytest.raises(ValueError, match="invalid host pattern"):
        r.add_rules("(", [(r"/", MainHandler)])
    with pytest.raises(TypeError, match="host pattern must be a str"):
        r.add_rules(re.compile("a"), [])  # type: ignore[arg-type]


# -- reverse_url ------------------------------------------------------------


def test_reverse_url() -> None:
    r = router(
        url(r"/", MainHandler, name="home"),
        url(r"/user/([0-9]+)/([^/]+)", UserHandler, name="user"),
        url(r"/tag/(?P<tag>[^/]+)", OtherHandler, name="tag"),
        url(r"^/files/(.*)$", OtherHandler, name="files"),
        url(r"/a\.b/(\d+)", OtherHandler, name="escaped"),
        url(r"/robots.txt", OtherHandler, name="robots"),
        url(r"/([^)]+)/z", OtherHandler, name="class-with-paren"),
    )
    assert r.reverse_url("home") == "/"
    assert r.reverse_url("user", 42, "bob") == "/user/42/bob"
    assert r.reverse_url("user", "7", b"b%b") == "/user/7/b%25b"
    assert r.reverse_url("tag", "trio & co") == "/tag/trio%20%26%20co"
    assert r.reverse_url("tag", "a+b?c#d") == "/tag/a%2Bb%3Fc%23d"
    assert r.reverse_url("tag", "café") == "/tag/caf%C3%A9"
    assert r.reverse_url("tag", b"caf\xc3\xa9") == "/tag/caf%C3%A9"
    # '/' is kept, as Tornado's url_escape(plus=False) does.
    assert r.reverse_url("files", "css/site.css") == "/files/css/site.css"
    assert r.reverse_url("escaped", 3) == "/a.b/3"
    assert r.reverse_url("robots") == "/robots.txt"
    assert r.reverse_url("class-with-paren", "q") == "/q/z"


def test_reverse_round_trips() -> None:
    spec = URLSpec(r"/tag/(?P<tag>.+)/(?P<n>\d+)", OtherHandler)
    for value in ("a b", "a+b", "x/y", "ünï", "%41"):
        m = spec.match(spec.reverse(value, 5))
        assert m is not None
        assert m.path_kwargs == {"tag": value.encode(), "n": b"5"}


def test_reverse_url_unknown_name() -> None:
    r = router(url(r"/", MainHandler, name="home"))
    with pytest.raises(KeyError, match="nope not found in named urls"):
        r.reverse_url("nope")


@pytest.mark.parametrize(
    "pattern",
    [
        r"/a|/b",
        r"/(a|b)?",
        r"/x/(\d+)*",
        r"/(?:a|b)/(\d+)",
        r"/(a(b))",
        r"/\d+/(x)",
        r"/[ab]/(x)",
        r"/a+/(x)",
        r"/a/(x)/?",
        r"/(?=a)(x)",
        r"/(?#comment)(x)",
        r"/(?P<a>x)(?P=a)",
    ],
)
def test_unreversible_patterns(pattern: str) -> None:
    r = router(url(pattern, MainHandler, name="n"))
    with pytest.raises(ValueError, match="cannot reverse URL pattern"):
        r.reverse_url("n", "x")


def test_verbose_pattern_unreversible() -> None:
    spec = URLSpec(re.compile(r"/a  (x)  # comment", re.VERBOSE), MainHandler)
    with pytest.raises(ValueError, match="cannot reverse"):
        spec.reverse("x")


def test_reverse_wrong_arguments() -> None:
    r = router(url(r"/u/(\d+)/(\d+)", UserHandler, name="u"))
    with pytest.raises(ValueError, match="takes 2 argument"):
        r.reverse_url("u", 1)
    with pytest.raises(ValueError, match="takes 2 argument"):
        r.reverse_url("u", 1, 2, 3)
    with pytest.raises(TypeError, match="None"):
        r.reverse_url("u", 1, None)


def test_name_in_several_groups_reverses_first_tried() -> None:
    r = Router()
    r.add_rules(".*$", [url(r"/main", MainHandler, name="home")])
    r.add_rules(r"a\.com", [url(r"/a", HostHandler, name="home")])
    assert r.reverse_url("home") == "/a"


# -- malformed rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        ("/just-a-string", TypeError, "a rule is a URLSpec"),
        (MainHandler, TypeError, "a rule is a URLSpec"),
        ((r"/",), ValueError, "tuple of 1 items"),
        ((r"/", MainHandler, {}, "n", "extra"), ValueError, "tuple of 5 items"),
        ((r"/", MainHandler()), TypeError, "must be a class"),
        ((42, MainHandler), TypeError, "must be a str or a compiled regex"),
        ((re.compile(rb"/"), MainHandler), TypeError, "bytes regex"),
        ((r"/", MainHandler, ["x"]), TypeError, "kwargs .* must be a dict"),
        ((r"/", MainHandler, {}, 5), TypeError, "name .* must be a str"),
        ((r"/(", MainHandler), ValueError, "invalid URL pattern"),
        ((r"/(\d+)/(?P<n>\d+)", MainHandler), ValueError, "mixes named"),
    ],
)
def test_malformed_rules(rule: Any, error: type[Exception], message: str) -> None:
    r = Router()
    with pytest.raises(error, match=message) as info:
        r.add_rules(".*$", [(r"/ok", MainHandler), rule])
    if not isinstance(info.value, ValueError) or "tuple of" not in str(info.value):
        assert "rule #1" in "".join(
            [str(info.value), *getattr(info.value, "__notes__", [])]
        )
    # Nothing was added.
    assert r.find("h", "/ok") is None


def test_duplicate_names_in_one_group() -> None:
    r = Router()
    with pytest.raises(ValueError, match="named 'x'"):
        r.add_rules(
            ".*$",
            [url(r"/a", MainHandler, name="x"), url(r"/b", UserHandler, name="x")],
        )
    assert r.named("x") is None
    assert r.find("h", "/a") is None
