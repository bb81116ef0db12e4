"""The release check: `python -m build` makes an sdist and a wheel that
install into a fresh venv and serve an application.

`make dist-check` runs this file (CI does too); it is not part of the
default suite (its name does not match ``test_*.py``) because it builds in
isolated environments and installs into fresh venvs, which fetches the build
backend and trioweb's dependencies from the package index, and takes a
minute or two.

The wheel holds only the ``trioweb`` package, so the application it serves,
``examples.hello:app``, is copied next to the venv from this checkout: the
import of ``trioweb`` must come from the installed distribution, never from
the source tree.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import trioweb

ROOT = Path(__file__).resolve().parent.parent
# Each step is bounded: a hung build or install fails the check instead of
# holding CI.
STEP_TIMEOUT = 600


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """sdist and wheel, built the way a release is: ``python -m build``
    (which builds the wheel from the sdist, so a file missing from the sdist
    breaks the wheel too)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    yield out


def artifact(dist: Path, kind: str) -> Path:
    pattern = "*.whl" if kind == "wheel" else "*.tar.gz"
    [path] = dist.glob(pattern)
    return path


def test_the_artifacts_carry_the_version_and_the_package(dist: Path) -> None:
    version = trioweb.__version__
    wheel = artifact(dist, "wheel")
    sdist = artifact(dist, "sdist")
    assert wheel.name.startswith(f"trioweb-{version}-")
    assert sdist.name == f"trioweb-{version}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"trioweb-{version}.dist-info/METADATA").decode()
    assert "trioweb/__init__.py" in names and "trioweb/py.typed" in names
    # Only the package: tests, examples and the benchmark stay out.
    assert {name.split("/")[0] for name in names} == {
        "trioweb",
        f"trioweb-{version}.dist-info",
    }
    assert re.search(rf"^Version: {re.escape(version)}$", metadata, re.M)
    assert "Classifier: Framework :: Trio" in metadata
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert f"trioweb-{version}/README.md" in members
    assert f"trioweb-{version}/trioweb/__init__.py" in members


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
async def test_installs_in_a_fresh_venv_and_serves(
    dist: Path, tmp_path: Path, kind: str
) -> None:
    venv = tmp_path / "venv"
    await trio.to_thread.run_sync(run, sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    await trio.to_thread.run_sync(
        run, python, "-m", "pip", "install", "--quiet", artifact(dist, kind)
    )

    # The application lives apart from the checkout and from the venv.
    app_dir = tmp_path / "app"
    (app_dir / "examples").mkdir(parents=True)
    for name in ("__init__.py", "hello.py"):
        shutil.copy(ROOT / "examples" / name, app_dir / "examples" / name)

    where = await trio.to_thread.run_sync(
        lambda: run(
            python,
            "-c",
            "import importlib.metadata, trioweb;"
            "print(trioweb.__file__);"
            "print(trioweb.__version__, importlib.metadata.version('trioweb'))",
            cwd=app_dir,
        )
    )
    path, versions = where.splitlines()
    assert Path(path).is_relative_to(venv), path
    assert versions.split() == [trioweb.__version__] * 2

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = await trio.lowlevel.open_process(
        [venv / "bin" / "trioweb", "serve", "examples.hello:app", "--port", "0"],
        cwd=app_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        with trio.fail_after(30):
            stderr = b""
            while b"\n" not in stderr.partition(b"serving on http://")[2]:
                data = await process.stderr.receive_some(4096)
                assert data, stderr
                stderr += data
            port = int(re.findall(rb"serving on http://127\.0\.0\.1:(\d+)", stderr)[0])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            response = b""
            while data := await stream.receive_some(4096):
                response += data
            await stream.aclose()
            assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response
            assert response.endswith(b"\r\n\r\nHello from trioweb!\n"), response
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            rest = b""
            while data := await process.stderr.receive_some(4096):
                rest += data
            assert b"Traceback" not in stderr + rest, stderr + rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stderr.aclose()
