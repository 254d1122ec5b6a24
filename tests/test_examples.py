"""The examples run as users run them, briefly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_finds_the_planted_problem(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--requests", "600",
         "--store", str(store)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "internal errors swallowed by inferwatch: 0" in out
    assert "ml.inference.duration" in out and "ml.input.nan_count" in out
    # The incident report: a start, ap-south first, the service's warning first among its logs,
    # and its inputs with NaNs only since the start.
    report = out.split("the incident, question by question:")[1].split("where do the errors")[0]
    assert re.search(r"1\. when did it start\? 20\d\d-", report), report
    where = report.split("2. where?")[1].split("3. what")[0]
    first = next(line for line in where.splitlines() if "region=" in line)
    assert first.split("\u2502")[0].strip() == "region=ap-south"
    logs = report.split("3. what do the logs of those requests say?")[1].split("4. examples")[0]
    first = next(line for line in logs.splitlines() if "\u2502" in line)
    assert first.strip().startswith("feature vector incomplete: <n> values missing")
    inputs = report.split("5. did the inputs drift?")[1]
    assert "the share of inputs with NaNs rose since the start" in inputs
    assert "<svg" in (tmp_path / "incident.html").read_text()
    # The slice, read back from the local store: ap-south carries every error.
    table = out.split("where do the errors come from?")[1].split("which tag values")[0]
    rows = [
        [cell for cell in line.split() if cell != "\u2502"]  # rich's column separator
        for line in table.splitlines()
        if line.strip().startswith(("ap-", "eu", "us"))
    ]
    assert sum(int(r[3]) for r in rows if r[0] == "ap-south") > 0
    assert all(int(r[3]) == 0 for r in rows if r[0] != "ap-south")
    assert sum(int(r[2]) for r in rows) == 600  # every request was stored and read back
    # Bubble-up names the planted slice first.
    explained = out.split("which tag values explain them?")[1].split("and the wrong")[0]
    first = next(line for line in explained.splitlines() if "region=" in line)
    assert "region=ap-south" in first.split("\u2502")[0]
    # The concept drift shows only in the delayed labels: the `new` cohort's predictions are wrong.
    assert "'joined'" in out.split("labels sent back")[1].splitlines()[0]
    wrong = out.split("and the wrong predictions")[1].split("has the input drifted")[0]
    first = next(line for line in wrong.splitlines() if "=" in line and "\u2502" in line)
    assert "cohort=new" in first.split("\u2502")[0]
    # The silent failure: only `amount` drifted from the training baseline.
    drift = out.split("has the input drifted from training?")[1]
    rows = [line for line in drift.splitlines() if "\u2502" in line]  # the table, not its notes
    flagged = [line.split()[0] for line in rows if "DRIFT" in line]
    assert flagged == ["amount"]
    assert "multivariate (8 numeric features together): DRIFT" in drift
    assert sorted(p.suffix for p in store.iterdir()) == [".jsonl"] * len(list(store.iterdir()))
