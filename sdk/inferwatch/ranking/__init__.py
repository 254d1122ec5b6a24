"""Feedback-loop signals for ranked outputs: is the recommender still showing the catalogue?

A recommender retrained on its own click logs drifts into a degenerate feedback loop: what it
shows gets clicked, what gets clicked gets shown. Accuracy can look fine throughout; only the
diversity of what is served reveals it. Per model, every ranked list served feeds a tumbling
window of sketches (O(k) for k items, bounded memory whatever the catalogue size); each closed
window publishes, as observable gauges labelled with ``ml.window``:

* ``ml.ranking.distinct_items`` (aggregate diversity) and ``ml.ranking.coverage`` (distinct items
  / catalogue size, when the catalogue size is declared);
* ``ml.ranking.gini``: Gini coefficient of exposure across items, never-recommended catalogue
  items counting as zero exposure (see `exposure_gini` for how the sketches give it);
* ``ml.ranking.long_tail_share``: share of exposures that went to items outside the head of a
  declared popularity baseline;
* ``ml.ranking.ctr`` by ``ml.ranking.position``: click-through by position, in windows that
  received click feedback (``clicks=`` when serving; later, ``iw.feedback(request_id,
  clicks=[item])`` for a list served in an inference, or `record_clicks` by position).

>>> iw.ranking.configure("recs", catalogue_size=50_000, popularity=baseline_counts, window="1h")
>>> with iw.inference(model="recs") as rec: rec.record_ranking(item_ids)

Items are identified by ``str(item)``: ``42`` and ``"42"`` are the same item.

Modules: `.settings` (declarations, item ids), `.inputs` (checks of lists, positions, clicks),
`.stats` (a window's sketches and what they say when closed), `.windows` (`RankingWindows`),
`.registry` (models, gauges, and the functions below).
"""

from inferwatch.ranking.registry import (
    configure,
    record_clicks,
    record_list,
    record_ranking,
    reset,
    windows,
)
from inferwatch.ranking.settings import MAX_POSITIONS_LIMIT, RankingSettings
from inferwatch.ranking.stats import (
    FREQ_LG_MAX_K,
    HEAD_ERROR_MULTIPLE,
    HLL_LG_K,
    SAMPLE_LG_K,
    RankingStats,
    exposure_gini,
)
from inferwatch.ranking.windows import RankingWindows, RecordedList

__all__ = [
    "FREQ_LG_MAX_K",
    "HEAD_ERROR_MULTIPLE",
    "HLL_LG_K",
    "MAX_POSITIONS_LIMIT",
    "SAMPLE_LG_K",
    "RankingSettings",
    "RankingStats",
    "RankingWindows",
    "RecordedList",
    "configure",
    "exposure_gini",
    "record_clicks",
    "record_list",
    "record_ranking",
    "reset",
    "windows",
]
