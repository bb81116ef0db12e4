"""trioweb: a Tornado-style web framework on trio.

The public API lives here; every name is defined in a submodule and
re-exported.
"""

from .config import ServerConfig
from .errors import (
    Finish,
    HTTPError,
    HTTPInputError,
    MissingArgumentError,
    StreamClosedError,
)
from .http1 import Exchange, ExchangeApp
from .server import run, serve

__version__ = "0.1.0"

__all__ = [
    "Exchange",
    "ExchangeApp",
    "Finish",
    "HTTPError",
    "HTTPInputError",
    "MissingArgumentError",
    "ServerConfig",
    "StreamClosedError",
    "run",
    "serve",
]
