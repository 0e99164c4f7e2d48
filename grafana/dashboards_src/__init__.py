"""Dashboard definitions: one module per dashboard, built with grafana-foundation-sdk."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from grafana.dashboards_src import fleet, target

__all__ = ["DASHBOARDS"]

# File name (without .json) -> function building the dashboard.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "fleet-overview": fleet.build,
    "target-drilldown": target.build,
}
