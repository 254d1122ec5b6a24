"""The examples run as users run them, briefly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_finds_the_planted_problem() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--requests", "400"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "spans emitted: 400" in out
    table = out.split("where do the errors come from?")[1].split("metrics emitted")[0]
    worst = table.strip().splitlines()[2]  # first data row: sorted by errors
    assert worst.startswith("ap-south")
    assert " 0.000" in table  # the healthy regions have no errors
    assert "ml.inference.duration" in out and "ml.input.nan_count" in out
    assert "internal errors swallowed by inferwatch: 0" in out
