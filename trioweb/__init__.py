"""trioweb: a Tornado-style web framework on trio.

The public API lives here; every name is defined in a submodule and
re-exported.
"""

from .app import Application
from .body import stream_request_body
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
from .multipart import MultipartParser, UploadedFile
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
    "MultipartParser",
    "RedirectHandler",
    "RequestHandler",
    "ServerConfig",
    "StreamClosedError",
    "URLSpec",
    "UploadedFile",
    "run",
    "serve",
    "stream_request_body",
    "url",
]
