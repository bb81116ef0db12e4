"""An app for the CLI's proxy-header tests: it echoes who the client is."""

from __future__ import annotations

from trioweb import Application, RequestHandler


class WhoAmI(RequestHandler):
    def get(self) -> None:
        self.write(f"{self.request.remote_ip} {self.request.protocol}")


app = Application([("/.*", WhoAmI)])
