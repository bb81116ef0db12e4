"""Behind a reverse proxy: the client's address and scheme from its headers.

A proxy (nginx, a load balancer) connects to trioweb itself, so the peer
address is the proxy's. It passes the real client on in headers --
``X-Forwarded-For``, ``X-Real-Ip``, ``X-Forwarded-Proto``, or RFC 7239's
``Forwarded`` -- which any client can also send. They are believed only
when the direct peer is a trusted proxy (``--forwarded-allow-ips``; by
default ``127.0.0.1`` and ``::1``), and in a chain of proxies the client is
the rightmost address that is not itself a trusted proxy: everything left
of it was written by someone we do not trust.

Turned on by ``trioweb serve --proxy-headers`` (``ServerConfig.proxy_headers``)
or, for Tornado users, the Application setting ``xheaders=True``. Pure: no
I/O, no trio.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..forms import parse_header_parameters
from ..httputil import HTTPHeaders

__all__ = ["DEFAULT_FORWARDED_ALLOW_IPS", "TrustedProxies", "resolve_client"]

DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The addresses whose forwarding headers are believed.

    Built from uvicorn's ``--forwarded-allow-ips`` syntax: a comma-separated
    list of IP addresses and CIDR ranges (``10.0.0.0/8``), or ``*`` for
    every peer. A Unix-socket peer (no address) is trusted: only local
    processes can connect to it.

    >>> "10.1.2.3" in TrustedProxies("127.0.0.1, 10.0.0.0/8")
    True
    """

    def __init__(self, spec: str | Iterable[str] = DEFAULT_FORWARDED_ALLOW_IPS) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        self.always = False
        self._networks: list[_Network] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "*":
                self.always = True
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or a CIDR range "
                    "(use e.g. 127.0.0.1, 10.0.0.0/8, ::1, or *)"
                ) from None

    def __contains__(self, host: object) -> bool:
        if host is None:
            return True
        if self.always:
            return True
        # The peer's own address comes from the socket: a link-local peer
        # has its interface as scope id, which says nothing about trust.
        address = _ip(host.partition("%")[0]) if isinstance(host, str) else None
        if address is None:
            return False
        return any(address in network for network in self._networks)

    def __repr__(self) -> str:
        items = ["*"] if self.always else [str(n) for n in self._networks]
        return f"TrustedProxies({','.join(items)!r})"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # A scope id ("fe80::1%eth0") is free text to ipaddress: from a header
    # it would carry anything into remote_ip and the access log. No proxy
    # forwards one, so such an address is not an IP.
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _node_address(node: str) -> str | None:
    # An RFC 7239 node: 192.0.2.1, "192.0.2.1:80", "[2001:db8::1]:443".
    node = node.strip().strip('"')
    if node.startswith("["):
        host = node[1:].partition("]")[0]
    elif node.count(":") == 1:
        host = node.partition(":")[0]
    else:
        host = node
    return str(_ip(host)) if _ip(host) is not None else None


def _pick(chain: list[str | None], trusted: TrustedProxies) -> int | None:
    """The index of the client in a proxy chain (left: the first hop)."""
    for index in range(len(chain) - 1, -1, -1):
        address = chain[index]
        if address is None:
            # "unknown", an obfuscated name, garbage: the chain cannot be
            # followed past it.
            return None
        if address not in trusted:
            return index
    # Every hop is a trusted proxy: the first one is the client.
    return 0 if chain else None


def _proto(value: str | None) -> str | None:
    value = (value or "").strip().strip('"').lower()
    return value if value in ("http", "https") else None


def resolve_client(
    peer: str | None, headers: HTTPHeaders, trusted: TrustedProxies
) -> tuple[str | None, str | None]:
    """The client's ``(address, scheme)`` that the headers report, or
    ``None`` for what they do not (or may not) tell.

    Nothing is taken from an untrusted ``peer``. ``Forwarded`` wins over
    ``X-Forwarded-For`` / ``X-Forwarded-Proto``, which win over
    ``X-Real-Ip`` / ``X-Scheme``; a scheme other than ``http`` or ``https``
    is ignored.
    """
    if peer not in trusted:
        return None, None
    forwarded = headers.get_list("Forwarded")
    if forwarded:
        elements = [
            parse_header_parameters(";" + element)[1]
            for field in forwarded
            for element in field.split(",")
        ]
        hops = [_node_address(e.get("for", "")) for e in elements]
        found = _pick(hops, trusted)
        if found is not None:
            return hops[found], _proto(elements[found].get("proto"))
        return None, None
    client: str | None = None
    index = None
    chain: list[str | None] = []
    xff = headers.get_list("X-Forwarded-For")
    if xff:
        chain = [_node_address(node) for field in xff for node in field.split(",")]
        index = _pick(chain, trusted)
        client = chain[index] if index is not None else None
    else:
        real = headers.get("X-Real-Ip")
        client = _node_address(real) if real else None
    protos = [
        p for field in headers.get_list("X-Forwarded-Proto") for p in field.split(",")
    ]
    if not protos:
        # Tornado's xheaders also read X-Scheme.
        return client, _proto(headers.get("X-Scheme"))
    # With one scheme per hop, the client's is the one at its index.
    if index is not None and len(protos) == len(chain):
        return client, _proto(protos[index])
    return client, _proto(protos[-1])
