"""RequestHandler's arguments: the query string and form fields, decoded.

:class:`~trioweb.RequestHandler` inherits these methods (Tornado's names)
from :class:`HandlerArguments`. Each ``get_*argument`` reads the values the
request parsed (:attr:`~trioweb.HTTPServerRequest.arguments`, or only the
query's or only the body's), decodes them with
:meth:`~HandlerArguments.decode_argument` (UTF-8; invalid input is a 400),
replaces control characters with spaces and strips the ends. The singular
form returns the last value and answers 400
(:exc:`~trioweb.MissingArgumentError`) for a missing argument without a
default; the plural form returns every value. ``docs/request-input.md``
covers bodies, JSON and uploads too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import HTTPError, MissingArgumentError

if TYPE_CHECKING:
    from .request import HTTPServerRequest

__all__ = ["HandlerArguments"]

# The default of get_argument(): "no default, a missing argument is a 400".
_ARG_DEFAULT: Any = object()
# Tornado replaces these control characters in arguments with spaces: they
# have no business in form values and confuse logs and terminals.
_REMOVE_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])
_CONTROL_TO_SPACE = bytes.maketrans(_CONTROL, b" " * len(_CONTROL))
_CONTROL_TO_SPACE_STR = {code: " " for code in _CONTROL}


def _remove_control_chars(text: str) -> str:
    """Each control character of ``text`` replaced by a space, in C.

    A regular expression substitution costs about 0.1 us per match: a
    10 MiB form value of control characters cost 1.5 s of CPU in one
    ``get_argument()``. ``str.translate`` is as fast only for ASCII text;
    other text goes through UTF-8, where a control character is always one
    byte of its own (``surrogatepass``: whatever ``decode_argument``
    returned comes back unchanged).
    """
    if _REMOVE_CONTROL_CHARS.search(text) is None:
        return text
    if text.isascii():
        return text.translate(_CONTROL_TO_SPACE_STR)
    encoded = text.encode("utf-8", "surrogatepass")
    return encoded.translate(_CONTROL_TO_SPACE).decode("utf-8", "surrogatepass")


class HandlerArguments:
    """The argument methods of :class:`~trioweb.RequestHandler`."""

    if TYPE_CHECKING:
        # What these methods use of RequestHandler (handler.py), for mypy.
        request: HTTPServerRequest

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Decode an argument or path segment from bytes (override it).

        The default decodes UTF-8 and answers 400 for invalid input.
        """
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(
                400, "Invalid unicode in %s: %r", name or "url", value[:40]
            ) from None

    def get_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """The last value of argument ``name`` from the query or a form body.

        Without a ``default``, a missing argument is a 400
        (:exc:`MissingArgumentError`).
        """
        return self._get_argument(name, default, self.request.arguments, strip)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Every value of argument ``name`` (an empty list if none)."""
        return self._get_arguments(name, self.request.arguments, strip)

    def get_query_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """Like :meth:`get_argument`, from the query string only."""
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Like :meth:`get_arguments`, from the query string only."""
        return self._get_arguments(name, self.request.query_arguments, strip)

    def get_body_argument(
        self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True
    ) -> Any:
        """Like :meth:`get_argument`, from a form-encoded body only."""
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Like :meth:`get_arguments`, from a form-encoded body only."""
        return self._get_arguments(name, self.request.body_arguments, strip)

    def _get_argument(
        self, name: str, default: Any, source: dict[str, list[bytes]], strip: bool
    ) -> Any:
        values = self._get_arguments(name, source, strip)
        if not values:
            if default is _ARG_DEFAULT:
                raise MissingArgumentError(name)
            return default
        return values[-1]

    def _get_arguments(
        self, name: str, source: dict[str, list[bytes]], strip: bool
    ) -> list[str]:
        values = []
        for raw in source.get(name, ()):
            text = self.decode_argument(raw, name=name)
            # An override may return bytes (as Tornado allows): those are
            # left as they are, bar the strip.
            if isinstance(text, str):
                text = _remove_control_chars(text)
            values.append(text.strip() if strip else text)
        return values
