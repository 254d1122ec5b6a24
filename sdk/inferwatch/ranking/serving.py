"""Ranking on the serving path: the lists a model serves feed its feedback-loop windows.

A model declared ``prediction_kind="ranking"`` returns its ranked list; any model can record one
with `Inference.record_ranking`. The list goes to the model's windows (`inferwatch.ranking`) and
is remembered under the request id for its clicks (`inferwatch.ranking.clicks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.instrument.observers import Observer
from inferwatch.ranking.clicks import remember_ranking
from inferwatch.ranking.registry import record_list

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference, ModelSpec


class RankingObserver(Observer):
    __slots__ = ("model",)
    name = "ranking"

    def __init__(self, model: str) -> None:
        self.model = model

    def on_ranking(self, rec: Inference, items: Any, positions: Any, clicks: Any) -> None:
        recorded = record_list(self.model, items, positions, clicks)
        if recorded is not None:
            rec.span.set_attributes(recorded.attributes)
            remember_ranking(rec.request_id, rec.span, self.model, recorded)


def observer(spec: ModelSpec) -> RankingObserver:
    return RankingObserver(spec.model)
