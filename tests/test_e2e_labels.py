"""End to end: labels posted to any of four gunicorn workers, all counted once by the joiner.

`tests/apps/labelled.py` serves a classifier under ``gunicorn -w 4`` (uvicorn workers) writing
the local store; every prediction's label is posted to the service's ``/feedback``, so it lands
on whichever worker accepts the connection (about one in four is the one that served it). The
accuracy per region is planted exactly. ``inferwatch labels join STORE --once --endpoint ...``
then exports the label counters to an OTLP receiver on 127.0.0.1: one count per label, the
planted accuracy per region from the counters, and a second ``--once`` counts nothing new.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._otlp import OtlpReceiver, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
PLANTED = {"eu": 0.9, "us": 0.75, "ap": 0.6}
PER_REGION = 200

pytest.importorskip("gunicorn", reason="gunicorn (the dev extra)")
pytest.importorskip("uvicorn_worker", reason="gunicorn's uvicorn worker (the dev extra)")
pytest.importorskip("chdb", reason="the store's query engine (the query extra)")


def _plan() -> list[tuple[str, str, float, bool]]:
    """(request id, region, input, whether its label agrees with the prediction)."""
    rng = random.Random(7)
    plan = []
    for region, accuracy in PLANTED.items():
        right = round(accuracy * PER_REGION)
        verdicts = [True] * right + [False] * (PER_REGION - right)
        rng.shuffle(verdicts)
        for i, verdict in enumerate(verdicts):
            plan.append((f"{region}-{i}", region, rng.uniform(-1, 1), verdict))
    rng.shuffle(plan)
    return plan


def _post(url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}{path}", json=body, headers={**headers, "connection": "close"}, timeout=10
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the service, serve and label every planned request, stop it: the store and stats."""
    tmp = tmp_path_factory.mktemp("labels")
    store = tmp / "store"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERWATCH_"))}
    env.update(INFERWATCH_STORE=str(store), PYTHONUNBUFFERED="1")
    command = [
        sys.executable, "-m", "gunicorn", "-w", "4", "-k", "uvicorn_worker.UvicornWorker",
        "-b", f"127.0.0.1:{port}", "tests.apps.labelled:app",
    ]  # fmt: skip
    log = tmp / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    plan = _plan()
    try:
        wait_until_serving(url, proc)
        with ThreadPoolExecutor(4) as pool:

            def serve(item: tuple[str, str, float, bool]) -> tuple[str, int]:
                rid, region, x, _ = item
                headers = {"x-request-id": rid, "x-region": region}
                reply = _post(url, "/predict", {"x": x}, headers)
                return reply["decision"], reply["pid"]

            served = list(pool.map(serve, plan))

            def label(args: tuple[tuple[str, str, float, bool], tuple[str, int]]) -> str:
                (rid, _, _, right), (decision, _) = args
                other = "decline" if decision == "approve" else "approve"
                reply = _post(
                    url, "/feedback", {"request_id": rid, "label": decision if right else other}, {}
                )
                status: str = reply["status"]
                return status

            statuses = list(pool.map(label, zip(plan, served, strict=True)))
            # Bad input: a label for a request never served, and a second label for one.
            extra = [_post(url, "/feedback", {"request_id": "never-served", "label": "approve"},
                           {})["status"]]  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    yield {
        "store": store,
        "statuses": statuses,
        "extra": extra,
        "pids": {pid for _, pid in served},
        "log": log.read_text(errors="replace"),
    }


def _join(store: Path, receiver: OtlpReceiver) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "inferwatch.cli.commands", "labels", "join", str(store), "--once",
        "--endpoint", receiver.http_endpoint, "--metric-tags", "region", "--grace", "1s",
        "--format", "json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERWATCH_"))}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _latest(receiver: OtlpReceiver, name: str) -> dict[tuple[Any, ...], float]:
    """The latest cumulative value of each series of ``name`` (instance id and attributes)."""
    latest: dict[tuple[Any, ...], tuple[int, float]] = {}
    for point in receiver.metrics():
        if point["name"] != name:
            continue
        key = (point["resource"].get("service.instance.id"), *sorted(point["attributes"].items()))
        if key not in latest or point["time_ns"] >= latest[key][0]:
            latest[key] = (point["time_ns"], point["value"])
    return {key: value for key, (_, value) in latest.items()}


def _by_region(
    values: dict[tuple[Any, ...], float], outcome: str | None = None
) -> dict[str, float]:
    totals: dict[str, float] = {}
    for key, value in values.items():
        attributes = dict(key[1:])
        if outcome is not None and attributes.get("ml.label.outcome") != outcome:
            continue
        region = str(attributes["region"])
        totals[region] = totals.get(region, 0) + value
    return totals


@pytest.mark.timeout(300)
def test_every_label_is_counted_once_with_the_planted_accuracy(served: dict[str, Any]) -> None:
    assert len(served["pids"]) > 1, "the predictions were served by more than one worker"
    # Without the joiner, each worker judges only its own predictions' labels.
    joined_here = served["statuses"].count("joined")
    assert 0 < joined_here < len(served["statuses"]), served["statuses"][:20]
    assert served["extra"] == ["unknown"]
    with OtlpReceiver() as receiver:
        first = _join(served["store"], receiver)
        assert first["exported"] and first["judged"] == len(PLANTED) * PER_REGION, first
        assert first["unjoined"] == {"unknown": 1}, first
        counts = _latest(receiver, "ml.label.count")
        assert sum(counts.values()) == len(PLANTED) * PER_REGION
        judged = _latest(receiver, "ml.label.judged")
        correct, everything = _by_region(judged, "correct"), _by_region(judged)
        accuracy = {region: correct[region] / everything[region] for region in everything}
        assert accuracy == pytest.approx(PLANTED, abs=0.01), accuracy
        unjoined = _latest(receiver, "ml.label.unjoined")
        assert [(dict(k[1:]), v) for k, v in unjoined.items()] == [
            ({"ml.label.join": "joiner", "ml.label.status": "unknown"}, 1)
        ]
        (instance,) = {key[0] for key in judged}
        services = {
            p["resource"].get("service.name")
            for p in receiver.metrics()
            if p["name"] == "ml.label.judged"
        }
        assert services == {"labelled-app"}, "under the serving service: one job with its workers"
        total = len(served["statuses"])
        print(f"judged by the serving workers themselves: {joined_here} of {total}")

        receiver.clear()
        second = _join(served["store"], receiver)
        assert second["exported"] and second["judged"] == 0 and second["unjoined"] == {}, second
        again = _latest(receiver, "ml.label.judged")
        assert again == judged, "the second pass re-exports the same cumulative totals"
        assert {key[0] for key in again} == {instance}
