"""trioweb: a Tornado-style web framework on trio.

The public API lives here; every name is defined in a submodule and
re-exported.
"""

from .app import Application
from .auth import authenticated
from .config import ServerConfig
from .errors import (
    Finish,
    HTTPError,
    HTTPInputError,
    MissingArgumentError,
    StreamClosedError,
)
from .handler import ErrorHandler, RedirectHandler, RequestHandler
from .http1 import Exchange, ExchangeApp
from .httputil import HTTPHeaders
from .overload import DeadlineExceeded, Overloaded
from .request import HTTPServerRequest
from .routing import URLSpec, url
from .security import SecurityHeaders
from .server import ListenError, run, serve

__version__ = "0.1.0"

__all__ = [
    "Application",
    "DeadlineExceeded",
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
    "Overloaded",
    "RedirectHandler",
    "RequestHandler",
    "SecurityHeaders",
    "ServerConfig",
    "StreamClosedError",
    "URLSpec",
    "authenticated",
    "run",
    "serve",
    "url",
]
