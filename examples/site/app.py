"""An example site: Jinja2 pages, static CSS/JS with versioned URLs, a login
form, and a live counter fed by server-sent events.

Run it from the repository root::

    trioweb serve examples.site.app:app          # http://127.0.0.1:8000/
    make serve-site                              # the same, installing first

The login keeps the name in a plain cookie for now (it is a demo: anyone can
edit a plain cookie); the templates already use ``xsrf_form_html()`` when
the handler provides it. The counter page opens ``/events``; when the tab
is closed the server cancels that handler at once, which ``/stats`` shows.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Any

import attrs
import trio

import trioweb

HERE = os.path.dirname(os.path.abspath(__file__))
log = logging.getLogger("examples.site")


@attrs.define
class CounterStats:
    """What the counter streams did (shown at /stats, read by the tests)."""

    started: int = 0
    active: int = 0
    cancelled: int = 0


class BaseHandler(trioweb.RequestHandler):
    def get_current_user(self) -> str | None:
        value = self.get_cookie("user")
        return urllib.parse.unquote(value) if value else None

    @property
    def current_user(self) -> str | None:
        return self.get_current_user()


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        await self.render("index.html")


class LoginHandler(BaseHandler):
    async def get(self) -> None:
        await self.render("login.html", error=None, name="")

    async def post(self) -> None:
        name = self.get_body_argument("name", "").strip()
        if not name or len(name) > 40 or not name.isprintable():
            self.set_status(400)
            await self.render(
                "login.html",
                error="Please give a name of 1 to 40 characters.",
                name=name[:40],
            )
            return
        # Percent-encoded: a cookie value cannot hold spaces or ';'.
        # httponly: scripts on the page never need it.
        self.set_cookie("user", urllib.parse.quote(name), httponly=True, samesite="Lax")
        await self.redirect("/")


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        self.clear_cookie("user")
        await self.redirect("/")


class CounterEvents(BaseHandler):
    """A counter that ticks every ``counter_interval`` seconds, forever --
    until the browser leaves, which cancels this handler."""

    async def get(self) -> None:
        stats: CounterStats = self.settings["counter_stats"]
        interval: float = self.settings.get("counter_interval", 1.0)
        stats.started += 1
        stats.active += 1
        try:
            async with self.event_stream() as events:
                # A reconnecting EventSource sends the last id it saw.
                last = events.last_event_id
                n = int(last) + 1 if last and last.isdigit() else 0
                while True:
                    await events.send(str(n), event="count", id=str(n))
                    n += 1
                    await trio.sleep(interval)
        finally:
            stats.active -= 1

    def on_connection_close(self) -> None:
        stats: CounterStats = self.settings["counter_stats"]
        stats.cancelled += 1
        log.info("counter stream cancelled: its client left")


class StatsHandler(BaseHandler):
    def get(self) -> None:
        self.write(attrs.asdict(self.settings["counter_stats"]))


def make_app(**settings: Any) -> trioweb.Application:
    """The site's application (``settings`` override the defaults)."""
    settings = {
        "template_path": os.path.join(HERE, "templates"),
        "static_path": os.path.join(HERE, "static"),
        "compress_response": True,
        "counter_stats": CounterStats(),
        **settings,
    }
    return trioweb.Application(
        [
            (r"/", HomeHandler),
            trioweb.url(r"/login", LoginHandler, name="login"),
            trioweb.url(r"/logout", LogoutHandler, name="logout"),
            (r"/events", CounterEvents),
            (r"/stats", StatsHandler),
        ],
        **settings,
    )


app = make_app()
