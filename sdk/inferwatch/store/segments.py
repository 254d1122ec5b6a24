"""Store segment files: their names, which are open, stale or dead, and the store directory.

Names, layout, rotation and retention are described in `inferwatch.store.writer`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Signal = Literal["traces", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs")
OPEN_SUFFIX = ".open.jsonl"
CLOSED_SUFFIX = ".jsonl"
DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SEGMENT_AGE_S = 300.0
DEFAULT_RETENTION_S = 7 * 24 * 3600.0
STORE_DIR_ENV = "INFERWATCH_STORE"  # as `inferwatch.query.open()` reads it
DEFAULT_DIRECTORY = ".inferwatch"

_NAME = re.compile(
    r"^(?P<signal>traces|logs)-(?P<started>\d{8}T\d{6})-(?P<pid>\d+)-(?P<token>[0-9a-f]+)"
    r"(?P<suffix>\.open\.jsonl|\.jsonl)$"
)


def default_directory() -> Path:
    """``$INFERWATCH_STORE`` if set, else ``./.inferwatch`` (where `iw.query.open()` looks)."""
    return Path(os.environ.get(STORE_DIR_ENV) or DEFAULT_DIRECTORY).expanduser().absolute()


@dataclass(frozen=True)
class SegmentName:
    """The parts of a segment file name."""

    signal: Signal
    started: str  # UTC, yyyymmddTHHMMSS
    pid: int
    token: str
    is_open: bool

    @property
    def closed_name(self) -> str:
        return f"{self.signal}-{self.started}-{self.pid}-{self.token}{CLOSED_SUFFIX}"

    @property
    def open_name(self) -> str:
        return f"{self.signal}-{self.started}-{self.pid}-{self.token}{OPEN_SUFFIX}"


def parse_segment_name(name: str) -> SegmentName | None:
    """The parts of a segment's file name, or None for a file that is not a segment."""
    match = _NAME.match(name)
    if match is None:
        return None
    signal: Signal = "traces" if match["signal"] == "traces" else "logs"
    return SegmentName(
        signal, match["started"], int(match["pid"]), match["token"], match["suffix"] == OPEN_SUFFIX
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (in our pid namespace)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would stop the process there: assume it lives
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to another user
        return True
    except OSError:
        return False
    return True


def is_stale(path: Path, max_segment_age_s: float = DEFAULT_MAX_SEGMENT_AGE_S) -> bool:
    """An open segment left behind by a dead process: readers may treat it as closed."""
    parsed = parse_segment_name(path.name)
    if parsed is None or not parsed.is_open or pid_alive(parsed.pid):
        return False
    try:
        return time.time() - path.stat().st_mtime > max_segment_age_s
    except FileNotFoundError:  # renamed or deleted meanwhile
        return False


def validate_signal(signal: str) -> Signal:
    if signal == "traces":
        return "traces"
    if signal == "logs":
        return "logs"
    raise ValueError(f"unknown signal {signal!r}; the store holds {' and '.join(SIGNALS)}")
