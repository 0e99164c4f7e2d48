"""What every action receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    import httpx


__all__ = ["ActionContext", "ActionResult", "api_message"]


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


def api_message(response: httpx.Response) -> str:
    """The `message` of a Docker or Kubernetes API error body, else the reason phrase."""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return str(body["message"])[:300]
    except ValueError:
        pass
    return response.reason_phrase
