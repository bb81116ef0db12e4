"""The rules every request head must pass, whichever parser read it. Pure.

The parser backends (:mod:`trioweb.server.parsers`) check what their libraries
check -- syntax, framing, sizes -- and differ in what they let through. The
rules of the request line are applied to the raw bytes by
:class:`~trioweb.server.headmeter.HeadMeter`, before either library parses them; the
rules of the header fields here, by the connection engine, to the parsed
:class:`~trioweb.server.parsers.RequestHead` of both. So both backends refuse the
same requests with the same status:

==============================================  ======  =================
request                                         status  RFC
==============================================  ======  =================
``HTTP/2.0``, ``HTTP/0.9`` (another major)      505     9110 6.2
``HTTP/1.2`` and later minors                   served as 1.1 (9110 2.5)
``CONNECT`` (this server is not a proxy)        501     9110 9.3.6
``*`` as the target of anything but OPTIONS     400     9112 3.2.4
a target neither ``/path`` nor ``scheme://..``  400     9112 3.2
no ``Host`` in HTTP/1.1, or more than one       400     9112 3.2
a ``Host`` that is not ``host[:port]``          400     3986 3.2
more than one ``Content-Length``                400     9112 6.3
a ``Content-Length`` of 20 digits or more       400
more than one ``Content-Type``                  400
``Transfer-Encoding`` other than ``chunked``    501     9112 6.1
``Transfer-Encoding`` with ``Content-Length``   400     9112 6.3
``Transfer-Encoding`` in HTTP/1.0               400     9112 6.1
==============================================  ======  =================
"""

from __future__ import annotations

import re

from .events import ProtocolError, RequestHead

__all__ = ["HeadRules", "check_head"]

# RFC 3986 3.2.2 and 3.2.3: an IP literal, an IPv4 address or a reg-name
# (unreserved, pct-encoded, sub-delims), then an optional port.
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]"
    rb"|\[v[0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+\]"
    rb"|[-A-Za-z0-9._~!$&'()*+,;=%]*)"
    rb"(?::[0-9]{0,5})?"
)


class HeadRules:
    """What :func:`check_head` found out about a request's framing."""

    __slots__ = ("chunked", "content_length", "expects_continue", "keep_alive")

    def __init__(
        self,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expects_continue: bool,
    ) -> None:
        #: ``Content-Length``, or None if absent.
        self.content_length = content_length
        #: The body is chunked.
        self.chunked = chunked
        #: The client allows the connection to be reused.
        self.keep_alive = keep_alive
        #: The client sent ``Expect: 100-continue``.
        self.expects_continue = expects_continue


def check_head(head: RequestHead) -> HeadRules:
    """Check ``head`` against the rules in the module docs; raise
    :exc:`~trioweb.server.parsers.ProtocolError` for a request to refuse.

    A ``1.x`` version with ``x > 1`` is rewritten to ``1.1`` in ``head``.
    """
    # The request line's rules (version, CONNECT, target form) were applied
    # to the raw bytes by the parser's HeadMeter, before either library
    # parsed them.
    version = head.http_version
    if version != b"1.1" and version != b"1.0":
        if version[:2] != b"1." or not version[2:].isdigit():
            raise ProtocolError(505, "HTTP version not supported")
        head.http_version = version = b"1.1"
    http11 = version == b"1.1"
    content_length: int | None = None
    chunked = False
    keep_alive = http11
    expects_continue = False
    host: bytes | None = None
    hosts = 0
    content_types = 0
    lengths: list[bytes] = []
    for name, value in head.headers:
        if name == b"host":
            hosts += 1
            host = value
        elif name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                # RFC 9112 6.1: a coding we do not understand is a 501.
                # Raised at once: it wins over every 400 below wherever the
                # fields stand, as with h11 (which checks it first), so the
                # answer does not depend on the backend.
                raise ProtocolError(501, "only Transfer-Encoding: chunked is supported")
            chunked = True
        elif name == b"connection":
            if b"close" in value.lower():
                keep_alive = False
        elif name == b"expect":
            expects_continue = value.lower() == b"100-continue"
        elif name == b"content-type":
            content_types += 1
    if lengths:
        if len(lengths) > 1:
            raise ProtocolError(400, "more than one Content-Length")
        value = lengths[0]
        # Parsers have checked the digits; a long zero-padded value must not
        # reach int()'s digit limit.
        if len(value) > 19 or not value.isdigit():
            raise ProtocolError(400, "bad Content-Length")
        content_length = int(value)
    if hosts > 1:
        raise ProtocolError(400, "more than one Host header")
    if host is None:
        if http11:
            raise ProtocolError(400, "missing Host header")
    elif _HOST.fullmatch(host) is None:
        raise ProtocolError(400, "malformed Host header")
    if content_types > 1:
        raise ProtocolError(400, "more than one Content-Type")
    if chunked:
        if content_length is not None:
            # RFC 9112 6.3: a request with both is a smuggling attempt more
            # often than not; parsers would let the chunking win.
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        if not http11:
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
    return HeadRules(content_length, chunked, keep_alive, expects_continue and http11)
