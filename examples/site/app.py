"""An example site: Jinja2 pages, static CSS/JS with versioned URLs, a login
form, and a live counter fed by server-sent events.

Run it from the repository root::

    trioweb serve examples.site.app:app          # http://127.0.0.1:8000/
    make serve-site                              # the same, installing first

The login keeps the name in a signed cookie (``set_signed_cookie``), and every
form carries an XSRF token (``xsrf_cookies=True``, ``xsrf_form_html()`` in
the templates). The signing key comes from ``$SITE_COOKIE_SECRET``; without
it a random key is made at start-up, so logins end when the server restarts.
The counter page opens ``/events``; when the tab is closed the server
cancels that handler at once, which ``/stats`` shows.
"""

from __future__ import annotations

import logging
import os
import secrets
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
        # None when the cookie is missing, forged, or older than 31 days.
        value = self.get_signed_cookie("user")
        return value.decode() if value else None


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
        # Signed: the client cannot change the name. httponly: scripts on the
        # page never need it.
        self.set_signed_cookie("user", name, httponly=True, samesite="Lax")
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
        "cookie_secret": os.environ.get("SITE_COOKIE_SECRET") or secrets.token_hex(32),
        "xsrf_cookies": True,
        "login_url": "/login",
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
