"""A planted incident, written through the SDK into a store as a service would write it.

Three regions serve requests for ``BASELINE_S`` seconds, every request logging an info line;
then, from a known moment (``Incident.start_ns``), every request from ap-south fails with a
``RuntimeError`` after logging one warning line (``PLANTED``), while the others go on as before.
Time is real (sub-second buckets), so the spans and log records carry the SDK's own timestamps.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

import inferwatch as iw

REGIONS = ("eu", "us", "ap-south")
PLANTED = "Feature store timeout after 3 retries"
INFO = "scored request"
BASELINE_S = 1.5
INCIDENT_S = 1.0
PACE_S = 0.002  # one request every ~2 ms: about 50 a 100 ms bucket


@dataclass
class Incident:
    store: Path
    start_ns: int = 0
    end_ns: int = 0
    began_ns: int = 0
    failed: list[str] = field(default_factory=list)  # request ids of the planted failures
    requests: dict[str, int] = field(default_factory=dict)  # region -> requests served


def plant_incident(store: Path, service: str = "incident-test") -> Incident:
    """Serve the traffic into ``store`` and return what was planted."""
    iw.configure(service_name=service, store=store, metric_readers=[])
    log = structlog.get_logger("service")
    logging.getLogger("service").setLevel(logging.INFO)
    incident = Incident(store)
    failing = False

    @iw.monitor(model="fraud", version="3.1")
    def predict(x: float, region: str) -> float:
        if failing and region == "ap-south":
            log.warning(PLANTED, attempt=3)
            raise RuntimeError("feature store unavailable")
        log.info(INFO, score=x)
        return x * 2

    incident.began_ns = time.time_ns()
    deadline = time.monotonic() + BASELINE_S
    i = 0
    while True:
        if not failing and time.monotonic() >= deadline:
            failing = True
            incident.start_ns = time.time_ns()
            deadline = time.monotonic() + INCIDENT_S
        elif failing and time.monotonic() >= deadline:
            break
        region = REGIONS[i % len(REGIONS)]
        request_id = f"req-{i:05d}"
        with iw.context(request_id=request_id, region=region), contextlib.suppress(RuntimeError):
            predict(float(i), region)
        if failing and region == "ap-south":
            incident.failed.append(request_id)
        incident.requests[region] = incident.requests.get(region, 0) + 1
        i += 1
        time.sleep(PACE_S)
    incident.end_ns = time.time_ns()
    iw.shutdown()
    return incident
