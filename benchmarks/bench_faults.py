"""Latency of an instrumented call while the collector is up, down, slow or refusing (503).

    .venv/bin/python benchmarks/bench_faults.py                # both protocols (~1 min)
    .venv/bin/python benchmarks/bench_faults.py --protocol grpc --rounds 3

What an application feels when its telemetry backend misbehaves: the latency of each
`@iw.monitor` call (p50 and p99 of single calls, not loop means), printed as ratios to the same
call with the collector up. Each scenario is its own process running ``iw.configure`` with
inferwatch's defaults, pointed at:

* up       the rotel-agent collector, forwarding to an OTLP receiver
* down     a port nothing listens on (connection refused)
* slow     a receiver that accepts every request and never answers
* 503      a receiver that answers every export with HTTP 503 (gRPC: UNAVAILABLE)
* no DNS   a host name under ``.invalid`` that never resolves

The receivers run in processes of their own. The scenario processes stay alive for the whole
run and are timed round-robin, one batch of calls each per round (the order rotates), so every
scenario and "up" see the same machine load; ratios are the median of per-round ratios with
their range. Drops (a full queue) are counted by the SDK's own metrics and shown per scenario.
The monitored function takes a 1x32 float64 row with one NaN and returns a float.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import fmt_ratio, print_environment, print_table

ROOT = Path(__file__).resolve().parent.parent
MARKER = "BENCH-RESULT "
SCENARIOS = ("up", "down", "slow", "503", "no DNS")
DISTRIBUTIONS = ("inferwatch", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                 "opentelemetry-exporter-otlp-proto-grpc", "grpcio", "rotel")  # fmt: skip

_SERVER = """
import sys
sys.path.insert(0, sys.argv[2])
from tests._otlp import FaultyReceiver
receiver = FaultyReceiver().start()
if sys.argv[1] == "slow":
    receiver.hold()
elif sys.argv[1] != "up":
    receiver.refuse(int(sys.argv[1]))
print(f"http://{receiver.grpc_endpoint} {receiver.http_endpoint}", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
receiver.stop()
"""


# -- a scenario process: configure once, then time batches of calls on request ---------------------
def run_worker(endpoint: str, protocol: str) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import inferwatch as iw

    reader = InMemoryMetricReader()
    iw.configure(
        service_name="bench-faults", endpoint=endpoint, protocol=protocol,
        metric_readers=[reader], store=False,
    )  # fmt: skip

    @iw.monitor(model="bench", version="1")
    def predict(x: np.ndarray) -> float:
        return float(x[0, 1]) * 0.5 + 0.25

    x = np.random.default_rng(0).random((1, 32))
    x[0, 7] = np.nan
    clock = time.perf_counter_ns
    for command in sys.stdin:
        verb, _, arg = command.strip().partition(" ")
        if verb == "run":
            samples = []
            for _ in range(int(arg)):
                start = clock()
                predict(x)
                samples.append(clock() - start)
            print(MARKER + json.dumps(samples), flush=True)
        elif verb == "stats":
            print(MARKER + json.dumps(_span_counts(reader)), flush=True)
    iw.shutdown(timeout_ms=500)


def _span_counts(reader: Any) -> dict[str, int]:
    counts = {"exported": 0, "dropped": 0, "failed": 0}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    error = (point.attributes or {}).get("error.type")
                    if metric.name == "otel.sdk.processor.span.processed" and error:
                        counts["dropped"] += int(point.value)
                    elif metric.name == "otel.sdk.exporter.span.exported":
                        counts["failed" if error else "exported"] += int(point.value)
    return counts


class Worker:
    def __init__(self, endpoint: str, protocol: str) -> None:
        command = [sys.executable, __file__, "--worker", endpoint, "--protocol", protocol]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
        raise SystemExit(f"worker exited (code {self.proc.wait()})")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- the parent: collectors, one worker per scenario, rounds, the table ----------------------------
def start_server(mode: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, mode, str(ROOT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    grpc_url, http_url = proc.stdout.readline().split()
    return proc, grpc_url, http_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["grpc", "http/protobuf", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=7, help="timed batches per scenario")
    parser.add_argument("--calls", type=int, default=2000, help="calls per batch")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.protocol)
        return

    sys.path.insert(0, str(ROOT))
    from tests._otlp import RotelCollector, free_port

    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    protocols = ["http/protobuf", "grpc"] if args.protocol == "both" else [args.protocol]
    servers = {mode: start_server(mode) for mode in ("up", "slow", "503")}
    down_port = free_port()
    collector = RotelCollector(servers["up"][1].removeprefix("http://")).start()
    try:
        for protocol in protocols:
            http = protocol == "http/protobuf"
            endpoints = {
                "up": collector.http_endpoint if http else collector.grpc_url,
                "down": f"http://127.0.0.1:{down_port}",
                "slow": servers["slow"][2 if http else 1],
                "503": servers["503"][2 if http else 1],
                "no DNS": f"http://otel-collector.invalid:{4318 if http else 4317}",
            }
            run_protocol(protocol, endpoints, args.rounds, args.calls)
    finally:
        collector.stop()
        for proc, _, _ in servers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
    print(f"Total wall time {time.perf_counter() - started:.1f} s")


def run_protocol(protocol: str, endpoints: dict[str, str], rounds: int, calls: int) -> None:
    workers = {name: Worker(endpoint, protocol) for name, endpoint in endpoints.items()}
    samples: dict[str, list[list[int]]] = {name: [] for name in workers}
    try:
        for worker in workers.values():  # warm up: caches, connections, first failed exports
            worker.ask(f"run {calls}")
        time.sleep(1.0)
        for r in range(rounds):
            order = list(workers)[r % len(workers) :] + list(workers)[: r % len(workers)]
            for name in order:
                samples[name].append(workers[name].ask(f"run {calls}"))
        counts = {name: worker.ask("stats") for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    print_results(protocol, samples, counts, rounds * calls)


def _quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def print_results(
    protocol: str,
    samples: dict[str, list[list[int]]],
    counts: dict[str, dict[str, int]],
    timed: int,
) -> None:
    up = samples["up"]
    rows = []
    for name, batches in samples.items():
        pooled = [s for batch in batches for s in batch]
        p50, p99 = _quantile(pooled, 0.5), _quantile(pooled, 0.99)
        r50 = [_quantile(b, 0.5) / _quantile(u, 0.5) for b, u in zip(batches, up, strict=True)]
        r99 = [_quantile(b, 0.99) / _quantile(u, 0.99) for b, u in zip(batches, up, strict=True)]
        c = counts[name]
        rows.append([
            name, f"{p50 / 1000:,.1f}", f"{p99 / 1000:,.1f}", fmt_ratio(r50), fmt_ratio(r99),
            f"{c['exported']:,}", f"{c['failed']:,}", f"{c['dropped']:,}",
        ])  # fmt: skip
    print(f"OTLP {protocol}: latency of one monitored call, us ({timed:,} timed calls each;")
    print("ratios = scenario / up per round, median [range]; spans counted by the SDK's metrics)")
    print_table(
        ["collector", "p50 us", "p99 us", "p50 ratio", "p99 ratio",
         "exported", "failed", "dropped"],
        rows,
    )  # fmt: skip
    print()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
