"""The command line: ``trioweb serve MODULE:ATTR`` (also ``python -m trioweb``).

This module is arguments only: it turns flags into a
:class:`~trioweb.server.config.ServerConfig`, imports the application, and hands
both to :func:`trioweb.server.run`, which does the serving, the logging set-up
and the signal handling.

Every :class:`ServerConfig` field is a flag of the same name
(``max_body_size`` is ``--max-body-size``), generated from the record itself,
so the two cannot drift apart. ``--workers`` is not one of them: how many
processes serve is the supervisor's business (:mod:`trioweb.server.workers`), not a
limit every connection is held to; nor are ``--reload`` (a supervisor of
its own: :mod:`trioweb.server.reload`) and ``--log-level`` / ``--log-config``
(the process's logging: :mod:`trioweb.logs`). Mistakes a user can make --
an app that cannot be imported, a port in use, a bad flag value -- end in
one line on stderr and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import traceback
from typing import Any, NoReturn

import attrs

from . import __version__
from .errors import ApplicationTaskError, StartupError
from .logs import LogConfigError
from .server import ListenError, interrupt_on_sigterm, run
from .server.config import ServerConfig
from .server.tls import TLSConfigError, make_ssl_context
from .server.workers import WorkerStartError

__all__ = ["main"]

PROG = "trioweb"

#: Help for each ServerConfig field; a field missing here still gets a flag.
_FIELD_HELP = {
    "host": "the address to listen on",
    "port": "the TCP port to listen on; 0 picks a free one",
    "uds": "listen on this Unix domain socket instead of host and port",
    "fd": "serve on the inherited listening socket with this file descriptor "
    "instead of host and port (systemd socket activation: --fd 3)",
    "backlog": "how many connections may wait to be accepted",
    "max_request_line": "longest request target in bytes; longer gets 414",
    "max_header_size": "largest header block in bytes; larger gets 431",
    "max_headers": "most header fields in a request; more gets 431",
    "max_body_size": "largest request body in bytes; larger gets 413",
    "header_timeout": "seconds to receive a request head; then 408",
    "body_timeout": "seconds to wait for each piece of a body; then 408",
    "min_body_rate": "slowest a body may arrive once its grace is over, in "
    "bytes a second; slower gets 408 (0: no minimum)",
    "min_body_rate_grace": "seconds a body may take before the minimum rate applies",
    "body_deadline": "seconds a whole body may take; then 408 (default: no limit)",
    "write_timeout": "seconds for each send to a client before aborting",
    "keep_alive_timeout": "seconds an idle keep-alive connection is kept",
    "max_connections": "connections served at once; more wait in the backlog",
    "max_requests_per_connection": "requests before a connection is closed",
    "limit_concurrency": "requests in flight at once; more get 503 at once "
    "(default: no limit)",
    "graceful_timeout": "seconds in-flight requests get to finish on shutdown",
    "access_log": "log one line per request on stderr",
    "http": "request parser: auto (httptools when installed), h11 or httptools",
    "proxy_headers": "trust X-Forwarded-For/-Proto, X-Real-Ip and Forwarded "
    "from --forwarded-allow-ips peers",
    "forwarded_allow_ips": "trusted proxies: comma-separated IPs and CIDR "
    "ranges, or * (also $FORWARDED_ALLOW_IPS)",
    "root_path": "the path prefix a proxy serves the app under, like /app "
    "(request.root_path)",
    "certfile": "serve HTTPS with this certificate chain (PEM)",
    "keyfile": "the certificate's private key (PEM; default: in --certfile)",
    "keyfile_password": "the password of an encrypted --keyfile",
    "ca_certs": "CA certificates (PEM) that client certificates must be "
    "signed by (mutual TLS; see --cert-reqs)",
    "cert_reqs": "ask clients for a certificate: none, optional or required",
    "ssl_min_version": "the oldest TLS version accepted: TLSv1.2 or TLSv1.3",
    "ssl_ciphers": "an OpenSSL cipher list for TLS 1.2 (default: Python's)",
    "access_log_format": "text (one line a request) or json (one JSON object a line)",
    "request_id": "give each request an id (X-Request-Id if sane, else a new "
    "one): request.id, the access log, the response's X-Request-Id",
    "server_timing": "add Server-Timing: app;dur=MS (the handler's time) to responses",
}

_METAVARS = {
    "host": "HOST",
    "uds": "PATH",
    "certfile": "PATH",
    "keyfile": "PATH",
    "ca_certs": "PATH",
    "keyfile_password": "PASSWORD",
    "cert_reqs": "{none,optional,required}",
    "ssl_min_version": "{TLSv1.2,TLSv1.3}",
    "ssl_ciphers": "CIPHERS",
    "access_log_format": "{text,json}",
    "root_path": "PATH",
    "forwarded_allow_ips": "LIST",
    "http": "{auto,h11,httptools}",
    "min_body_rate": "BYTES_PER_S",
    "int": "N",
    "int | None": "N",
    "float": "SECONDS",
    "float | None": "SECONDS",
}

_LOG_LEVELS = ("debug", "info", "warning", "error")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with a pointer to help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return value


def _workers(text: str) -> int:
    count = _int(text)
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {count}")
    from .server.workers import max_workers

    if count > max_workers():
        raise argparse.ArgumentTypeError(
            f"expected at most {max_workers()} (16 per CPU: {os.cpu_count() or 1} "
            f"CPUs), got {count}"
        )
    return count


def _app_spec(text: str) -> str:
    module, sep, attr = text.partition(":")
    if not (module and sep and attr):
        raise argparse.ArgumentTypeError(
            f"expected a module and an attribute, like examples.hello:app; got {text!r}"
        )
    return text


# ServerConfig's annotations are strings (``from __future__ import annotations``).
_TYPES: dict[str, Any] = {
    "int": _int,
    "int | None": _int,
    "float": _seconds,
    "float | None": _seconds,
    "str": str,
    "str | None": str,
}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server options (see trioweb.ServerConfig)")
    for field in attrs.fields(ServerConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = _FIELD_HELP.get(field.name, field.name.replace("_", " "))
        default = field.default
        if isinstance(default, bool) or field.type in ("bool", bool):
            group.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{help_text} (default: {'on' if default else 'off'})",
            )
            continue
        if default is not None and default != "":
            help_text += (
                f" (default: {default:g})"
                if isinstance(default, float)
                else f" (default: {default})"
            )
        group.add_argument(
            flag,
            dest=field.name,
            type=_TYPES.get(str(field.type), str),
            default=None,
            metavar=_METAVARS.get(field.name)
            or _METAVARS.get(str(field.type), "VALUE"),
            help=help_text,
        )


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``trioweb`` parser, and each command's own parser by name."""
    parser = _Parser(
        prog=PROG,
        description="trioweb: a Tornado-style web framework on trio.",
    )
    parser.add_argument("--version", action="version", version=f"trioweb {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    serve = commands.add_parser(
        "serve",
        help="serve an application over HTTP/1.1",
        description=(
            "Serve the application MODULE:ATTR until SIGINT, SIGTERM or SIGHUP, then "
            "shut down gracefully (a second signal stops now)."
        ),
    )
    serve.add_argument(
        "app",
        type=_app_spec,
        metavar="MODULE:ATTR",
        help="the application, for example examples.hello:app",
    )
    serve.add_argument(
        "--factory",
        action="store_true",
        help="MODULE:ATTR is a function of no argument that returns the "
        "application: call it (once, before any worker starts)",
    )
    serve.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="look for MODULE in DIR first (default: the current directory)",
    )
    serve.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=None,
        help="the error log's level (default: info); "
        "debug also prints tracebacks of import and start-up errors",
    )
    serve.add_argument(
        "--log-config",
        metavar="FILE",
        help="configure logging from FILE instead: a dictConfig in .json or "
        ".yaml/.yml (needs PyYAML), or an INI file for fileConfig; "
        "--log-level, if given, still sets trioweb's loggers' level",
    )
    reload = serve.add_argument_group(
        "reload (development; needs watchfiles: pip install watchfiles)",
        "restart the server when a watched file changes",
    )
    reload.add_argument(
        "--reload",
        action="store_true",
        help="watch files and restart the server process when one changes",
    )
    reload.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="a directory to watch (repeatable; default: --app-dir)",
    )
    reload.add_argument(
        "--reload-include",
        action="append",
        metavar="GLOB",
        help="also watch files whose names match GLOB (repeatable; default: *.py)",
    )
    reload.add_argument(
        "--reload-exclude",
        action="append",
        metavar="GLOB",
        help="ignore files whose names or paths match GLOB (repeatable)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve from N worker processes sharing the address, restarted "
        "if they die; 0 means one per CPU (default: 1, this process alone)",
    )
    _add_config_flags(serve)
    return parser, {"serve": serve}


def _a(noun: str) -> str:
    """``"an Application"``, ``"a function"``."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


class AppLoadError(Exception):
    """The application named on the command line could not be loaded."""


def load_app(spec: str, app_dir: str = ".", *, factory: bool = False) -> Any:
    """Import ``MODULE:ATTR`` (``ATTR`` may be dotted), looking in ``app_dir``
    first; raise :exc:`AppLoadError` with a one-line message if it fails.

    With ``factory``, ``ATTR`` is a function of no argument that returns the
    application, and is called.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(
            f"the app must be given as MODULE:ATTR (like examples.hello:app), "
            f"got {spec!r}"
        )
    directory = os.path.abspath(app_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise AppLoadError(
                f"cannot import {module_name!r}: no module named {missing!r} "
                f"(looked in {directory} and sys.path; see --app-dir)"
            ) from exc
        raise AppLoadError(_import_failure(module_name, exc)) from exc
    except Exception as exc:
        raise AppLoadError(_import_failure(module_name, exc)) from exc
    app: Any = module
    for part in attr.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise AppLoadError(
                f"module {module_name!r} has no attribute {attr!r}"
            ) from None
    if factory:
        app = _call_factory(spec, app)
    elif not callable(getattr(app, "handle_exchange", None)):
        hint = (
            "; if it builds the application, add --factory"
            if callable(app) and not isinstance(app, type)
            else ""
        )
        raise AppLoadError(
            f"{spec} is {_a(type(app).__name__)}, not an application "
            f"(it has no handle_exchange() method){hint}"
        )
    return app


def _call_factory(spec: str, factory: Any) -> Any:
    if not callable(factory):
        raise AppLoadError(
            f"--factory: {spec} is {_a(type(factory).__name__)}, not a function "
            "(drop --factory if it is the application itself)"
        )
    try:
        app = factory()
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise AppLoadError(
            f"--factory: calling {spec}() raised {type(exc).__name__}"
            f"{': ' + message if message else ''}; "
            "--log-level debug shows the traceback"
        ) from exc
    if not callable(getattr(app, "handle_exchange", None)):
        raise AppLoadError(
            f"--factory: {spec}() returned a {type(app).__name__}, not an "
            "application (it has no handle_exchange() method)"
        )
    return app


def _import_failure(module_name: str, exc: BaseException) -> str:
    where = ""
    if isinstance(exc, SyntaxError):
        pass  # its message already names the file and line
    elif exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        filename = frame.filename
        with_cwd = os.path.relpath(filename) if os.path.isabs(filename) else filename
        if not with_cwd.startswith(".."):
            filename = with_cwd
        where = f" (at {filename}:{frame.lineno})"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"importing {module_name!r} raised {type(exc).__name__}"
        f"{': ' + message if message else ''}{where}; "
        "--log-level debug shows the traceback"
    )


def _fail(message: str, code: int = 1) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _conflicting_flags(args: argparse.Namespace) -> str | None:
    """A one-line error for flags that cannot go together (one of them
    would be silently ignored), or None."""
    if args.fd is not None and args.uds is not None:
        return (
            "--fd and --uds cannot both be given: serve on one socket, the "
            "inherited one (--fd) or a new Unix socket (--uds)"
        )
    for flag, value in (("--fd", args.fd), ("--uds", args.uds)):
        if value is None:
            continue
        for other, given in (("--host", args.host), ("--port", args.port)):
            if given is not None:
                return (
                    f"{flag} and {other} cannot both be given: {flag} names "
                    f"the socket to serve on, so {other} would be ignored"
                )
    return None


def _as_flag_error(message: str) -> str:
    """``max_body_size must be ...`` -> ``--max-body-size must be ...``."""
    for field in attrs.fields(ServerConfig):
        if message.startswith(field.name + " "):
            return "--" + field.name.replace("_", "-") + message[len(field.name) :]
    return message


def _is_reloader(args: argparse.Namespace) -> bool:
    """Check the reload flags; True if this process is to be the reloader."""
    from .server.reload import RELOAD_CHILD

    watch_flags = [
        flag
        for flag, value in (
            ("--reload-dir", args.reload_dir),
            ("--reload-include", args.reload_include),
            ("--reload-exclude", args.reload_exclude),
        )
        if value
    ]
    if not args.reload:
        if watch_flags:
            _fail(f"{watch_flags[0]} needs --reload", code=2)
        return False
    if args.workers != 1:
        _fail(
            "--reload and --workers cannot be combined: reload restarts one "
            "server process; drop --workers while developing",
            code=2,
        )
    return not os.environ.get(RELOAD_CHILD)


def _serve(args: argparse.Namespace, argv: list[str]) -> None:
    options = {
        field.name: getattr(args, field.name)
        for field in attrs.fields(ServerConfig)
        if getattr(args, field.name, None) is not None
    }
    conflict = _conflicting_flags(args)
    if conflict is not None:
        _fail(conflict, code=2)
    if args.ca_certs is not None and args.cert_reqs in (None, "none"):
        # As uvicorn, which accepts --ssl-ca-certs alone: not an error, but
        # said, since no client certificate is asked for.
        print(
            f"{PROG}: warning: --ca-certs has no effect without --cert-reqs "
            "optional or required: clients are not asked for a certificate",
            file=sys.stderr,
            flush=True,
        )
    if not os.path.isdir(args.app_dir):
        _fail(f"--app-dir {args.app_dir!r} is not a directory", code=2)
    if "forwarded_allow_ips" not in options and os.environ.get("FORWARDED_ALLOW_IPS"):
        options["forwarded_allow_ips"] = os.environ["FORWARDED_ALLOW_IPS"]
    try:
        config = ServerConfig(**options)
    except (ValueError, TypeError) as exc:
        _fail(_as_flag_error(str(exc)), code=2)
    if args.workers != 1 and not hasattr(os, "fork"):
        _fail("--workers needs os.fork(), which this system does not have", code=2)
    reloader = _is_reloader(args)
    try:
        ssl_context = make_ssl_context(config)
    except TLSConfigError as exc:
        _fail(str(exc), code=2)
    if reloader:
        from .server.reload import ReloadError, run_reloader

        try:
            run_reloader(
                argv,
                dirs=args.reload_dir or [args.app_dir],
                include=args.reload_include or (),
                exclude=args.reload_exclude or (),
                graceful_timeout=config.graceful_timeout,
                pass_fds=() if config.fd is None else (config.fd,),
            )
        except ReloadError as exc:
            _fail(str(exc), code=2)
        return
    try:
        app = load_app(args.app, args.app_dir, factory=args.factory)
    except AppLoadError as exc:
        if args.log_level == "debug" and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        _fail(str(exc))
    log_level = args.log_level
    if log_level is None and args.log_config is None:
        log_level = "info"
    try:
        run(
            app,
            config,
            log_level=log_level,
            workers=args.workers,
            ssl_context=ssl_context,
            log_config=args.log_config,
        )
    except ListenError as exc:
        _fail(exc.strerror or str(exc))
    except WorkerStartError as exc:
        hint = exc.app_cannot_start and args.log_level != "debug"
        _fail(f"{exc}{_TRACEBACK_HINT if hint else ''}")
    except StartupError as exc:
        # One line: the traceback is for whoever asks (the hook's own
        # message says what is wrong far more often than its stack does).
        if args.log_level == "debug":
            traceback.print_exception(exc.error)
            _fail(str(exc))
        _fail(f"{exc}{_TRACEBACK_HINT}")
    except LogConfigError as exc:
        _fail(str(exc), code=2)
    except ApplicationTaskError:
        # Logged (with its traceback) on trioweb.error when it happened;
        # the server has shut down gracefully since.
        sys.exit(1)


_TRACEBACK_HINT = " (--log-level debug shows the traceback)"


def main(argv: list[str] | None = None) -> None:
    """Run the ``trioweb`` command (``argv`` defaults to ``sys.argv[1:]``)."""
    if argv is None:
        argv = sys.argv[1:]
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Reported by the command's own parser, so that the message points
        # at `trioweb serve --help`, where its options are listed.
        commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
    # Ctrl-C or SIGTERM while the app is imported (or trio starts) ends the
    # program as quietly as a graceful shutdown: exit status 0, no traceback.
    try:
        with interrupt_on_sigterm():
            if args.command == "serve":
                _serve(args, argv)
    except KeyboardInterrupt:
        pass
