"""trioweb: a Tornado-style web framework on trio.

The public API lives here; every name is defined in a submodule and
re-exported.
"""

from .app import Application
from .config import ServerConfig
from .errors import (
    Finish,
    HTTPError,
    HTTPInputError,
    MissingArgumentError,
    StartupError,
    StreamClosedError,
)
from .handler import ErrorHandler, RedirectHandler, RequestHandler
from .http1 import Exchange, ExchangeApp
from .httputil import HTTPHeaders
from .request import HTTPServerRequest
from .routing import URLSpec, url
from .server import ListenError, run, serve

__version__ = "0.1.0"

__all__ = [
    "Application",
    "ErrorHandler",
    "Exchange",
    "ExchangeApp",
    "Finish",
    "HTTPError",
    "HTTPHeaders",
    "HTTPInputError",
    "HTTPServerRequest",
    "ListenError",
    "MissingArgumentError",
    "RedirectHandler",
    "RequestHandler",
    "ServerConfig",
    "StartupError",
    "StreamClosedError",
    "URLSpec",
    "run",
    "serve",
    "url",
]
