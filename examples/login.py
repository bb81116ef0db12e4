"""A login kept in a signed cookie, and a form protected against XSRF.

    python examples/login.py       # then open http://127.0.0.1:8000/ (ann / trio)

``/`` requires a login (``@trioweb.authenticated`` sends visitors to
``/login?next=/``); the login form and the note form carry the XSRF token
(``xsrf_form_html()``), which trioweb checks on every POST.
"""

from __future__ import annotations

import hmac
import html
import os
import secrets

import trioweb
from trioweb.security import is_offsite_redirect

# A real application stores password hashes (hashlib.scrypt, argon2...).
USERS = {"ann": "trio"}
NOTES: list[str] = []


class Base(trioweb.RequestHandler):
    def get_current_user(self) -> str | None:
        # None unless the cookie carries our signature (and is < 31 days old).
        name = self.get_signed_cookie("user")
        return name.decode() if name else None


class Login(Base):
    def get(self) -> None:
        self.write(
            f'<form method="post">{self.xsrf_form_html()}'
            '<input name="name"> <input name="password" type="password">'
            "<button>Log in</button></form>"
        )

    async def post(self) -> None:
        name = self.get_argument("name")
        expected = USERS.get(name, "")
        if not expected or not hmac.compare_digest(
            expected, self.get_argument("password")
        ):
            raise trioweb.HTTPError(403, "bad password for %r", name)
        self.set_signed_cookie("user", name, httponly=True, samesite="Lax")
        next_url = self.get_argument("next", "/")
        # Only ever back into this site: next=//evil.example is an attack.
        if not next_url.startswith("/") or is_offsite_redirect(next_url):
            next_url = "/"
        await self.redirect(next_url)


class Notes(Base):
    @trioweb.authenticated
    def get(self) -> None:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in NOTES)
        self.write(
            f"<p>Hello {html.escape(self.current_user)}</p><ul>{items}</ul>"
            f'<form method="post">{self.xsrf_form_html()}'
            '<input name="note"><button>Add</button></form>'
        )

    @trioweb.authenticated
    async def post(self) -> None:
        NOTES.append(self.get_argument("note"))
        await self.redirect("/")


app = trioweb.Application(
    [(r"/", Notes), (r"/login", Login)],
    # Keep the secret out of the code; a random one logs everyone out on
    # each restart, which is fine for a demo.
    cookie_secret=os.environ.get("COOKIE_SECRET") or secrets.token_hex(32),
    xsrf_cookies=True,
    login_url="/login",
    security_headers=True,
)

if __name__ == "__main__":
    trioweb.run(app, port=int(os.environ.get("PORT", "8000")))
