"""The label joiner over a large store: throughput, memory, and the cost of one incremental pass.

    .venv/bin/python benchmarks/bench_labels_join.py              # 1M spans + 1M labels (~10 min)
    .venv/bin/python benchmarks/bench_labels_join.py --n 100000   # a quicker look

The store is written through the SDK as a service writes it (``@iw.monitor`` inside
``iw.context(request_id, region)``, a classification model; every label posted from a process
without the prediction, so the joiner judges all of them). Then, each in a fresh process (so the
memory peak is the joiner's own):

* the first pass over ``n`` labels (``LabelJoiner.run``): seconds, labels per second, peak RSS;
* the same joiner's next pass after ``--new`` (10,000) more predictions and labels: what one
  ``--every 1m`` pass costs once the store is converted;
* a fresh ``--once`` process over the grown store (it converts the segments again);
* the baseline, in the same run: the same join hand-written in Python over the store's own
  reader (`inferwatch.store.iter_spans` / `iter_logs`, a dict by request id), with the ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_environment

REGIONS = ("eu", "us", "ap")


def write(store: Path, start: int, n: int, prefix: str = "r-") -> float:
    """Serve and label ``n`` requests into ``store`` (request ids ``prefix`` + number)."""
    import inferwatch as iw
    from inferwatch.delayed_labels import configure_feedback, feedback

    iw.configure(service_name="bench", store=str(store), metric_tags=["region"])
    configure_feedback(max_predictions=0)  # labels "from elsewhere": the joiner judges them all

    @iw.monitor(model="churn", version="1", prediction_kind="classification")
    def predict(x: str) -> str:
        return x

    began = time.perf_counter()
    for chunk in range(start, start + n, 5000):
        end = min(chunk + 5000, start + n)
        for i in range(chunk, end):
            with iw.context(request_id=f"{prefix}{i}", region=REGIONS[i % 3]):
                predict("stay")
        for i in range(chunk, end):
            feedback(f"{prefix}{i}", "stay" if i % 7 else "leave")
        iw.flush()  # keep the export queue short: nothing dropped
    iw.shutdown()
    return time.perf_counter() - began


class Discard:
    def __init__(self) -> None:
        self.points = 0

    def export(self, data: Any, **_: Any) -> Any:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        self.points += sum(
            len(m.data.data_points)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
        return MetricExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_join(store: Path, grow: int, start: int) -> dict[str, Any]:
    from inferwatch.delayed_labels.joiner import LabelJoiner

    joiner = LabelJoiner(store, exporter=Discard(), metric_tags=["region"], grace=1)
    began = time.perf_counter()
    first = joiner.run()
    out: dict[str, Any] = {
        "first_s": time.perf_counter() - began,
        "first_judged": first.judged,
        "first_peak_mib": _peak_mib(),
    }
    if grow:
        # Another process serves more requests meanwhile (new request ids); the next pass.
        prefix = f"g{time.time_ns()}-"
        command = [sys.executable, __file__, "--worker", "write", str(store), str(start)]
        subprocess.run([*command, str(grow), prefix], check=True)
        began = time.perf_counter()
        second = joiner.run()
        out.update(next_s=time.perf_counter() - began, next_judged=second.judged)
        out["peak_mib"] = _peak_mib()
    return out


def worker_baseline(store: Path) -> dict[str, Any]:
    """The hand-written join over the store reader: first label per request, judged."""
    from inferwatch.store import iter_logs, iter_spans

    began = time.perf_counter()
    predicted: dict[str, str] = {}
    for span in iter_spans(store):
        attributes = span["attributes"]
        if "ml.model.name" in attributes:
            predicted[attributes["ml.request.id"]] = attributes.get("ml.prediction.class")
    first: dict[str, str] = {}
    for record in iter_logs(store):
        if record.get("event_name") == "ml.feedback":
            attributes = record["attributes"]
            first.setdefault(attributes["ml.request.id"], attributes["ml.label.value"])
    correct = sum(1 for r, label in first.items() if predicted.get(r) == label)
    judged = sum(1 for r in first if r in predicted)
    return {
        "baseline_s": time.perf_counter() - began,
        "baseline_judged": judged,
        "baseline_correct": correct,
        "baseline_peak_mib": _peak_mib(),
    }


def _spawn(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="spans and labels in the store")
    parser.add_argument("--new", type=int, default=10_000, help="labels added before pass two")
    parser.add_argument("--store", help="reuse (or keep) the store here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, store, *rest = args.worker
        if kind == "write":
            seconds = write(Path(store), int(rest[0]), int(rest[1]), *rest[2:])
            print(json.dumps({"write_s": seconds}))
        elif kind == "join":
            print(json.dumps(worker_join(Path(store), int(rest[0]), int(rest[1]))))
        else:
            print(json.dumps(worker_baseline(Path(store))))
        return
    print_environment(["inferwatch", "chdb", "opentelemetry-sdk"])
    store = Path(args.store or tempfile.mkdtemp(prefix="bench-labels-")) / "store"
    if not store.exists():
        wrote = _spawn("write", str(store), "0", str(args.n))
        print(f"store written: {args.n:,} predictions + labels in {wrote['write_s']:.1f} s")
    size = sum(p.stat().st_size for p in store.rglob("*.jsonl"))
    print(f"store: {store} ({size / 2**20:,.0f} MiB of segments)")
    baseline = _spawn("baseline", str(store))
    joined = _spawn("join", str(store), str(args.new), str(args.n))
    once = _spawn("join", str(store), "0", "0")
    n = joined["first_judged"]  # (a reused store may hold more than --n)
    print()
    print(f"first pass, {n:,} labels:   {joined['first_s']:8.2f} s  "
          f"{n / joined['first_s']:>10,.0f} labels/s  peak RSS {joined['first_peak_mib']:,.0f} MiB"
          f"  (judged {joined['first_judged']:,})")  # fmt: skip
    b = baseline
    print(f"baseline (store reader + dict): {b['baseline_s']:8.2f} s  "
          f"{n / b['baseline_s']:>10,.0f} labels/s  peak RSS "
          f"{b['baseline_peak_mib']:,.0f} MiB  (judged {b['baseline_judged']:,})")  # fmt: skip
    print(f"  joiner / baseline time: {joined['first_s'] / baseline['baseline_s']:.2f}x")
    print(f"next pass, +{args.new:,} labels: {joined['next_s']:8.2f} s  (judged "
          f"{joined['next_judged']:,}; peak RSS {joined['peak_mib']:,.0f} MiB)")  # fmt: skip
    print(f"fresh --once after that:  {once['first_s']:8.2f} s  (judged {once['first_judged']:,}:"
          " everything was counted before)")  # fmt: skip


if __name__ == "__main__":
    main()
