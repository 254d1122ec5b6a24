"""Argument types shared by the command-line tools: argparse calls them on each value and turns
an `ArgumentTypeError` into a one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def names(what: str, example: str) -> Callable[[str], list[str]]:
    """A comma-separated list of names, e.g. ``region,cohort``; empty is refused."""

    def parse(text: str) -> list[str]:
        parsed = [part.strip() for part in text.split(",") if part.strip()]
        if not parsed:
            raise argparse.ArgumentTypeError(f"{text!r} names no {what}: use e.g. {example}")
        return parsed

    return parse


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer of at least `low` (and at most `high`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    return parse


def number(
    low: float, *, low_inclusive: bool = False, high: float | None = None
) -> Callable[[str], float]:
    """A number above `low` (or at least `low`), and below `high` when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value >= low if low_inclusive else value > low
        if not above or (high is not None and not value < high):
            if high is not None:
                bound = f"between {low:g} and {high:g} (exclusive)"
            else:
                bound = f"at least {low:g}" if low_inclusive else f"greater than {low:g}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    return parse
