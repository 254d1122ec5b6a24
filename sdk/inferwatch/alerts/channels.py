"""Where notifications go: a structured log event, a webhook, or your own function.

The evaluator never waits for a channel. Log events are written inline (a logging call);
webhooks and callables each get a daemon worker with a bounded queue: a full queue drops the
notification, and a failed delivery (after retries), a timeout or an exception in your function
is counted (``inferwatch.alert.notifications`` by outcome, and ``inferwatch.internal.errors``)
and logged, never raised into the evaluator or your code.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation

from inferwatch import semconv
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.policy import CallableChannel, WebhookChannel
from inferwatch.errors import log_internal_error

_events = logging.getLogger("inferwatch.events")
Outcome = Callable[[Notification, str, str], None]
"""Called with (notification, channel name, outcome) once a notification's fate is known."""
EVENT = {True: semconv.EVENT_ALERT_FIRING, False: semconv.EVENT_ALERT_RESOLVED}
# Never below WARNING: the logger's default level (the root's) would drop INFO records, and
# with them resolutions; the policy's severity is an attribute of its own.
_LEVEL = {"critical": logging.ERROR}
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class DeliveryError(Exception):
    """A channel could not deliver a notification (after its retries)."""


def log_event(notification: Notification) -> None:
    """The ``log`` channel: one record on ``inferwatch.events`` (an OTel log with logs=True)."""
    n = notification
    firing = n.state == "firing"
    where = ", ".join(f"{k}={v}" for k, v in n.group.items())
    value = "no data" if n.value is None else f"{n.value:.4g}"
    extra = {
        "otel.event.name": EVENT[firing],
        semconv.ATTR_ALERT_NAME: n.alert,
        semconv.ATTR_ALERT_STATE: n.state,
        semconv.ATTR_ALERT_SEVERITY: n.severity,
        semconv.ATTR_ALERT_VALUE: n.value,
        semconv.ATTR_ALERT_THRESHOLD: n.threshold,
        semconv.ATTR_ALERT_RUNBOOK_URL: n.runbook_url,
        semconv.ATTR_SUPPRESSED: n.suppressed,
    }
    for key, group_value in n.group.items():  # a LogRecord field name would make logging raise
        extra[semconv.ATTR_ALERT_GROUP_PREFIX + key if key in _RECORD_FIELDS else key] = group_value
    _events.log(
        _LEVEL.get(n.severity, logging.WARNING) if firing else logging.WARNING,
        "alert %s %s%s: %s (value %s)",
        n.alert,
        n.state,
        f" for {where}" if where else "",
        n.summary,
        value,
        extra={k: v for k, v in extra.items() if v is not None},
    )


class Worker:
    """One channel's daemon thread and bounded queue; started by the first notification."""

    def __init__(
        self,
        name: str,
        deliver: Delivery,
        queue_size: int,
        on_outcome: Outcome,
        where: str,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=queue_size)
        self._on_outcome = on_outcome
        self._where = where
        self._closing = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, notification: Notification) -> None:
        with self._lock:
            if self._closing.is_set():
                self._on_outcome(notification, self.name, semconv.OUTCOME_DROPPED)
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"inferwatch-alerts-{self.name}", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait(notification)
        except queue.Full:  # logged first: once counted, the notification's fate is settled
            log_internal_error(
                self._where, DeliveryError(f"channel {self.name}: queue full, notification dropped")
            )
            self._on_outcome(notification, self.name, semconv.OUTCOME_DROPPED)

    def _run(self) -> None:
        # Our own HTTP calls must not become spans or metrics of the application.
        with suppress_instrumentation(), contextlib.closing(self._deliver):
            while True:
                notification = self._queue.get()
                if notification is None:
                    return
                if self._abandon.is_set():
                    self._on_outcome(notification, self.name, semconv.OUTCOME_DROPPED)
                    continue
                try:
                    self._deliver(notification, self._abandon)
                except Exception as exc:
                    log_internal_error(self._where, exc)
                    self._on_outcome(notification, self.name, semconv.OUTCOME_FAILED)
                else:
                    self._on_outcome(notification, self.name, semconv.OUTCOME_SENT)
                if self._closing.is_set() and self._queue.empty():
                    return

    def close(self) -> None:
        """Stop taking notifications; the worker delivers what is queued, then ends."""
        with self._lock:
            self._closing.set()
            thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # if full, the worker ends once it emptied it
            self._queue.put_nowait(None)

    def join(self, deadline: float) -> None:
        """Wait for the worker until ``deadline`` (monotonic); then drop what is left."""
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()  # interrupts backoff waits
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                self._on_outcome(left, self.name, semconv.OUTCOME_DROPPED)


class Delivery:
    """Delivers one notification, or raises; ``stopping`` is set when the process shuts down."""

    def __call__(self, notification: Notification, stopping: threading.Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class CallFunction(Delivery):
    def __init__(self, channel: CallableChannel) -> None:
        self.function = channel.function

    def __call__(self, notification: Notification, stopping: threading.Event) -> None:
        self.function(notification)


class _RetryableStatus(DeliveryError):
    pass


class _Stopped(DeliveryError):
    pass


# httpx logs every request's full URL at INFO ("HTTP Request: POST https://..."): for a webhook
# whose path is its secret, the URL is shown as `display_url` instead (other requests untouched).
_redacted_urls: dict[str, str] = {}
_filter_lock = threading.Lock()


class _RedactWebhookUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if _redacted_urls and isinstance(args, tuple):
            record.args = tuple(
                _redacted_urls.get(str(a), a) if type(a).__name__ == "URL" else a for a in args
            )
        return True


def _install_httpx_filter() -> None:
    with _filter_lock:
        httpx_logger = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactWebhookUrls) for f in httpx_logger.filters):
            httpx_logger.addFilter(_RedactWebhookUrls())


class PostWebhook(Delivery):
    """POST the notification's JSON with httpx, retried (tenacity) with exponential backoff on
    connection errors, timeouts, 429 and 5xx; other 4xx answers fail at once."""

    def __init__(self, channel: WebhookChannel) -> None:
        import httpx

        self.channel = channel
        self.client = httpx.Client(timeout=channel.timeout, headers=channel.headers)
        self._transport_errors = (httpx.TransportError, _RetryableStatus)
        _redacted_urls[str(httpx.URL(channel.url))] = channel.display_url
        _install_httpx_filter()

    def __call__(self, notification: Notification, stopping: threading.Event) -> None:
        import tenacity

        channel = self.channel

        def sleep(seconds: float) -> None:
            if stopping.wait(seconds):
                raise _Stopped(f"webhook {channel.display_url}: shutting down, retries abandoned")

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(channel.retries + 1),
            wait=tenacity.wait_exponential(multiplier=channel.backoff, max=channel.max_backoff),
            retry=tenacity.retry_if_exception_type(self._transport_errors),
            sleep=sleep,
            reraise=True,
        )
        payload = notification.to_dict()
        for attempt in retrying:
            with attempt:
                status = self.client.post(channel.url, json=payload).status_code
                if status == 429 or status >= 500:
                    raise _RetryableStatus(f"webhook {channel.display_url} answered {status}")
                if status >= 400:
                    raise DeliveryError(f"webhook {channel.display_url} answered {status}")

    def close(self) -> None:
        self.client.close()


def make_worker(
    name: str, channel: WebhookChannel | CallableChannel, on_outcome: Outcome
) -> Worker:
    if isinstance(channel, WebhookChannel):
        return Worker(name, PostWebhook(channel), channel.queue_size, on_outcome, "alerts.webhook")
    return Worker(name, CallFunction(channel), channel.queue_size, on_outcome, "alerts.callable")
