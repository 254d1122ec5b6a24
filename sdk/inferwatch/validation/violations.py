"""What a check found: `Violations` (counts, span attributes, counter points) and its error."""

from __future__ import annotations

from collections.abc import Mapping

from inferwatch import semconv


class SchemaViolationError(ValueError):
    """Raised by :meth:`Violations.raise_if_any` (strict mode)."""

    __module__ = "inferwatch.validation"  # its name is the spans' error.type: the public path

    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        detail = ", ".join(f"{f}/{r}={n}" for (f, r), n in sorted(violations.counts.items()))
        if violations.unsupported:
            detail = ", ".join(filter(None, [detail, f"unsupported={violations.unsupported}"]))
        super().__init__(f"input violates the schema: {detail}")


class Violations:
    """Result of :meth:`Schema.check`.

    ``counts[(feature, rule)]`` values broke a rule; ``rows`` rows have at least one violation;
    ``total`` is the sum of the counts; ``n`` rows were checked; ``unsupported`` counts inputs
    (or rows of a list) that could not be read.
    """

    __slots__ = ("counts", "n", "rows", "total", "unsupported")

    def __init__(
        self,
        counts: Mapping[tuple[str, str], int] | None = None,
        rows: int = 0,
        n: int = 0,
        unsupported: int = 0,
    ) -> None:
        self.counts: dict[tuple[str, str], int] = dict(counts or {})
        self.rows = rows
        self.n = n
        self.unsupported = unsupported
        self.total = sum(self.counts.values())

    def attributes(self) -> dict[str, int]:
        """Span attributes: ``{"ml.input.violations": total}``, empty when there are none."""
        return {semconv.ML_INPUT_VIOLATIONS: self.total} if self.total else {}

    def metric_points(self) -> list[tuple[int, dict[str, str]]]:
        """``(count, {"ml.feature": ..., "ml.validation.rule": ...})`` for the counter."""
        return [
            (n, {semconv.ML_FEATURE: f, semconv.ML_VALIDATION_RULE: r})
            for (f, r), n in self.counts.items()
        ]

    def raise_if_any(self) -> None:
        """Strict mode: raise :class:`SchemaViolationError` on violations or unreadable input."""
        if self.total or self.unsupported:
            raise SchemaViolationError(self)

    def __repr__(self) -> str:
        return (
            f"Violations(total={self.total}, rows={self.rows}, n={self.n}, "
            f"unsupported={self.unsupported}, counts={self.counts})"
        )
