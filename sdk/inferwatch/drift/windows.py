"""Live drift detection in the serving path: tumbling windows compared against a baseline.

``add()`` only keeps a reference to each input (O(1), never raises); ``close_window()`` (called
by a daemon thread every ``window_s``, or directly) turns the buffered rows into a
:class:`Profile` in one vectorised pass, compares it and the running merge of all closed windows
with the baseline, logs one ``ml.drift.detected`` event per drifted feature and publishes the
results through observable gauges.

Inputs are kept by reference until their window closes: do not mutate an array after ``add()``.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from typing import Any

import numpy as np
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import _internal, semconv
from inferwatch.drift.compare import ColumnDrift, DriftReport, compare
from inferwatch.drift.profile import Profile
from inferwatch.semconv import (
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

_events = logging.getLogger("inferwatch.events")
_TESTS = {"numeric": "ks", "categorical": "chi2"}
_NUMERIC_INFERRED = {"floating", "integer", "mixed-integer-float", "decimal", "empty"}
_live: weakref.WeakSet[DriftWindows] = weakref.WeakSet()


def window_label(seconds: float) -> str:
    """A short label for a window length: 300 -> "5m", 3600 -> "1h", 30 -> "30s", 0.1 -> "100ms"."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


class DriftWindows:
    """Buffers live inputs of one model and tests each closed window for drift."""

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
    ) -> None:
        if not isinstance(baseline, Profile):
            raise TypeError(f"baseline must be a Profile, not {type(baseline).__name__}")
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if max_rows_per_window < 1 or keep_windows < 1:
            raise ValueError("max_rows_per_window and keep_windows must be at least 1")
        names = list(features) if features is not None else list(baseline.columns)
        missing = [f for f in names if f not in baseline.columns]
        if missing or not names:
            raise ValueError(f"features not in the baseline profile: {missing or names}")
        self.model = model
        self.baseline = baseline
        self.window_s = float(window_s)
        self.features = names
        self.alpha = alpha
        self.min_effect = min_effect
        self.max_rows_per_window = max_rows_per_window
        self.label = label or window_label(self.window_s)
        self._clock = clock
        kinds = {f: baseline.columns[f].kind for f in names}
        self._num = [f for f in names if kinds[f] == "numeric"]
        self._cat = [f for f in names if kinds[f] == "categorical"]
        self._num_idx = np.array([names.index(f) for f in self._num], dtype=np.intp)
        self._cat_idx = np.array([names.index(f) for f in self._cat], dtype=np.intp)
        self._all_numeric = not self._cat
        # current window (guarded by _lock)
        self._lock = threading.Lock()
        self._buf: list[tuple[Any, int]] = []
        self._rows = 0
        self._window_start = clock()
        self.dropped_rows = 0  # rows over max_rows_per_window, not kept (all windows)
        self.rejected = 0  # rows that could not be read (all windows)
        # closed windows (written by close_window under _close_lock, read without locks)
        self._close_lock = threading.Lock()
        self._ring: deque[Profile] = deque(maxlen=keep_windows)
        self._cumulative: Profile | None = None
        self._latest: tuple[tuple[str, DriftReport], ...] = ()
        self._cumulative_drifted: set[str] = set()
        # background thread
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._restart = False
        _live.add(self)
        if meter is not None:
            self._instruments(meter)

    # ---- hot path -----------------------------------------------------------------------
    def add(self, x: Any) -> None:
        """Buffer one input (2-D array, DataFrame, dict row or dict of columns); never raises."""
        try:
            if self._restart:  # first add in a forked child: the thread did not survive
                self._restart = False
                self.start()
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
            _internal.log_internal_error("drift.add", exc)

    def _row_count(self, x: Any) -> int:
        """Rows in `x` (O(1)); minus the rows when it cannot be read."""
        if isinstance(x, np.ndarray):
            width = len(self.features)
            if x.ndim == 2:
                rows = int(x.shape[0])
                return rows if x.shape[1] == width else -rows
            return 1 if x.ndim == 1 and x.shape[0] == width else -1
        if type(x) is not dict and _is_dataframe(x):
            return len(x)
        if type(x) is dict or isinstance(x, Mapping):
            if not x:
                return -1
            first = next(iter(x.values()))
            if _is_scalar(first):
                return 1
            try:
                return len(first)
            except TypeError:
                return -1
        if isinstance(x, list | tuple):
            return len(x) if x and not _is_scalar(x[0]) else 1
        return -1

    # ---- windows ------------------------------------------------------------------------
    def close_window(self) -> DriftReport | None:
        """Profile and test the buffered rows; None when the window holds no readable row."""
        with self._close_lock:
            now = self._clock()
            with self._lock:
                buf, self._buf, self._rows = self._buf, [], 0
                self._window_start = now
            if not buf:
                return None
            profile = self._profile(buf)
            if profile is None:
                return None
            cumulative = profile if self._cumulative is None else self._cumulative.merge(profile)
            kw: dict[str, Any] = {"alpha": self.alpha, "min_effect": self.min_effect}
            report = compare(self.baseline, profile, columns=self.features, **kw)
            overall = compare(self.baseline, cumulative, columns=self.features, **kw)
            self._cumulative = cumulative
            self._latest = ((self.label, report), (WINDOW_CUMULATIVE, overall))
            self._ring.append(profile)  # last: a reader seeing the window sees its results
            for col in report:
                if col.drifted:
                    self._log(col, self.label)
            now_drifted = set(overall.drifted_columns)
            for col in overall:  # cumulative: only when a feature starts drifting
                if col.drifted and col.column not in self._cumulative_drifted:
                    self._log(col, WINDOW_CUMULATIVE)
            self._cumulative_drifted = now_drifted
            return report

    def sliding(self, n: int) -> Profile | None:
        """The merge of the last `n` closed windows (of at most `keep_windows`)."""
        last = list(self._ring)[-n:] if n > 0 else []
        return reduce(Profile.merge, last) if last else None

    @property
    def windows(self) -> list[Profile]:
        """Profiles of the closed windows still kept, oldest first."""
        return list(self._ring)

    @property
    def cumulative(self) -> Profile | None:
        """The merge of every closed window."""
        return self._cumulative

    @property
    def latest(self) -> dict[str, DriftReport]:
        """The last results: {window label: report, "cumulative": report}."""
        return dict(self._latest)

    def _profile(self, buf: list[tuple[Any, int]]) -> Profile | None:
        num_blocks: list[np.ndarray] = []
        cat_blocks: list[np.ndarray] = []
        bad = 0
        rows = [x for x, n in buf if _is_dict_row(x, n)]
        if len(rows) > 1:  # dict rows: convert them together, one by one only if that fails
            try:
                num_blocks.append(_numeric(_take(rows, self._num)))
                cat_blocks.append(_take(rows, self._cat))
                buf = [(x, n) for x, n in buf if not _is_dict_row(x, n)]
            except Exception:
                del num_blocks[:], cat_blocks[:]
        for x, n in buf:
            try:
                num, cat = self._blocks(x, n)
            except Exception:
                bad += n
                continue
            num_blocks.append(num)
            cat_blocks.append(cat)
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
        return Profile.build(data, columns=self.features, categorical=self._cat)

    def _blocks(self, x: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(numeric features as float (n, N), categorical features as object (n, C))."""
        if isinstance(x, list | tuple):
            x = np.asarray(x, dtype=object)
            if x.ndim != 2 or x.shape[1] != len(self.features):
                x = x.reshape(1, -1) if x.ndim == 1 else x
                if x.shape[1] != len(self.features):
                    raise ValueError("wrong width")
        if isinstance(x, np.ndarray):
            arr = x.reshape(1, -1) if x.ndim == 1 else x[:n]
            if self._all_numeric and arr.dtype.kind in "iufb":
                return arr, _EMPTY_OBJ
            return _numeric(arr[:, self._num_idx]), arr[:, self._cat_idx].astype(object)
        if _is_dataframe(x):
            frame = x.iloc[:n]
            num = np.empty((n, len(self._num)))
            for i, f in enumerate(self._num):
                num[:, i] = _numeric(frame[f].to_numpy())
            cat = np.empty((n, len(self._cat)), dtype=object)
            for i, f in enumerate(self._cat):
                cat[:, i] = frame[f].to_numpy(dtype=object)
            return num, cat
        if isinstance(x, Mapping):
            if _is_dict_row(x, n):
                return _numeric(_take([x], self._num)), _take([x], self._cat)
            num = np.empty((n, len(self._num)))
            for i, f in enumerate(self._num):
                num[:, i] = _numeric(np.asarray(x[f])[:n])
            cat = np.empty((n, len(self._cat)), dtype=object)
            for i, f in enumerate(self._cat):
                cat[:, i] = np.asarray(x[f], dtype=object)[:n]
            return num, cat
        raise TypeError(f"unsupported input {type(x).__name__}")

    # ---- events and metrics -------------------------------------------------------------
    def _log(self, col: ColumnDrift, window: str) -> None:
        test = col.test or _TESTS.get(col.kind or "", "")
        p, score = col.p_value, col.effect
        _events.warning(
            "drift in feature %s of model %s (%s window, %s p=%s, score=%s)",
            col.column, self.model, window, test,
            "n/a" if p is None else f"{p:.3g}", "n/a" if score is None else f"{score:.3g}",
            extra={
                "otel.event.name": EVENT_DRIFT_DETECTED,
                semconv.ML_MODEL_NAME: self.model,
                semconv.ML_FEATURE: col.column,
                ML_DRIFT_TEST: test,
                ML_WINDOW: window,
                ML_DRIFT_P_VALUE: p,
                ML_DRIFT_SCORE: score,
            },
        )  # fmt: skip

    def _instruments(self, meter: metrics.Meter) -> None:
        def gauge(name: str, value: Callable[[ColumnDrift], float | None], what: str) -> None:
            def observe(options: CallbackOptions) -> Iterable[Observation]:
                return list(self._observations(value))

            meter.create_observable_gauge(name, callbacks=[observe], unit="1", description=what)

        gauge(METRIC_DRIFT_SCORE, lambda c: c.effect, "Drift effect size of a feature")
        gauge(METRIC_DRIFT_P_VALUE, lambda c: c.p_value, "Drift test p-value of a feature")
        gauge(METRIC_DRIFT_DETECTED, lambda c: float(c.drifted), "1 when a feature drifted")

    def _observations(self, value: Callable[[ColumnDrift], float | None]) -> Iterable[Observation]:
        for window, report in self._latest:
            for col in report:
                test = _TESTS.get(col.kind or "")
                v = value(col)
                if test is None or v is None or not math.isfinite(v):
                    continue
                yield Observation(
                    v,
                    {
                        semconv.ML_MODEL_NAME: self.model,
                        semconv.ML_FEATURE: col.column,
                        ML_DRIFT_TEST: test,
                        ML_WINDOW: window,
                    },
                )

    # ---- background thread --------------------------------------------------------------
    def start(self) -> None:
        """Close a window every `window_s` on a daemon thread (no-op when running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), daemon=True,
                name=f"inferwatch-drift-{self.model}",
            )  # fmt: skip
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (the current window stays buffered)."""
        self._restart = False
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop_event.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(max(0.0, self._window_start + self.window_s - self._clock())):
            try:
                self.close_window()
            except Exception as exc:
                _internal.log_internal_error("drift.close_window", exc)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._buf, self._rows = [], 0
        self._window_start = self._clock()
        self._restart = self._thread is not None and not self._stop_event.is_set()
        self._thread = None
        self._stop_event = threading.Event()


_EMPTY_OBJ = np.empty((0, 0), dtype=object)


def _is_dataframe(x: Any) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "iloc")


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, float | int | str | bytes) or np.ndim(v) == 0


def _is_dict_row(x: Any, n: int) -> bool:
    return n == 1 and isinstance(x, Mapping) and _is_scalar(next(iter(x.values())))


def _take(rows: list[Any], names: list[str]) -> np.ndarray:
    """The `names` values of dict rows as an object array (len(rows), len(names))."""
    out = np.empty((len(rows), len(names)), dtype=object)
    if names:
        out[:] = [[row[f] for f in names] for row in rows]
    return out


def _numeric(values: np.ndarray) -> np.ndarray:
    """Numbers (and nulls) as float64; raises on strings or other objects."""
    if values.dtype.kind in "iufb":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind != "O":
        raise TypeError(f"non-numeric values ({values.dtype}) in a numeric feature")
    import pandas as pd

    if pd.api.types.infer_dtype(values.ravel(), skipna=True) not in _NUMERIC_INFERRED:
        raise TypeError("non-numeric values in a numeric feature")
    return np.where(pd.isna(values), np.nan, values).astype(np.float64)


def _reset_after_fork() -> None:
    for windows in list(_live):
        windows._after_fork_in_child()


def _stop_all() -> None:  # at exit: no thread left inside the sketches
    for windows in list(_live):
        windows.stop(timeout=1.0)


atexit.register(_stop_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
