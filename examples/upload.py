"""Uploads: a large file streamed to disk, and a small form with files.

Run it::

    UPLOAD_DIR=/tmp/uploads trioweb serve examples.upload:app

    # Any size up to 1 GiB, in bounded memory: the body goes to disk as it
    # arrives and is never held whole.
    curl -T big.iso http://127.0.0.1:8000/files/big.iso

    # A browser-style form (multipart/form-data), read whole (small files).
    curl -F note=hello -F doc=@notes.txt http://127.0.0.1:8000/form
"""

from __future__ import annotations

import hashlib
import os
import re

import trio

import trioweb

UPLOAD_DIR = os.environ.get("UPLOAD_DIR", "uploads")
MAX_UPLOAD = 1024 * 1024 * 1024  # 1 GiB, above the server's default 10 MiB
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


@trioweb.stream_request_body
class FileUpload(trioweb.RequestHandler):
    """``PUT /files/NAME``: the body, streamed to ``UPLOAD_DIR/NAME``."""

    def prepare(self) -> None:
        # Runs before any body byte is read: a client sending
        # "Expect: 100-continue" with a larger Content-Length gets 413.
        self.request.max_body_size = MAX_UPLOAD

    async def put(self, name: str) -> None:
        if not _SAFE_NAME.fullmatch(name):
            raise trioweb.HTTPError(400, reason="Name the file with letters and digits")
        directory = trio.Path(UPLOAD_DIR)
        await directory.mkdir(parents=True, exist_ok=True)
        final = directory / name
        partial = directory / f".{name}.partial"
        digest = hashlib.sha256()
        size = 0
        try:
            async with await trio.open_file(partial, "wb") as out:
                # One chunk in memory at a time; while we write it, the
                # server reads no more from the client (backpressure).
                async for chunk in self.request.stream():
                    digest.update(chunk)
                    size += len(chunk)
                    await out.write(chunk)
            await partial.rename(final)
        except BaseException:
            # Too large, the client left (trio.Cancelled), a disk error:
            # no half-written file stays behind.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 5):
                await partial.unlink(missing_ok=True)
            raise
        self.set_status(201)
        self.write({"name": name, "size": size, "sha256": digest.hexdigest()})


class FormUpload(trioweb.RequestHandler):
    """``POST /form``: a multipart form, its files described back."""

    def post(self) -> None:
        self.write(
            {
                "note": self.get_body_argument("note", ""),
                "files": [
                    {
                        "field": field,
                        "filename": upload.filename,
                        "content_type": upload.content_type,
                        "size": upload.size,
                        "sha256": hashlib.sha256(upload.body).hexdigest(),
                    }
                    for field, uploads in self.request.files.items()
                    for upload in uploads
                ],
            }
        )


app = trioweb.Application(
    [
        (r"/files/([^/]+)", FileUpload),
        (r"/form", FormUpload),
    ]
)

if __name__ == "__main__":
    trioweb.run(app, port=int(os.environ.get("PORT", "8000")))
