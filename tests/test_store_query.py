"""The embedded default end to end: configure() with no endpoint, traffic, then slicing."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import structlog

import inferwatch as iw
from inferwatch.store import iter_logs


def test_default_store_then_slice(tmp_path: Path) -> None:
    assert os.environ["INFERWATCH_STORE"]  # the autouse fixture points the default at tmp
    settings = iw.configure(service_name="store-e2e", metric_readers=[])
    assert settings.endpoint is None and settings.store == os.environ["INFERWATCH_STORE"]

    @iw.monitor(model="fraud", version="3.1")
    def predict(x: float) -> float:
        structlog.get_logger().info("scored", x=x)
        if x < 0:
            raise ValueError("negative")
        return x

    for i in range(60):
        region = "ap-south" if i % 3 == 0 else "eu"
        with iw.context(region=region), contextlib.suppress(ValueError):
            predict(-1.0 if i % 6 == 0 else 1.0)
    iw.shutdown()

    result = iw.query.open().slice(by=["region"], since="1h")
    rows = {r["region"]: r for r in result.rows}
    assert (rows["ap-south"]["requests"], rows["ap-south"]["errors"]) == (20, 10)
    assert (rows["eu"]["requests"], rows["eu"]["errors"]) == (40, 0)
    logs = list(iter_logs(settings.store))
    assert len([log for log in logs if log["body"] == "scored"]) == 60
    segments = sorted(p.name for p in Path(settings.store).iterdir())
    assert all(".open." not in name for name in segments)  # shutdown closed them
    assert all(oct(Path(settings.store, n).stat().st_mode)[-3:] == "600" for n in segments)
