"""An app for the deployment tests (TLS, sockets, logs): it echoes what the
server told it about the request, and which process answered."""

from __future__ import annotations

import os

from trioweb import Application, RequestHandler


class Echo(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "protocol": self.request.protocol,
                "path": self.request.path,
                "root_path": self.request.root_path,
                "id": self.request.id,
                "pid": os.getpid(),
            }
        )


app = Application([("/.*", Echo)])
