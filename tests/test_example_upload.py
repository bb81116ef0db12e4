"""examples/upload.py: uploads streamed to disk in bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from pathlib import Path

import pytest
import trio
import trio.testing
from processes import trioweb_process

from examples import upload as example
from trioweb.testing import TestClient

BOUNDARY = "example-boundary"


@pytest.fixture
def upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(example, "UPLOAD_DIR", str(tmp_path))
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path))
    return tmp_path


async def test_put_streams_to_a_file(upload_dir: Path) -> None:
    data = os.urandom(300_000)
    async with TestClient(example.app) as client:
        r = await client.put("/files/a.bin", body=data)
        assert r.status == 201
        assert r.json() == {
            "name": "a.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        assert (upload_dir / "a.bin").read_bytes() == data
        assert (await client.put("/files/..", body=b"x")).status == 400


async def test_a_client_leaving_mid_upload_leaves_no_file(upload_dir: Path) -> None:
    async with TestClient(example.app) as client:
        raw = await client.raw()
        await raw.send(
            b"PUT /files/b.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            + b"x" * 70_000
        )
        # The file is opened and written in worker threads: wait for it.
        partial = trio.Path(upload_dir / ".b.bin.partial")
        with trio.fail_after(10):
            while not await partial.exists():  # noqa: ASYNC110 (no event to wait on)
                await trio.sleep(0.01)
        await raw.stream.aclose()
        await raw.server_done.wait()
    assert list(await trio.Path(upload_dir).iterdir()) == []


async def test_form_upload(upload_dir: Path) -> None:
    body = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=note\r\n\r\nhi\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=doc; "
        f'filename="n.txt"\r\nContent-Type: text/plain\r\n\r\nnotes\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    async with TestClient(example.app) as client:
        r = await client.post(
            "/form",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert r.json() == {
        "note": "hi",
        "files": [
            {
                "field": "doc",
                "filename": "n.txt",
                "content_type": "text/plain",
                "size": 5,
                "sha256": hashlib.sha256(b"notes").hexdigest(),
            }
        ],
    }


# -- 200 MiB over a real socket, in bounded memory ---------------------------------


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


async def _put(port: int, name: str, size: int, piece: bytes) -> tuple[dict, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    digest = hashlib.sha256()
    async with stream:
        await stream.send_all(
            f"PUT /files/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        sent = 0
        while sent < size:
            chunk = piece[: size - sent]
            await stream.send_all(chunk)
            digest.update(chunk)
            sent += len(chunk)
        response = b""
        while data := await stream.receive_some(65536):
            response += data
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 "), head
    return json.loads(body), digest.hexdigest()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_200_mib_upload_in_bounded_memory(upload_dir: Path) -> None:
    piece = os.urandom(256 * 1024)
    async with trioweb_process(
        "serve", "examples.upload:app", "--port", "0", "--no-access-log"
    ) as server:
        line = await server.wait_for("trioweb: serving on http://")
        match = re.search(r":(\d+)$", line)
        assert match, line
        port = int(match.group(1))
        pid = server.process.pid
        # A first upload warms up what is allocated once (buffers, imports).
        await _put(port, "warm-up", 8 * 1024 * 1024, piece)
        before = _peak_rss_kib(pid)
        size = 200 * 1024 * 1024
        reply, sha = await _put(port, "big", size, piece)
        after = _peak_rss_kib(pid)
        server.signal(signal.SIGINT)
        assert await server.finish() == 0
        server.assert_clean()
    assert reply == {"name": "big", "size": size, "sha256": sha}
    assert (upload_dir / "big").stat().st_size == size
    # The server's peak memory grew by a few MiB at most, not by the upload.
    assert after - before < 8 * 1024, f"peak RSS grew by {after - before} KiB"
