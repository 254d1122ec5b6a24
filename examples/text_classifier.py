"""A tiny text classifier under `@iw.monitor`: batches of support tickets, some absurdly long.

Run from the repository root::

    python examples/text_classifier.py
    python examples/text_classifier.py --batches 20 --batch-size 16 --long-share 0.05

A multinomial naive Bayes (numpy only) routes tickets to ``billing``, ``technical`` or ``account``.
Tickets arrive by ``chat`` or ``email``; some email tickets have whole log files pasted into them,
tens of times longer than a normal ticket. The model only reads the first ``MAX_TOKENS`` tokens,
so nothing fails: the outliers show up only in the input-length telemetry
(``ml.input.length`` / ``ml.input.length.max`` and the ``ml.input.long`` flag on each span, the
``ml.input.length`` histogram, and an ``ml.input.long`` warning event).
The script prints those statistics from spans and metrics captured in memory.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import inferwatch as iw

CLASSES = ["billing", "technical", "account"]
VOCABULARY = {
    "billing": "invoice refund charge charged payment card bill price subscription receipt plan",
    "technical": "error crash bug install update slow timeout app screen freeze broken",
    "account": "password email username delete profile login reset verify settings locked",
}
_FILLER_TEXT = "the a my i please help with is not it can you why was today again hello thanks"
FILLER = _FILLER_TEXT.split()
MAX_TOKENS = 256
LONG_CHARS = 2048  # longer than any normal ticket; a bucket bound of ml.input.length


# -- synthetic tickets ---------------------------------------------------------------------------
def make_ticket(rng: np.random.Generator, label: int, long: bool = False) -> str:
    words = VOCABULARY[CLASSES[label]].split()
    other = VOCABULARY[CLASSES[(label + 1) % len(CLASSES)]].split()
    tokens = []
    for _ in range(int(rng.integers(4, 30))):
        draw = rng.random()
        pool = words if draw < 0.35 else other if draw < 0.40 else FILLER
        tokens.append(pool[int(rng.integers(len(pool)))])
    text = " ".join(tokens)
    if long:  # a pasted log file
        lines = int(rng.integers(60, 200))
        codes = rng.integers(0, 2**32, size=lines)
        text += "\n" + "\n".join(f"ERROR 0x{c:08x} in worker thread, retrying" for c in codes)
    return text


def make_tickets(
    rng: np.random.Generator, n: int, long_share: float = 0.0
) -> tuple[list[str], np.ndarray, int]:
    """``n`` tickets, their labels, and how many are abnormally long."""
    labels = rng.integers(0, len(CLASSES), size=n)
    long = rng.random(n) < long_share
    texts = [
        make_ticket(rng, int(y), bool(is_long)) for y, is_long in zip(labels, long, strict=True)
    ]
    return texts, labels, int(long.sum())


# -- the model -----------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    return text.lower().split()[:MAX_TOKENS]


class NaiveBayes:
    """Multinomial naive Bayes with Laplace smoothing over a closed vocabulary."""

    def __init__(self, texts: list[str], labels: np.ndarray, alpha: float = 1.0) -> None:
        vocabulary = sorted({token for text in texts for token in tokenize(text)})
        self.index = {token: i for i, token in enumerate(vocabulary)}
        counts = self._counts(texts)  # (documents, vocabulary)
        per_class = np.stack([counts[labels == k].sum(axis=0) for k in range(len(CLASSES))])
        smoothed = per_class + alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        priors = np.bincount(labels, minlength=len(CLASSES)) + alpha
        self.log_prior = np.log(priors / priors.sum())

    def _counts(self, texts: list[str]) -> np.ndarray:
        size = len(self.index)
        ids = [
            (row, self.index[token])
            for row, text in enumerate(texts)
            for token in tokenize(text)
            if token in self.index
        ]
        flat = np.array([row * size + i for row, i in ids], dtype=np.int64)
        return np.bincount(flat, minlength=len(texts) * size).reshape(len(texts), size)

    # A declared long-input threshold (not one learned from the traffic): spans whose longest
    # input exceeds it get ``ml.input.long``, and a rate-limited warning event is logged.
    @iw.monitor(
        model="ticket-router",
        version="0.3",
        class_names=CLASSES,
        max_input_length=LONG_CHARS,
        long_input_quantile=None,
    )
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, one row per text (columns in ``CLASSES`` order)."""
        scores = self._counts(texts) @ self.log_likelihood.T + self.log_prior
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        return probabilities / probabilities.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


# -- reading back what inferwatch emitted --------------------------------------------------------
def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, object], object]]:
    data = reader.get_metrics_data()
    return [
        (dict(point.attributes or {}), point)
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _number(span: ReadableSpan, key: str) -> float:
    value = (span.attributes or {}).get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def report(
    spans: list[ReadableSpan], reader: InMemoryMetricReader, planted: int, planted_batches: int
) -> None:
    batches = [s for s in spans if s.name == "inference ticket-router"]
    by_channel: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in batches:
        by_channel[str((span.attributes or {}).get("channel"))].append(span)

    print("\ninput length (characters) per batch, from the spans:")
    print(f"  {'channel':<8} {'batches':>7} {'mean':>7} {'max p50':>8} {'max':>7} {'long':>5}")
    for channel, group in sorted(by_channel.items()):
        means = [_number(s, "ml.input.length") for s in group]
        maxima = sorted(int(_number(s, "ml.input.length.max")) for s in group)
        long_batches = sum(m > LONG_CHARS for m in maxima)
        print(
            f"  {channel:<8} {len(group):>7} {np.mean(means):>7.0f} "
            f"{maxima[len(maxima) // 2]:>8} {maxima[-1]:>7} {long_batches:>5}"
        )
    flagged = sum(_number(s, "ml.input.length.max") > LONG_CHARS for s in batches)
    print(f"batches with an input over {LONG_CHARS} characters: {flagged}")
    marked = sum((s.attributes or {}).get("ml.input.long") is True for s in batches)
    print(f"spans marked ml.input.long: {marked}")
    print(f"planted: {planted} abnormally long tickets in {planted_batches} batches")

    print("\nml.input.length histogram (per-text lengths; at most 16 sampled per call):")
    total = 0
    over = 0
    for attrs, point in _points(reader, "ml.input.length"):
        assert isinstance(point, HistogramDataPoint)
        total += point.count
        bounds = list(point.explicit_bounds)
        lower_bounds = [0.0, *bounds]  # bucket i holds values in (lower_bounds[i], bounds[i]]
        over += sum(
            c for b, c in zip(lower_bounds, point.bucket_counts, strict=True) if b >= LONG_CHARS
        )
        print(
            f"  {attrs.get('channel')}: {point.count} lengths recorded, "
            f"mean {point.sum / max(point.count, 1):.0f}, max {point.max:.0f}"
        )
    print(f"  lengths recorded over {LONG_CHARS}: {over} of {total}")

    classes: Counter[str] = Counter()
    for attrs, point in _points(reader, "ml.prediction.count"):  # one point per class and channel
        classes[str(attrs.get("ml.prediction.class"))] += int(point.value)  # type: ignore[attr-defined]
    print(
        "\npredicted classes (ml.prediction.count): "
        + ", ".join(f"{k}={v}" for k, v in sorted(classes.items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--long-share", type=float, default=0.02, help="of email tickets")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    iw.configure(
        service_name="ticket-router",
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[reader],
        metric_tags=["channel"],
    )
    rng = np.random.default_rng(args.seed)
    train_texts, train_labels, _ = make_tickets(rng, 3000)
    model = NaiveBayes(train_texts, train_labels)

    correct = total = planted = planted_batches = 0
    started = time.perf_counter()
    for batch in range(args.batches):
        channel = "email" if batch % 3 == 0 else "chat"
        share = args.long_share if channel == "email" else 0.0
        texts, labels, n_long = make_tickets(rng, args.batch_size, share)
        planted += n_long
        planted_batches += n_long > 0
        with iw.context(request_id=f"batch-{batch:05d}", channel=channel):
            probabilities = model.predict_proba(texts)
        correct += int((probabilities.argmax(axis=1) == labels).sum())
        total += len(texts)
    elapsed = time.perf_counter() - started
    print(f"classified {total} tickets in {args.batches} batches in {elapsed:.2f}s")
    print(f"accuracy: {correct / max(total, 1):.3f}")
    report(list(spans.get_finished_spans()), reader, planted, planted_batches)
    print(f"\ninternal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()


if __name__ == "__main__":
    main()
