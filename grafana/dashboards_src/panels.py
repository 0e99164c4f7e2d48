"""Small panel factories so the dashboard modules read as a list of panels."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VisibilityMode,
)
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

from grafana.dashboards_src.common import DATASOURCE, state_mappings, thresholds

__all__ = ["bars", "stat_panel", "state_timeline", "table_panel", "timeseries_panel"]


def timeseries_panel(
    title: str,
    queries: list[Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(list(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
    )
    if description:
        panel = panel.description(description)
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def bars(
    title: str, queries: list[Dataquery], *, description: str = "", width: int = 12
) -> timeseries.Panel:
    """Stacked bars: counts per interval (failures by reason, recovery attempts)."""
    return (
        timeseries_panel(title, queries, description=description, width=width)
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(StackingConfig().mode(StackingMode.NORMAL))
    )


def stat_panel(
    title: str,
    queries: list[Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(list(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(thresholds(*steps))
        .color_mode(BigValueColorMode.VALUE)
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    )
    if description:
        panel = panel.description(description)
    return panel


def state_timeline(
    title: str, queries: list[Dataquery], *, description: str = "", height: int = 8
) -> statetimeline.Panel:
    panel = (
        statetimeline.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(list(queries))
        .mappings(state_mappings())
        .show_value(VisibilityMode.NEVER)
        .merge_values(True)
        .span(24)
        .height(height)
    )
    if description:
        panel = panel.description(description)
    return panel


def table_panel(
    title: str,
    queries: list[Dataquery],
    *,
    rename: dict[str, str],
    description: str = "",
    height: int = 9,
) -> table.Panel:
    """Instant table queries merged on their labels; `rename` maps "Value #X" to a header."""
    excluded = {"Time": True}
    panel = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(list(queries))
        .span(24)
        .height(height)
        .show_header(True)
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": excluded, "renameByName": rename},
            )
        )
    )
    if description:
        panel = panel.description(description)
    return panel
