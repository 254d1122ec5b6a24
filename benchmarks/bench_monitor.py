"""Per-call cost of `@iw.monitor` against a bare OpenTelemetry span, Logfire and OpenInference.

    .venv/bin/python benchmarks/bench_monitor.py             # the table (~30 s)
    .venv/bin/python benchmarks/bench_monitor.py --profile   # cProfile of the full iw.monitor path

Every variant runs in its own subprocess (inferwatch and Logfire both install global providers;
a fresh process also keeps one variant's threads and caches away from the others). Each process
times its own bare-OTel baseline interleaved with its cases, and ratios are taken within the
process, so load on a shared machine moves numerator and denominator together.

The monitored function takes a 1x32 float64 row holding one NaN and returns a scalar float.
Everything exports through a `BatchSpanProcessor` into an exporter that discards the spans.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _common import (
    US,
    DiscardingExporter,
    Result,
    fmt_ratio,
    fmt_us,
    measure,
    paired_ratios,
    per_call_times,
    percentile,
    print_environment,
    print_table,
    verdict,
)

TARGET = 2.0
BASELINE = "bare OTel span (baseline)"
HEADLINE = "iw.monitor, everything on"
APP_PROVIDERS = "iw.monitor, the application's own providers"
PERCENTILE_CALLS = 20_000
"""Calls per case timed one by one for the p50 / p99 table."""
PER_REQUEST = "  + `with iw.context(request_id, 2 tags)` per call"
MARKER = "BENCH-RESULT "
DISTRIBUTIONS = (
    "inferwatch",
    "numpy",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "logfire",
    "openinference-instrumentation",
)


def predict(x: np.ndarray) -> float:
    """The "model": as cheap as possible, so the table shows instrumentation cost."""
    return float(x[0, 1]) * 0.5 + 0.25


def configure_everything_on(
    exporter: DiscardingExporter | None = None,
) -> Callable[[np.ndarray], float]:
    """inferwatch into discarding span (``exporter``) and in-memory metric readers, `region` on
    metrics and no local store (the peers have none); the monitored `predict`."""
    import inferwatch as iw

    iw.configure(
        service_name="bench",
        span_processors=[BatchSpanProcessor(exporter or DiscardingExporter())],
        metric_readers=[InMemoryMetricReader()],
        metric_tags=["region"],
        store=False,
    )
    return iw.monitor(model="bench", version="1")(predict)


def make_input() -> np.ndarray:
    x = np.random.default_rng(0).random((1, 32))
    x[0, 7] = np.nan
    return x


def baseline_case(x: np.ndarray) -> tuple[Callable[[], object], TracerProvider, DiscardingExporter]:
    """A bare OTel span around the same function, on a provider of its own (not the global)."""
    exporter = DiscardingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.baseline")

    def traced(x: np.ndarray) -> float:
        with tracer.start_as_current_span("x", attributes={"a": 1}):
            return predict(x)

    return functools.partial(traced, x), provider, exporter


def _span_check(name: str, exporter: DiscardingExporter, expected: int) -> str:
    state = "ok" if exporter.exported == expected else "SPANS LOST (queue full?)"
    return f"{name}: {exporter.exported:,} of {expected:,} spans exported: {state}"


def _duration_points(reader: InMemoryMetricReader) -> int:
    """How many `ml.inference.duration` measurements the SDK aggregated (cumulative count)."""
    data = reader.get_metrics_data()
    count = 0
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "ml.inference.duration":
                    count += sum(p.count for p in metric.data.data_points)  # type: ignore[union-attr]
    return count


# -- workers: each runs in its own process -----------------------------------------------------


def worker_inferwatch(
    repeats: int,
    min_time: float,
    *,
    label: str,
    metric_tags: tuple[str, ...],
    reader: bool,
    breakdown: bool,
    exemplars: bool = True,
) -> tuple[dict[str, Result], list[str]]:
    import inferwatch as iw

    x = make_input()
    base, base_provider, base_exporter = baseline_case(x)
    exporter = DiscardingExporter()
    metric_reader = InMemoryMetricReader()
    readers = [metric_reader] if reader else []
    if not exemplars:  # the application's own MeterProvider, which inferwatch then uses
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider

        provider = MeterProvider(metric_readers=readers, exemplar_filter=AlwaysOffExemplarFilter())
        metrics.set_meter_provider(provider)
        readers = []
    iw.configure(
        service_name="bench",
        span_processors=[BatchSpanProcessor(exporter)],
        metric_readers=readers,
        metric_tags=metric_tags,
        # The spans go to the discarding exporter, as the peers' do. Without an endpoint the
        # local store would be a second pipeline (and it was: its worker encoding every span
        # took the GIL from the exporter's, whose SDK-default queue of 2048 overflowed).
        store=False,
    )
    full = iw.monitor(model="bench", version="1")(predict)
    cases: dict[str, Callable[[], object]] = {BASELINE: base, label: functools.partial(full, x)}
    iw_cases = [label]
    if breakdown:
        outside = contextvars.copy_context()  # taken before the iw.context below is entered
        clean = np.nan_to_num(x)

        def per_request(x: np.ndarray) -> float:
            with iw.context(request_id="req-1", region="eu", cohort="b"):
                return full(x)

        def monitored(**options: Any) -> Callable[[], object]:
            return functools.partial(iw.monitor(model="bench", version="1", **options)(predict), x)

        extra: dict[str, Callable[[], object]] = {
            "  record_input=False": monitored(record_input=False),
            "  record_prediction=False": monitored(record_prediction=False),
            "  record_input=False, record_prediction=False": monitored(
                record_input=False, record_prediction=False
            ),
            "  input row without NaN": functools.partial(full, clean),
            "  outside iw.context (fresh request id per call)": functools.partial(
                outside.run, full, x
            ),
            PER_REQUEST: functools.partial(per_request, x),
        }
        cases.update(extra)
        iw_cases += list(extra)
        cases["undecorated predict()"] = functools.partial(predict, x)
    with iw.context(request_id="req-1", region="eu", cohort="b"):
        results = measure(cases, repeats, min_time)
        times = per_call_times({BASELINE: cases[BASELINE], label: cases[label]}, PERCENTILE_CALLS)
    base_provider.force_flush()
    points = _duration_points(metric_reader) if reader else None
    iw.shutdown()
    base_provider.shutdown()
    results[BASELINE].calls += PERCENTILE_CALLS
    results[label].calls += PERCENTILE_CALLS
    _percentiles(results, times)
    expected = sum(results[c].calls for c in iw_cases)
    checks = [
        _span_check("baseline", base_exporter, results[BASELINE].calls),
        _span_check("inferwatch", exporter, expected),
    ]
    if points is not None:
        checks.append(f"inferwatch: {points:,} of {expected:,} durations in the metric reader")
    return results, checks


def _percentiles(results: dict[str, Result], times: dict[str, list[float]]) -> None:
    """Keep the p50 and p99 of each case's single calls with its result."""
    for label, values in times.items():
        results[label].percentiles = (percentile(values, 0.5), percentile(values, 0.99))


class DiscardingMetricExporter(MetricExporter):
    """Keeps only the last export's `ml.inference.duration` count (cumulative)."""

    def __init__(self) -> None:
        super().__init__()
        self.durations = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        for resource in metrics_data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "ml.inference.duration":
                        points = metric.data.data_points
                        self.durations = sum(p.count for p in points)  # type: ignore[union-attr]
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def worker_app_providers(repeats: int, min_time: float) -> tuple[dict[str, Result], list[str]]:
    """The application's own TracerProvider (a BatchSpanProcessor into a discarding exporter)
    and MeterProvider (a PeriodicExportingMetricReader into a discarding exporter), set before
    `iw.configure`, which reuses them; the baseline span on a provider of its own as elsewhere."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider

    import inferwatch as iw

    x = make_input()
    base, base_provider, base_exporter = baseline_case(x)
    exporter = DiscardingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metric_exporter = DiscardingMetricExporter()
    metric_reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=1000)
    meter_provider = MeterProvider(metric_readers=[metric_reader])
    metrics.set_meter_provider(meter_provider)
    iw.configure(service_name="bench", metric_tags=["region"], store=False)
    full = iw.monitor(model="bench", version="1")(predict)
    cases: dict[str, Callable[[], object]] = {
        BASELINE: base,
        APP_PROVIDERS: functools.partial(full, x),
    }
    with iw.context(request_id="req-1", region="eu", cohort="b"):
        results = measure(cases, repeats, min_time)
        times = per_call_times(cases, PERCENTILE_CALLS)
    iw.shutdown()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    base_provider.shutdown()
    for label in cases:
        results[label].calls += PERCENTILE_CALLS
    _percentiles(results, times)
    expected = results[APP_PROVIDERS].calls
    checks = [
        _span_check("baseline", base_exporter, results[BASELINE].calls),
        _span_check("inferwatch", exporter, expected),
        f"inferwatch: {metric_exporter.durations:,} of {expected:,} durations exported",
    ]
    return results, checks


def worker_logfire(repeats: int, min_time: float) -> tuple[dict[str, Result], list[str]]:
    import logfire

    x = make_input()
    base, base_provider, base_exporter = baseline_case(x)
    exporter = DiscardingExporter()
    logfire.configure(
        send_to_logfire=False,
        console=False,
        service_name="bench",
        additional_span_processors=[BatchSpanProcessor(exporter)],
    )
    default = logfire.instrument()(predict)
    no_args = logfire.instrument(extract_args=False)(predict)
    cases: dict[str, Callable[[], object]] = {
        BASELINE: base,
        "@logfire.instrument (default: records args)": functools.partial(default, x),
        "  @logfire.instrument(extract_args=False)": functools.partial(no_args, x),
    }
    results = measure(cases, repeats, min_time)
    base_provider.force_flush()
    logfire.force_flush()
    expected = sum(r.calls for label, r in results.items() if label != BASELINE)
    checks = [
        _span_check("baseline", base_exporter, results[BASELINE].calls),
        _span_check("logfire", exporter, expected),
    ]
    logfire.shutdown()
    return results, checks


def worker_openinference(repeats: int, min_time: float) -> tuple[dict[str, Result], list[str]]:
    from openinference.instrumentation import OITracer, TraceConfig

    x = make_input()
    base, base_provider, base_exporter = baseline_case(x)
    exporter = DiscardingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = OITracer(provider.get_tracer("bench.openinference"), config=TraceConfig())
    chain = tracer.chain(predict)
    cases: dict[str, Callable[[], object]] = {
        BASELINE: base,
        "OpenInference @tracer.chain (records in/out)": functools.partial(chain, x),
    }
    results = measure(cases, repeats, min_time)
    base_provider.force_flush()
    provider.force_flush()
    expected = sum(r.calls for label, r in results.items() if label != BASELINE)
    checks = [
        _span_check("baseline", base_exporter, results[BASELINE].calls),
        _span_check("openinference", exporter, expected),
    ]
    return results, checks


WORKERS: dict[str, tuple[str, Callable[[int, float], tuple[dict[str, Result], list[str]]]]] = {
    "inferwatch": (
        "inferwatch: iw.context(request id, region, cohort), metric_tags=['region']",
        functools.partial(
            worker_inferwatch,
            label=HEADLINE,
            metric_tags=("region",),
            reader=True,
            breakdown=True,
        ),
    ),
    "inferwatch-no-metric-tags": (
        "inferwatch, metric_tags=[]",
        functools.partial(
            worker_inferwatch,
            label="iw.monitor, metric_tags=[]",
            metric_tags=(),
            reader=True,
            breakdown=False,
        ),
    ),
    "inferwatch-no-metric-reader": (
        "inferwatch, MeterProvider without readers (instruments still called)",
        functools.partial(
            worker_inferwatch,
            label="iw.monitor, no metric reader",
            metric_tags=("region",),
            reader=False,
            breakdown=False,
        ),
    ),
    "inferwatch-no-exemplars": (
        "inferwatch, app's MeterProvider with AlwaysOffExemplarFilter",
        functools.partial(
            worker_inferwatch,
            label="iw.monitor, exemplars off",
            metric_tags=("region",),
            reader=True,
            breakdown=False,
            exemplars=False,
        ),
    ),
    "inferwatch-app-providers": (
        "inferwatch, the application's own TracerProvider and MeterProvider",
        worker_app_providers,
    ),
    "logfire": ("Pydantic Logfire", worker_logfire),
    "openinference": ("OpenInference", worker_openinference),
}


def run_worker(name: str, repeats: int, min_time: float) -> None:
    results, checks = WORKERS[name][1](repeats, min_time)
    payload = {
        "results": {
            k: {"per_call": r.per_call, "calls": r.calls, "percentiles": r.percentiles}
            for k, r in results.items()
        },
        "checks": checks,
    }
    print(MARKER + json.dumps(payload), flush=True)


# -- the parent: runs the workers one after another and prints the tables ----------------------


def spawn(name: str, repeats: int, min_time: float) -> tuple[dict[str, Result], list[str]]:
    command = [sys.executable, __file__, "--worker", name]
    command += ["--repeats", str(repeats), "--min-time", str(min_time)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {name!r} failed (exit code {proc.returncode})")
    payload = json.loads(lines[-1][len(MARKER) :])
    results = {
        label: Result(label, data["per_call"], data["calls"], data["percentiles"])
        for label, data in payload["results"].items()
    }
    return results, payload["checks"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed loops per case")
    parser.add_argument("--min-time", type=float, default=0.08, help="seconds per timed loop")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="cProfile the iw.monitor path")
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.repeats, args.min_time)
        return
    if args.profile:
        profile()
        return

    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    print(f"Timing: {args.repeats} repeats of ~{args.min_time:g} s loops per case, round-robin;")
    print("each variant in its own subprocess with its own interleaved baseline.\n")
    rows: list[list[str]] = []
    summary: list[tuple[str, float, list[float]]] = []
    checks: list[str] = []
    results_by_worker: dict[str, dict[str, Result]] = {}
    for name, (title, _) in WORKERS.items():
        results, worker_checks = spawn(name, args.repeats, args.min_time)
        results_by_worker[name] = results
        checks += [f"[{name}] {c}" for c in worker_checks]
        base = results[BASELINE]
        rows.append([f"[{title}]", "", "", "", "", ""])
        for label, result in results.items():
            ratios = paired_ratios(result, base)
            extra = "" if label == BASELINE else f"{(result.min - base.min) * US:+,.2f}"
            rows.append(
                [
                    f"  {label}",
                    fmt_us(result.min),
                    fmt_us(result.median),
                    extra,
                    f"{result.min / base.min:.2f}",
                    fmt_ratio(ratios),
                ]
            )
            if label != BASELINE and not label.startswith("  ") and "undecorated" not in label:
                summary.append((label, result.min / base.min, ratios))
        rows.append([""] * 6)
    print("Per-call cost in microseconds; ratio = case / bare OTel span timed in the same process")
    print_table(
        ["case", "min us", "median us", "+us vs base", "ratio", "paired ratio med [range]"],
        rows[:-1],
    )
    print()
    print(f"Ratios vs the bare OTel span (target for inferwatch: <= {TARGET:g})")
    width = max(len(label) for label, _, _ in summary)
    for label, ratio, ratios in summary:
        mark = f"  {verdict(ratio, TARGET)}" if label.startswith("iw.monitor") else ""
        print(f"  {label:<{width}}  {ratio:5.2f}  (paired {fmt_ratio(ratios)}){mark}")
    print()
    print_percentiles(results_by_worker)
    print_breakdown(results_by_worker)
    print("Checks")
    for check in checks:
        print(f"  {check}")
    print(f"\nTotal wall time {time.perf_counter() - started:.1f} s")


def print_percentiles(by_worker: dict[str, dict[str, Result]]) -> None:
    """p50 and p99 of single calls, against the baseline's of the same process."""
    rows = []
    for worker, results in by_worker.items():
        base = results[BASELINE].percentiles
        if base is None:
            continue
        for label, result in results.items():
            if label == BASELINE or result.percentiles is None:
                continue
            p50, p99 = result.percentiles
            rows.append(
                [
                    f"{label} [{worker}]",
                    fmt_us(base[0]),
                    fmt_us(p50),
                    f"{p50 / base[0]:.2f}",
                    fmt_us(base[1]),
                    fmt_us(p99),
                    f"{p99 / base[1]:.2f}",
                ]
            )
    print(f"Single calls, {PERCENTILE_CALLS:,} per case (us; ratio to the bare span's)")
    print_table(["case", "bare p50", "p50", "ratio", "bare p99", "p99", "ratio"], rows)
    print()


def print_breakdown(by_worker: dict[str, dict[str, Result]]) -> None:
    """Differences between cases of one process (and, marked, across processes) in us."""
    main = by_worker["inferwatch"]
    full = main[HEADLINE].min

    def delta(label: str) -> float:
        return (full - main[f"  {label}"].min) * US

    def cross(worker: str) -> float:
        # Normalised by each process's own baseline, then scaled by this process's baseline.
        results = by_worker[worker]
        (label,) = [k for k in results if k.startswith("iw.monitor")]
        other = results[label].min / results[BASELINE].min
        return (full / main[BASELINE].min - other) * main[BASELINE].min * US

    per_request = main[PER_REQUEST].min
    lines = [
        ("iw.monitor overhead over the bare call", (full - main["undecorated predict()"].min) * US),
        ("bare OTel span overhead over the bare call",
         (main[BASELINE].min - main["undecorated predict()"].min) * US),
        ("record_input (NaN summary + span attrs + metrics)", delta("record_input=False")),
        ("record_prediction (summary + span attrs + histogram)", delta("record_prediction=False")),
        ("both recordings", delta("record_input=False, record_prediction=False")),
        ("NaN in the row vs a clean row", delta("input row without NaN")),
        ("metric_tags=['region'] vs [] (across processes)", cross("inferwatch-no-metric-tags")),
        ("metric reader vs none (across processes)", cross("inferwatch-no-metric-reader")),
        ("exemplars on vs AlwaysOffExemplarFilter (across processes)",
         cross("inferwatch-no-exemplars")),
        ("entering iw.context per call", (per_request - full) * US),
        ("outside iw.context (own scope) vs inside",
         -delta("outside iw.context (fresh request id per call)")),
    ]  # fmt: skip
    print("Breakdown of the iw.monitor cost (differences of minima, us per call)")
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value:+8.2f}")
    print()


def profile() -> None:
    """cProfile the full iw.monitor path in this process (profiling inflates the figures)."""
    import cProfile
    import pstats

    import inferwatch as iw

    x = make_input()
    full = configure_everything_on()
    with iw.context(request_id="req-1", region="eu", cohort="b"):
        for _ in range(2000):
            full(x)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20_000):
            full(x)
        profiler.disable()
    iw.shutdown()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats("inferwatch|opentelemetry", 30)


if __name__ == "__main__":
    main()
