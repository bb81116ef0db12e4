"""HTTPS: trioweb.serve() with TLS over real sockets, certificates from a
throwaway CA (trustme), and the settings that make the context.

The server runs in-process on port 0 with the TLS fields of ServerConfig
(the same ones ``trioweb serve`` takes as flags: see test_tls_cli.py);
clients are trio.SSLStream over real TCP, or httpx.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import h11
import httpx
import pytest
import trio
import trustme
from cryptography.hazmat.primitives import serialization

from trioweb import Application, RequestHandler, ServerConfig, serve
from trioweb.server.tls import TLSConfigError, make_ssl_context

DEADLINE = 5


class WhoAmI(RequestHandler):
    def get(self) -> None:
        cert = self.request.get_ssl_certificate()
        der = self.request.get_ssl_certificate(binary_form=True)
        self.write(
            {
                "protocol": self.request.protocol,
                "path": self.request.path,
                "client": None if cert is None else cert["subjectAltName"],
                "der": None if der is None else der.hex(),
            }
        )


APP = Application([("/.*", WhoAmI)])


@attrs.define
class Certs:
    """A CA, a server certificate for 127.0.0.1 and its files."""

    ca: trustme.CA
    server: trustme.LeafCert
    ca_file: str
    cert_file: str
    key_file: str

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = tmp_path / "ca.pem"
    cert_file = tmp_path / "server.pem"
    key_file = tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    for i, pem in enumerate(server.cert_chain_pems):
        pem.write_to_path(str(cert_file), append=i > 0)
    server.private_key_pem.write_to_path(str(key_file))
    return Certs(ca, server, str(ca_file), str(cert_file), str(key_file))


@asynccontextmanager
async def serving(app: Any = APP, **options: Any) -> AsyncIterator[int]:
    """serve() with ``options`` in the background; yield its port."""
    config = ServerConfig(port=0, graceful_timeout=0.2, **options)
    trigger = trio.Event()
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=trigger, task_status=task_status
            )
        )
        try:
            yield int(addresses[0][1])
        finally:
            trigger.set()


async def tls_connect(port: int, context: ssl.SSLContext) -> trio.SSLStream[Any]:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def get(stream: trio.abc.Stream, target: str = "/") -> tuple[int, bytes]:
    """One GET over ``stream``: (status, body)."""
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(
        conn.send(h11.Request(method="GET", target=target, headers=[("host", "x")]))
        + conn.send(h11.EndOfMessage())
    )
    status, body = 0, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return status, body
        else:
            raise AssertionError(f"closed before a response: {event}")


def tls_options(certs: Certs, **more: Any) -> dict[str, Any]:
    return {"certfile": certs.cert_file, "keyfile": certs.key_file, **more}


# -- the handshake and the request --------------------------------------------------


async def test_https_request_over_real_sockets(
    certs: Certs, no_tracebacks: None
) -> None:
    with trio.fail_after(DEADLINE):
        async with (
            serving(**tls_options(certs)) as port,
            httpx.AsyncClient(verify=certs.client_context()) as client,
        ):
            r = await client.get(f"https://127.0.0.1:{port}/hello")
    assert r.status_code == 200
    assert r.json() == {
        "protocol": "https",
        "path": "/hello",
        "client": None,  # no certificate asked for, none sent
        "der": None,
    }


async def test_keep_alive_over_tls_and_alpn_offers_http11(certs: Certs) -> None:
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with trio.fail_after(DEADLINE):
        async with serving(**tls_options(certs)) as port:
            stream = await tls_connect(port, context)
            # The client asked for h2 first: the server picks what it speaks.
            assert stream.selected_alpn_protocol() == "http/1.1"
            for path in ("/one", "/two"):
                status, body = await get(stream, path)
                assert status == 200
                assert b'"protocol": "https"' in body
            await stream.aclose()


async def test_plain_http_to_a_tls_port_is_closed_without_harm(
    certs: Certs, no_tracebacks: None
) -> None:
    with trio.fail_after(DEADLINE):
        async with serving(**tls_options(certs)) as port:
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            await tcp.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            # Not TLS: the handshake fails and the server hangs up.
            try:
                while await tcp.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
            await tcp.aclose()
            # ...and goes on serving TLS clients.
            stream = await tls_connect(port, certs.client_context())
            assert (await get(stream))[0] == 200
            await stream.aclose()


async def test_ssl_context_argument(certs: Certs) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.server.configure_cert(context)
    config = ServerConfig(port=0)
    trigger = trio.Event()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(
                lambda task_status: serve(
                    APP,
                    config,
                    ssl_context=context,
                    shutdown_trigger=trigger,
                    task_status=task_status,
                )
            )
            client = certs.client_context()
            client.set_alpn_protocols(["h2", "http/1.1"])
            stream = await tls_connect(addresses[0][1], client)
            # ALPN is offered on the caller's own context too.
            assert stream.selected_alpn_protocol() == "http/1.1"
            status, body = await get(stream)
            assert (status, b'"https"' in body) == (200, True)
            await stream.aclose()
            trigger.set()


@pytest.mark.parametrize("how", ["close_notify", "abort"])
async def test_a_client_leaving_cancels_its_handler_over_tls(
    certs: Certs, how: str, no_tracebacks: None
) -> None:
    started, cancelled = trio.Event(), trio.Event()

    class Forever(RequestHandler):
        async def get(self) -> None:
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()

    app = Application([("/forever", Forever)])
    with trio.fail_after(DEADLINE):
        async with serving(app, **tls_options(certs)) as port:
            stream = await tls_connect(port, certs.client_context())
            await stream.send_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            if how == "close_notify":
                await stream.aclose()
            else:
                await trio.aclose_forcefully(stream.transport_stream)
            # The connection's reader sees it through the TLS layer at once.
            await cancelled.wait()


# -- a handshake cannot pin a connection slot ---------------------------------------


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01"])
async def test_a_stalled_handshake_ends_at_the_header_timeout(
    certs: Certs,
    sent: bytes,
    autojump_clock: trio.abc.Clock,
    no_tracebacks: None,
) -> None:
    # One connection slot, taken by a client that connects and then sends
    # nothing (or the first bytes of a ClientHello) and stalls.
    async with serving(
        **tls_options(certs), max_connections=1, header_timeout=10
    ) as port:
        stalled = await trio.open_tcp_stream("127.0.0.1", port)
        await stalled.send_all(sent)
        start = trio.current_time()

        async def second_client() -> tuple[int, bytes]:
            stream = await tls_connect(port, certs.client_context())
            try:
                return await get(stream)
            finally:
                await stream.aclose()

        served_at = 0.0
        async with trio.open_nursery() as nursery:

            async def run_second() -> None:
                nonlocal served_at
                assert (await second_client())[0] == 200
                served_at = trio.current_time()

            nursery.start_soon(run_second)
            # The stalled client is closed by the server at the header
            # timeout, not before...
            with trio.move_on_after(9.9):
                await stalled.receive_some(1)
                raise AssertionError("closed before the header timeout")
            try:
                assert await stalled.receive_some(1) == b""
            except trio.BrokenResourceError:
                pass  # a reset is a close too
            closed_at = trio.current_time()
        assert 10 <= closed_at - start < 11
        # ...which freed the only slot for the second client.
        assert served_at >= closed_at
        await stalled.aclose()


# -- mutual TLS ---------------------------------------------------------------------


async def test_mtls_accepts_a_client_certificate_from_the_ca(certs: Certs) -> None:
    client_cert = certs.ca.issue_cert("client@example.org")
    context = certs.client_context()
    client_cert.configure_cert(context)
    options = tls_options(certs, ca_certs=certs.ca_file, cert_reqs="required")
    with trio.fail_after(DEADLINE):
        async with serving(**options) as port:
            stream = await tls_connect(port, context)
            status, body = await get(stream)
            await stream.aclose()
    assert status == 200
    # The handler sees who the client is (Tornado's get_ssl_certificate).
    seen = json.loads(body)
    assert seen["client"] == [["email", "client@example.org"]]
    pem = client_cert.cert_chain_pems[0].bytes().decode()
    assert bytes.fromhex(seen["der"]) == ssl.PEM_cert_to_DER_cert(pem)


@pytest.mark.parametrize("who", ["no certificate", "another CA"])
async def test_mtls_refuses_other_clients(
    certs: Certs, who: str, no_tracebacks: None
) -> None:
    context = certs.client_context()
    if who == "another CA":
        trustme.CA().issue_cert("client@example.org").configure_cert(context)
    options = tls_options(certs, ca_certs=certs.ca_file, cert_reqs="required")
    with trio.fail_after(DEADLINE):
        async with serving(**options) as port:
            # With TLS 1.3 the client's side of the handshake may complete
            # before the server has checked its certificate: the refusal
            # then comes with the first read. Either way, no response.
            with pytest.raises(trio.BrokenResourceError):
                stream = await tls_connect(port, context)
                await get(stream)
            # A client the CA vouches for still gets in.
            good = certs.client_context()
            certs.ca.issue_cert("client@example.org").configure_cert(good)
            stream = await tls_connect(port, good)
            assert (await get(stream))[0] == 200
            await stream.aclose()


async def test_cert_reqs_optional_admits_clients_without_a_certificate(
    certs: Certs,
) -> None:
    options = tls_options(certs, ca_certs=certs.ca_file, cert_reqs="optional")
    with trio.fail_after(DEADLINE):
        async with serving(**options) as port:
            stream = await tls_connect(port, certs.client_context())
            assert (await get(stream))[0] == 200
            await stream.aclose()


# -- versions and ciphers -----------------------------------------------------------


async def test_ssl_min_version_refuses_older_clients(certs: Certs) -> None:
    old = certs.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with trio.fail_after(DEADLINE):
        async with serving(**tls_options(certs, ssl_min_version="TLSv1.3")) as port:
            with pytest.raises(trio.BrokenResourceError):
                await tls_connect(port, old)
            stream = await tls_connect(port, certs.client_context())
            assert stream.version() == "TLSv1.3"
            await stream.aclose()


async def test_ssl_ciphers_choose_the_tls12_cipher(certs: Certs) -> None:
    cipher = "ECDHE-ECDSA-CHACHA20-POLY1305"  # trustme's keys are ECDSA
    client = certs.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with trio.fail_after(DEADLINE):
        async with serving(**tls_options(certs, ssl_ciphers=cipher)) as port:
            stream = await tls_connect(port, client)
            negotiated = stream.cipher()
            assert negotiated is not None
            assert negotiated[0] == cipher
            await stream.aclose()


# -- the settings -------------------------------------------------------------------


def test_no_certfile_is_plain_http() -> None:
    assert make_ssl_context(ServerConfig()) is None


def test_an_encrypted_key_with_its_password(certs: Certs, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(
        certs.server.private_key_pem.bytes(), password=None
    )
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    options = {"certfile": certs.cert_file, "keyfile": str(encrypted)}
    context = make_ssl_context(ServerConfig(**options, keyfile_password="s3cret"))
    assert context is not None
    # Without the password: an error that says so (OpenSSL would otherwise
    # prompt on the terminal and block the server).
    with pytest.raises(TLSConfigError, match="--keyfile-password"):
        make_ssl_context(ServerConfig(**options))
    with pytest.raises(TLSConfigError, match="wrong --keyfile-password"):
        make_ssl_context(ServerConfig(**options, keyfile_password="wrong"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keyfile": "k.pem"}, "--keyfile needs --certfile"),
        ({"cert_reqs": "required"}, "--cert-reqs needs --certfile"),
        ({"keyfile": "k.pem", "ca_certs": "c.pem"}, "--ca-certs need --certfile"),
        ({"certfile": "/nonexistent.pem"}, "No such file"),
        ({"cert_reqs": "required", "certfile": "x"}, "needs --ca-certs"),
    ],
)
def test_incomplete_or_unreadable_settings(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TLSConfigError, match=message):
        make_ssl_context(ServerConfig(**options))


def test_a_key_that_does_not_match_the_certificate(
    certs: Certs, tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    certs.ca.issue_cert("example.org").private_key_pem.write_to_path(str(other))
    with pytest.raises(TLSConfigError, match="does not belong"):
        make_ssl_context(ServerConfig(certfile=certs.cert_file, keyfile=str(other)))


def test_a_file_missing_the_key_or_the_certificate_says_so(certs: Certs) -> None:
    # OpenSSL's own message ("PEM lib") is about passwords.
    with pytest.raises(TLSConfigError) as info:
        make_ssl_context(ServerConfig(certfile=certs.cert_file))
    assert str(info.value) == f"{certs.cert_file} holds no private key: give --keyfile"
    with pytest.raises(TLSConfigError) as info:
        make_ssl_context(ServerConfig(certfile=certs.key_file, keyfile=certs.key_file))
    assert str(info.value).startswith(f"{certs.key_file} holds no certificate")
    with pytest.raises(TLSConfigError) as info:
        make_ssl_context(
            ServerConfig(certfile=certs.cert_file, keyfile=certs.cert_file)
        )
    assert str(info.value).startswith(f"{certs.cert_file} holds no private key")
    assert "password" not in str(info.value)


def test_bad_ciphers_and_ca_file(certs: Certs) -> None:
    with pytest.raises(TLSConfigError, match="selects no cipher"):
        make_ssl_context(ServerConfig(**tls_options(certs, ssl_ciphers="NOPE")))
    with pytest.raises(TLSConfigError, match="--ca-certs"):
        make_ssl_context(
            ServerConfig(**tls_options(certs, ca_certs="/nonexistent-ca.pem"))
        )


@pytest.mark.parametrize(
    ("field", "value"), [("cert_reqs", "sometimes"), ("ssl_min_version", "SSLv3")]
)
def test_config_validates_choices(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})
