"""An app for the slow-attack test: a form POST that reads its body."""

from __future__ import annotations

from trioweb import Application, RequestHandler


class Form(RequestHandler):
    def get(self) -> None:
        self.write("ok")

    def post(self) -> None:
        self.write(f"{len(self.request.body)}")


app = Application([("/.*", Form)])
