"""`@iw.monitor` and `iw.inference`: spans, metrics and status for every kind of function."""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import StatusCode

import inferwatch as iw
from tests.conftest import Captured


def test_plain_function_span_attributes_and_metrics(telemetry: Captured) -> None:
    @iw.monitor(model="fraud", version="3.1", features=["a", "b", "c"])
    def predict(X: np.ndarray) -> np.ndarray:
        return X.sum(axis=1)

    X = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, np.nan], [1.0, 1.0, 1.0]])
    with iw.context(request_id="r-1", region="eu", cohort="new"):
        result = predict(X)

    span = telemetry.span("inference fraud")
    attrs = dict(span.attributes or {})
    assert attrs["ml.model.name"] == "fraud"
    assert attrs["ml.model.version"] == "3.1"
    assert attrs["ml.request.id"] == "r-1"
    assert (attrs["region"], attrs["cohort"]) == ("eu", "new")
    assert attrs["ml.input.batch_size"] == 3
    assert attrs["ml.input.nan_count"] == 2
    assert attrs["ml.input.nan_rows"] == 2
    assert attrs["ml.prediction.count"] == 3
    assert attrs["ml.prediction.nan_count"] == 2
    assert attrs["ml.prediction.mean"] == pytest.approx(3.0)
    assert span.status.status_code == StatusCode.UNSET
    assert np.isnan(result).sum() == 2

    by_feature = {a["ml.feature"]: p.value for a, p in telemetry.points("ml.input.nan_count")}
    assert by_feature == {"b": 1, "c": 1}
    ((duration_attrs, duration),) = telemetry.points("ml.inference.duration")
    # Declared metric tags only: cohort and the request id stay off metrics.
    assert duration_attrs == {"ml.model.name": "fraud", "ml.model.version": "3.1", "region": "eu"}
    assert duration.count == 1
    ((_, values),) = telemetry.points("ml.prediction.value")
    assert values.count == 1 and values.sum == pytest.approx(3.0)


def test_negative_predictions_reach_the_histogram_as_flagged_magnitudes(
    telemetry: Captured,
) -> None:
    @iw.monitor(model="pnl")
    def predict(x: object) -> np.ndarray:
        return np.array([-2.0, -0.5, 1.0])

    predict([1.0])
    points = {a.get("ml.prediction.sign"): p for a, p in telemetry.points("ml.prediction.value")}
    assert set(points) == {None, "negative"}
    assert (points[None].count, points[None].sum) == (1, 1.0)
    assert (points["negative"].count, points["negative"].sum) == (2, 2.5)


def test_exception_passes_through_with_status_and_error_type(telemetry: Captured) -> None:
    boom = KeyError("missing feature")

    @iw.monitor(model="fraud")
    def predict(x: object) -> None:
        raise boom

    with pytest.raises(KeyError) as caught:
        predict([1.0])
    assert caught.value is boom
    # The user's frame is still the innermost one of the traceback.
    tb = caught.value.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    assert tb is not None and tb.tb_frame.f_code.co_name == "predict"

    span = telemetry.span("inference fraud")
    assert span.status.status_code == StatusCode.ERROR
    assert "missing feature" in (span.status.description or "")
    assert (span.attributes or {})["error.type"] == "KeyError"
    assert [e.name for e in span.events] == ["exception"]
    ((attrs, _),) = telemetry.points("ml.inference.duration")
    assert attrs["error.type"] == "KeyError"


def test_error_type_is_fully_qualified_for_non_builtins(telemetry: Captured) -> None:
    class ModelNotReady(Exception):
        pass

    @iw.monitor(model="m")
    def predict(x: object) -> None:
        raise ModelNotReady

    with pytest.raises(ModelNotReady):
        predict(1.0)
    error_type = (telemetry.span("inference m").attributes or {})["error.type"]
    assert (
        error_type
        == f"{__name__}.test_error_type_is_fully_qualified_for_non_builtins.<locals>.ModelNotReady"
    )


def test_return_value_is_the_same_object(telemetry: Captured) -> None:
    out = {"label": "cat"}

    @iw.monitor(model="m")
    def predict(x: object) -> dict[str, str]:
        return out

    assert predict("text") is out
    assert (telemetry.span("inference m").attributes or {})["ml.prediction.unsupported"] == 1


def test_wraps_preserves_metadata_and_methods_skip_self(telemetry: Captured) -> None:
    class Model:
        @iw.monitor(model="m", tags_from={"tenant": "customer"})
        def predict(self, X: list[float], tenant: str = "acme") -> float:
            """Docstring kept."""
            return sum(X)

    model = Model()
    assert Model.predict.__doc__ == "Docstring kept."
    assert Model.predict.__name__ == "predict"
    assert model.predict([1.0, float("nan")], tenant="zeta") != 0
    assert model.predict([1.0, 2.0]) == 3.0
    first, second = telemetry.spans("inference m")
    assert (first.attributes or {})["ml.input.nan_count"] == 1
    assert (first.attributes or {})["customer"] == "zeta"
    assert (second.attributes or {})["customer"] == "acme"  # the default value


def test_input_arg_names_the_input(telemetry: Captured) -> None:
    @iw.monitor(model="m", input_arg="features")
    def predict(model_id: str, features: list[str]) -> int:
        return len(features)

    predict("id-1", features=["a long text", "short"])
    attrs = telemetry.span("inference m").attributes or {}
    assert attrs["ml.input.batch_size"] == 2
    assert attrs["ml.input.length.max"] == len("a long text")


def test_unknown_argument_names_fail_at_decoration_time() -> None:
    with pytest.raises(TypeError, match="not a parameter"):

        @iw.monitor(model="m", input_arg="nope")
        def predict(x: object) -> None: ...

    with pytest.raises(TypeError, match="model must be a non-empty string"):
        iw.monitor(model="")


async def test_async_function(telemetry: Captured) -> None:
    @iw.monitor(model="async")
    async def predict(x: list[float]) -> str:
        await asyncio.sleep(0)
        return "spam"

    assert await predict([1.0, 2.0]) == "spam"
    attrs = telemetry.span("inference async").attributes or {}
    assert attrs["ml.prediction.class"] == "spam"
    ((attrs, counter),) = telemetry.points("ml.prediction.count")
    assert attrs["ml.prediction.class"] == "spam" and counter.value == 1


def test_generator_span_covers_iteration(telemetry: Captured) -> None:
    @iw.monitor(model="stream")
    def tokens(prompt: str):  # type: ignore[no-untyped-def]
        for word in prompt.split():
            assert iw.current_request_id() is not None  # the scope is current inside the body
            yield word
        return "done"

    with iw.context(request_id="r-gen"):
        assert list(tokens("a b c")) == ["a", "b", "c"]
        assert iw.current_request_id() == "r-gen"
    attrs = telemetry.span("inference stream").attributes or {}
    assert attrs["ml.stream.items"] == 3
    assert attrs["ml.stream.completed"] is True
    assert attrs["ml.request.id"] == "r-gen"
    assert attrs["ml.input.length"] == len("a b c")


def test_generator_closed_early_ends_span_and_detaches(telemetry: Captured) -> None:
    closed = []

    @iw.monitor(model="stream")
    def numbers(n: int):  # type: ignore[no-untyped-def]
        try:
            yield from range(n)
        finally:
            closed.append(True)

    gen = numbers(100)
    assert next(gen) == 0
    # Between items the consumer does not run inside the generator's span or scope.
    assert iw.current_request_id() is None
    gen.close()
    assert closed == [True]
    attrs = telemetry.span("inference stream").attributes or {}
    assert attrs["ml.stream.items"] == 1
    assert attrs["ml.stream.completed"] is False


def test_generator_exception_and_throw(telemetry: Captured) -> None:
    @iw.monitor(model="stream")
    def echo(x: int):  # type: ignore[no-untyped-def]
        try:
            yield 1
        except ValueError:
            yield "recovered"
        raise RuntimeError("end")

    gen = echo(0)
    assert next(gen) == 1
    assert gen.throw(ValueError("x")) == "recovered"
    with pytest.raises(RuntimeError, match="end"):
        next(gen)
    span = telemetry.span("inference stream")
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RuntimeError"


async def test_async_generator_and_aclose(telemetry: Captured) -> None:
    @iw.monitor(model="astream")
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert [i async for i in stream(3)] == [0, 1, 2]
    agen = stream(10)
    assert await agen.__anext__() == 0
    await agen.aclose()
    complete, early = telemetry.spans("inference astream")
    assert (complete.attributes or {})["ml.stream.items"] == 3
    assert (early.attributes or {})["ml.stream.completed"] is False
    assert complete.end_time is not None and early.end_time is not None


def test_inference_context_manager_with_stage_and_tags(telemetry: Captured) -> None:
    with iw.inference(model="ranker", version="2") as rec:
        rec.record_input(np.zeros((4, 8)))
        with rec.stage("postprocess"):
            pass
        rec.tag(region="us", experiment="b")
        rec.record_prediction(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]))

    span = telemetry.span("inference ranker")
    stage = telemetry.span("stage postprocess")
    assert stage.parent is not None and stage.parent.span_id == span.context.span_id
    attrs = span.attributes or {}
    assert attrs["ml.prediction.count"] == 4
    assert attrs["ml.prediction.class"] == "1"  # the most frequent class of the batch
    assert attrs["region"] == "us" and attrs["experiment"] == "b"
    counts = {a["ml.prediction.class"]: p.value for a, p in telemetry.points("ml.prediction.count")}
    assert counts == {"0": 1, "1": 3}
    # Tags declared as metric tags reach the metrics recorded after rec.tag().
    ((duration_attrs, _),) = telemetry.points("ml.inference.duration")
    assert duration_attrs["region"] == "us" and "experiment" not in duration_attrs
    ((stage_attrs, _),) = telemetry.points("ml.stage.duration")
    assert stage_attrs["ml.stage.name"] == "postprocess"


def test_stage_spans_carry_the_request_id_and_tags(telemetry: Captured) -> None:
    """A stage is part of its request: slicing stage spans by tag must find them."""
    with (
        iw.context(request_id="r-7", region="eu"),
        iw.inference(model="m") as rec,
        rec.stage("fetch"),
    ):
        pass
    # Outside a scope: the inference's own request id.
    with iw.inference(model="m") as rec, rec.stage("score"):
        pass
    fetch = telemetry.span("stage fetch").attributes or {}
    assert (fetch["ml.request.id"], fetch["region"]) == ("r-7", "eu")
    score = telemetry.span("stage score").attributes or {}
    assert score["ml.request.id"] == rec.request_id


async def test_inference_async_context_manager_records_error(telemetry: Captured) -> None:
    with pytest.raises(ZeroDivisionError):
        async with iw.inference(model="m") as rec:
            rec.record_input([1.0])
            _ = 1 / 0
    span = telemetry.span("inference m")
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ZeroDivisionError"


def test_nested_inference_shares_the_request_and_parents_spans(telemetry: Captured) -> None:
    @iw.monitor(model="inner")
    def inner(x: float) -> float:
        return x * 2

    @iw.monitor(model="outer")
    def outer(x: float) -> float:
        return inner(x) + 1

    assert outer(1.0) == 3.0
    outer_span, inner_span = telemetry.span("inference outer"), telemetry.span("inference inner")
    assert inner_span.parent is not None
    assert inner_span.parent.span_id == outer_span.context.span_id
    outer_id = (outer_span.attributes or {})["ml.request.id"]
    assert (inner_span.attributes or {})["ml.request.id"] == outer_id
    assert iw.current_request_id() is None


def test_class_labels_are_capped(telemetry: Captured) -> None:
    telemetry.reader = InMemoryMetricReader()
    iw.configure(metric_readers=[telemetry.reader], max_classes=2, strict=True)

    @iw.monitor(model="free-text")
    def predict(x: str) -> str:
        return x

    for label in ["a", "b", "c", "d"]:
        predict(label)
    counts = {a["ml.prediction.class"]: p.value for a, p in telemetry.points("ml.prediction.count")}
    assert counts == {"a": 1, "b": 1, "__other__": 2}


def test_unconfigured_use_falls_back_to_global_providers() -> None:
    iw.shutdown()

    @iw.monitor(model="m")
    def predict(x: float) -> float:
        return x + 1

    assert predict(1.0) == 2.0
    assert iw.internal_errors() == {}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup")
async def test_asyncio_tasks_keep_request_ids_apart(telemetry: Captured) -> None:
    @iw.monitor(model="m")
    async def predict(x: float) -> str | None:
        await asyncio.sleep(0.001 * x)
        return iw.current_request_id()

    async def request(i: int) -> tuple[str, str | None]:
        with iw.context(request_id=f"r-{i}", region=f"region-{i % 3}"):
            return f"r-{i}", await predict(float(i % 5))

    results = await asyncio.gather(*(request(i) for i in range(50)))
    assert all(expected == seen for expected, seen in results)
    for span in telemetry.spans("inference m"):
        attrs = span.attributes or {}
        i = int(str(attrs["ml.request.id"]).split("-")[1])
        assert attrs["region"] == f"region-{i % 3}"
