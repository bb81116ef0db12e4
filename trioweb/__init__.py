"""trioweb: a Tornado-style web framework on trio.

The public API lives here; every name is defined in a submodule and
re-exported.
"""

from .app import Application
from .asgi import ASGIAdapter
from .asgi_mount import ASGIHandler
from .auth import authenticated
from .body import stream_request_body
from .decorators import addslash, removeslash
from .errors import (
    ApplicationTaskError,
    Finish,
    HTTPError,
    HTTPInputError,
    MissingArgumentError,
    StartupError,
    StreamClosedError,
)
from .handler import RequestHandler
from .handler_builtins import ErrorHandler, RedirectHandler
from .httputil import HTTPHeaders
from .multipart import MultipartParser, UploadedFile
from .overload import DeadlineExceeded, Overloaded
from .request import HTTPServerRequest
from .routing import URLSpec, url
from .security import SecurityHeaders
from .server import ListenError, run, serve
from .server.config import ServerConfig
from .server.exchange import Exchange, ExchangeApp
from .server.tls import TLSConfigError
from .sse import EventStream
from .static import StaticFileHandler
from .websocket import WebSocketClosedError, WebSocketHandler

__version__ = "0.1.0"

__all__ = [
    "ASGIAdapter",
    "ASGIHandler",
    "Application",
    "ApplicationTaskError",
    "DeadlineExceeded",
    "ErrorHandler",
    "EventStream",
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
    "Overloaded",
    "RedirectHandler",
    "RequestHandler",
    "SecurityHeaders",
    "ServerConfig",
    "StartupError",
    "StaticFileHandler",
    "StreamClosedError",
    "TLSConfigError",
    "URLSpec",
    "UploadedFile",
    "WebSocketClosedError",
    "WebSocketHandler",
    "addslash",
    "authenticated",
    "removeslash",
    "run",
    "serve",
    "stream_request_body",
    "url",
]
