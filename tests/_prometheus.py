"""Debian's Prometheus, Alertmanager and promtool for the tests, on 127.0.0.1 and free ports.

``.ci/run`` installs them (packages ``prometheus`` and ``prometheus-alertmanager``). Without
them a test skips, saying which binary is missing, except where ``INFERWATCH_E2E_REQUIRED`` is
set (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._otlp import LOCALHOST, free_port, wait_until_serving

_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}


def binary(name: str) -> str:
    """The path of ``name``; skips (fails in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian: apt-get install {_PACKAGES[name]})"
        if os.environ.get("INFERWATCH_E2E_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class _Server:
    """A server binary the test started, stopped (and its log kept) at the end."""

    name = ""
    program = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.log = directory / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self, config: dict[str, Any], *flags: str) -> None:
        """Write ``config`` and run the binary with it and ``flags``, until it is ready."""
        path = self.directory / f"{self.name}.yml"
        path.write_text(yaml.safe_dump(config))
        command = [binary(self.program), f"--config.file={path}", *flags]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(self.url, self._process, timeout=30, path="/-/ready")
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{self.name}: {exc}:\n{self.log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Prometheus(_Server):
    """``prometheus`` scraping ``targets`` (job ``job``) every ``interval``, with rule files."""

    name = program = "prometheus"

    def start(
        self,
        job: str,
        targets: list[str],
        rule_files: list[Path],
        interval: str = "1s",
        alertmanager: str | None = None,
    ) -> Prometheus:
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        }
        if alertmanager is not None:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        self._start(
            config,
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={LOCALHOST}:{self.port}",
        )
        return self

    def api(self, path: str, **params: Any) -> Any:
        reply = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = reply.json()
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector ``expr`` at ``at`` (epoch seconds; default now)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def wait_for(self, expr: str, timeout: float = 30) -> None:
        """Until the instant query ``expr`` returns a series."""
        deadline = time.monotonic() + timeout
        while not self.query(expr):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr} returned nothing for {timeout} s")
            time.sleep(0.1)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step}
        return list(self.api("query_range", **params)["result"])


class Alertmanager(_Server):
    """``prometheus-alertmanager`` with ``config`` (a mapping), on its own, without a cluster."""

    name = "alertmanager"
    program = "prometheus-alertmanager"

    def start(self, config: dict[str, Any]) -> Alertmanager:
        self._start(
            config,
            f"--storage.path={self.directory / 'alertmanager-data'}",
            f"--web.listen-address={LOCALHOST}:{self.port}",
            "--cluster.listen-address=",
        )
        return self

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.receiver.record(self.path, json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 keeping every POST: (arrival time, path, JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, Any]] = []
        self._lock = threading.Lock()
        self._server = _WebhookServer((LOCALHOST, 0), _WebhookHandler)
        self._server.receiver = self
        self.url = f"http://{LOCALHOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, path: str, body: Any) -> None:
        with self._lock:
            self.received.append((time.time(), path, body))

    def posts(self) -> list[tuple[float, str, Any]]:
        with self._lock:
            return list(self.received)
