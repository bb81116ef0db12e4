"""Jinja2 templates: render/render_string, autoescape, the namespace, the
environment settings, caching and reload, errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import jinja2
import pytest

from trioweb import Application, RequestHandler
from trioweb.testing import TestClient


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "hello.html").write_text("<p>Hello {{ name }}!</p>")
    (folder / "hello.txt").write_text("Hello {{ name }}!")
    (folder / "feed.xml").write_text("<title>{{ name }}</title>")
    (folder / "base.html").write_text(
        "<title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %}"
    )
    (folder / "child.html").write_text(
        '{% extends "base.html" %}{% block title %}T{% endblock %}'
        "{% block body %}{{ name }}{% endblock %}"
    )
    (folder / "namespace.html").write_text(
        "{{ request.path }}|{{ handler.__class__.__name__ }}|"
        "{{ current_user }}|{{ static_url('s.css') }}|{{ reverse_url('page') }}"
    )
    (folder / "broken.html").write_text("line one\n{{ 1 / 0 }}\n")
    (folder / "syntax.html").write_text("ok\n{% if %}\n")
    return folder


def make_app(templates: Path, handler: type[RequestHandler], **settings: Any) -> Any:
    settings.setdefault("template_path", str(templates))
    return Application([("/page", handler, {}, "page")], **settings)


async def get_page(
    templates: Path, handler: type[RequestHandler], **settings: Any
) -> Any:
    async with TestClient(make_app(templates, handler, **settings)) as client:
        return await client.get("/page")


def renders(template: str, **kwargs: Any) -> type[RequestHandler]:
    class Page(RequestHandler):
        async def get(self) -> None:
            await self.render(template, **kwargs)

    return Page


# -- rendering and escaping --------------------------------------------------------


async def test_render_finishes_with_the_page(templates: Path) -> None:
    r = await get_page(templates, renders("hello.html", name="Ann"))
    assert r.status == 200
    assert r.text == "<p>Hello Ann!</p>"
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hello.html", "<p>Hello &lt;b&gt;&amp;&lt;/b&gt;!</p>"),
        ("feed.xml", "<title>&lt;b&gt;&amp;&lt;/b&gt;</title>"),
        ("hello.txt", "Hello <b>&</b>!"),  # not markup: not escaped
    ],
)
async def test_autoescape_by_extension(
    templates: Path, name: str, expected: str
) -> None:
    r = await get_page(templates, renders(name, name="<b>&</b>"))
    assert r.text == expected


async def test_htm_is_escaped_too(templates: Path) -> None:
    (templates / "x.htm").write_text("{{ v }}")
    r = await get_page(templates, renders("x.htm", v="<i>"))
    assert r.text == "&lt;i&gt;"


async def test_render_string_and_inheritance(templates: Path) -> None:
    seen: list[str] = []

    class Page(RequestHandler):
        def get(self) -> None:
            seen.append(self.render_string("child.html", name="<x>"))
            self.write("ok")

    r = await get_page(templates, Page)
    assert r.text == "ok"
    assert seen == ["<title>T</title>&lt;x&gt;"]


async def test_write_after_render_raises(templates: Path) -> None:
    caught: list[str] = []

    class Page(RequestHandler):
        async def get(self) -> None:
            await self.render("hello.html", name="a")
            try:
                self.write("more")
            except RuntimeError as exc:
                caught.append(str(exc))

    r = await get_page(templates, Page)
    assert r.text == "<p>Hello a!</p>"
    assert caught and "finish" in caught[0]


# -- the namespace -------------------------------------------------------------------


async def test_namespace_has_the_standard_names(
    templates: Path, tmp_path: Path
) -> None:
    (tmp_path / "s.css").write_text("x")

    class Page(RequestHandler):
        current_user = "ann"

        async def get(self) -> None:
            await self.render("namespace.html")

    r = await get_page(templates, Page, static_path=str(tmp_path))
    path, cls, user, static, reverse = r.text.split("|")
    assert (path, cls, user, reverse) == ("/page", "Page", "ann", "/page")
    assert static.startswith("/static/s.css?v=")


async def test_xsrf_helpers_are_picked_up_from_the_handler(templates: Path) -> None:
    (templates / "form.html").write_text(
        "<form>{{ xsrf_form_html() }}</form>[{{ xsrf_token }}]"
    )

    class Page(RequestHandler):
        @property
        def xsrf_token(self) -> bytes:
            return b"tok<en>"

        def xsrf_form_html(self) -> str:
            return '<input type="hidden" name="_xsrf" value="tok">'

        async def get(self) -> None:
            await self.render("form.html")

    r = await get_page(templates, Page)
    # The form HTML is markup (no |safe needed); the token is escaped text.
    assert r.text == (
        '<form><input type="hidden" name="_xsrf" value="tok"></form>[tok&lt;en&gt;]'
    )


async def test_the_security_helpers_are_in_every_namespace(
    templates: Path,
) -> None:
    (templates / "probe.html").write_text(
        "{{ xsrf_form_html is defined }} {{ current_user }}"
    )
    r = await get_page(templates, renders("probe.html"))
    assert r.text == "True None"


async def test_get_template_namespace_can_be_extended(templates: Path) -> None:
    (templates / "site.html").write_text("{{ site_name }}: {{ name }}")

    class Page(RequestHandler):
        def get_template_namespace(self) -> dict[str, Any]:
            namespace = super().get_template_namespace()
            namespace["site_name"] = "Example"
            return namespace

        async def get(self) -> None:
            await self.render("site.html", name="home")

    r = await get_page(templates, Page)
    assert r.text == "Example: home"


# -- environment settings ---------------------------------------------------------


async def test_a_loader_setting(templates: Path) -> None:
    loader = jinja2.DictLoader({"mem.html": "<b>{{ v }}</b>"})
    r = await get_page(templates, renders("mem.html", v="<i>"), template_loader=loader)
    assert r.text == "<b>&lt;i&gt;</b>"


async def test_an_environment_setting_is_used_as_it_is(templates: Path) -> None:
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"raw.html": "{{ v }}"}), autoescape=False
    )
    r = await get_page(
        templates, renders("raw.html", v="<i>"), template_environment=env
    )
    assert r.text == "<i>"


async def test_no_template_setting_says_what_to_do() -> None:
    class Page(RequestHandler):
        async def get(self) -> None:
            await self.render("x.html")

    async with TestClient(Application([("/", Page)], serve_traceback=True)) as client:
        r = await client.get("/")
    assert r.status == 500
    assert "template_path" in r.text


# -- caching and reload ----------------------------------------------------------


async def _render_twice(templates: Path, debug: bool) -> tuple[str, str]:
    page = templates / "changing.html"
    page.write_text("one")
    app = make_app(templates, renders("changing.html"), debug=debug)
    async with TestClient(app) as client:
        first = (await client.get("/page")).text
        page.write_text("two")
        # Make sure the mtime moves even on a coarse-grained filesystem.
        os.utime(page, (page.stat().st_atime, page.stat().st_mtime + 10))
        second = (await client.get("/page")).text
    return first, second


async def test_templates_are_cached(templates: Path) -> None:
    assert await _render_twice(templates, debug=False) == ("one", "one")


async def test_debug_reloads_a_changed_template(templates: Path) -> None:
    assert await _render_twice(templates, debug=True) == ("one", "two")


# -- errors ------------------------------------------------------------------------


async def test_template_error_in_debug_shows_name_and_line(
    templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trioweb")
    r = await get_page(templates, renders("broken.html"), debug=True)
    assert r.status == 500
    assert 'broken.html", line 2' in r.text
    assert "ZeroDivisionError" in r.text
    r = await get_page(templates, renders("syntax.html"), debug=True)
    assert r.status == 500
    assert "syntax.html" in r.text and "line 2" in r.text


async def test_template_error_without_debug_is_a_plain_500(
    templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trioweb")
    r = await get_page(templates, renders("broken.html"))
    assert r.status == 500
    assert "broken.html" not in r.text
    assert "500: Internal Server Error" in r.text
    # ... and the traceback, with the template line, is in the log.
    assert any("broken.html" in (r.exc_text or "") for r in caplog.records)
    r = await get_page(templates, renders("missing.html"))
    assert r.status == 500
