"""Runnable inferwatch examples; a package, so `python -m examples.<name>` works from the root."""
