"""Shared pieces of the dashboards: datasource, queries, the state encoding, panel helpers."""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    DatasourceVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

__all__ = [
    "DATASOURCE",
    "PER_TARGET",
    "STATES",
    "datasource_variable",
    "query",
    "recovery_annotation",
    "state_expr",
    "state_mappings",
    "thresholds",
]

# Every panel uses the datasource picked in the `datasource` variable; the provisioned one
# (uid "prometheus") is the default.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

# Replicas (docs/ha.md): every exporter replica exports every target's series (labels
# `instance`, `pod`). A panel never sums or counts them raw: one value per target (or per
# target and check) is taken over the replicas first, so two replicas show what one does.
PER_TARGET = "max by (target) "

# The one-hot llm_target_state encoded as one number per target, for tables and timelines.
STATES: list[tuple[str, int, str]] = [
    ("unknown", 0, "text"),
    ("up", 1, "green"),
    ("degraded", 2, "orange"),
    ("starting", 3, "blue"),
    ("down", 4, "red"),
    ("overloaded", 5, "yellow"),  # busy, not broken
]


def datasource_variable() -> DatasourceVariable:
    return DatasourceVariable("datasource").label("Data source").type("prometheus")


def state_expr(selector: str = "") -> str:
    """max by (target) of the state's code; `selector` adds matchers, e.g. 'target="$target"'."""
    extra = f",{selector}" if selector else ""
    terms = [
        f'(llm_target_state{{state="{name}"{extra}}} == 1) * {code}' for name, code, _ in STATES
    ]
    return "max by (target) (" + " or ".join(terms) + ")"


def state_mappings() -> list[ValueMap]:
    return [
        ValueMap(
            options={
                str(code): ValueMappingResult(text=name, color=color, index=code)
                for name, code, color in STATES
            }
        )
    ]


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def query(
    expr: str,
    legend: str = "",
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    q = q.instant() if instant else q.range()
    if table:
        q = q.format(PromQueryFormat.TABLE)
    return q


# Recovery attempts that did something (not the skipped ones) become annotations.
RECOVERY_ANNOTATION_EXPR = (
    "sum by (target, action, result) (increase(llm_recovery_attempts_total"
    '{{result!~"skipped_.*"{extra}}}[2m])) > 0'
)


def recovery_annotation(selector: str = "") -> AnnotationQuery:
    extra = f",{selector}" if selector else ""
    return (
        AnnotationQuery()
        .name("Recovery actions")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("purple")
        .expr(RECOVERY_ANNOTATION_EXPR.format(extra=extra))
    )


# Fields of Prometheus annotation queries that the SDK's AnnotationQuery does not model;
# generate.py adds them to the JSON.
RECOVERY_ANNOTATION_EXTRA = {
    "step": "1m",
    "titleFormat": "Recovery {{action}} on {{target}}: {{result}}",
    "tagKeys": "target,action,result",
    "useValueForTime": False,
}
