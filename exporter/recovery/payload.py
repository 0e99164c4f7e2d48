"""Alertmanager's webhook payload (version 4), as sent by notify/webhook/webhook.go.

Message = template.Data + version, groupKey, truncatedAlerts. Unknown fields are ignored so a newer
Alertmanager still gets through; the fields we act on are validated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Alert", "WebhookMessage"]

_MAX_ALERTS = 10000


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Alert(_Lenient):
    """template.Alert: each alert carries its own status (the group's may differ)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(default="", max_length=256)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    def dedup_key(self) -> tuple[str, str]:
        """fingerprint + startsAt: one alert episode, however often Alertmanager re-sends it."""
        fp = self.fingerprint or "labels:" + repr(sorted(self.labels.items()))
        return fp, self.starts_at.isoformat()


class WebhookMessage(_Lenient):
    """notify/webhook.Message."""

    version: str = "4"
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    receiver: str = ""
    status: Literal["firing", "resolved"] | str = ""
    alerts: list[Alert] = Field(max_length=_MAX_ALERTS)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
