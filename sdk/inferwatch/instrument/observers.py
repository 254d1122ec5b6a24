"""The interface features plug into: observers of a model's inferences.

The instrument core opens the span, summarises inputs and predictions and records the core
metrics; at each step it calls the matching hook of every observer of the model. Features —
drift windows, schema validation, the delayed-label index, ranking — are observers, and so are
the data checks. The composition root (``inferwatch/__init__.py``) declares which module provides
the observer for which option of `monitor` / `inference` (`provide`), and which observe every
model (`provide_default`). A module is imported when a model first asks for it, so the core
imports no feature and a feature nobody uses costs nothing, per call or at import.

A provider module has one function, ``observer(spec: ModelSpec) -> Observer | None``, called
when the model is declared (configuration time: a bad option raises there, to the user).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from inferwatch.attributes import AttributeValue

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference, ModelSpec
    from inferwatch.summaries.inputs import InputSummary
    from inferwatch.summaries.predictions import PredictionSummary

FollowUp = Callable[[], object]
"""What an input hook asks to run once the span has started (e.g. log an event with its ids)."""


class Observer:
    """What a feature sees of one model's inferences. Every hook is optional.

    Hooks run on the request thread and must be cheap; an exception in one is an internal error
    (counted, logged, re-raised only in strict mode), never the caller's, and the other observers
    and the span go on.
    """

    __slots__ = ()

    name = "observer"
    """Where its internal errors are counted: ``observer.{name}``."""

    def on_input(
        self,
        rec: Inference,
        x: Any,
        summary: InputSummary | None,
        attributes: dict[str, AttributeValue],
    ) -> FollowUp | None:
        """An input, before the span starts: add span attributes to ``attributes``.

        With `Inference.record_input` the span has started already; the attributes are set on
        it right after. Setting ``rec.refusal`` asks `monitor` to raise that error instead of
        calling the function.
        """
        return None

    def on_prediction(self, rec: Inference, y: Any, summary: PredictionSummary) -> None:
        """A prediction and its summary, after the span's own prediction attributes are set."""

    def on_ranking(self, rec: Inference, items: Any, positions: Any, clicks: Any) -> None:
        """A ranked list served (`Inference.record_ranking`, or a ranking model's output)."""

    def on_label(self, label: Any) -> None:
        """A delayed label of one of this model's predictions, checked, as the user gave it."""

    def exposed(self) -> dict[str, object]:
        """Attributes `monitor` sets on the decorated function (``predict.drift``)."""
        return {}

    def observes(self, hook: str) -> bool:
        """Whether the core should call ``hook`` (asked once, when the model is declared; by
        default when the observer's class implements it)."""
        return getattr(type(self), hook) is not getattr(Observer, hook)


_providers: dict[str, str] = {}
_defaults: list[str] = []
_imported: dict[str, ModuleType] = {}  # per call (clicks) a dict read, not an import look-up


def provide(option: str, module: str) -> None:
    """Declare that ``module.observer(spec)`` observes models given ``option`` (or, for a
    name that is no option, that ``module`` is what `provider` hands out for it)."""
    _providers[option] = module
    _imported.pop(option, None)


def provide_default(module: str) -> None:
    """Declare that ``module.observer(spec)`` observes every model."""
    if module not in _defaults:
        _defaults.append(module)


def build(option: str, spec: ModelSpec) -> Observer | None:
    """The observer of ``option`` for a model (importing its module on first use)."""
    factory: Callable[[ModelSpec], Observer | None] = provider(option).observer
    return factory(spec)


def provider(name: str) -> ModuleType:
    """The module declared for ``name``, imported now if it was not yet.

    Features reach each other this way too: the delayed labels hand ``iw.feedback(rid,
    clicks=...)`` to the provider of ``"clicks"`` (ranking), which they do not import.
    """
    found = _imported.get(name)
    if found is not None:
        return found
    module = _providers.get(name)
    if module is None:
        raise LookupError(f"no feature provides {name!r} (inferwatch/__init__.py declares them)")
    found = _imported[name] = importlib.import_module(module)
    return found


def build_defaults(spec: ModelSpec) -> list[Observer]:
    built = (importlib.import_module(module).observer(spec) for module in _defaults)
    return [observer for observer in built if observer is not None]
