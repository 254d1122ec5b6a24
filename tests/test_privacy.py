"""Privacy: raw inputs never leave the process; tags and log attributes are scrubbed on the way.

Every test configures inferwatch with the real OTel SDK pipelines (in-memory span exporter,
metric reader and log exporter) and, where it matters, the local store on disk, then looks at
what was exported.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch.export import privacy
from inferwatch.export.privacy import Scrubber
from tests.conftest import Captured

pd = pytest.importorskip("pandas")

Start = Callable[..., Captured]
KEY = "k" * 16 + "-privacy-test"


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(**configure_options)``: inferwatch exporting to memory (and to the store)."""

    def configure(**options: Any) -> Captured:
        captured = Captured()
        options.setdefault("strict", True)
        options.setdefault("metric_tags", ["region"])
        iw.configure(
            service_name="privacy-test",
            span_processors=[SimpleSpanProcessor(captured.exporter)],
            metric_readers=[captured.reader],
            log_processors=[SimpleLogRecordProcessor(captured.log_exporter)],
            **options,
        )
        _internal.reset_internal_errors()
        return captured

    yield configure
    assert iw.current_request_id() is None, "a request scope leaked out of the test"
    iw.shutdown()
    _internal.set_strict(False)
    structlog.reset_defaults()


def exported(captured: Captured) -> str:
    """Everything exported so far, as text: spans, metric points, log records."""
    parts = [span.to_json(indent=None) for span in captured.spans()]
    data = captured.reader.get_metrics_data()
    if data is not None:
        parts.append(data.to_json(indent=None))
    parts += [record.to_json(indent=None) for record in captured.logs()]
    return "\n".join(parts)


def store_bytes(directory: Path) -> bytes:
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files, f"nothing was written to {directory}"
    return b"\n".join(p.read_bytes() for p in files)


def span_attributes(captured: Captured, name: str = "inference m") -> dict[str, Any]:
    """The attributes of the latest span of that name."""
    return dict(captured.spans(name)[-1].attributes or {})


def log_attributes(captured: Captured, body: str) -> dict[str, Any]:
    (record,) = [r.log_record for r in captured.logs() if r.log_record.body == body]
    return dict(record.attributes or {})


# -- raw inputs --------------------------------------------------------------------------------

CANARY_TEXT = "CANARY-TEXT-5f1c"
CANARY_CITY = "CANARY-CITY-77ab"
CANARY_NUMBER = 987654.3125  # exact in binary: any float formatting of it would show "987654.3"


def test_raw_inputs_appear_nowhere_in_spans_metrics_logs_or_store(
    start: Start, tmp_path: Path
) -> None:
    """Canaries in features, categories and texts go through every check that reports on
    inputs (summaries, data checks, schema validation, drift windows, logs) and never out."""
    store = tmp_path / "store"
    captured = start(store=store)
    rng = np.random.default_rng(7)
    baseline = iw.Profile.build(
        pd.DataFrame(
            {"amount": rng.normal(50, 5, 5000), "city": rng.choice(["rome", "oslo"], 5000)}
        )
    )
    schema = iw.Schema(
        features=[
            iw.Feature(name="amount", max=1000.0),
            iw.Feature(name="city", allowed={"rome", "oslo"}),
            iw.Feature(name="note", pattern=r"[a-z ]*"),
        ]
    )

    @iw.monitor(model="m", baseline=baseline, window="1h", schema=schema, tags_from=["region"])
    def predict(frame: Any, region: str = "eu") -> float:
        structlog.get_logger().info("scored", rows=len(frame))
        return 0.5

    @iw.monitor(model="texts", max_input_length=8, long_input_quantile=None)
    def classify(texts: list[str]) -> list[str]:
        return ["spam" for _ in texts]

    @iw.monitor(model="failing")
    def failing(rows: list[dict[str, Any]]) -> float:
        raise RuntimeError("the model could not score this batch")

    frame = pd.DataFrame(
        {
            "amount": [CANARY_NUMBER, np.nan, 51.0],
            "city": [CANARY_CITY, "oslo", "rome"],
            "note": [CANARY_TEXT, None, "fine"],
        }
    )
    for _ in range(20):
        predict(frame, region="eu")
    classify([f"{CANARY_TEXT} and then some more", "short"])
    with pytest.raises(RuntimeError):
        failing([{"note": CANARY_TEXT, "amount": CANARY_NUMBER, "city": None}])
    report = predict.drift.close_window()  # type: ignore[attr-defined]
    predict.drift.stop()  # type: ignore[attr-defined]

    # The checks did run and report (so the canaries went through them).
    assert report is not None and "city" in report.drifted_columns
    attrs = span_attributes(captured)
    assert attrs["ml.input.violations"] >= 2 and attrs["ml.input.nan_count"] == 2
    assert span_attributes(captured, "inference texts")["ml.input.long"] is True
    events = {r.log_record.event_name for r in captured.logs()}
    assert {"ml.input.long", "ml.drift.detected"} <= events

    text = exported(captured)
    iw.shutdown()
    on_disk = store_bytes(store)
    for canary in (CANARY_TEXT, CANARY_CITY, repr(CANARY_NUMBER), "987654.3"):
        assert canary not in text
        assert canary.encode() not in on_disk


def test_string_predictions_are_outputs_not_inputs(start: Start) -> None:
    """What the model returns is summarised as a prediction, whatever the input held."""
    captured = start()

    @iw.monitor(model="m", class_names=["ham", "spam"])
    def classify(texts: list[str]) -> np.ndarray:
        return np.array([1 for _ in texts])

    classify([CANARY_TEXT])
    assert span_attributes(captured)["ml.prediction.class"] == "spam"
    assert CANARY_TEXT not in exported(captured)


def test_generated_text_and_e_mail_labels_are_not_exported(start: Start) -> None:
    """A model that returns text: long strings are reported as `__text__`, e-mail-like labels are
    scrubbed, short ordinary labels are kept."""
    captured = start()
    letter = f"Dear customer, your reference is {CANARY_TEXT}; we will get back to you shortly."

    @iw.monitor(model="m")
    def reply(x: str) -> str:
        return letter if x == "long" else x

    assert reply("long") == letter
    assert span_attributes(captured)["ml.prediction.class"] == "__text__"
    reply("bob@example.org")
    assert span_attributes(captured)["ml.prediction.class"] == "[REDACTED:email]"
    reply("approve")
    assert span_attributes(captured)["ml.prediction.class"] == "approve"
    text = exported(captured)
    assert CANARY_TEXT not in text and "bob@example.org" not in text


# -- tags --------------------------------------------------------------------------------------

SECRET = "hunter2-Zq9"
EMAIL = "alice.smith+ml@example.co.uk"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def test_every_way_a_tag_enters_is_scrubbed(start: Start) -> None:
    """iw.context, from_headers (header and baggage), rec.tag, tags_from, other spans."""
    captured = start()

    @iw.monitor(model="m", tags_from={"who": "customer"})
    def predict(x: float, who: str = "") -> float:
        with trace.get_tracer("app").start_as_current_span("db lookup"):
            pass
        return x

    with iw.context(region=EMAIL, password=SECRET, note=f"contact {EMAIL} today"):
        predict(1.0, who=EMAIL)
    attrs = span_attributes(captured)
    assert attrs["region"] == "[REDACTED:email]"
    assert attrs["password"] == "[REDACTED:password]"
    assert attrs["note"] == "contact [REDACTED:email] today"
    assert attrs["customer"] == "[REDACTED:email]"
    assert dict(captured.span("db lookup").attributes or {})["region"] == "[REDACTED:email]"
    points = captured.points("ml.inference.duration")
    assert points and {a["region"] for a, _ in points} == {"[REDACTED:email]"}

    headers = {"X-Request-ID": f"req {EMAIL}", "Authorization": BEARER}
    with iw.context.from_headers(headers, session_id="s-123"), iw.inference("h") as rec:
        rec.tag(api_key=SECRET, cookie=f"sid={SECRET}", auth_header=BEARER)
    attrs = span_attributes(captured, "inference h")
    assert attrs["ml.request.id"] == "req [REDACTED:email]"
    assert attrs["session_id"] == "[REDACTED:session]"
    assert attrs["api_key"] == "[REDACTED:api_key]"
    assert attrs["cookie"] == "[REDACTED:cookie]"
    assert attrs["auth_header"] == "[REDACTED:bearer]"

    baggage = {"baggage": "ml.request.id=carol%40example.org"}  # percent-decoded first
    with iw.context.from_headers(baggage), iw.inference("b"):
        pass
    assert span_attributes(captured, "inference b")["ml.request.id"] == "[REDACTED:email]"

    text = exported(captured)
    for secret in (SECRET, EMAIL, "carol", BEARER.split()[1]):
        assert secret not in text


def test_counts_and_ordinary_tags_are_kept(start: Start) -> None:
    captured = start()
    tags = {"max_tokens": 512, "token_count": 3, "session_length": 12.5, "author": "me",
            "region": "eu-west-1", "path": "/v1/predict?x=1", "ratio": "3:4"}  # fmt: skip
    with iw.context(**tags), iw.inference("m"):
        pass
    attrs = span_attributes(captured)
    assert {k: attrs[k] for k in tags} == tags


def test_log_attributes_and_bodies_are_scrubbed(start: Start) -> None:
    """The structlog bridge and the stdlib bridge, nested values and exception text too."""
    captured = start()
    log = structlog.get_logger()
    with iw.context(region="eu"):
        log.info(f"login by {EMAIL}", password=SECRET, payload={"token": SECRET, "n": 1},
                 headers=[f"Authorization: {BEARER}"])  # fmt: skip
        logging.getLogger("app").warning(
            "reset for %s", EMAIL, extra={"api_key": SECRET, "form": {"passwd": SECRET}}
        )
        try:
            raise ValueError(f"no account for {EMAIL}")
        except ValueError:
            logging.getLogger("app").exception("lookup failed")
            log.error("lookup failed again", exc_info=sys.exc_info())

    attrs = log_attributes(captured, "login by [REDACTED:email]")
    assert attrs["password"] == "[REDACTED:password]"
    assert "[REDACTED:credential]" in attrs["payload"] and "'n': 1" in attrs["payload"]
    assert attrs["region"] == "eu"
    attrs = log_attributes(captured, "reset for [REDACTED:email]")
    assert attrs["api_key"] == "[REDACTED:api_key]"
    assert attrs["form"] == {"passwd": "[REDACTED:password]"}
    for body in ("lookup failed", "lookup failed again"):
        attrs = log_attributes(captured, body)
        assert attrs["exception.message"] == "no account for [REDACTED:email]"
        assert "ValueError: no account for [REDACTED:email]" in attrs["exception.stacktrace"]
    text = exported(captured)
    for secret in (SECRET, EMAIL, BEARER.split()[1]):
        assert secret not in text


def test_scope_tags_are_hashed_once_in_logs(start: Start) -> None:
    captured = start(hash_tags=["user_id"], hash_key=KEY)
    with iw.context(user_id="u-42"), iw.inference("m"):
        structlog.get_logger().info("structlog event")
        logging.getLogger("app").warning("stdlib record")
        structlog.get_logger().info("explicit", user_id="u-42")
    expected = hmac.new(KEY.encode(), b"u-42", hashlib.sha256).hexdigest()[:16]
    assert span_attributes(captured)["user_id"] == expected
    for body in ("structlog event", "stdlib record", "explicit"):
        assert log_attributes(captured, body)["user_id"] == expected


def test_exception_messages_are_scrubbed_and_reraised_unchanged(start: Start) -> None:
    captured = start()

    @iw.monitor(model="m")
    def predict(x: str) -> float:
        raise KeyError(f"no features for {EMAIL} (token={SECRET})")

    with pytest.raises(KeyError) as raised:
        predict("x")
    assert EMAIL in str(raised.value) and SECRET in str(raised.value)  # the caller's, as is
    span = captured.span("inference m")
    scrubbed = "no features for [REDACTED:email] (token=[REDACTED:credential])"
    assert span.status.description == f"KeyError: '{scrubbed}'"
    (event,) = span.events
    assert dict(event.attributes or {})["exception.message"] == f"'{scrubbed}'"
    assert dict(event.attributes or {})["exception.type"] == "KeyError"
    assert SECRET not in exported(captured) and EMAIL not in exported(captured)


# -- hashing -----------------------------------------------------------------------------------


def test_hash_tags_export_keyed_pseudonyms(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = start(hash_tags=["user_id"], hash_key=KEY, metric_tags=["user_id"])
    for user in ("u-1", "u-1", "u-2", 17):
        with iw.context(user_id=user), iw.inference("m"):
            pass
    values = [dict(s.attributes or {})["user_id"] for s in captured.spans("inference m")]
    digest = [hmac.new(KEY.encode(), u, hashlib.sha256).hexdigest()[:16] for u in (b"u-1", b"17")]
    assert values[0] == values[1] == digest[0] and values[3] == digest[1]
    assert values[2] != values[0] and len(set(map(len, values))) == 1
    assert iw.privacy.pseudonym("u-1") == digest[0]
    assert {a["user_id"] for a, _ in captured.points("ml.inference.duration")} == set(values)
    assert "u-1" not in exported(captured) and "u-2" not in exported(captured)

    iw.shutdown()
    monkeypatch.setenv(privacy.HASH_KEY_ENV, KEY)
    settings = iw.configure(hash_tags=["user_id"])
    assert iw.privacy.pseudonym("u-1") == digest[0]
    assert KEY not in repr(settings) and KEY not in str(settings)
    iw.shutdown()
    monkeypatch.setenv(privacy.HASH_KEY_ENV, "another key, 16 bytes or more")
    iw.configure(hash_tags=["user_id"])
    assert iw.privacy.pseudonym("u-1") != digest[0]


def test_without_a_key_pseudonyms_do_not_link_across_processes() -> None:
    mine = [Scrubber(hash_tags=["user_id"]).pseudonym("u-1") for _ in range(2)]
    code = "from inferwatch import privacy; print(privacy.pseudonym('u-1'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert mine[0] == mine[1] == privacy.pseudonym("u-1")  # stable within the process
    assert len(other) == 16 and other != mine[0]


# -- hook, extra patterns, opt-out, validation -------------------------------------------------


def test_user_hook_sees_every_value_last(start: Start) -> None:
    seen: list[tuple[str, Any]] = []

    def scrub(key: str, value: Any) -> Any:
        seen.append((key, value))
        if key == "internal":
            return None
        return value.upper() if key == "region" else value

    captured = start(scrub=scrub)
    with iw.context(region="eu", internal="x", password=SECRET), iw.inference("m"):
        structlog.get_logger().info("event", internal="y", region="us")
    attrs = span_attributes(captured)
    assert attrs["region"] == "EU" and "internal" not in attrs
    assert attrs["password"] == "[REDACTED:password]"
    assert ("password", "[REDACTED:password]") in seen  # the hook comes after the defaults
    record = log_attributes(captured, "event")
    assert record["region"] == "US" and "internal" not in record


def test_a_failing_hook_fails_closed_and_is_counted(start: Start) -> None:
    def scrub(key: str, value: Any) -> Any:
        raise RuntimeError("hook bug")

    captured = start(scrub=scrub, strict=False)
    with iw.context(region="eu"), iw.inference("m"):
        pass
    assert span_attributes(captured)["region"] == "[REDACTED:scrub_error]"
    assert iw.internal_errors()["privacy.scrub"] >= 1


def test_extra_patterns_and_opt_out(start: Start) -> None:
    captured = start(
        redact_keys=[r"^ssn$", "card"], redact_values={"ssn": r"\b\d{3}-\d{2}-\d{4}\b"}
    )
    tags = {"ssn": "123-45-6789", "CardNumber": "4111", "note": "ssn 123-45-6789 ok"}
    with iw.context(**tags), iw.inference("m"):
        pass
    attrs = span_attributes(captured)
    assert attrs["ssn"] == attrs["CardNumber"] == "[REDACTED:custom]"
    assert attrs["note"] == "ssn [REDACTED:ssn] ok"
    iw.shutdown()

    captured = start(redact=False)
    with iw.context(password=SECRET, note=EMAIL), iw.inference("m"):
        pass
    assert span_attributes(captured)["password"] == SECRET
    assert span_attributes(captured)["note"] == EMAIL


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"redact_keys": ["("]}, "redact_keys: invalid regular expression"),
        ({"redact_values": {"x": "[a-"}}, "invalid regular expression"),
        ({"redact_values": {"x": "a*"}}, "matches the empty string"),
        ({"redact_values": {"Bad Name": "a"}}, "must be 1-32 characters"),
        ({"redact_keys": "password"}, "list of names"),
        ({"hash_tags": "user_id"}, "list of names"),
        ({"hash_tags": [""]}, "non-empty strings"),
        ({"hash_key": "short-key"}, "at least 16 bytes"),
        ({"scrub": "not callable"}, "scrub"),
    ],
)
def test_privacy_options_are_checked_at_configure(options: dict[str, Any], message: str) -> None:
    with pytest.raises(iw.ConfigurationError, match=message) as raised:
        iw.configure(**options)
    assert "short-key" not in str(raised.value)


# -- the scrubber on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kind"),
    [("password", "password"), ("db_passwd", "password"), ("userPassword", "password"),
     ("X-Api-Key", "api_key"), ("apikey", "api_key"), ("aws_secret_access_key", "secret"),
     ("access_token", "token"), ("refreshToken", "token"), ("Authorization", "authorization"),
     ("proxy-authorization", "authorization"), ("Set-Cookie", "cookie"),
     ("sessionId", "session"), ("session", "session"), ("client_secret", "secret")],
)  # fmt: skip
def test_credential_keys(key: str, kind: str) -> None:
    assert Scrubber().tags({key: "v4lue"}) == {key: f"[REDACTED:{kind}]"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob@corp.example.org now", "mail [REDACTED:email] now"),
        (f"Authorization: {BEARER}", "Authorization: [REDACTED:bearer]"),
        ("Basic dXNlcjpwYXNzd29yZA==", "[REDACTED:basic_auth]"),
        (BEARER.split()[1], "[REDACTED:jwt]"),
        ("postgres://app:s3cr%2Ft@db:5432/x", "postgres://[REDACTED:url_credentials]@db:5432/x"),
        ("/predict?api_key=abc123&x=1", "/predict?api_key=[REDACTED:credential]&x=1"),
        ('{"password": "p w", "n": 2}', '{"password": [REDACTED:credential], "n": 2}'),
        ("the bearer of news; basic idea", "the bearer of news; basic idea"),
        ("tokens=5 max_tokens: 9", "tokens=5 max_tokens: 9"),
    ],
)
def test_value_patterns_replace_only_the_match(text: str, expected: str) -> None:
    assert Scrubber().text(text) == expected


_LOCAL = st.text("abcxyzABC0189._%+-", min_size=1, max_size=30).filter(lambda s: s[0] != ".")
_LABEL = st.text("abcdefxyz0189-", min_size=1, max_size=20).filter(lambda s: s[0] != "-")
_TLD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10)
_SECRET = st.text("ABCDEFabcdef0123456789-._~+/", min_size=8, max_size=60)
_AROUND = st.text(" ,;()<>\n\t", max_size=3)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.tuples(_LOCAL, _LABEL, _TLD).map(lambda p: f"{p[0]}@{p[1]}.{p[2]}"),
    _SECRET,
    _AROUND,
    _AROUND,
)
def test_matched_values_never_leak(email: str, token: str, before: str, after: str) -> None:
    scrubber = Scrubber()
    text = f"{before}user {email}{after}sent Bearer {token}{after}"
    out = scrubber.text(text)
    assert email not in out and token not in out
    assert out.count("[REDACTED:email]") == 1 and out.count("[REDACTED:bearer]") == 1
    assert scrubber.tags({"password": token, "note": text}) == {
        "password": "[REDACTED:password]",
        "note": out,
    }


_PIECES = st.sampled_from(
    ["Bearer", "basic", "eyJhbGciOi", "eyJzdWIi", "a@b.co", "://", "u:p@", "password", "=",
     ":", ".", " ", "\t", "\x1c", "\x1f", "x", "token", "AbCdEf0123456789", "-", "/", "'", '"']
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_the_quick_path_agrees_with_running_every_pattern(text: str) -> None:
    """Strings the quick check passes as clean are exactly those no pattern would change."""
    every_pattern = Scrubber(redact_values={"never": "(?!)"})  # extra rules: no quick path
    assert Scrubber().text(text) == every_pattern.text(text)


def test_the_quick_path_knows_every_separator() -> None:
    every_pattern = Scrubber(redact_values={"never": "(?!)"})
    for char in map(chr, range(128)):
        for text in (f"Bearer{char}AbCdEf0123456789", f"a{char}b@c.de", f"pwd{char}=x"):
            assert Scrubber().text(text) == every_pattern.text(text), repr(text)
