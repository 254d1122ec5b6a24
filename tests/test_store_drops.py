"""The local store keeps up with a burst, and what it could not take is stated in the queries.

* A tight loop of 100,000 monitored calls with 7 tags, every 11th raising, default settings:
  every span is stored. (It was 26-77% before: formatting each exception's traceback stat-ed
  its source files, and those short syscalls starved the writer thread of the GIL.)
* A queue deliberately too small: every span dropped is counted exactly, reported in the store
  (``inferwatch.spans.dropped``) and named in the notes of ``slice``, ``bubble_up`` and
  ``outliers`` over that window; a window without drops carries no such note.
* A disk that refuses writes: the spans of the failed writes are reported once it takes writes
  again.
* Log records the same way (``inferwatch.logs.dropped``), named in the notes of log searches.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from pathlib import Path
from typing import Any

import pytest

import inferwatch as iw
from inferwatch import semconv
from inferwatch.store import iter_logs, iter_spans


@iw.monitor(model="burst")
def predict(i: int) -> float:
    if i % 11 == 0:
        raise ValueError(f"bad input {i}")
    return i * 0.5


@iw.monitor(model="burst")
def score(i: int) -> float:
    return i * 0.5


def burst(n: int) -> None:
    for i in range(n):
        tags = iw.context(region="eu", cohort="c", a="1", b="2", c="3", d="4", e="5")
        with tags, contextlib.suppress(ValueError):
            predict(i)


def stored(store: Path) -> int:
    return sum(1 for s in iter_spans(store) if s["attributes"].get("ml.model.name") == "burst")


def reported(store: Path, event: str = semconv.EVENT_SPANS_DROPPED) -> dict[str, int]:
    found: dict[str, int] = {}
    for record in iter_logs(store):
        if record["event_name"] == event:
            attributes = record["attributes"]
            reason = attributes[semconv.ATTR_DROPPED_REASON]
            found[reason] = found.get(reason, 0) + int(attributes[semconv.ATTR_DROPPED_COUNT])
    return found


@pytest.mark.timeout(300)
def test_a_burst_with_errors_is_stored_whole_with_the_defaults(tmp_path: Path) -> None:
    iw.configure(service_name="burst", store=str(tmp_path))
    try:
        burst(100_000)
    finally:
        iw.shutdown()
    assert stored(tmp_path) == 100_000
    assert reported(tmp_path) == {}


@pytest.fixture
def tiny_queue(tmp_path: Path) -> Path:
    iw.configure(
        service_name="tiny", store=str(tmp_path), max_queue_size=16, max_export_batch_size=16
    )
    try:
        for i in range(5_000):
            with iw.context(region="eu"):
                score(i)
    finally:
        iw.shutdown()
    return tmp_path


def test_every_span_dropped_is_counted_and_reported_in_the_store(tiny_queue: Path) -> None:
    kept, dropped = stored(tiny_queue), reported(tiny_queue)
    assert set(dropped) == {"queue_full"} and dropped["queue_full"] > 0
    assert kept + dropped["queue_full"] == 5_000


def test_the_queries_over_that_window_say_how_many_spans_are_missing(tiny_queue: Path) -> None:
    missing = reported(tiny_queue)["queue_full"]
    spans = iw.query.open(tiny_queue)
    note = f"incomplete: {missing:,} spans of this window did not reach the store "
    note += "(queue_full; 1 process)"
    sliced = spans.slice(by=["region"], since="1h")
    assert sliced.rows[0]["requests"] == 5_000 - missing
    for result in (sliced, spans.bubble_up(outcome="error", since="1h"), spans.outliers("1h")):
        assert any(n.startswith(note) for n in result.notes), result.notes
    before = spans.slice(by=["region"], since="3h", until="2h")
    assert not any("incomplete" in n for n in before.notes), "a window without drops"


def test_a_refused_write_is_reported_once_the_disk_takes_writes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inferwatch.store.writer import SegmentWriter

    write_line = SegmentWriter.write_line
    refusals = {"left": 1}

    def full_disk_once(self: SegmentWriter, line: bytes) -> Any:
        if self.signal == "traces" and refusals["left"]:
            refusals["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_line(self, line)

    monkeypatch.setattr(SegmentWriter, "write_line", full_disk_once)
    iw.configure(service_name="full-disk", store=str(tmp_path), max_export_batch_size=100)
    try:
        for i in range(300):
            score(i)
        iw.flush()  # the first batch is refused
        for i in range(300):
            score(i)
    finally:
        iw.shutdown()
    lost = reported(tmp_path)
    assert set(lost) == {"write_failed"} and lost["write_failed"] >= 1
    assert stored(tmp_path) + lost["write_failed"] == 600


def test_every_log_record_dropped_is_counted_and_named_in_log_searches(tmp_path: Path) -> None:
    iw.configure(
        service_name="chatty", store=str(tmp_path), max_queue_size=16, max_export_batch_size=16
    )
    log = logging.getLogger("chatty")
    try:
        for i in range(5_000):
            with iw.context(region="eu"):
                log.warning("line %d", i)
    finally:
        iw.shutdown()
    dropped = reported(tmp_path, semconv.EVENT_LOGS_DROPPED)
    kept = sum(1 for r in iter_logs(tmp_path) if str(r["body"]).startswith("line "))
    assert set(dropped) == {"queue_full"} and dropped["queue_full"] > 0
    assert kept + dropped["queue_full"] == 5_000
    result = iw.query.open(tmp_path).logs(since="1h", where={"region": "eu"}, limit=10_000)
    assert len(result.rows) == kept
    note = f"incomplete: {dropped['queue_full']:,} log records of this window did not reach the "
    assert any(n.startswith(note + "store (queue_full; 1 process)") for n in result.notes)
