"""The ``inferwatch profile`` and ``inferwatch drift`` commands.

    inferwatch profile train.parquet -o baseline.iwp
    inferwatch drift baseline.iwp today.parquet --html drift.html --fail-on-drift

Data files are read with pandas by extension: Parquet (``.parquet``, ``.pq``; needs pyarrow),
CSV (``.csv``), JSON lines (``.jsonl``, ``.ndjson``) and JSON (``.json``: an array of records,
or JSON lines), each optionally compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``, ``.zip``).
A saved profile is recognised by its content, whatever its name. Problems with the data itself
(a feature missing on one side, all null, constant, of mixed types, an empty window) are notes
in the report; problems with the input (no such file, an unreadable file, an unknown format, a
profile of another format version, pandas or pyarrow missing) are :class:`InputError`, which
the command line turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import bz2
import copy
import gzip
import importlib
import json
import lzma
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.cli.argtypes import integer, names, number
from inferwatch.drift.compare import compare, multivariate_line
from inferwatch.drift.profile import MAGIC, Profile, render
from inferwatch.drift.report import (
    MISSING_MATPLOTLIB,
    TABLE_COLUMNS,
    report_dict,
    table_rows,
    verdict,
    write_html,
)

FORMATS = ("table", "json", "csv")
EXIT_DRIFT = 1
_DATA_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")
_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_INSTALL = "pip install 'inferwatch[drift]'"


class InputError(ValueError):
    """A missing, unreadable or unsupported input file or option value (exit code 2)."""


@dataclass
class Output:
    """What a command prints: ``text`` on stdout, ``notes`` on stderr, and its exit code."""

    text: str
    notes: list[str] = field(default_factory=list)
    code: int = 0


# ---- arguments ----------------------------------------------------------------------------------
_names = names("column", "age,country")
_alpha = number(0, high=1)
_non_negative = number(0, low_inclusive=True)
_kll_k = integer(8, 65535)


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``profile`` and ``drift`` (their handler is ``args.handler``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    categorical = "treat these columns of data files as categories (e.g. integer codes)"

    sub = commands.add_parser(
        "profile",
        parents=[common],
        help="summarise data files into a mergeable profile (a drift baseline)",
        description="Profile Parquet, CSV or JSON lines files (several: one merged profile; "
        "saved profiles merge in too), print the summary and save it with -o.",
    )
    sub.add_argument("data", nargs="+", metavar="DATA", help="data files or saved profiles")
    sub.add_argument("-o", "--output", metavar="OUT.iwp", help="save the profile here")
    sub.add_argument("--columns", type=_names, metavar="COL[,COL...]", help="only these columns")
    sub.add_argument("--categorical", type=_names, metavar="COL[,COL...]", help=categorical)
    sub.add_argument(
        "--kll-k", type=_kll_k, default=1000, metavar="K", help="KLL sketch size (1000)"
    )
    sub.set_defaults(handler=run_profile)

    sub = commands.add_parser(
        "drift",
        parents=[common],
        help="test every feature of a current window against a baseline",
        description="Compare a current window with a baseline, feature by feature "
        "(Kolmogorov–Smirnov for numbers, chi-square for categories, two-proportion tests for "
        "null shares and new categories) and the numeric features together (MMD), with "
        "Benjamini–Hochberg across all tests. Each side is a saved profile or a data file.",
    )
    sub.add_argument("baseline", metavar="BASELINE", help="a saved profile (.iwp) or data file")
    sub.add_argument("current", metavar="CURRENT", help="a saved profile (.iwp) or data file")
    sub.add_argument(
        "--alpha", type=_alpha, default=0.05, help="false discovery rate across features (0.05)"
    )
    sub.add_argument(
        "--min-effect",
        type=_non_negative,
        metavar="X",
        help="drift only with at least this effect size (normalised Wasserstein for numbers, "
        "Jensen–Shannon distance for categories)",
    )
    sub.add_argument("--columns", type=_names, metavar="COL[,COL...]", help="only these columns")
    sub.add_argument("--categorical", type=_names, metavar="COL[,COL...]", help=categorical)
    sub.add_argument("--html", metavar="REPORT.html", help="also write an offline HTML report")
    sub.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit with code {EXIT_DRIFT} when any feature drifted (for CI pipelines)",
    )
    sub.set_defaults(handler=run_drift)


# ---- commands -----------------------------------------------------------------------------------
def run_profile(args: argparse.Namespace) -> Output:
    with _dependencies():
        paths = [_existing(p) for p in args.data]
        profile = None
        for path in paths:
            part = _profile_of(path, args.columns, args.categorical or (), args.kll_k)
            try:
                profile = part if profile is None else profile.merge(part)
            except ValueError as exc:
                raise InputError(f"{path}: {exc} (see --categorical)") from None
        assert profile is not None
        notes = [f"{profile.n_rows:,} rows, {len(profile.columns)} columns"]
        if args.output:
            _save(profile, args.output)
            notes.append(f"wrote {args.output}")
        rows = profile.summary_rows()
        if args.format == "table":
            return Output(str(profile) + (f"\nnote: wrote {args.output}" if args.output else ""))
        return Output(_machine(args.format, rows, _keys(rows)), notes)


def run_drift(args: argparse.Namespace) -> Output:
    with _dependencies():
        if args.html:
            _require("matplotlib", MISSING_MATPLOTLIB)
        paths = [_existing(args.baseline), _existing(args.current)]
        given = [_saved_profile(p) for p in paths]
        sides = []
        for i, path in enumerate(paths):
            loaded = given[i]
            if loaded is None:
                other = given[1 - i]
                forced = set(args.categorical or ()) | _forced_categorical(other)
                kll_k = other.kll_k if other is not None else 1000  # equal sketch errors
                loaded = _profile_of(path, None, forced, kll_k)
            sides.append(loaded)
        baseline, current = sides
        if args.columns:
            absent = [
                c for c in args.columns if c not in baseline.columns and c not in current.columns
            ]
            if absent:
                raise InputError(f"--columns: {', '.join(map(repr, absent))} in neither side")
        report = compare(
            baseline, current, alpha=args.alpha, min_effect=args.min_effect, columns=args.columns
        )
        notes = [verdict(report)]
        if report.multivariate is not None:
            notes.append(multivariate_line(report.multivariate))
        notes.append(
            f"baseline {paths[0].name}: {baseline.n_rows:,} rows; "
            f"current {paths[1].name}: {current.n_rows:,} rows"
        )
        if args.html:
            labels = (paths[0].name, paths[1].name)
            html_path = Path(args.html)
            try:
                write_html(html_path, report, baseline, current, labels=labels)
            except OSError as exc:
                raise InputError(f"cannot write {html_path}: {exc.strerror or exc}") from None
            notes.append(f"wrote {html_path}")
        code = EXIT_DRIFT if args.fail_on_drift and report.drifted else 0
        rows = table_rows(report)
        if args.format == "table":
            shown = [{**r, "drifted": "DRIFT" if r["drifted"] else ""} for r in rows]
            return Output(render(list(TABLE_COLUMNS), shown, notes), code=code)
        if args.format == "json":
            return Output(json.dumps(report_dict(report)), notes, code)
        return Output(_machine("csv", rows, list(TABLE_COLUMNS)), notes, code)


# ---- inputs -------------------------------------------------------------------------------------
@contextmanager
def _dependencies() -> Iterator[None]:
    """Turns a missing optional dependency into an InputError naming what to install."""
    try:
        yield
    except ImportError as exc:
        name = (exc.name or "").partition(".")[0]
        if name not in ("pandas", "pyarrow", "matplotlib"):
            raise
        if name == "matplotlib":
            raise InputError(MISSING_MATPLOTLIB) from exc
        raise InputError(f"{name} is not installed: {_INSTALL}") from exc


def _require(module: str, message: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        raise InputError(message) from None


def _existing(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
    return path


def _saved_profile(path: Path) -> Profile | None:
    """The profile saved in `path`, or None when it is not a profile."""
    try:
        with path.open("rb") as f:
            head = f.read(len(MAGIC))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != MAGIC:
        if path.suffix.lower() == ".iwp":
            raise InputError(f"{path} is not an inferwatch profile (bad magic bytes)")
        return None
    try:
        return Profile.load(path)
    except ValueError as exc:  # another format version, or trailing bytes
        raise InputError(f"{path}: {exc}") from None
    except Exception as exc:  # truncated JSON or sketches
        raise InputError(f"{path}: corrupt profile ({type(exc).__name__}: {exc})") from None


def _profile_of(
    path: Path, columns: list[str] | None, categorical: Iterable[str], kll_k: int
) -> Profile:
    """A saved profile, or the profile of a data file."""
    saved = _saved_profile(path)
    forced = set(categorical)
    if saved is not None:
        if columns is not None:
            missing = [c for c in columns if c not in saved.columns]
            if missing:
                raise InputError(f"{path}: no column {', '.join(map(repr, missing))}")
            saved = copy.copy(saved)  # the same profile, fewer columns
            saved.columns = {c: saved.columns[c] for c in columns}
        numeric = [c for c in forced if c in saved.columns and saved.columns[c].kind == "numeric"]
        if numeric:
            raise InputError(
                f"{path} is a saved profile: --categorical cannot change its numeric column "
                f"{', '.join(map(repr, numeric))}; profile the data again"
            )
        return saved
    frame = read_table(path, columns)
    try:
        return Profile.build(frame, columns=columns, categorical=forced, kll_k=kll_k)
    except (KeyError, TypeError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise InputError(f"cannot profile {path}: {message}") from None


def _forced_categorical(profile: Profile | None) -> set[str]:
    """Columns of numeric dtype profiled as categories: so must the other side's be."""
    if profile is None:
        return set()
    numeric = ("int", "uint", "float")
    return {
        name
        for name, col in profile.columns.items()
        if col.kind == "categorical" and col.dtype.lower().startswith(numeric)
    }


def data_format(path: Path) -> str:
    """ "parquet", "csv", "jsonl" or "json" by the file name; InputError otherwise."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    fmt = _DATA_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(_DATA_SUFFIXES)
        raise InputError(
            f"{path}: unknown format (use {known}, optionally compressed, or a saved profile)"
        )
    return fmt


def read_table(path: Path, columns: Sequence[str] | None = None) -> Any:
    """The data file as a pandas DataFrame (only ``columns``, when given)."""
    fmt = data_format(path)
    pd = importlib.import_module("pandas")
    try:
        if fmt == "parquet":
            pq = importlib.import_module("pyarrow.parquet")
            if columns is not None:
                names = set(pq.read_schema(path).names)
                missing = [c for c in columns if c not in names]
                if missing:
                    raise InputError(f"{path}: no column {', '.join(map(repr, missing))}")
            frame = pd.read_parquet(path, engine="pyarrow", columns=columns)
        elif fmt == "csv":
            frame = pd.read_csv(path, low_memory=False)
        else:
            lines = fmt == "jsonl" or not _starts_with_bracket(path)
            # dtype=False: keep the values' own types, so mixed types stay visible.
            frame = pd.read_json(path, lines=lines, dtype=False)
    except (InputError, ImportError):
        raise
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot read {path} as {fmt}: {text}") from None
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"{path}: no column {', '.join(map(repr, missing))}")
        frame = frame[list(columns)]
    return _hashable(frame)


def _starts_with_bracket(path: Path) -> bool:
    opener = _OPENERS.get(path.suffix.lower(), open)
    with opener(path, "rb") as f:
        head: bytes = f.read(4096)
    return head.lstrip().startswith(b"[")


def _hashable(frame: Any) -> Any:
    """Lists and dicts (nested JSON, Parquet lists) become JSON text, so they can be counted;
    a column of equally long lists of numbers stays as it is: a vector feature."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object or _vectors(column):
            continue
        nested = column.map(lambda v: isinstance(v, list | dict | tuple) or hasattr(v, "tolist"))
        if nested.any():
            text = column[nested].map(
                lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str)
            )
            frame[name] = column.where(~nested, text)
    return frame


def _vectors(column: Any) -> bool:
    """Every non-null value is a list or array of numbers, all of one length."""
    values = [v for v in column if isinstance(v, list | tuple) or hasattr(v, "tolist")]
    if not values or len(values) != int(column.notna().sum()):
        return False
    try:
        matrix = np.asarray([np.asarray(v, dtype=np.float64) for v in values])
    except (TypeError, ValueError):
        return False
    return matrix.ndim == 2


# ---- outputs ------------------------------------------------------------------------------------
def _save(profile: Profile, path: str) -> None:
    try:
        profile.save(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


def _machine(fmt: str, rows: list[dict[str, Any]], columns: list[str]) -> str:
    from inferwatch.query import render as rendering

    if fmt == "json":
        return rendering.to_json(columns, rows)
    return rendering.to_csv(columns, rows)
