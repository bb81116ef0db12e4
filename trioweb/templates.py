"""Templates with Jinja2: the environment an application renders with, and
the namespace every template sees.

Settings (on :class:`~trioweb.Application`):

``template_path``
    The directory templates are loaded from.
``template_loader``
    A Jinja2 loader of your own (``jinja2.PackageLoader("myapp")``, a
    ``ChoiceLoader``...) instead of ``template_path``.
``template_environment``
    A whole ``jinja2.Environment`` of your own; trioweb uses it as it is
    (its autoescape, filters and caching are yours to choose).

The environment trioweb builds escapes ``.html``, ``.htm`` and ``.xml``
templates (and strings rendered with :func:`render_string`) automatically,
caches compiled templates, and with ``debug=True`` checks each template's
modification time on use and re-reads it when it changed.

Rendering is synchronous: Jinja2 is CPU work with no I/O once a template is
loaded (the first load reads the file, as every later change in debug mode
does).

:class:`~trioweb.RequestHandler` inherits its rendering methods
(``render()``, ``render_string()``, ``get_template_namespace()``,
``static_url()``, ``reverse_url()``) from :class:`HandlerTemplates`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe

from . import _files

if TYPE_CHECKING:
    from .app import Application
    from .request import HTTPServerRequest

__all__ = ["HandlerTemplates", "get_environment", "namespace_for", "render"]

# One environment per application (the cache lives in it); weak, so an
# application that is dropped (tests make many) takes its templates along.
_environments: weakref.WeakKeyDictionary[Any, jinja2.Environment] = (
    weakref.WeakKeyDictionary()
)


def get_environment(application: Any) -> jinja2.Environment:
    """The Jinja2 environment for ``application``, made on first use."""
    env = _environments.get(application)
    if env is not None:
        return env
    settings: dict[str, Any] = application.settings
    env = settings.get("template_environment")
    if env is None:
        loader = settings.get("template_loader")
        if loader is None:
            path = settings.get("template_path")
            if path is None:
                raise RuntimeError(
                    "rendering a template needs the 'template_path' setting "
                    "(or 'template_loader' / 'template_environment'): "
                    "Application(..., template_path='templates')"
                )
            loader = jinja2.FileSystemLoader(path)
        env = jinja2.Environment(
            loader=loader,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml"),
                default_for_string=True,
            ),
            # Debug: stat the file on each use and reload it when changed.
            # Otherwise a template is compiled once and kept.
            auto_reload=bool(settings.get("debug")),
        )
    _environments[application] = env
    return env


def _markup(func: Callable[..., Any]) -> Callable[..., markupsafe.Markup]:
    # The handler's xsrf_form_html() returns plain str (it is also used
    # outside templates); in a template it is HTML we made, not user text.
    def wrapper(*args: Any, **kwargs: Any) -> markupsafe.Markup:
        return markupsafe.Markup(func(*args, **kwargs))

    return wrapper


def namespace_for(handler: HandlerTemplates) -> dict[str, Any]:
    """The names every template rendered by ``handler`` sees.

    ``handler``, ``request``, ``settings``, ``static_url``,
    ``reverse_url``, and, when the handler has them (the security
    features), ``current_user``, ``xsrf_token`` and ``xsrf_form_html``
    (markup-safe, so ``{{ xsrf_form_html() }}`` needs no ``|safe``).
    """
    namespace: dict[str, Any] = {
        "handler": handler,
        "request": handler.request,
        "settings": handler.settings,
        "static_url": handler.static_url,
        "reverse_url": handler.reverse_url,
        "current_user": getattr(handler, "current_user", None),
    }
    xsrf_form_html = getattr(handler, "xsrf_form_html", None)
    if xsrf_form_html is not None:
        namespace["xsrf_form_html"] = _markup(xsrf_form_html)
    if hasattr(type(handler), "xsrf_token"):
        namespace["xsrf_token"] = _LazyToken(handler)
    return namespace


class _LazyToken:
    # handler.xsrf_token may set a cookie: read it only when a template
    # prints it, not on every render.
    def __init__(self, handler: HandlerTemplates) -> None:
        self._handler = handler

    def __str__(self) -> str:
        token = self._handler.xsrf_token
        return token.decode() if isinstance(token, bytes) else str(token)

    def __html__(self) -> str:
        return str(markupsafe.escape(str(self)))


def render(
    handler: HandlerTemplates,
    name: str | None,
    source: str | None,
    kwargs: dict[str, Any],
) -> str:
    """Render template ``name`` (or the template text ``source``)."""
    env = get_environment(handler.application)
    if source is not None:
        template = env.from_string(source)
    else:
        assert name is not None
        template = env.get_template(name)
    namespace = handler.get_template_namespace()
    namespace.update(kwargs)
    return template.render(namespace)


# -- RequestHandler's rendering methods -------------------------------------------


class HandlerTemplates:
    """The rendering methods of :class:`~trioweb.RequestHandler`: templates
    and the URLs they link to."""

    if TYPE_CHECKING:
        # What these methods (and this module) use of RequestHandler
        # (handler.py), for mypy.
        application: Application
        request: HTTPServerRequest

        @property
        def settings(self) -> dict[str, Any]: ...

        @property
        def xsrf_token(self) -> bytes: ...

        async def finish(
            self, chunk: str | bytes | dict[str, Any] | None = None
        ) -> None: ...

    def static_url(self, path: str, include_version: bool = True) -> str:
        """The URL of static file ``path`` (``static_path`` setting).

        ``/static/css/site.css?v=<content hash>``: the hash is computed once
        per version of the file, and a versioned URL is served with
        ``Cache-Control: max-age=31536000, immutable``.
        """
        return _files.static_url(self.settings, path, include_version)

    def reverse_url(self, name: str, *args: Any) -> str:
        """``self.application.reverse_url(name, *args)``."""
        return self.application.reverse_url(name, *args)

    def get_template_namespace(self) -> dict[str, Any]:
        """The names every template sees (override it to add your own).

        ``handler``, ``request``, ``settings``, ``current_user``,
        ``static_url``, ``reverse_url``, and ``xsrf_form_html`` /
        ``xsrf_token`` when the handler has them.
        """
        return namespace_for(self)

    def render_string(self, template_name: str, **kwargs: Any) -> str:
        """Render template ``template_name`` with ``kwargs`` and return it."""
        # The module's render() function (a method's body does not see the
        # class's names), not the render() method below.
        return render(self, template_name, None, kwargs)

    async def render(self, template_name: str, **kwargs: Any) -> None:
        """Render template ``template_name`` and finish the response with it.

        A ``write()`` after it raises :exc:`RuntimeError`: the response is
        complete. A template error is a 500 (with the template name and line
        in the traceback when ``debug`` is on).
        """
        html = self.render_string(template_name, **kwargs)
        await self.finish(html)
