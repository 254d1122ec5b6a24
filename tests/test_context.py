"""`iw.context`: request ids and tags on every span, kept apart across threads and tasks."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace

import inferwatch as iw
from tests.conftest import Captured


def test_tags_reach_spans_from_other_instrumentation(telemetry: Captured) -> None:
    with iw.context(request_id="r-9", region="eu"), iw.context(cohort="new"):
        assert iw.current_request_id() == "r-9"
        assert dict(iw.current_tags()) == {"region": "eu", "cohort": "new"}
        with trace.get_tracer("some.http.client").start_as_current_span("GET /features"):
            pass
    attrs = telemetry.span("GET /features").attributes or {}
    assert attrs["ml.request.id"] == "r-9"
    assert (attrs["region"], attrs["cohort"]) == ("eu", "new")
    assert iw.current_request_id() is None


def test_request_id_is_generated_and_inner_context_overrides(telemetry: Captured) -> None:
    with iw.context(region="eu") as scope:
        generated = iw.current_request_id()
        assert generated == scope.request_id and generated is not None and len(generated) == 16
        with iw.context(request_id="inner", region="us"):
            assert iw.current_request_id() == "inner"
            assert iw.current_tags()["region"] == "us"
        assert iw.current_request_id() == generated
    other = iw.context()
    with other:
        assert iw.current_request_id() != generated


def test_tag_values_are_made_valid_attribute_values(telemetry: Captured) -> None:
    tags = {"big": 2**80, "ratio": float("nan"), "obj": object, "flag": True}
    with iw.context(**tags), trace.get_tracer("t").start_as_current_span("s"):
        pass
    attrs = telemetry.span("s").attributes or {}
    assert attrs["big"] == str(2**80)
    assert attrs["ratio"] == "nan"
    assert attrs["obj"] == str(object)
    assert attrs["flag"] is True


def test_from_headers_reads_request_id_and_remote_parent(telemetry: Captured) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {
        "traceparent": f"00-{trace_id}-b7ad6b7169203331-01",
        "X-Request-ID": "req-from-gateway",
        "X-Region": "eu",
    }

    @iw.monitor(model="m")
    def predict(x: float) -> float:
        return x

    with iw.context.from_headers(headers, region=headers["X-Region"]):
        assert iw.current_request_id() == "req-from-gateway"
        predict(1.0)
    span = telemetry.span("inference m")
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert (span.attributes or {})["ml.request.id"] == "req-from-gateway"


def test_from_headers_falls_back_to_baggage_then_generates() -> None:
    with iw.context.from_headers({"baggage": "ml.request.id=from-baggage,user=1"}):
        assert iw.current_request_id() == "from-baggage"
    with iw.context.from_headers({}):
        assert iw.current_request_id() is not None


def test_executor_and_wrap_carry_the_scope_into_threads(telemetry: Captured) -> None:
    def work(i: int) -> tuple[str | None, str | None]:
        return iw.current_request_id(), str(iw.current_tags().get("region"))

    results: dict[int, tuple[str | None, str | None]] = {}
    with iw.ContextThreadPoolExecutor(max_workers=4) as pool:
        futures = {}
        for i in range(40):
            with iw.context(request_id=f"r-{i}", region=f"reg-{i}"):
                futures[i] = pool.submit(work, i)
        for i, future in futures.items():
            results[i] = future.result()
        with iw.context(request_id="mapped"):
            assert {rid for rid, _ in pool.map(work, range(5))} == {"mapped"}
    assert results == {i: (f"r-{i}", f"reg-{i}") for i in range(40)}

    seen: list[str | None] = []
    with iw.context(request_id="thread"):
        thread = threading.Thread(target=iw.wrap(lambda: seen.append(iw.current_request_id())))
    thread.start()
    thread.join()
    assert seen == ["thread"]


def test_threads_never_mix_request_ids(telemetry: Captured) -> None:
    @iw.monitor(model="m")
    def predict(x: float) -> str | None:
        return iw.current_request_id()

    errors: list[str] = []

    def client(n: int) -> None:
        for j in range(50):
            rid = f"t{n}-{j}"
            with iw.context(request_id=rid, region=f"r{n}"):
                seen = predict(float(j))
                if seen != rid:
                    errors.append(f"{rid} saw {seen}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    spans = telemetry.spans("inference m")
    assert len(spans) == 400
    for span in spans:
        attrs = span.attributes or {}
        assert str(attrs["ml.request.id"]).startswith(f"t{str(attrs['region'])[1:]}-")


@pytest.mark.parametrize("bad", [None, 12, ""])
def test_context_request_id_is_always_a_string(bad: object) -> None:
    with iw.context(request_id=bad) as scope:  # type: ignore[arg-type]
        assert isinstance(scope.request_id, str) and scope.request_id
