"""The smallest trioweb application: ``make serve`` runs this.

Run it either way::

    trioweb serve examples.hello:app      # the command line, with every flag
    python examples/hello.py              # trioweb.run() from a script ($PORT or 8000)
"""

import os

import trioweb


class MainHandler(trioweb.RequestHandler):
    async def get(self) -> None:
        self.write("Hello from trioweb!\n")


class HelloHandler(trioweb.RequestHandler):
    async def get(self, name: str) -> None:
        self.write({"hello": name})


app = trioweb.Application(
    [
        (r"/", MainHandler),
        (r"/hello/([^/]+)", HelloHandler),
    ]
)

if __name__ == "__main__":
    trioweb.run(app, port=int(os.environ.get("PORT", "8000")))
