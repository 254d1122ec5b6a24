"""The recommender example: a feedback loop shows in inferwatch's ranking gauges, then recovers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples import recommender
from inferwatch import ranking
from tests.conftest import Captured

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"days": 6, "requests": 200, "items": 500, "groups": 10}


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    yield
    ranking.reset()


def test_the_loop_narrows_exposure_and_exploration_widens_it(telemetry: Captured) -> None:
    results = recommender.run(telemetry.reader, **SMALL, seed=3, min_coverage=0.3)
    loop, recovery = results.values()
    assert [r["day"] for r in loop + recovery] == list(range(1, 13))

    # The rows are the exported gauges; the public window API saw the same windows.
    windows = ranking.windows(recommender.MODEL)
    assert windows is not None
    for row, stats in zip(loop + recovery, windows.history, strict=True):
        assert row["lists"] == stats.lists == SMALL["requests"]
        assert (row["coverage"], row["gini"]) == (stats.coverage, stats.gini)
        assert row["long_tail_share"] == stats.long_tail_share
        assert row["distinct_items"] == stats.distinct_items == row["coverage"] * SMALL["items"]

    # Phase 1: fewer items, more concentrated exposure, the long tail fades, day after day.
    for later, earlier in zip(loop[1:], loop, strict=False):
        assert later["coverage"] < earlier["coverage"]
        assert later["gini"] > earlier["gini"]
    assert loop[-1]["long_tail_share"] < loop[0]["long_tail_share"] / 2
    # Phase 2: every day wider than the loop ever got, again.
    for row in recovery:
        assert row["coverage"] > 2 * loop[-1]["coverage"]
        assert row["gini"] < loop[-1]["gini"]
        assert row["long_tail_share"] > 2 * loop[-1]["long_tail_share"]
    # Users look at the top of a list: position bias in the CTR gauges, every day.
    assert all(row["ctr@1"] > row["ctr@10"] for row in loop + recovery)

    # The coverage floor was crossed once (during the loop), and said so once.
    events = [
        dict(r.log_record.attributes or {})
        for r in telemetry.logs()
        if r.log_record.event_name == "ml.ranking.low_coverage"
    ]
    fallen = next(r for r in loop if r["coverage"] < 0.3)
    assert [(e["ml.model.name"], e["ml.ranking.coverage"]) for e in events] == [
        ("recs", fallen["coverage"])
    ]
    # Every list was an inference span with its size.
    spans = telemetry.spans("inference recs")
    assert len(spans) == 12 * SMALL["requests"]
    assert {(s.attributes or {}).get("ml.ranking.size") for s in spans} == {recommender.SLOTS}


def test_the_script_prints_both_phases(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # export nowhere
    args = [f"--{k}={v}" for k, v in SMALL.items()] + ["--store", str(tmp_path / "store")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "recommender.py"), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "feedback loop: ranked by raw clicks" in out and "position-debiased" in out
    assert "internal errors swallowed by inferwatch: 0" in out
    days = re.findall(r"^\s+(\d+) \u2502", out, re.MULTILINE)  # rich's column separator
    assert days == [str(d) for d in range(1, 13)]
    summary = re.search(
        r"coverage ([\d.]+) -> ([\d.]+) in the loop, ([\d.]+) with exploration", out
    )
    assert summary, out
    start, looped, recovered = map(float, summary.groups())
    assert looped < start and recovered > looped
