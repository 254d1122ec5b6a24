"""Injection and access: hostile tags stay data end to end; files are private; secrets stay out.

* Spans with hostile tag names and values are written by the SDK into the local store, then
  sliced, filtered, bubbled up and listed as outliers on chDB, through the API and the CLI.
  (tests/test_query.py covers hand-written spans on both engines; this is the whole path.)
* The local store is owner-only whatever the process umask.
* ClickHouse credentials, from the URL or the environment, reach the server and nothing else:
  not logs, exceptions, tracebacks, repr() or the CLI's output.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import logging
import os
import stat
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch.cli import commands as cli
from inferwatch.query.engines import ClickHouseEngine
from inferwatch.store import SegmentWriter
from tests._otlp import free_port

pytest.importorskip("chdb")

Capsys = pytest.CaptureFixture[str]

# Names and values an attacker could put in a header or a request body that becomes a tag.
HOSTILE_KEY = "k'\"\\;--\x00é東 {k0:String}"
HOSTILE = [
    "\\' OR 1=1", "a\x00b", "région/東京", "'", '"', "--", ";", "{k0:String}",
    "') OR ('1'='1", "`", "a\\", "tab\there", "new\nline", "\u202eevil", "😀", "\ud800lone",
    "x'; DROP TABLE t; --",
]  # fmt: skip


# What a value becomes once exported: a lone surrogate cannot be encoded, it turns into U+FFFD.
def as_exported(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


STORED = {h: as_exported(h) for h in HOSTILE}
FAILING = HOSTILE[-1]  # its 34 requests all fail: bubble_up must find it


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- hostile tags, SDK to store to chDB --------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Counter[str]]]:
    """A store written by the SDK: value i of HOSTILE on 2*(i+1) requests, names on one each."""
    directory = tmp_path_factory.mktemp("hostile") / "store"
    iw.configure(service_name="hostile", store=directory, strict=True)

    @iw.monitor(model="m")
    def predict(x: float, fail: bool = False) -> float:
        if fail:
            raise ValueError("failed")
        return x

    expected: Counter[str] = Counter()
    for i, value in enumerate(HOSTILE):
        for j in range(2 * (i + 1)):
            tags = {HOSTILE_KEY: value, "region": "eu" if j % 2 else "us"}
            with iw.context(**tags), contextlib.suppress(ValueError):
                predict(1.0, fail=value == FAILING)
            expected[STORED[value]] += 1
    for value in HOSTILE:
        with iw.context(**{value: "named"}):
            predict(1.0)
    iw.shutdown()
    _internal.set_strict(False)
    assert _internal.internal_errors() == {}
    yield directory, expected


def test_hostile_values_written_by_the_sdk_round_trip(
    hostile_store: tuple[Path, Counter[str]],
) -> None:
    directory, expected = hostile_store
    spans = iw.query.open(directory)
    assert spans.engine.stats.skipped_lines == 0  # type: ignore[attr-defined]
    rows = spans.slice(by=[HOSTILE_KEY], since="1h", limit=1000).rows
    counts = {r[HOSTILE_KEY]: r["requests"] for r in rows if r[HOSTILE_KEY] != "(missing)"}
    assert counts == dict(expected)
    for value in HOSTILE:
        filtered = spans.slice(by=["region"], since="1h", where={HOSTILE_KEY: STORED[value]})
        assert sum(r["requests"] for r in filtered.rows) == expected[STORED[value]], value
        named = spans.slice(by=[STORED[value]], since="1h").rows
        assert [(r[STORED[value]], r["requests"]) for r in named if r["requests"] == 1] == [
            ("named", 1)
        ]
        assert spans.slice(by=["region"], since="1h", model=STORED[value]).rows == []
    total = sum(r["requests"] for r in spans.slice(by=["region"], since="1h").rows)
    assert total == sum(expected.values()) + len(HOSTILE)  # nothing dropped, nothing added


def test_hostile_values_in_bubble_up_and_outliers(hostile_store: tuple[Path, Counter[str]]) -> None:
    directory, expected = hostile_store
    spans = iw.query.open(directory)
    result = spans.bubble_up(since="1h", keys=[HOSTILE_KEY, "region"], max_distinct=100)
    assert result.rows, result.notes
    assert result.rows[0]["predicates"] == {HOSTILE_KEY: FAILING}
    assert result.rows[0]["outcomes"] == result.rows[0]["size"] == expected[FAILING]
    for value in (FAILING, "a\x00b", "new\nline", "\ud800lone"):
        rows = spans.outliers(since="1h", where={HOSTILE_KEY: STORED[value]}, limit=100).rows
        assert len(rows) == expected[STORED[value]]
        assert {r["tags"][HOSTILE_KEY] for r in rows} == {STORED[value]}


def test_hostile_values_through_the_cli(
    hostile_store: tuple[Path, Counter[str]], capsys: Capsys
) -> None:
    directory, expected = hostile_store
    store = ["--store", str(directory), "--since", "1h", "--format", "json"]
    code, out, err = run(capsys, "slice", "--by", HOSTILE_KEY, "--limit", "1000", *store)
    assert code == 0, err
    rows = json.loads(out)
    assert {r[HOSTILE_KEY]: r["requests"] for r in rows if r[HOSTILE_KEY] != "(missing)"} == (
        dict(expected)
    )
    for value in HOSTILE:
        code, out, err = run(capsys, "slice", "--by", "region", "--where",
                             f"{HOSTILE_KEY}={STORED[value]}", *store)  # fmt: skip
        assert code == 0, err
        assert sum(r["requests"] for r in json.loads(out)) == expected[STORED[value]], value
        code, out, err = run(capsys, "slice", "--by", "region", f"--model={STORED[value]}", *store)
        assert code == 0 and json.loads(out) == [], (value, err)
    code, out, err = run(capsys, "bubble-up", "--keys", f"{HOSTILE_KEY},region", *store)
    assert code == 0, err
    assert json.loads(out)[0]["predicates"] == {HOSTILE_KEY: FAILING}


def test_lone_surrogates_in_exception_text_keep_the_store_readable(tmp_path: Path) -> None:
    """Exception messages and log bodies are text inferwatch did not clean as tags."""
    directory = tmp_path / "store"
    iw.configure(service_name="surrogates", store=directory, strict=True)

    @iw.monitor(model="m")
    def predict(x: float) -> float:
        logging.getLogger("app").warning("body \ud800 here")
        raise ValueError("bad \udcff input")

    for _ in range(3):
        with iw.context(region="eu"), contextlib.suppress(ValueError):
            predict(1.0)
    iw.shutdown()
    _internal.set_strict(False)
    spans = iw.query.open(directory)
    (row,) = spans.slice(by=["region"], since="1h").rows
    assert (row["requests"], row["errors"]) == (3, 3)
    assert spans.engine.stats.skipped_lines == 0  # type: ignore[attr-defined]
    bodies = [
        record["body"]["stringValue"]
        for path in directory.glob("logs-*")
        for line in path.read_text().splitlines()
        for resource in json.loads(line)["resourceLogs"]
        for scope in resource["scopeLogs"]
        for record in scope["logRecords"]
    ]
    assert bodies == [as_exported("body \ud800 here")] * 3


# -- file permissions --------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory.parent)): stat.S_IMODE(p.stat().st_mode)
        for p in [directory, *directory.rglob("*")]
    }


@pytest.mark.usefixtures("permissive_umask")
def test_store_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "store"
    iw.configure(service_name="private", store=directory, strict=True)

    @iw.monitor(model="m")
    def predict(x: float) -> float:
        logging.getLogger("app").warning("scored")
        return x

    predict(1.0)
    iw.shutdown()
    _internal.set_strict(False)
    found = modes(directory)
    signals = {name.split("/")[-1].split("-")[0] for name in found if name != "store"}
    assert signals == {"traces", "logs"}, found
    assert found.pop("store") == 0o700
    assert set(found.values()) == {0o600}, found


@pytest.mark.usefixtures("permissive_umask")
def test_rotated_segments_and_a_permissive_directory_stay_private(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o777)
    writer = SegmentWriter(directory, max_segment_bytes=64)
    for i in range(5):
        writer.write_line(b'{"line": %d, "padding": "%s"}' % (i, b"x" * 40))
    writer.close()
    found = modes(directory)
    found.pop("shared")
    assert len(found) == 5 and all(name.endswith(".jsonl") for name in found)
    assert set(found.values()) == {0o600}, found


# -- credentials -------------------------------------------------------------------------------

PASSWORD = "pw1Zq/Xk9#Rt7?Lm3:Vb8@Hn2"  # unescaped '/', '#', '?', ':' and '@' in a URL
FRAGMENTS = ("pw1Zq", "Xk9", "Rt7", "Lm3", "Vb8", "Hn2")
ENV_PASSWORD = "env-Pw%41-Qx7"  # taken as it is: environment values are not URL-encoded


def leaked(text: str, fragments: tuple[str, ...] = FRAGMENTS) -> list[str]:
    return [f for f in fragments if f in text]


class _ClickHouse(http.server.BaseHTTPRequestHandler):
    """Just enough of ClickHouse's HTTP interface for the driver to connect; every other query
    fails as a missing table would. Records the credentials each request carried."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            self.seen.append(base64.b64decode(auth[6:]).decode())
        if b"version()" in body:
            self._answer(200, b"24.8.1.1\tUTC\n")
        elif b"system.settings" in body:
            self._answer(200, b"")  # Native format, no blocks: no settings
        else:
            self._answer(404, b"Code: 60. DB::Exception: Unknown table expression identifier "
                              b"'otel.otel_traces'. (UNKNOWN_TABLE)\n")  # fmt: skip

    def _answer(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        if code != 200:
            self.send_header("X-ClickHouse-Exception-Code", "60")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def clickhouse() -> Iterator[tuple[int, list[str]]]:
    pytest.importorskip("clickhouse_connect")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClickHouse)
    _ClickHouse.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1], _ClickHouse.seen
    server.shutdown()
    server.server_close()


def failure_text(error: BaseException) -> str:
    """Everything an exception shows: message, repr, the chained causes' tracebacks."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def test_url_credentials_reach_the_server_and_nothing_else(
    clickhouse: tuple[int, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    port, seen = clickhouse
    caplog.set_level(logging.DEBUG)
    quoted = PASSWORD.replace("/", "%2F").replace("#", "%23").replace("?", "%3F")
    for password in (quoted, PASSWORD):  # percent-encoded, and raw
        engine = ClickHouseEngine(f"clickhouse://alice:{password}@127.0.0.1:{port}/otel")
        spans = iw.query.Spans(engine)
        with pytest.raises(Exception) as raised:
            spans.slice(by=["region"], since="1h")
        assert "UNKNOWN_TABLE" in str(raised.value)
        shown = "\n".join([repr(engine), repr(spans), str(vars(spans)), failure_text(raised.value)])
        assert leaked(shown + caplog.text) == []
    assert seen and set(seen) == {f"alice:{PASSWORD}"}


def test_environment_credentials_reach_the_server_and_nothing_else(
    clickhouse: tuple[int, list[str]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    port, seen = clickhouse
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CLICKHOUSE_USER", "svc-reader")
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", ENV_PASSWORD)
    url = f"clickhouse://127.0.0.1:{port}/otel"
    code, out, err = run(capsys, "slice", "--by", "region", "--store", url)
    assert code == 1 and "UNKNOWN_TABLE" in err
    assert set(seen) == {f"svc-reader:{ENV_PASSWORD}"}
    assert leaked(out + err + caplog.text, ("Pw%41", "PwA", "Qx7")) == []


@pytest.mark.parametrize("where", ["url", "environment"])
def test_credentials_stay_out_of_connection_failures(
    where: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    """Nothing listens on the port: the driver's errors, our logs, the CLI (and --debug)."""
    pytest.importorskip("clickhouse_connect")
    caplog.set_level(logging.DEBUG)
    port = free_port()
    if where == "url":
        url = f"clickhouse://alice:{PASSWORD}@127.0.0.1:{port}/otel"
    else:
        monkeypatch.setenv("CLICKHOUSE_PASSWORD", PASSWORD)
        url = f"clickhouse://127.0.0.1:{port}/otel"
    with pytest.raises(Exception) as raised:
        iw.query.open(url)
    code, out, err = run(capsys, "slice", "--by", "region", "--store", url)
    assert code == 1 and "127.0.0.1" in err
    with pytest.raises(Exception) as debug:
        cli.main(["slice", "--by", "region", "--store", url, "--debug"])
    shown = failure_text(raised.value) + failure_text(debug.value) + out + err
    assert leaked(shown + caplog.text + "".join(capsys.readouterr())) == []


@pytest.mark.parametrize(
    "url",
    [
        f"clickhouse://alice:{PASSWORD}@127.0.0.1:99999/otel",  # bad port
        f"clickhouse://alice:{PASSWORD}@127.0.0.1:8123/not-an-identifier",
        f"clickhouse://alice:{PASSWORD}@127.0.0.1:8123/otel?table=a;b",
        f"Clickhouse://alice:{PASSWORD}@127.0.0.1:8123/otel",  # not recognised: a path
        f"clickhouse:/alice:{PASSWORD}@127.0.0.1:8123/otel",
    ],
)
def test_malformed_urls_are_reported_without_credentials(url: str, capsys: Capsys) -> None:
    pytest.importorskip("clickhouse_connect")
    with pytest.raises((ValueError, FileNotFoundError)) as raised:
        iw.query.open(url)
    code, out, err = run(capsys, "slice", "--by", "region", "--store", url)
    assert code == 2 and err.startswith("inferwatch: error: ")
    assert leaked(failure_text(raised.value) + out + err) == []


def test_otlp_headers_are_not_echoed_or_shown() -> None:
    token = f"Bearer {FRAGMENTS[0]}-token"  # a variable: tracebacks quote source lines
    with pytest.raises(iw.ConfigurationError) as raised:
        iw.configure(headers=f"Authorization={token},broken")
    assert leaked(failure_text(raised.value)) == []
    settings = iw.configure(headers={"Authorization": token}, store=False)
    try:
        assert settings.headers == {"Authorization": token}
        assert leaked(repr(settings) + str(settings)) == []
    finally:
        iw.shutdown()
