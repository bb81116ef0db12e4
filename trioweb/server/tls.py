"""HTTPS: the server's TLS settings made into an :class:`ssl.SSLContext`.

The server speaks TLS by wrapping each accepted connection in a
:class:`trio.SSLStream`; the connection engine reads and writes that stream
as it would a plain socket (it takes any :class:`trio.abc.Stream`) and marks
the requests ``https``. Nothing else changes, and in particular the deadlines
do not: the handshake happens as the connection's first read, under the
header timeout that runs from the accept, so a client that opens a
connection and never finishes (or never starts) its handshake is closed
when ``header_timeout`` expires, like one that never sends its headers. It
holds a connection slot no longer than that.

Two ways in:

* the :class:`~trioweb.ServerConfig` fields (``certfile``, ``keyfile``,
  ``keyfile_password``, ``ca_certs``, ``cert_reqs``, ``ssl_min_version``,
  ``ssl_ciphers``), which are also ``trioweb serve`` flags;
  :func:`make_ssl_context` turns them into a context;
* a context of your own: ``serve(app, config, ssl_context=...)`` or
  ``run(app, ssl_context=...)``, for what the fields do not cover (several
  certificates by SNI, a custom verification callback, ...).

Either way the server offers ``http/1.1`` by ALPN (:func:`offer_http11`), so
a client that would prefer HTTP/2 knows at once what it gets.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import trio

from .config import ServerConfig

__all__ = [
    "TLSConfigError",
    "make_ssl_context",
    "offer_http11",
    "peer_certificate",
    "wrap",
]

_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
_VERSIONS = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class TLSConfigError(ValueError):
    """The TLS settings cannot make a working context: a file that cannot be
    read, a key that does not match or cannot be decrypted, a setting
    without the one it needs. The message is one line saying which, fit to
    show a user (``trioweb serve`` prints it and exits with status 2)."""


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for the
    # password of an encrypted key: a server must fail instead.
    raise TLSConfigError(
        "the private key is encrypted: give its password with "
        "--keyfile-password (ServerConfig.keyfile_password)"
    )


def _missing_pem(certfile: str, keyfile: str | None) -> str | None:
    """Why OpenSSL said "PEM lib", when it is a file without the block it
    needs: a certificate file with no certificate, or no key where the key
    was looked for. None if both are there (a wrong password, a mismatch)."""

    def holds(path: str, block: str) -> bool:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return True  # not ours to explain: load_cert_chain read it
        return re.search(rb"-----BEGIN [A-Z ]*" + block.encode(), data) is not None

    if not holds(certfile, "CERTIFICATE-----"):
        return (
            f"{certfile} holds no certificate (no BEGIN CERTIFICATE block): "
            "give the server's certificate, PEM, as --certfile"
        )
    if keyfile is None and not holds(certfile, "PRIVATE KEY-----"):
        return f"{certfile} holds no private key: give --keyfile"
    if keyfile is not None and not holds(keyfile, "PRIVATE KEY-----"):
        return (
            f"{keyfile} holds no private key (no BEGIN PRIVATE KEY block): "
            "give the certificate's key, PEM, as --keyfile"
        )
    return None


def make_ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server-side context ``config`` asks for, or None without
    ``certfile`` (plain HTTP).

    Raises :exc:`TLSConfigError` if the settings are incomplete or the
    files cannot be used.
    """
    if config.certfile is None:
        given = [
            flag
            for flag, value in (
                ("--keyfile", config.keyfile),
                ("--keyfile-password", config.keyfile_password),
                ("--ca-certs", config.ca_certs),
                ("--ssl-ciphers", config.ssl_ciphers),
            )
            if value is not None
        ]
        if config.cert_reqs != "none":
            given.append("--cert-reqs")
        if given:
            raise TLSConfigError(
                f"{', '.join(given)} "
                f"{'needs' if len(given) == 1 else 'need'} --certfile (the "
                "server's certificate): give --certfile to serve HTTPS"
            )
        return None
    if config.cert_reqs != "none" and config.ca_certs is None:
        raise TLSConfigError(
            f"--cert-reqs {config.cert_reqs} needs --ca-certs: the file of CA "
            "certificates that client certificates must be signed by"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _VERSIONS[config.ssl_min_version]
    try:
        context.load_cert_chain(
            config.certfile,
            config.keyfile,
            config.keyfile_password
            if config.keyfile_password is not None
            else _no_password,
        )
    except OSError as exc:
        what = config.keyfile or config.certfile
        if isinstance(exc, ssl.SSLError):
            missing = _missing_pem(config.certfile, config.keyfile)
            if missing is not None:
                raise TLSConfigError(missing) from None
            raise TLSConfigError(
                f"cannot load the certificate {config.certfile!r} with its key "
                f"{what!r}: {exc.reason or exc} (a wrong --keyfile-password, or "
                "a key that does not belong to the certificate?)"
            ) from None
        raise TLSConfigError(
            f"cannot read the certificate or key: {exc.strerror or exc}: "
            f"{exc.filename or what!r}"
        ) from None
    if config.ca_certs is not None:
        try:
            context.load_verify_locations(cafile=config.ca_certs)
        except (OSError, ValueError) as exc:
            raise TLSConfigError(
                f"cannot load --ca-certs {config.ca_certs!r}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
    context.verify_mode = _VERIFY_MODES[config.cert_reqs]
    if config.ssl_ciphers is not None:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise TLSConfigError(
                f"--ssl-ciphers {config.ssl_ciphers!r} selects no cipher "
                "OpenSSL knows (see `openssl ciphers -v`)"
            ) from None
    offer_http11(context)
    return context


def offer_http11(context: ssl.SSLContext) -> None:
    """Offer ``http/1.1`` by ALPN on ``context``, the protocol served.

    Applied to every context the server uses, a caller's own included.
    """
    context.set_alpn_protocols(["http/1.1"])


def peer_certificate(stream: object, *, binary_form: bool = False) -> Any:
    """The certificate the client of ``stream`` presented: a dict, as
    :meth:`ssl.SSLSocket.getpeercert` gives it (or DER bytes with
    ``binary_form``); None if ``stream`` is not TLS or the client sent none."""
    if not isinstance(stream, trio.SSLStream):
        return None
    try:
        cert = stream.getpeercert(binary_form=binary_form)
    except (ValueError, trio.NeedHandshakeError):
        return None
    return cert or None


def wrap(
    stream: trio.abc.Stream, context: ssl.SSLContext
) -> trio.SSLStream[trio.abc.Stream]:
    """Server-side TLS over an accepted connection (the handshake happens on
    the first read or write, under the caller's deadlines).

    ``https_compatible``: a client that closes without TLS's close_notify
    (as browsers do) is an ordinary end of connection, not an error.
    """
    return trio.SSLStream(stream, context, server_side=True, https_compatible=True)
