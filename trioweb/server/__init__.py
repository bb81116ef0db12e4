"""The engine: sockets, HTTP/1.1 connections, and running a server.

Everything here is about bytes and connections, and nothing about handlers:
for each request the engine hands an *exchange* (:mod:`.exchange`) to
whatever it serves -- an :class:`~trioweb.Application`, an ASGI adapter, a
ten-line function in a test -- through the one-method :class:`ExchangeApp`
interface. The web layer (``trioweb.app``, ``trioweb.handler``, ...) is
built on it and imports from here; nothing here imports the web layer.

The rooms, from the wire up:

* :mod:`.config` -- :class:`ServerConfig`, every limit and timeout.
* :mod:`.headmeter`, :mod:`.chunked`, :mod:`.parsers`, :mod:`.headrules`,
  :mod:`.events` -- reading requests: raw head checks, the chunked decoder,
  the two parser backends (h11, httptools), the rules on the parsed head.
* :mod:`.writer` -- building response heads and framing bodies.
* :mod:`.http1`, :mod:`.exchange` -- one HTTP/1.1 connection, and one
  request/response on it; :mod:`._hangup` sees a client leave.
* :mod:`.serve` -- listeners, the connection limit, signals, graceful
  shutdown; :mod:`.run` -- the process (``trioweb serve``);
  :mod:`.workers`, :mod:`.reload`, :mod:`.sockets` -- several processes,
  restarts on change, inherited sockets; :mod:`.tls`, :mod:`.proxy` --
  HTTPS, trusted proxies; :mod:`.observe` -- request ids and timing.

The public names are re-exported by :mod:`trioweb` itself.
"""

from .config import ServerConfig
from .exchange import Exchange, ExchangeApp
from .run import interrupt_on_sigterm, run
from .serve import ListenError, Server, announce, serve, serve_until

__all__ = [
    "Exchange",
    "ExchangeApp",
    "ListenError",
    "Server",
    "ServerConfig",
    "announce",
    "interrupt_on_sigterm",
    "run",
    "serve",
    "serve_until",
]
