"""What the label joiner has counted, kept with its source: files in a store, tables in ClickHouse.

A `Ledger` holds the joiner's committed `State` — its ``service.instance.id``, the cumulative
totals it exports, the labels it could not judge — and the keys (request id, model) it decided,
which the next pass's query leaves out. A pass commits its keys first and its state last, in
one atomic step (a file rename; one row inserted), so keys of a pass that never committed are
not counted: by file name (the state lists its key files) or by pass number (keys rows of a pass
after the committed one are ignored, and deleted by the next pass).

- `StoreLedger`: ``<store>/labels/``: ``joiner.state`` (JSON; no ``*.json*`` name, so no query
  takes it for a segment), ``keys-*.tsv`` (compacted when there are many), and a ``lock`` file
  held (flock) for the length of a pass, so two joiners never pass at once.
- `TableLedger`: ``inferwatch_label_keys`` and ``inferwatch_label_state`` in the source's
  ClickHouse database, created on first use. ClickHouse has no lock: run one joiner per source.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from inferwatch.attributes import AttributeValue
from inferwatch.delayed_labels.scores import WindowScores
from inferwatch.query.engines import escape_text, file_table, unescape_text

_FORMAT = 1
_COMPACT_AFTER = 16
STATE_DIRECTORY = "labels"
STATE_FILE = "joiner.state"
KEYS_TABLE = "inferwatch_label_keys"
STATE_TABLE = "inferwatch_label_state"
Key = tuple[str, str, int]
"""(request id, model, label time in ns): one decided prediction, or label without one."""
NO_KEYS = "(SELECT '' AS RequestId, '' AS Model WHERE 0)"


class JoinError(Exception):
    """The pass could not run or its export failed: nothing was committed."""


@dataclass
class Tally:
    """The counts of one metric series group: the serving service it goes out under, and the
    (model, version, metric tags, serving window) counts."""

    resource: tuple[str, str]
    """(service.name, service.namespace) of the predictions' spans: the backend's ``job``."""
    scores: WindowScores

    def copy(self) -> Tally:
        return Tally(self.resource, self.scores.copy())


def tally_key(resource: tuple[str, str], attributes: dict[str, AttributeValue]) -> str:
    return json.dumps([*resource, sorted(attributes.items())])


@dataclass
class State:
    """The joiner's committed state: identity, cumulative totals, where its keys are."""

    instance_id: str
    started_ns: int
    passes: int = 0
    totals: dict[str, Tally] = field(default_factory=dict)
    unjoined: dict[str, int] = field(default_factory=dict)
    key_files: list[str] = field(default_factory=list)
    """`StoreLedger` only: the committed key files."""

    @classmethod
    def new(cls) -> State:
        return cls(f"inferwatch-labels-{uuid.uuid4().hex[:16]}", time.time_ns())

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": _FORMAT,
                "instance_id": self.instance_id,
                "started_ns": self.started_ns,
                "passes": self.passes,
                "key_files": self.key_files,
                "totals": [
                    {
                        "resource": list(t.resource),
                        "attributes": s.attributes,
                        "labelled": s.labelled,
                        "confusion": [[a, b, n] for (a, b), n in s.confusion.items()],
                        "correct": s.correct,
                        "errors": s.errors,
                        "abs_error": s.abs_error,
                        "squared_error": s.squared_error,
                    }
                    for t in self.totals.values()
                    for s in (t.scores,)
                ],
                "unjoined": self.unjoined,
            }
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> State:
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise JoinError(f"the joiner's state in {where} has format {data.get('format')!r}")
            totals = {}
            for entry in data["totals"]:
                resource = (entry["resource"][0], entry["resource"][1])
                scores = WindowScores(
                    dict(entry["attributes"]),
                    labelled=entry["labelled"],
                    confusion={(a, b): n for a, b, n in entry["confusion"]},
                    correct=entry["correct"],
                    errors=entry["errors"],
                    abs_error=entry["abs_error"],
                    squared_error=entry["squared_error"],
                )
                totals[tally_key(resource, scores.attributes)] = Tally(resource, scores)
            return cls(
                data["instance_id"],
                data["started_ns"],
                data["passes"],
                totals,
                dict(data["unjoined"]),
                list(data.get("key_files", [])),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise JoinError(f"the joiner's state in {where} cannot be read: {exc!r}") from exc


class Ledger(Protocol):
    def load(self) -> State:
        """The committed state (a new one before the first commit)."""

    def counted(self, state: State) -> str:
        """A relation of the keys (RequestId, Model) decided by committed passes."""

    def commit(self, state: State, decided: list[Key], horizon_ns: int) -> None:
        """Commit ``state`` (its ``passes`` already advanced) and the pass's decided keys; keys
        of labels older than ``horizon_ns`` may be forgotten (no pass reads those labels)."""

    def exclusive(self) -> Any:
        """A context manager held for the length of a pass."""


class StoreLedger:
    """The ledger of a store directory: ``labels/`` beside the segments."""

    def __init__(self, store: Path) -> None:
        self.directory = store / STATE_DIRECTORY

    def load(self) -> State:
        path = self.directory / STATE_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return State.new()
        except OSError as exc:
            raise JoinError(f"the joiner's state {path} cannot be read: {exc}") from exc
        return State.from_json(text, str(path))

    def counted(self, state: State) -> str:
        parts = [
            f"SELECT RequestId, Model FROM {file_table(self.directory / name, 'TSV', _KEYS)}"
            for name in state.key_files
        ]
        return "(" + " UNION ALL ".join(parts) + ")" if parts else NO_KEYS

    def commit(self, state: State, decided: list[Key], horizon_ns: int) -> None:
        """Write the pass's keys, then the state naming them (a rename: all or nothing)."""
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True)
        files = list(state.key_files)
        if decided:
            name = f"keys-{state.passes:08d}.tsv"
            _write_keys(directory / name, decided)
            files.append(name)
        obsolete: list[str] = []
        if len(files) > _COMPACT_AFTER:
            obsolete, files = files, [f"keys-{state.passes:08d}-all.tsv"]
            kept = [k for f in obsolete for k in _read_keys(directory / f) if k[2] >= horizon_ns]
            _write_keys(directory / files[0], kept)
        state.key_files = files
        temporary = directory / f".{STATE_FILE}.{os.getpid()}"
        temporary.write_text(state.to_json())
        os.replace(temporary, directory / STATE_FILE)
        for name in obsolete:
            (directory / name).unlink(missing_ok=True)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's joiner lock (``labels/lock``) for one pass, or raise `JoinError`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                where = self.directory.parent
                raise JoinError(f"another label joiner is in a pass on {where}") from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class TableLedger:
    """The ledger of a ClickHouse source: two tables in its database (``engine.command``)."""

    def __init__(self, engine: Any, database: str) -> None:
        self.engine = engine
        self.keys = f"{database}.{KEYS_TABLE}"
        self.state = f"{database}.{STATE_TABLE}"
        self._created = False

    def _create(self) -> None:
        if self._created:
            return
        self.engine.command(
            f"CREATE TABLE IF NOT EXISTS {self.keys} (RequestId String, Model String, "
            "LabelledAt Int64, Pass UInt64) ENGINE = MergeTree ORDER BY (RequestId, Model)",
            {},
        )
        # One logical row: the newest pass's state (older versions are merged away).
        self.engine.command(
            f"CREATE TABLE IF NOT EXISTS {self.state} (Joiner LowCardinality(String), "
            "Pass UInt64, State String, CommittedAt DateTime64(3) DEFAULT now64(3)) "
            "ENGINE = ReplacingMergeTree(Pass) ORDER BY Joiner",
            {},
        )
        self._created = True

    def load(self) -> State:
        self._create()
        rows = self.engine.query(
            f"SELECT Pass, State FROM {self.state} ORDER BY Pass DESC LIMIT 1", {}
        )
        state = State.from_json(rows[0][1], self.state) if rows else State.new()
        # Keys of a pass that inserted them but never committed its state: not counted, gone.
        stale = self.engine.query(
            f"SELECT count() FROM {self.keys} WHERE Pass > {{committed:UInt64}}",
            {"committed": state.passes},
        )
        if stale and stale[0][0]:
            self.engine.command(
                f"ALTER TABLE {self.keys} DELETE WHERE Pass > {{committed:UInt64}}",
                {"committed": state.passes},
            )
        return state

    def counted(self, state: State) -> str:
        return f"(SELECT RequestId, Model FROM {self.keys} WHERE Pass <= {int(state.passes)})"

    def commit(self, state: State, decided: list[Key], horizon_ns: int) -> None:
        self._create()
        if decided:
            rows = "".join(
                f"{escape_text(r)}\t{escape_text(m)}\t{ns}\t{state.passes}\n"
                for r, m, ns in decided
            )
            self.engine.command(
                f"INSERT INTO {self.keys} SELECT * FROM format(TSV, "
                "'RequestId String, Model String, LabelledAt Int64, Pass UInt64', {rows:String})",
                {"rows": rows},
            )
        self.engine.command(
            f"INSERT INTO {self.state} (Joiner, Pass, State) VALUES "
            "('joiner', {passes:UInt64}, {state:String})",
            {"passes": state.passes, "state": state.to_json()},
        )

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        yield


_KEYS = "RequestId String, Model String, LabelledAt Int64"


def _write_keys(path: Path, keys: list[Key]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with temporary.open("w") as out:
        for request_id, model, labelled_ns in keys:
            out.write(f"{escape_text(request_id)}\t{escape_text(model)}\t{labelled_ns}\n")
    os.replace(temporary, path)


def _read_keys(path: Path) -> list[Key]:
    keys = []
    for line in path.read_text().splitlines():
        request_id, model, labelled_ns = line.split("\t")
        keys.append((unescape_text(request_id), unescape_text(model), int(labelled_ns)))
    return keys
