"""Query results as terminal tables (rich), JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(cell(v) for v in value)
    return str(value)


def table(columns: Sequence[str], rows: Sequence[dict[str, Any]], notes: Sequence[str]) -> str:
    from rich.console import Console
    from rich.table import Table

    out = Table(show_edge=False, header_style="bold")
    for column in columns:
        numeric = any(isinstance(r.get(column), int | float) for r in rows[:20])
        out.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        out.add_row(*(cell(row.get(c)) for c in columns))
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(out)
    for note in notes:
        console.print(f"note: {note}")
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined,no-any-return]


def to_json(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps([{c: r.get(c) for c in columns} for r in rows], default=str)


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: cell(row.get(c)) for c in columns})
    return out.getvalue()
