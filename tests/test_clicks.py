"""Clicks reported later with `iw.feedback(request_id, clicks=...)`, joined to the served list.

A list recorded in an inference is remembered under the request id; a click finds its item's
position there and counts towards CTR by position, with an ``ml.feedback`` record linked to the
serving span. Time is a fake clock given to `configure_feedback`, so TTLs are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import inferwatch as iw
from inferwatch import ranking, semconv
from inferwatch.delayed_labels import configure_feedback, feedback
from inferwatch.ranking import RankingStats
from inferwatch.ranking.clicks import served_lists
from tests.conftest import Captured
from tests.test_feedback import START, Clock, feedback_records, unjoined

MODEL = "recs"


@pytest.fixture
def clock(telemetry: Captured) -> Iterator[Clock]:  # after `telemetry`, which resets the index
    fake = Clock()
    configure_feedback(ttl="1h", max_predictions=100, window="1h", clock=fake)
    ranking.configure(MODEL, catalogue_size=1000, window="1d")  # closed by hand below
    yield fake
    configure_feedback()
    ranking.reset()


def serve(request_id: str, items: list[Any], model: str = MODEL, **options: Any) -> Any:
    """One inference serving ``items`` under ``request_id``; returns its span."""
    with iw.context(request_id=request_id), iw.inference(model) as rec:
        rec.record_ranking(items, **options)
    return rec.span


def ctr(model: str = MODEL) -> dict[int, float]:
    windows = ranking.windows(model)
    assert windows is not None
    stats = windows.close_window()
    assert isinstance(stats, RankingStats)
    return stats.ctr_by_position


def test_a_click_finds_its_position_and_links_the_span(telemetry: Captured, clock: Clock) -> None:
    span = serve("r-1", ["i42", "i7", "i3"])
    clock.now += 30
    assert feedback("r-1", clicks=["i7"]) == "joined"
    assert ctr() == {1: 0.0, 2: 1.0, 3: 0.0}
    (record,) = feedback_records(telemetry)
    log = record.log_record
    context = span.get_span_context()
    assert (log.trace_id, log.span_id) == (context.trace_id, context.span_id)
    assert log.timestamp == int((START + 30) * 1e9)
    assert dict(log.attributes or {}) == {
        semconv.ML_MODEL_NAME: MODEL,
        semconv.ML_REQUEST_ID: "r-1",
        semconv.ML_LABEL_STATUS: "joined",
        semconv.ML_LABEL_DELAY: 30.0,
        semconv.ML_RANKING_CLICKS: 1,
        semconv.ML_RANKING_POSITION: (2,),
    }
    delays = telemetry.points(semconv.METRIC_LABEL_DELAY)
    assert [(a, p.sum) for a, p in delays] == [({semconv.ML_MODEL_NAME: MODEL}, 30.0)]


def test_a_list_served_while_the_lists_are_locked_is_remembered_without_waiting(
    telemetry: Captured, clock: Clock
) -> None:
    lists = served_lists()
    with lists._lock:  # as a click being joined holds it
        caller = threading.Thread(target=serve, args=("r-1", ["i42", "i7"]))
        caller.start()
        caller.join(10)
        assert not caller.is_alive(), "the serving call waited for the lists"
    assert len(lists) == 1
    assert feedback("r-1", clicks=["i7"]) == "joined"
    assert ctr() == {1: 0.0, 2: 1.0}


def test_explicit_positions_and_int_ids(telemetry: Captured, clock: Clock) -> None:
    serve("r-1", [10, 20, 30], positions=[4, 7, 9])
    assert feedback("r-1", clicks=20) == "joined"  # one id; 20 and "20" are the same item
    assert feedback("r-1", clicks=["30", 10]) == "joined"
    assert ctr() == {4: 1.0, 7: 1.0, 9: 1.0}


def test_each_item_counts_one_click_per_list(telemetry: Captured, clock: Clock) -> None:
    serve("r-1", ["a", "b", "c"])
    serve("r-2", ["a", "b", "c"])
    assert feedback("r-1", clicks=["a"]) == "joined"
    assert feedback("r-1", clicks=["a"]) == "duplicate"
    assert feedback("r-1", clicks=["a", "b"]) == "joined"  # b is new: counted, a is not again
    assert feedback("r-2", clicks=["a"]) == "joined"  # another list
    assert ctr() == {1: 1.0, 2: 0.5, 3: 0.0}
    assert unjoined(telemetry) == {"duplicate": 1}
    positions = [r.log_record.attributes[semconv.ML_RANKING_POSITION]  # type: ignore[index]
                 for r in feedback_records(telemetry)]  # fmt: skip
    assert positions == [(1,), (2,), (1,)]


@pytest.mark.parametrize("telemetry", [{"strict": False}], indirect=True)
def test_bad_clicks_are_counted_never_raised(telemetry: Captured, clock: Clock) -> None:
    serve("r-1", ["a", "b"])
    assert feedback("r-1", clicks=["a", "zzz"]) == "invalid"  # zzz was not shown: nothing counts
    assert feedback("r-1", "a", clicks=["a"]) == "invalid"  # a label and clicks
    assert feedback("r-1") == "invalid"  # neither
    for bad in ([], [1.5], {"a": 1}, [None], 2.5, b"a", [["a"]]):
        assert feedback("r-1", clicks=bad) == "invalid", bad
    assert feedback("never-served", clicks=["a"]) == "unknown"
    assert unjoined(telemetry) == {"invalid": 10, "unknown": 1}
    assert feedback_records(telemetry) == []
    assert feedback("r-1", clicks=["b"]) == "joined"  # the list is untouched by the bad reports
    assert ctr() == {1: 0.0, 2: 1.0}


def test_ttl_size_and_reconfiguration_bound_the_lists(telemetry: Captured, clock: Clock) -> None:
    serve("old", ["a"])
    clock.now += 3601
    serve("new", ["a"])
    assert feedback("old", clicks="a") == "unknown"  # past the ttl
    assert feedback("new", clicks="a") == "joined"
    for i in range(150):
        serve(f"r-{i}", ["a"])
    assert len(served_lists()) == 100  # max_predictions
    assert feedback("r-0", clicks="a") == "unknown"  # evicted, oldest first
    assert feedback("r-149", clicks="a") == "joined"
    configure_feedback(max_predictions=0, clock=clock)  # remembering off: forgets them too
    assert feedback("r-148", clicks="a") == "unknown"
    serve("r-150", ["a"])
    assert len(served_lists()) == 0


def test_lists_outside_an_inference_have_no_request(telemetry: Captured, clock: Clock) -> None:
    ranking.record_ranking(MODEL, ["a", "b"])
    assert len(served_lists()) == 0


def test_a_request_served_by_two_models_and_a_prediction(telemetry: Captured, clock: Clock) -> None:
    ranking.configure("other", window="1d")
    with iw.context(request_id="r-1"):
        with iw.inference(MODEL) as rec:
            rec.record_ranking(["a", "b"])
            rec.record_prediction("relevant")  # a label for this, clicks for the list
        with iw.inference("other") as rec:
            rec.record_ranking(["b", "a"])
    assert feedback("r-1", clicks=["a"], model="other") == "joined"
    assert feedback("r-1", clicks=["a"]) == "joined"  # the first list showing a: MODEL's
    assert feedback("r-1", "relevant") == "joined"
    assert ctr() == {1: 1.0, 2: 0.0}
    assert ctr("other") == {1: 0.0, 2: 1.0}
    assert telemetry.points(semconv.METRIC_LABEL_ACCURACY)[0][1].value == 1.0


def test_threads_serve_and_click_concurrently(telemetry: Captured, clock: Clock) -> None:
    configure_feedback(ttl="1h", max_predictions=10_000, clock=clock)
    per_thread, threads = 200, 4
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                serve(f"t{t}-{i}", ["a", "b", "c", "d"])
                assert feedback(f"t{t}-{i}", clicks=["abcd"[i % 4]]) == "joined"
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert ctr() == {p: 0.25 for p in range(1, 5)}  # each position clicked in 1 list of 4


def test_a_monitored_ranking_function(telemetry: Captured, clock: Clock) -> None:
    """`prediction_kind="ranking"`: what the function returns is the list, clicks join it."""

    @iw.monitor(model=MODEL, prediction_kind="ranking")
    def recommend(user: str) -> list[str]:
        return ["i42", "i7", "i3"]

    with iw.context(request_id="r-1"):
        assert recommend("u1") == ["i42", "i7", "i3"]
    assert feedback("r-1", clicks=["i3"]) == "joined"
    assert ctr() == {1: 0.0, 2: 0.0, 3: 1.0}
    (span,) = telemetry.spans(f"inference {MODEL}")
    attributes = dict(span.attributes or {})
    assert attributes[semconv.ML_RANKING_SIZE] == 3
    assert not any(key.startswith("ml.prediction.") for key in attributes)
    assert telemetry.points(semconv.METRIC_PREDICTION_COUNT) == []


@pytest.mark.parametrize("telemetry", [{"strict": False}], indirect=True)
def test_a_monitored_ranking_function_returning_no_list(telemetry: Captured, clock: Clock) -> None:
    @iw.monitor(model=MODEL, prediction_kind="ranking")
    def recommend(user: str) -> Any:
        return None

    assert recommend("u1") is None  # counted where a bad list is, never raised
    assert iw.internal_errors() == {"ranking.record": 1}


def test_an_unknown_prediction_kind_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="'ranking'"):
        iw.monitor(model=MODEL, prediction_kind="ranked")  # type: ignore[arg-type]
