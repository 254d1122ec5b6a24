"""Shared pieces of the benchmarks: a discarding exporter, the timer, the environment, tables.

Timing method: every case is a zero-argument callable. Each is warmed up, then calibrated so one
timed loop lasts about ``min_time`` seconds. The cases are then timed round-robin, one loop each
per repeat (the order rotates every repeat), so a case and its baseline see the same machine load.
Per case we keep every repeat's per-call time and report the minimum (the least disturbed run)
and the median. Ratios are taken both as min/min and as the median of per-repeat ratios (a case
against its baseline measured in the same round). The garbage collector stays enabled (unlike
`timeit`), since allocating telemetry objects and collecting them is part of the real cost;
`gc.collect()` runs before each loop so no loop pays for the previous one's garbage.
"""

from __future__ import annotations

import datetime
import gc
import importlib.metadata
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

US = 1e6


class DiscardingExporter(SpanExporter):
    """Drops every span; counts them so the benchmark can check none were lost in the queue."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


@dataclass
class Result:
    label: str
    per_call: list[float] = field(default_factory=list)
    """Seconds per call, one entry per repeat."""
    calls: int = 0
    """Calls made in total (warm-up and calibration included)."""
    percentiles: tuple[float, float] | None = None
    """p50 and p99 of single calls in seconds (`per_call_times`), where measured."""

    @property
    def min(self) -> float:
        return min(self.per_call)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)


def _loop(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    repeat = itertools.repeat(None, n)
    start = time.perf_counter()
    for _ in repeat:
        fn()
    return time.perf_counter() - start


def measure(
    cases: dict[str, Callable[[], object]], repeats: int, min_time: float
) -> dict[str, Result]:
    """Time every case ``repeats`` times, round-robin; see the module docstring."""
    results = {label: Result(label) for label in cases}
    sizes: dict[str, int] = {}
    for label, fn in cases.items():
        # Warm up before calibrating: first calls pay for lazy imports and caches.
        warm_until = time.perf_counter() + min_time / 2
        while time.perf_counter() < warm_until or results[label].calls < 10:
            fn()
            results[label].calls += 1
        n = 1
        while True:  # calibrate: grow n until one loop takes a fifth of min_time
            elapsed = _loop(fn, n)
            results[label].calls += n
            if elapsed >= min_time / 5:
                break
            n *= 4 if elapsed < min_time / 50 else 2
        sizes[label] = max(1, round(n * min_time / elapsed))
        _loop(fn, sizes[label])  # warm-up at full size (fills caches, queues, metric series)
        results[label].calls += sizes[label]
    labels = list(cases)
    for r in range(repeats):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            n = sizes[label]
            results[label].per_call.append(_loop(cases[label], n) / n)
            results[label].calls += n
    return results


def per_call_times(
    cases: dict[str, Callable[[], object]], calls: int, chunk: int = 50
) -> dict[str, list[float]]:
    """Seconds of each single call, ``calls`` per case, for percentiles (p50, p99) that minima
    and loop means hide: the cases take turns in chunks of ``chunk`` calls, so they share the
    machine's load. Each call is timed with two ``perf_counter_ns`` reads (~0.1 us, in every
    case alike); the GC stays on, as in `measure`."""
    times: dict[str, list[float]] = {label: [] for label in cases}
    clock = time.perf_counter_ns
    gc.collect()
    for _ in range(max(1, calls // chunk)):
        for label, fn in cases.items():
            record = times[label].append
            for _ in range(chunk):
                start = clock()
                fn()
                record((clock() - start) / 1e9)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def paired_ratios(case: Result, baseline: Result) -> list[float]:
    return [c / b for c, b in zip(case.per_call, baseline.per_call, strict=True)]


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def source_revision() -> str:
    """The git commit of the checkout, flagged when sdk/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sdk"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    return f"git {head}" + (" + uncommitted changes in sdk/" if dirty else "")


def print_environment(distributions: Sequence[str]) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    rows = [
        ("date", now),
        ("python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("cpu", f"{cpu_model()}; {usable} usable of {os.cpu_count()} cores"),
        ("load average", f"{load} (1, 5, 15 min)"),
    ]
    rows += [(dist, version(dist)) for dist in distributions]
    rows.append(("inferwatch source", source_revision()))
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    rows.append(("BLAS env", ", ".join(f"{k}={v}" for k, v in sorted(blas.items())) or "(none)"))
    width = max(len(k) for k, _ in rows)
    print("Environment")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row) if row[0] else "")


def fmt_us(seconds: float) -> str:
    return f"{seconds * US:,.2f}"


def fmt_ratio(ratios: Sequence[float]) -> str:
    """Median of the paired ratios with their spread: ``5.83 [5.71-6.02]``."""
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def verdict(ratio: float, target: float) -> str:
    return f"<= {target:g}: {'yes' if ratio <= target else 'NO'}"
