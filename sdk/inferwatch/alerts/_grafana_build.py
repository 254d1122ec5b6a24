"""Panel specs → dashboard JSON through grafana-foundation-sdk's builders (imported only here)."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, heatmap, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from inferwatch.alerts.grafana import PanelSpec

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_HEIGHT = 8
_WIDTH = 12


def build_dashboard(
    uid: str, title: str, variables: tuple[str, str], rows: list[tuple[str, list[PanelSpec]]]
) -> dict[str, Any]:
    """``variables``: the queries of the ``job`` and ``model`` variables."""
    jobs, models = variables
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["inferwatch", "ml-inference"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(_variable("job", "Service", jobs))
        .with_variable(_variable("model", "Model", models))
    )
    panel_id = 1
    for row_title, panels in rows:
        board = board.with_row(dashboard.Row(row_title).id(panel_id))
        panel_id += 1
        for spec in panels:
            board = board.with_panel(_panel(spec, panel_id))
            panel_id += 1
    built: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return built


def _variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _panel(spec: PanelSpec, panel_id: int) -> Any:
    panel: Any
    if spec.kind == "heatmap":
        panel = heatmap.Panel().calculate(False).show_tooltip()
    else:  # explicit legend and tooltip: Grafana expects an options object, not null
        panel = (
            timeseries.Panel()
            .legend(
                common.VizLegendOptions()
                .show_legend(True)
                .display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM)
            )
            .tooltip(
                common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)
            )
        )
    if spec.kind == "stacked":
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(30)
    panel = (
        panel.id(panel_id)
        .title(spec.title)
        .unit(spec.unit)
        .datasource(DATASOURCE)
        .height(_HEIGHT)
        .span(_WIDTH)
    )
    if spec.description:
        panel = panel.description(spec.description)
    for i, (expr, legend) in enumerate(spec.targets):
        query = (
            prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
        ).datasource(DATASOURCE)
        if spec.kind == "heatmap":
            query = query.format(PromQueryFormat.HEATMAP)
        panel = panel.with_target(query)
    if spec.threshold is not None:
        op, value = spec.threshold
        ok, bad = "green", "red"
        steps = [Threshold(None, ok), Threshold(value, bad)]
        if op in ("<", "<="):
            steps = [Threshold(None, bad), Threshold(value, ok)]
        panel = panel.thresholds(
            dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)
        ).thresholds_style(common.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.LINE))
    if spec.links:
        panel = panel.links(
            [
                dashboard.DashboardLink("Runbook").type(DashboardLinkType.LINK).url(url)
                for url in spec.links
            ]
        )
    return panel
