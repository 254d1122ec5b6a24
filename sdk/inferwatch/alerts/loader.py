"""Policies from a YAML file, or from what `configure(alerts=...)` was given, checked up front.

A policy file is a mapping with ``policies`` (a list) and optionally ``channels``,
``evaluation_interval`` and ``rate_limit``; a bare list is read as the policies alone.

>>> rules = load_rules("collector_config/alerts.yaml")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from inferwatch.alerts.policy import AlertPolicy, AlertRules, PolicyError, explain

AlertsArgument = AlertRules | Sequence[AlertPolicy] | Mapping[str, Any] | str | os.PathLike[str]


def load_rules(path: str | os.PathLike[str]) -> AlertRules:
    """Read and validate a policy file; `PolicyError` names the file, field and problem."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read alert policies from {file}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or exc
        raise PolicyError(f"{file}: not valid YAML{line}: {problem}") from None
    try:
        return rules_from_data(data)
    except PolicyError as exc:
        raise PolicyError(f"{file}: {exc}") from None


def rules_from_data(data: Any) -> AlertRules:
    """Validate parsed YAML/JSON (a mapping, or a list of policies)."""
    if isinstance(data, list):
        data = {"policies": data}
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"expected a mapping with 'policies' (or a list of policies), got {type(data).__name__}"
        )
    try:
        return AlertRules.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(explain(exc, data)) from None


def rules_from(value: AlertsArgument | None) -> AlertRules | None:
    """What `configure(alerts=...)` accepts: rules, policies, a mapping or a YAML path."""
    if value is None:
        return None
    if isinstance(value, AlertRules):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load_rules(value)
    if isinstance(value, Mapping):
        return rules_from_data(value)
    policies = (
        [p for p in value if isinstance(p, AlertPolicy)] if isinstance(value, Sequence) else []
    )
    if policies and len(policies) == len(value):
        try:
            return AlertRules(policies=tuple(policies))
        except ValidationError as exc:
            raise PolicyError(explain(exc, {"policies": policies})) from None
    raise PolicyError(
        "alerts must be AlertRules, a list of AlertPolicy, a mapping or a YAML file path; "
        f"got {type(value).__name__}"
    )
