"""The allocator tuning that ``trioweb serve`` and ``trioweb.run`` apply."""

import subprocess
import sys

import pytest

from trioweb.server._malloc import tune_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_allocator_takes_effect_on_glibc() -> None:
    # In a child process: the setting is process-wide.
    code = "from trioweb.server._malloc import tune_allocator; print(tune_allocator())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_tune_allocator_is_a_no_op_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_allocator() is False
