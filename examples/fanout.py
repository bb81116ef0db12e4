"""Structured concurrency in a handler: fan out, and stop when the client leaves.

``GET /quote?sources=3`` asks several slow "sources" at once, in a nursery
that belongs to the handler, and answers with whatever they all said. If the
client disconnects while the sources are still working, trioweb cancels the
handler: the nursery cancels every call in flight, their ``finally`` blocks
run, ``on_connection_close()`` is called, and nothing keeps running for a
client that is gone. Try it::

    trioweb serve examples.fanout:app
    curl 'http://127.0.0.1:8000/quote?sources=3'            # waits ~1.5 s
    curl --max-time 0.5 'http://127.0.0.1:8000/quote'       # leaves early

and watch the log: the abandoned calls say "cancelled".
"""

from __future__ import annotations

import logging

import trio

import trioweb

log = logging.getLogger("examples.fanout")


async def ask_source(index: int, results: dict[str, str]) -> None:
    """Stand-in for a slow backend call (a database, another service)."""
    try:
        await trio.sleep(0.5 * (index + 1))
        results[f"source-{index}"] = f"answer {index}"
    finally:
        if f"source-{index}" not in results:
            log.info("source %d cancelled: its client left", index)


class QuoteHandler(trioweb.RequestHandler):
    async def get(self) -> None:
        count = int(self.get_argument("sources", "3"))
        if not 1 <= count <= 10:
            raise trioweb.HTTPError(400, "sources must be 1..10, got %d", count)
        results: dict[str, str] = {}
        # The nursery is the handler's: when the handler is cancelled, so is
        # every call started here, and the `async with` waits for them all.
        async with trio.open_nursery() as nursery:
            for index in range(count):
                nursery.start_soon(ask_source, index, results)
        self.write({"quotes": results})

    def on_connection_close(self) -> None:
        log.info("client left %s early", self.request.uri)


app = trioweb.Application([(r"/quote", QuoteHandler)])

if __name__ == "__main__":
    trioweb.run(app)
