"""What every action receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ActionContext", "ActionResult"]


@dataclass(frozen=True)
class ActionContext:
    """Alert data for an action. Only the command action passes it on, as LLMHB_* variables."""

    target: str
    target_url: str
    rule: str
    alertname: str
    fingerprint: str
    starts_at: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    detail: str = ""
