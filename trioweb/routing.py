"""URL rules: which handler class serves a request, and the URL for a rule's name.

An application is a list of rules. Each rule pairs a regular expression with a
:class:`~trioweb.handler.RequestHandler` subclass::

    app = Application([
        (r"/", MainHandler),
        (r"/user/([0-9]+)", UserHandler, {"db": db}),
        url(r"/story/(?P<slug>[a-z-]+)", StoryHandler, name="story"),
    ])

The rules are tried in the order given and the first one whose pattern matches
the *whole* request path wins: patterns are anchored at both ends, so ``r"/a"``
matches ``/a`` but not ``/ab``. What a pattern's capturing groups match is
handed to the handler's ``get()`` / ``post()`` / ... methods: by position for
plain groups, by keyword for named groups ``(?P<name>...)``. A pattern uses one
kind or the other, never both.

Patterns are matched against the raw request path, still percent-encoded, so
``%2F`` inside a segment is not mistaken for a ``/``. Only the captured groups
are decoded, to :class:`bytes` (the handler decides which text encoding they
are in). A ``+`` stays a ``+``: in a path it is not a space.

Rules can be grouped by host name for virtual hosting
(:meth:`Router.add_rules`), and a rule with a ``name`` can be turned back into
a URL (:meth:`Router.reverse_url`), so templates and redirects need not repeat
the patterns.

This module is pure: no I/O, no trio, nothing about handlers beyond holding
the class. All the regex analysis happens once, when rules are added; finding
the rule for a request costs a dict lookup for literal paths and one regex
match per candidate rule otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias
from urllib.parse import quote, unquote_to_bytes

import attrs

__all__ = ["RouteMatch", "Router", "Rule", "URLSpec", "url"]

# How a rule's groups reach the handler; decided once per rule.
_NO_GROUPS = 0
_POSITIONAL = 1
_NAMED = 2

# Characters that make a regex more than a fixed string when they appear
# unescaped outside a group. '.' is deliberately absent: see _analyze().
_META = frozenset("[]{}()|*+?^$")

# Host patterns that match every host. Special-cased so that an application
# without virtual hosts never looks at the Host header at all.
_ANY_HOST = frozenset({".*", ".*$", "^.*", "^.*$"})


class URLSpec:
    """One URL rule: a pattern, the handler class serving it, and its options.

    Args:
      pattern: A regular expression, as a string or compiled. A string
        pattern gets a ``$`` appended if it does not end with one (as in
        Tornado), and every pattern, compiled or not, must match the whole
        path: ``r"/a|/b"`` matches exactly ``/a`` and ``/b``. Groups must be
        all positional or all named.
      handler: The handler class (not an instance). A new instance serves
        each request.
      kwargs: Keyword arguments for the handler's ``initialize()``, the
        place to hand a handler its database, its settings, and so on.
      name: A name for :meth:`Router.reverse_url`.

    Raises:
      TypeError: An argument has the wrong type, e.g. a handler instance
        instead of its class.
      ValueError: The pattern is not a valid regex, or mixes named and
        positional groups.

    Treat a URLSpec as immutable once it is given to a :class:`Router`: the
    router precomputes its lookup tables from it.
    """

    __slots__ = (
        "_group_mode",
        "_literal",
        "_pieces",
        "handler_class",
        "kwargs",
        "name",
        "regex",
    )

    regex: re.Pattern[str]
    handler_class: type[Any]
    kwargs: dict[str, Any]
    name: str | None

    def __init__(
        self,
        pattern: str | re.Pattern[str],
        handler: type[Any],
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(pattern, str):
            if not _ends_with_dollar(pattern):
                pattern += "$"
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid URL pattern {pattern!r}: {exc}") from exc
        elif isinstance(pattern, re.Pattern):
            if not isinstance(pattern.pattern, str):
                raise TypeError(
                    f"URL pattern {pattern!r} is a bytes regex; "
                    "compile it from a str, paths are matched as text"
                )
            regex = pattern
        else:
            raise TypeError(
                f"URL pattern must be a str or a compiled regex, "
                f"not {type(pattern).__name__}: {pattern!r}"
            )
        if not isinstance(handler, type):
            raise TypeError(
                f"handler for {regex.pattern!r} must be a class, not "
                f"{handler!r}; pass the class itself, e.g. MainHandler, "
                "not MainHandler()"
            )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(
                f"kwargs for {regex.pattern!r} must be a dict (they are passed "
                f"to initialize()), not {type(kwargs).__name__}: {kwargs!r}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"name for {regex.pattern!r} must be a str, "
                f"not {type(name).__name__}: {name!r}"
            )
        if regex.groupindex and len(regex.groupindex) != regex.groups:
            # With both kinds, one kind would be silently dropped: the
            # handler gets either path_args or path_kwargs, never both.
            raise ValueError(
                f"URL pattern {regex.pattern!r} mixes named and positional "
                "groups; name all of them, or none (use (?:...) for groups "
                "that should not capture)"
            )

        self.regex = regex
        self.handler_class = handler
        self.kwargs = kwargs if kwargs is not None else {}
        self.name = name
        if not regex.groups:
            self._group_mode = _NO_GROUPS
        elif regex.groupindex:
            self._group_mode = _NAMED
        else:
            self._group_mode = _POSITIONAL
        self._pieces, self._literal = _analyze(regex)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.regex.pattern!r}, "
            f"{self.handler_class.__qualname__}, kwargs={self.kwargs!r}, "
            f"name={self.name!r})"
        )

    def match(self, path: str) -> RouteMatch | None:
        """Match this one rule against a raw (percent-encoded) path.

        :meth:`Router.find` is the way to route a request; this is for
        looking at one rule alone.
        """
        m = self.regex.fullmatch(path)
        return None if m is None else self._route_match(m)

    def reverse(self, *args: Any) -> str:
        """Build the path this rule matches, with ``args`` filling its groups.

        The arguments fill the groups in order (named groups too, in the
        order they appear). Each is a :class:`str`, :class:`bytes` or
        :class:`int` (anything else is turned into a string with ``str()``);
        it is percent-encoded, except for ``/``, so that the result matches
        the pattern again::

            >>> URLSpec(r"/tag/([^/]+)", TagHandler).reverse("trio & co")
            '/tag/trio%20%26%20co'

        Raises:
          ValueError: The pattern is too complex to be reversed (alternation,
            optional or repeated groups, nested groups, character classes or
            escapes like ``\\d`` outside a group), or the number of arguments
            is not the number of groups.
          TypeError: An argument is ``None``.
        """
        pieces = self._pieces
        if pieces is None:
            raise ValueError(
                f"cannot reverse URL pattern {self.regex.pattern!r}: only "
                "patterns made of literal text and plain, non-optional groups "
                "can be reversed; split alternatives into separate rules, or "
                "build this URL by hand"
            )
        if len(args) != self.regex.groups:
            raise ValueError(
                f"URL pattern {self.regex.pattern!r} has {self.regex.groups} "
                f"group(s), so reversing it takes {self.regex.groups} "
                f"argument(s), not {len(args)}"
            )
        if not args:
            # No groups: the one piece is the whole path.
            return pieces[0] or ""
        arg_iter = iter(args)
        out: list[str] = []
        for piece in pieces:
            out.append(_escape_arg(next(arg_iter)) if piece is None else piece)
        return "".join(out)

    def _route_match(self, m: re.Match[str]) -> RouteMatch:
        mode = self._group_mode
        if mode == _NO_GROUPS:
            return RouteMatch(self, [], {})
        if mode == _POSITIONAL:
            return RouteMatch(self, [_unquote_or_none(g) for g in m.groups()], {})
        return RouteMatch(
            self, [], {k: _unquote_or_none(v) for k, v in m.groupdict().items()}
        )


def url(
    pattern: str | re.Pattern[str],
    handler: type[Any],
    kwargs: dict[str, Any] | None = None,
    name: str | None = None,
) -> URLSpec:
    """Make a :class:`URLSpec`.

    It reads better than a tuple when naming a rule::

        url(r"/story/([0-9]+)", StoryHandler, name="story")
    """
    return URLSpec(pattern, handler, kwargs, name)


_Pattern: TypeAlias = str | re.Pattern[str]

Rule: TypeAlias = (
    URLSpec
    | tuple[_Pattern, type[Any]]
    | tuple[_Pattern, type[Any], dict[str, Any]]
    | tuple[_Pattern, type[Any], dict[str, Any], str]
)
"""One entry of the list given to ``Application`` or :meth:`Router.add_rules`:
a :class:`URLSpec` (see :func:`url`), or a tuple ``(pattern, handler)``,
``(pattern, handler, kwargs)`` or ``(pattern, handler, kwargs, name)``."""


@attrs.frozen
class RouteMatch:
    """The rule that matched a request, and what its groups captured.

    Attributes:
      spec: The matching rule; ``spec.handler_class`` serves the request with
        ``spec.kwargs`` passed to ``initialize()``.
      path_args: The positional groups, percent-decoded to bytes; ``None``
        for an optional group that did not take part in the match.
      path_kwargs: The named groups, decoded the same way. A pattern has one
        kind of group only, so one of ``path_args`` and ``path_kwargs`` is
        always empty.

    Each match gets its own list and dict: a handler may change them.
    """

    spec: URLSpec
    path_args: list[bytes | None]
    path_kwargs: dict[str, bytes | None]


class Router:
    """The rules of an application, grouped by host pattern.

    ``Application(handlers)`` adds its handlers with
    ``add_rules(".*$", handlers)``, the group for every host.
    ``add_rules(host_pattern, rules)`` adds a group for some hosts only
    (virtual hosting).

    To route a request, the groups whose host pattern matches the request's
    host are tried in turn, and the first rule whose pattern matches the path
    wins. The order of groups is the order they were added, except that the
    first group, when it is the ``".*$"`` group of the application's own
    handlers, is tried last: a virtual host added later is more specific than
    "every host", so it comes first (as in Tornado). If the path matches no
    rule of a host's group, the next group matching the host is tried.
    """

    __slots__ = ("_fallback", "_groups", "_named", "_order", "_uses_host")

    def __init__(self) -> None:
        # Groups in the order they are tried, minus _fallback, which is
        # always tried last.
        self._groups: list[_HostGroup] = []
        self._fallback: _HostGroup | None = None
        self._order: tuple[_HostGroup, ...] = ()
        self._named: dict[str, URLSpec] = {}
        self._uses_host = False

    def add_rules(self, host_pattern: str, rules: Iterable[Rule]) -> None:
        """Add a group of rules for the hosts that ``host_pattern`` matches.

        Args:
          host_pattern: A regex matched against the request's host name,
            without its port, ignoring case, and anchored at both ends like
            paths: ``r"(www\\.)?example\\.com"``. ``".*$"`` matches every
            host.
          rules: The rules, tried in order; see :data:`Rule`.

        Raises:
          TypeError: A rule is not a :class:`URLSpec` or a tuple, or one of
            its parts has the wrong type.
          ValueError: A tuple rule has the wrong length, a pattern is not a
            valid regex, or two rules of the group have the same name.

        On error nothing is added.
        """
        if not isinstance(host_pattern, str):
            raise TypeError(
                "host pattern must be a str (a regex such as "
                f"r'example\\.com'), not {type(host_pattern).__name__}: "
                f"{host_pattern!r}"
            )
        host_regex: re.Pattern[str] | None = None
        if host_pattern not in _ANY_HOST:
            anchored = host_pattern
            if not _ends_with_dollar(anchored):
                anchored += "$"
            try:
                host_regex = re.compile(anchored, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(
                    f"invalid host pattern {host_pattern!r}: {exc}"
                ) from exc

        specs = [_to_spec(rule, i, host_pattern) for i, rule in enumerate(rules)]
        names: dict[str, URLSpec] = {}
        for spec in specs:
            if spec.name is None:
                continue
            if spec.name in names:
                raise ValueError(
                    f"two rules for host pattern {host_pattern!r} are named "
                    f"{spec.name!r} ({names[spec.name].regex.pattern!r} and "
                    f"{spec.regex.pattern!r}); reverse_url could only reach "
                    "one of them, so give them different names"
                )
            names[spec.name] = spec

        group = _HostGroup(host_pattern, host_regex, _RuleTable(specs), names)
        if host_regex is None and not self._groups and self._fallback is None:
            self._fallback = group
        else:
            self._groups.append(group)
        if host_regex is not None:
            self._uses_host = True
        self._order = (
            *self._groups,
            *(() if self._fallback is None else (self._fallback,)),
        )

        # A name used in several groups reverses to the one in the first group
        # tried, as in Tornado: reverse_url() has no host to choose by.
        named: dict[str, URLSpec] = {}
        for g in self._order:
            for name, spec in g.names.items():
                named.setdefault(name, spec)
        self._named = named

    def find(self, host_name: str, path: str) -> RouteMatch | None:
        """Find the rule for a request, or ``None`` if no rule matches (a 404).

        Args:
          host_name: The request's host name, without the port
            (``request.host_name``; matched case-insensitively).
          path: The raw request path: percent-encoded, without the query
            string.
        """
        if self._uses_host:
            for group in self._order:
                if group.host_regex is None or group.host_regex.fullmatch(host_name):
                    found = group.table.find(path)
                    if found is not None:
                        return found
            return None
        # No virtual hosts: the host plays no part, do not even parse it.
        for group in self._order:
            found = group.table.find(path)
            if found is not None:
                return found
        return None

    @property
    def uses_host(self) -> bool:
        """Whether a rule group has a host pattern of its own, so that
        :meth:`find` needs the request's host name (without one, any string
        will do, and the caller need not work it out)."""
        return self._uses_host

    def named(self, name: str) -> URLSpec | None:
        """The rule called ``name``, or ``None`` if there is none."""
        return self._named.get(name)

    def reverse_url(self, name: str, *args: Any) -> str:
        """The path for the rule called ``name``, its groups filled by ``args``.

        See :meth:`URLSpec.reverse` for how the arguments are encoded.

        Raises:
          KeyError: No rule has this name.
          ValueError: The rule's pattern cannot be reversed, or ``args`` has
            the wrong length.
        """
        spec = self._named.get(name)
        if spec is None:
            raise KeyError(f"{name} not found in named urls")
        return spec.reverse(*args)


# ---------------------------------------------------------------------------
# Internals


@attrs.frozen
class _HostGroup:
    pattern: str
    host_regex: re.Pattern[str] | None  # None: every host
    table: _RuleTable
    names: dict[str, URLSpec]


class _RuleTable:
    """The rules of one host group, compiled for first-match-wins lookup.

    A rule whose pattern is a fixed string (no groups, no regex syntax) can
    only ever match that one path, so such rules go into a dict. A dict hit
    must still honour rule order: a regex rule listed *before* the literal
    may match the same path and then wins. Since the path is known when the
    rules are added, which rule wins is decided then, once, and stored in the
    dict. On a dict miss no literal rule can match, and only the regex rules
    are tried, in order.
    """

    __slots__ = ("_literals", "_regexes")

    def __init__(self, specs: Sequence[URLSpec]) -> None:
        # path -> (winning spec, its positional groups, its named groups)
        literals: dict[
            str, tuple[URLSpec, tuple[bytes | None, ...], dict[str, bytes | None]]
        ] = {}
        regexes: list[tuple[URLSpec, Callable[[str], re.Match[str] | None]]] = []
        for index, spec in enumerate(specs):
            literal = spec._literal
            if literal is None:
                regexes.append((spec, spec.regex.fullmatch))
                continue
            if literal in literals:
                continue  # an earlier rule already decides this path
            winner = next(
                (
                    earlier
                    for earlier in specs[:index]
                    if earlier._literal is None
                    and earlier.regex.fullmatch(literal) is not None
                ),
                spec,
            )
            found = winner.match(literal)
            assert found is not None  # _analyze() checked the literal matches
            literals[literal] = (
                winner,
                tuple(found.path_args),
                found.path_kwargs,
            )
        self._literals = literals
        self._regexes = tuple(regexes)

    def find(self, path: str) -> RouteMatch | None:
        hit = self._literals.get(path)
        if hit is not None:
            spec, args, kwargs = hit
            # Fresh containers: a handler may change its match.
            return RouteMatch(spec, list(args), dict(kwargs))
        for spec, fullmatch in self._regexes:
            m = fullmatch(path)
            if m is not None:
                return spec._route_match(m)
        return None


def _to_spec(rule: object, index: int, host_pattern: str) -> URLSpec:
    if isinstance(rule, URLSpec):
        return rule
    where = f"rule #{index} for host pattern {host_pattern!r}"
    if not isinstance(rule, tuple | list):
        raise TypeError(
            f"{where} is {rule!r}; a rule is a URLSpec (see trioweb.url) or a "
            "tuple (pattern, handler[, kwargs[, name]])"
        )
    if not 2 <= len(rule) <= 4:
        raise ValueError(
            f"{where} is a tuple of {len(rule)} items: {rule!r}; a rule is "
            "(pattern, handler), (pattern, handler, kwargs) or "
            "(pattern, handler, kwargs, name)"
        )
    try:
        return URLSpec(*rule)
    except (TypeError, ValueError) as exc:
        exc.add_note(f"in {where}")
        raise


def _ends_with_dollar(pattern: str) -> bool:
    """Whether ``pattern`` ends with an *unescaped* ``$`` (``r"\\$"`` is a
    literal dollar sign and still needs an anchor)."""
    if not pattern.endswith("$"):
        return False
    backslashes = len(pattern) - 1 - len(pattern[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _analyze(
    regex: re.Pattern[str],
) -> tuple[tuple[str | None, ...] | None, str | None]:
    """Work out how to reverse a pattern, and whether it is a fixed string.

    Returns ``(pieces, literal)``. ``pieces`` is the path split into literal
    text and ``None`` for each group, or ``None`` if the pattern cannot be
    reversed. ``literal`` is the one path the pattern matches, if it matches
    only one, for the dict fast path.

    This is a small scanner, not a regex parser: it accepts literal text,
    escaped punctuation and top-level capturing groups, and declines
    everything else, because a wrong URL is worse than an error. One
    leniency, kept from Tornado: an unescaped ``.`` outside a group reverses
    to a dot, since everybody writes ``r"/favicon.ico"``; such a pattern
    matches more than one path, so it is never a literal.
    """
    pattern = regex.pattern
    if regex.flags & re.VERBOSE or "(?#" in pattern:
        # Whitespace and comments would be taken for literal text.
        return None, None
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if _ends_with_dollar(pattern):
        pattern = pattern[:-1]

    pieces: list[str | None] = []
    text: list[str] = []
    exact = True
    groups = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None, None
            escaped = pattern[i + 1]
            if escaped.isascii() and escaped.isalnum():
                # \d, \w, \1, \x41, ... are classes, references or codes.
                return None, None
            text.append(escaped)
            i += 2
        elif c == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?P<", i):
                # Non-capturing groups, lookarounds, inline flags.
                return None, None
            end = _group_end(pattern, i)
            if end < 0:
                return None, None
            pieces.append("".join(text))
            text.clear()
            pieces.append(None)
            groups += 1
            exact = False
            i = end
        elif c == ".":
            text.append(".")
            exact = False
            i += 1
        elif c in _META:
            # Quantifiers (a group followed by '?' is optional, and has no
            # single value to fill), alternation, classes, inner anchors.
            return None, None
        else:
            text.append(c)
            i += 1
    if groups != regex.groups:
        # Capturing groups nested in one another: the count is off.
        return None, None
    pieces.append("".join(text))
    result = tuple(p for p in pieces if p != "")
    if not result:
        result = ("",)

    literal: str | None = None
    if exact and not regex.flags & re.IGNORECASE:
        candidate = "".join(p for p in result if p is not None)
        # A last check that the scanner read the pattern as re does.
        if regex.fullmatch(candidate) is not None:
            literal = candidate
    return result, literal


def _group_end(pattern: str, start: int) -> int:
    """The index just past the ``)`` closing the group opened at ``start``,
    or -1. Skips escapes and character classes, where parens are literal."""
    depth = 0
    i, n = start, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1  # a ']' first in a class is literal
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _escape_arg(arg: Any) -> str:
    if arg is None:
        raise TypeError(
            "cannot put None in a URL; pass a str, bytes or int "
            "(optional groups cannot be reversed)"
        )
    if not isinstance(arg, str | bytes):
        arg = str(arg)
    # quote() encodes str as UTF-8; '/' stays as is, like Tornado's
    # url_escape(plus=False).
    return quote(arg)


def _unquote_or_none(value: str | None) -> bytes | None:
    # unquote_to_bytes leaves '+' alone: in a path it is not a space.
    return None if value is None else unquote_to_bytes(value)
