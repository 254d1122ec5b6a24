"""The ``exception.stacktrace`` text: the standard library's, without its per-call ``os.stat``.

`inferwatch.attributes.stacktrace` must say what ``traceback.format_exception`` says (less the
column markers), for plain, chained, context-suppressed and grouped exceptions, and must not
call ``linecache.checkcache``: in a loop of failing calls its stat of each source file starved
the export threads of the GIL (tests/test_store.py checks the burst that found it).
"""

from __future__ import annotations

import linecache
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from inferwatch.attributes import stacktrace

_MARKERS = re.compile(r"^\s*[\^~]+\s*$")


def standard(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "".join(line for line in text.splitlines(True) if not _MARKERS.match(line))


def caught(fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def plain() -> None:
    raise ValueError("bad input 3")


def caused() -> None:
    try:
        plain()
    except ValueError as exc:
        raise RuntimeError("scoring failed") from exc


def during() -> None:
    try:
        plain()
    except ValueError:
        {}["missing"]


def suppressed() -> None:
    try:
        plain()
    except ValueError:
        raise KeyError("x") from None


def noted() -> None:
    exc = ValueError("")
    exc.add_note("while scoring\nrow 3")
    raise exc


class ModelError(Exception):
    pass


def own_class() -> None:
    raise ModelError("shape (1, 31), expected (1, 32)")


def cycle() -> None:
    first = ValueError("a")
    second = RuntimeError("b")
    first.__context__ = second
    second.__context__ = first
    raise first


@pytest.mark.parametrize("fn", [plain, caused, during, suppressed, noted, own_class, cycle])
def test_the_same_text_as_the_standard_library(fn: Callable[[], None]) -> None:
    if fn is noted and sys.version_info < (3, 11):
        pytest.skip("exception notes: Python 3.11+")
    exc = caught(fn)
    assert stacktrace(exc) == standard(exc)


def test_an_exception_never_raised_has_no_traceback_section() -> None:
    exc = ValueError("made, not raised")
    assert stacktrace(exc) == "ValueError: made, not raised\n" == standard(exc)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups: Python 3.11+")
def test_exception_groups_are_the_standard_librarys_own() -> None:
    def grouped() -> None:
        raise ExceptionGroup("two", [ValueError("a"), KeyError("b")])  # noqa: F821

    exc = caught(grouped)
    assert stacktrace(exc) == "".join(traceback.format_exception(exc))


def test_no_source_file_is_statted(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = caught(caused)
    stacktrace(exc)  # source lines read once, into linecache
    calls: list[str] = []
    monkeypatch.setattr(linecache, "checkcache", lambda *a: calls.append(str(a)))
    assert "raise RuntimeError" in stacktrace(exc)
    assert calls == []
