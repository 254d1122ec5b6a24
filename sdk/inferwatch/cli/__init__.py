"""The ``inferwatch`` command and its sub-commands."""

from inferwatch.cli.commands import main

__all__ = ["main"]
