"""Live drift detection in the serving path: tumbling windows and roll-ups against a baseline.

``add()`` (inputs), ``add_predictions()`` and ``add_labels()`` only keep a reference to what they
are given (O(1), never raise); ``close_window()`` (called by a daemon thread every ``window_s``,
or directly) turns the buffered rows into a :class:`Profile` in one vectorised pass, compares it
and the running merge of all closed windows with the baseline, logs one ``ml.drift.detected``
event per drifted feature and publishes the results through observable gauges.

The numeric features are also tested together (``ml.feature`` = ``"ml.multivariate"``, test
``mmd``), and null shares and new categories as tests of their own (``ml.drift.test`` =
``null_share`` / ``cardinality``). Vector features (embeddings) arrive in a mapping or a
DataFrame, one array per row.

Predictions and labels are tested like features (``ml.feature`` = ``"ml.prediction"`` /
``"ml.label"``) when the baseline profile has them (``Profile.build(..., predictions=,
labels=)``). Labels are windowed by arrival time, so a window tests the label shift of the labels
that arrived in it; a window without labels reports nothing about them.

Roll-ups: every ``S / window_s`` closed windows (empty ones included) are merged into a window
of ``S`` seconds, tested and published under its own ``ml.window`` label ("1h"); levels chain
(days from hours). By default the levels are 1h and 1d, those that are whole multiples of the
level below (a 5m window rolls up to 1h and 1d; a 7m one does not roll up).

Memory is bounded by profiles, not rows: ``keep_windows`` tumbling windows, ``keep_rollups``
completed windows plus one in progress per roll-up level, and the cumulative profile; with the
defaults (12, 1h and 1d keeping 7 each) that is 29 profiles. A profile holds about 16 kB per
numeric column at 1,000 rows and 46 kB from 200,000 rows on (two KLL sketches of k=1000; they grow
with log n), 1-16 kB per categorical column (up to ~750 tracked categories), and a row sample of
2,048 rows: 16 kB per numeric column, 512 kB per vector feature, 16 kB of keys. That is at most
~1.8 MB per numeric column and ~15 MB per vector feature in all. The current window also holds
references to at most ``max_rows_per_window`` rows of each stream (inputs, predictions, labels)
until it closes.

Inputs are kept by reference until their window closes: do not mutate an array after ``add()``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from typing import Any, Literal

import numpy as np
from opentelemetry import metrics
from opentelemetry.metrics import Observation

from inferwatch import errors, semconv
from inferwatch.drift import registry
from inferwatch.drift.compare import ColumnDrift, DriftReport, Tested, compare, test_verdict
from inferwatch.drift.inputs import (
    EMPTY_OBJ,
    batches,
    checked_class_names,
    is_dataframe,
    is_dict_row,
    is_scalar,
    take,
    target_rows,
)
from inferwatch.drift.profile import (
    TARGETS,
    ColumnProfile,
    Profile,
    numeric_values,
    vector_values,
)
from inferwatch.drift.registry import drift_gauges
from inferwatch.semconv import (
    DRIFT_LABEL,
    DRIFT_MULTIVARIATE,
    DRIFT_PREDICTION,
    EVENT_DRIFT_DETECTED,
    METRIC_DRIFT_DETECTED,
    METRIC_DRIFT_P_VALUE,
    METRIC_DRIFT_SCORE,
    ML_DRIFT_P_VALUE,
    ML_DRIFT_SCORE,
    ML_DRIFT_TEST,
    ML_WINDOW,
    WINDOW_CUMULATIVE,
)
from inferwatch.windows.rollups import RollupLevel, rollup_levels, window_label
from inferwatch.windows.thread import WindowThread

__all__ = [
    "METRIC_DRIFT_DETECTED",
    "METRIC_DRIFT_P_VALUE",
    "METRIC_DRIFT_SCORE",
    "DriftWindows",
    "drift_gauges",
    "rollup_levels",
    "window_label",
]

_events = logging.getLogger("inferwatch.events")
_TESTS = {"numeric": "ks", "categorical": "chi2", "vector": "mmd"}


class DriftWindows:
    """Buffers live inputs, predictions and labels of one model; tests each closed window.

    >>> windows = DriftWindows("fraud", baseline, 300, meter=meter)   # 5m, rolled up to 1h, 1d
    >>> windows.add(X); windows.add_predictions(y); windows.start()

    ``features`` defaults to the baseline's columns but the reserved prediction and label ones,
    which are tested when the baseline has them. ``class_names`` names class indices of live
    predictions (the baseline's own are used when not given; they must agree). ``rollups``:
    "auto", None, or sizes like ``("1h", "1d")``; ``keep_rollups`` completed windows are kept per
    roll-up level, ``keep_windows`` tumbling ones.
    """

    def __init__(
        self,
        model: str,
        baseline: Profile,
        window_s: float,
        *,
        features: Sequence[str] | None = None,
        alpha: float = 0.05,
        min_effect: float | None = None,
        max_rows_per_window: int = 200_000,
        keep_windows: int = 12,
        meter: metrics.Meter | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str | None = None,
        class_names: Sequence[str] | None = None,
        rollups: Sequence[str | float] | Literal["auto"] | None = "auto",
        keep_rollups: int = 7,
        autostart: bool = False,
    ) -> None:
        if not isinstance(baseline, Profile):
            raise TypeError(f"baseline must be a Profile, not {type(baseline).__name__}")
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if max_rows_per_window < 1 or keep_windows < 1 or keep_rollups < 1:
            raise ValueError("max_rows_per_window, keep_windows and keep_rollups must be >= 1")
        targets = {t: baseline.columns[t].kind for t in TARGETS if t in baseline.columns}
        default = [c for c in baseline.columns if c not in targets]
        names = list(features) if features is not None else default
        reserved = [f for f in names if f in TARGETS]
        if reserved:
            raise ValueError(f"{reserved} are reserved for predictions and labels, not features")
        missing = [f for f in names if f not in baseline.columns]
        if missing or not (names or targets):
            raise ValueError(f"features not in the baseline profile: {missing or names}")
        self.model = model
        self.baseline = baseline
        self.window_s = float(window_s)
        self.features = names
        self.alpha = alpha
        self.min_effect = min_effect
        self.max_rows_per_window = max_rows_per_window
        self.label = label or window_label(self.window_s)
        self.class_names = checked_class_names(baseline, class_names, targets)
        self._clock = clock
        self._targets = targets
        self._tested = [*names, *targets]
        kinds = {f: baseline.columns[f].kind for f in names}
        self._num = [f for f in names if kinds[f] == "numeric"]
        self._cat = [f for f in names if kinds[f] == "categorical"]
        self._vec = [f for f in names if kinds[f] == "vector"]
        self._num_idx = np.array([names.index(f) for f in self._num], dtype=np.intp)
        self._cat_idx = np.array([names.index(f) for f in self._cat], dtype=np.intp)
        self._all_numeric = not self._cat and not self._vec
        # current window (guarded by _lock)
        self._lock = threading.Lock()
        self._buf: list[tuple[Any, int]] = []
        self._rows = 0
        self._window_start = clock()
        self._pending: dict[str, list[tuple[Any, int]]] = {t: [] for t in targets}
        self._pending_rows = dict.fromkeys(targets, 0)
        self.dropped_rows = 0  # rows over max_rows_per_window, not kept (all windows, streams)
        self.rejected = 0  # rows that could not be read (all windows, streams)
        # closed windows (written by close_window under _close_lock, read without locks)
        self._close_lock = threading.Lock()
        self._ring: deque[Profile] = deque(maxlen=keep_windows)
        levels = rollup_levels(self.window_s, rollups)
        self._levels: list[RollupLevel[Profile]] = [
            RollupLevel(seconds, factor, keep_rollups) for seconds, factor in levels
        ]
        self._cumulative: Profile | None = None
        self._latest: tuple[tuple[str, DriftReport], ...] = ()
        self._cumulative_drifted: set[str] = set()
        # background thread
        self._closer = WindowThread(
            f"inferwatch-drift-{model}",
            lambda: self._window_start + self.window_s,
            self.close_window,
            clock,
            "drift.close_window",
        )
        self._restart = autostart  # the thread starts with the first row, not at import
        self.meter: metrics.Meter | None = None
        """The meter given to these windows (its gauges publish them); None: the serving path."""
        registry.live.add(self)
        if meter is not None:
            self._instruments(meter)

    # ---- hot path -----------------------------------------------------------------------
    def add(self, x: Any) -> None:
        """Buffer one input (2-D array, DataFrame, dict row or dict of columns); never raises."""
        if not self.features:
            return
        try:
            if self._restart:
                self._restart_thread()
            n = self._row_count(x)
            with self._lock:
                if n < 0:
                    self.rejected += -n
                    return
                room = self.max_rows_per_window - self._rows
                if n > room:
                    self.dropped_rows += n - max(room, 0)
                    n = max(room, 0)
                if n:
                    self._buf.append((x, n))
                    self._rows += n
        except Exception as exc:
            errors.log_internal_error("drift.add", exc)

    def add_predictions(self, y: Any) -> None:
        """Buffer predictions (O(1), by reference; never raises) if the baseline has them.

        >>> windows.add_predictions(model.predict_proba(X))   # or values, or class labels
        """
        if DRIFT_PREDICTION in self._targets:
            self._add_target(DRIFT_PREDICTION, y)

    def add_labels(self, y: Any) -> None:
        """Buffer ground-truth labels as they arrive (O(1), never raises) if the baseline has
        them: each window tests the labels that arrived in it (label shift).

        >>> windows.add_labels(["approve"])    # delayed labels, one or a batch at a time
        """
        if DRIFT_LABEL in self._targets:
            self._add_target(DRIFT_LABEL, y)

    @property
    def targets(self) -> list[str]:
        """The reserved columns this model's windows test: "ml.prediction", "ml.label"."""
        return list(self._targets)

    def _add_target(self, name: str, y: Any) -> None:
        try:
            if self._restart:
                self._restart_thread()
            n = target_rows(y)
            with self._lock:
                if n < 0:
                    self.rejected += 1
                    return
                room = self.max_rows_per_window - self._pending_rows[name]
                if n > room:
                    self.dropped_rows += n - max(room, 0)
                    n = max(room, 0)
                if n:
                    self._pending[name].append((y, n))
                    self._pending_rows[name] += n
        except Exception as exc:
            errors.log_internal_error("drift.add", exc)

    def _row_count(self, x: Any) -> int:
        """Rows in `x` (O(1)); minus the rows when it cannot be read."""
        if isinstance(x, np.ndarray):
            width = len(self.features)
            if x.ndim == 2:
                rows = int(x.shape[0])
                return rows if x.shape[1] == width else -rows
            return 1 if x.ndim == 1 and x.shape[0] == width else -1
        if type(x) is not dict and is_dataframe(x):
            return len(x)
        if type(x) is dict or isinstance(x, Mapping):
            if not x:
                return -1
            key, first = next(iter(x.items()))
            if key in self._vec:  # one vector (a row) or an (n, d) array
                return {1: 1, 2: len(first)}.get(np.ndim(first), -1)
            if is_scalar(first):
                return 1
            try:
                return len(first)
            except TypeError:
                return -1
        if isinstance(x, list | tuple):
            return len(x) if x and not is_scalar(x[0]) else 1
        return -1

    # ---- windows ------------------------------------------------------------------------
    def close_window(self) -> DriftReport | None:
        """Profile and test the buffered rows, and every roll-up this window completes.

        Returns the window's report; None when it holds no readable row (it still counts
        towards the roll-ups: an hour of 5m windows is 12 closes).
        """
        with self._close_lock:
            now = self._clock()
            with self._lock:
                buf, self._buf, self._rows = self._buf, [], 0
                pending, self._pending = self._pending, {t: [] for t in self._targets}
                self._pending_rows = dict.fromkeys(self._targets, 0)
                self._window_start = now
            profile = self._profile(buf, pending)
            results: dict[str, DriftReport] = {}
            if profile is not None:
                results[self.label] = self._test(profile)
                merged = profile if self._cumulative is None else self._cumulative.merge(profile)
                results[WINDOW_CUMULATIVE] = self._test(merged)
                self._cumulative = merged
            completed: list[tuple[RollupLevel[Profile], Profile]] = []
            carry = profile
            for level in self._levels:  # an hour completes with its 12th window, a day ...
                done, carry = level.push(carry)
                if not done:
                    break
                if carry is not None:
                    results[level.label] = self._test(carry)
                    completed.append((level, carry))
            self._latest = tuple({**dict(self._latest), **results}.items())
            # last: a reader seeing a window sees its results
            if profile is not None:
                self._ring.append(profile)
            for level, rolled in completed:
                level.ring.append(rolled)
            self._log_results(results)
            return results.get(self.label)

    def _test(self, profile: Profile) -> DriftReport:
        columns = [c for c in self._tested if c in profile.columns]  # no labels: no label test
        return compare(
            self.baseline, profile, alpha=self.alpha, min_effect=self.min_effect, columns=columns
        )

    def _log_results(self, results: Mapping[str, DriftReport]) -> None:
        for window, report in results.items():
            found = [(feature, t) for feature, t in _tests(report) if test_verdict(t)]
            if window == WINDOW_CUMULATIVE:  # only when a feature starts drifting
                drifted = {feature for feature, _t in found}
                found = [(f, t) for f, t in found if f not in self._cumulative_drifted]
                self._cumulative_drifted = drifted
            logged = set()
            for feature, test in found:
                if feature not in logged:  # one event per feature: its first drifted test
                    logged.add(feature)
                    self._log(feature, test, window)

    def sliding(self, n: int, level: str | None = None) -> Profile | None:
        """The merge of the last `n` closed windows (of at most `keep_windows`), or of the last
        `n` completed windows of the roll-up ``level`` (e.g. "1h")."""
        ring = self._ring if level is None else self._level(level).ring
        last = list(ring)[-n:] if n > 0 else []
        return reduce(Profile.merge, last) if last else None

    @property
    def windows(self) -> list[Profile]:
        """Profiles of the closed windows still kept, oldest first."""
        return list(self._ring)

    @property
    def levels(self) -> list[str]:
        """Labels of the roll-up levels, shortest first (e.g. ["1h", "1d"])."""
        return [level.label for level in self._levels]

    @property
    def rollups(self) -> dict[str, list[Profile]]:
        """Completed roll-up windows still kept, by level label, oldest first."""
        return {level.label: list(level.ring) for level in self._levels}

    def _level(self, label: str) -> RollupLevel[Profile]:
        for level in self._levels:
            if level.label == label:
                return level
        raise KeyError(f"no roll-up level {label!r}; the levels are {self.levels}")

    @property
    def cumulative(self) -> Profile | None:
        """The merge of every closed window."""
        return self._cumulative

    @property
    def latest(self) -> dict[str, DriftReport]:
        """The last results: {window label: report, roll-up label: report, "cumulative": ...}."""
        return dict(self._latest)

    def _profile(
        self, buf: list[tuple[Any, int]], pending: Mapping[str, list[tuple[Any, int]]]
    ) -> Profile | None:
        """The window's profile: inputs, then predictions and labels; None when empty."""
        inputs = self._input_profile(buf) if buf else None
        columns = dict(inputs.columns) if inputs is not None else {}
        n_rows = inputs.n_rows if inputs is not None else 0
        for name, items in pending.items():
            col = self._target_profile(name, items) if items else None
            if col is not None:
                columns[name] = col
                n_rows = max(n_rows, col.count)
        sample = inputs.sample if inputs is not None else None
        return Profile(columns, n_rows, sample=sample) if columns else None

    def _target_profile(self, name: str, items: list[tuple[Any, int]]) -> ColumnProfile | None:
        col = ColumnProfile.empty(name, self._targets[name], "")
        bad = 0
        for values, n in batches(items):
            try:
                col.add_values(values, self.class_names)
                col.dtype = col.dtype or str(values.dtype)
            except Exception:
                bad += n
        if bad:
            with self._lock:
                self.rejected += bad
        return col if col.count else None

    def _input_profile(self, buf: list[tuple[Any, int]]) -> Profile | None:
        num_blocks: list[np.ndarray] = []
        cat_blocks: list[np.ndarray] = []
        vec_blocks: list[list[np.ndarray]] = []
        bad = 0
        rows = [x for x, n in buf if self._is_row(x, n)]
        if len(rows) > 1:  # dict rows: convert them together, one by one only if that fails
            try:
                num_blocks.append(numeric_values(take(rows, self._num)))
                cat_blocks.append(take(rows, self._cat))
                vec_blocks.append([_stack([row[f] for row in rows]) for f in self._vec])
                buf = [(x, n) for x, n in buf if not self._is_row(x, n)]
            except Exception:
                del num_blocks[:], cat_blocks[:], vec_blocks[:]
        for x, n in buf:
            try:
                num, cat, vec = self._blocks(x, n)
            except Exception:
                bad += n
                continue
            num_blocks.append(num)
            cat_blocks.append(cat)
            vec_blocks.append(vec)
        if bad:
            with self._lock:
                self.rejected += bad
        if not num_blocks:
            return None
        if self._all_numeric:
            return Profile.build(np.vstack(num_blocks), columns=self._num)
        data: dict[str, np.ndarray] = {}
        if self._num:
            nums = np.vstack(num_blocks)
            data.update((f, nums[:, i]) for i, f in enumerate(self._num))
        cats = np.vstack(cat_blocks)
        data.update((f, cats[:, i]) for i, f in enumerate(self._cat))
        data.update((f, np.vstack([v[i] for v in vec_blocks])) for i, f in enumerate(self._vec))
        return Profile.build(data, columns=self.features, categorical=self._cat)

    def _is_row(self, x: Any, n: int) -> bool:
        """A dict holding one row (its vector features one vector each)."""
        if not self._vec:
            return is_dict_row(x, n)
        return n == 1 and isinstance(x, Mapping) and all(np.ndim(x[f]) == 1 for f in self._vec)

    def _vectors(self, x: Any, n: int) -> list[np.ndarray]:
        """The vector features of a mapping or DataFrame as (n, d) float arrays."""
        out = []
        for f in self._vec:
            values = vector_values(f, x[f]) if is_dataframe(x) else np.asarray(x[f], dtype=float)
            if values is None or values.ndim != 2:
                raise TypeError(f"vector feature {f!r} is not one vector per row")
            out.append(values[:n])
        return out

    def _blocks(self, x: Any, n: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(numeric features as float (n, N), categorical features as object (n, C), vector
        features as float (n, d) each)."""
        if self._vec and not isinstance(x, Mapping) and not is_dataframe(x):
            raise TypeError("vector features come in a mapping or a DataFrame")
        if isinstance(x, list | tuple):
            x = np.asarray(x, dtype=object)
            if x.ndim == 1:
                x = x.reshape(1, -1)
            if x.ndim != 2 or x.shape[1] != len(self.features):  # a list of frames is 3-D
                raise ValueError(f"rows of shape {x.shape[1:]}, not ({len(self.features)},)")
        if isinstance(x, np.ndarray):
            arr = x.reshape(1, -1) if x.ndim == 1 else x[:n]
            if self._all_numeric and arr.dtype.kind in "iufb":
                return arr, EMPTY_OBJ, []
            num = numeric_values(arr[:, self._num_idx])
            return num, arr[:, self._cat_idx].astype(object), []
        if is_dataframe(x):
            frame = x.iloc[:n]
            num = np.empty((n, len(self._num)))
            for i, f in enumerate(self._num):
                num[:, i] = numeric_values(frame[f].to_numpy())
            cat = np.empty((n, len(self._cat)), dtype=object)
            for i, f in enumerate(self._cat):
                cat[:, i] = frame[f].to_numpy(dtype=object)
            return num, cat, self._vectors(frame, n)
        if isinstance(x, Mapping):
            if self._is_row(x, n):
                vec = [_stack([x[f]]) for f in self._vec]
                return numeric_values(take([x], self._num)), take([x], self._cat), vec
            num = np.empty((n, len(self._num)))
            for i, f in enumerate(self._num):
                num[:, i] = numeric_values(np.asarray(x[f])[:n])
            cat = np.empty((n, len(self._cat)), dtype=object)
            for i, f in enumerate(self._cat):
                cat[:, i] = np.asarray(x[f], dtype=object)[:n]
            return num, cat, self._vectors(x, n)
        raise TypeError(f"unsupported input {type(x).__name__}")

    # ---- events and metrics -------------------------------------------------------------
    def _log(self, feature: str, result: Tested, window: str) -> None:
        test, p, score = _test_name(result), result.p_value, result.effect
        _events.warning(
            "drift in feature %s of model %s (%s window, %s p=%s, score=%s)",
            feature,
            self.model,
            window,
            test,
            "n/a" if p is None else f"{p:.3g}",
            "n/a" if score is None else f"{score:.3g}",
            extra={
                "otel.event.name": EVENT_DRIFT_DETECTED,
                semconv.ML_MODEL_NAME: self.model,
                semconv.ML_FEATURE: feature,
                ML_DRIFT_TEST: test,
                ML_WINDOW: window,
                ML_DRIFT_P_VALUE: p,
                ML_DRIFT_SCORE: score,
            },
        )

    def _instruments(self, meter: metrics.Meter) -> None:
        """Publish through `meter`'s drift gauges (made once per meter, for all its windows)."""
        self.meter = meter
        registry.publish_on(meter)

    def observations(self, value: Callable[[Tested], float | None]) -> Iterable[Observation]:
        """One point per test of the last results: each feature's distribution test, its
        null-share and category tests, and the numeric features together."""
        for window, report in self._latest:
            for feature, result in _tests(report):
                test = _test_name(result)
                v = value(result)
                if not test or v is None or not math.isfinite(v):
                    continue
                yield Observation(
                    v,
                    {
                        semconv.ML_MODEL_NAME: self.model,
                        semconv.ML_FEATURE: feature,
                        ML_DRIFT_TEST: test,
                        ML_WINDOW: window,
                    },
                )

    # ---- background thread --------------------------------------------------------------
    def start(self) -> None:
        """Close a window every `window_s` on a daemon thread (no-op when running)."""
        self._closer.start()

    def _restart_thread(self) -> None:
        """First add in a forked child: the parent's thread did not survive the fork."""
        self._restart = False
        self.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (the current window stays buffered)."""
        self._restart = False
        self._closer.stop(timeout)

    @property
    def running(self) -> bool:
        return self._closer.running

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._buf, self._rows = [], 0
        self._pending = {t: [] for t in self._targets}
        self._pending_rows = dict.fromkeys(self._targets, 0)
        self._window_start = self._clock()
        self._restart = self._closer.after_fork()


def _tests(report: DriftReport) -> Iterable[tuple[str, Tested]]:
    """(ml.feature, result) of every test in a report: features, their shares, together."""
    for col in report:
        yield col.column, col
        for share in col.shares:
            yield col.column, share
    if report.multivariate is not None:
        yield DRIFT_MULTIVARIATE, report.multivariate


def _test_name(result: Tested) -> str:
    if isinstance(result, ColumnDrift):
        return result.test or _TESTS.get(result.kind or "", "")
    return result.test or ""


def _stack(vectors: Sequence[Any]) -> np.ndarray:
    """Vectors given one per row as a (rows, d) float array."""
    return np.vstack([np.asarray(v, dtype=float).reshape(1, -1) for v in vectors])
