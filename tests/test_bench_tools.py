"""The bench scripts still fit the code they measure.

``make bench`` is run by hand, rarely: a script that a change to the engine
or the web layer broke would go unnoticed until then. These run each
script's measured part once, briefly, without valgrind.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_web_instructions_stand_in_fits_the_web_layer() -> None:
    # The stand-in exchange must offer what Application.handle_exchange
    # uses, and the hello handler must answer through it.
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "web_instructions.py"), "--serve", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
