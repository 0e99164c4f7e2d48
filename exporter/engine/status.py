"""The state machine's values: states, policy, transitions, and what it remembers per target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.engine.progress import EnginePolicy, EngineView
from exporter.probes.results import VERDICT_CHECKS, Check, ProbeResult

__all__ = ["Policy", "State", "TargetStatus", "Transition", "awaiting"]


class State(StrEnum):
    UNKNOWN = "unknown"
    STARTING = "starting"
    UP = "up"
    OVERLOADED = "overloaded"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds that drive the machine (from the target's config)."""

    checks: tuple[Check, ...]
    failures_to_down: int = 3
    successes_to_up: int = 1
    retry_interval: float = 1.0
    startup_grace: float = 600.0
    engine: EnginePolicy | None = None
    # checks the server does not offer (/health answered 404): neither pass nor fail
    unoffered: frozenset[Check] = frozenset()
    # the checks whose results pass or fail the target: all but the engine check, whose
    # samples only count through the engine rules, and those not offered (kept, not
    # computed: read on every probe)
    judged: tuple[Check, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        judged = tuple(c for c in self.checks if c in VERDICT_CHECKS and c not in self.unoffered)
        object.__setattr__(self, "judged", judged)

    @property
    def primary(self) -> Check:
        """The check that says "down": health, else models, else chat, among those offered
        (with none offered, the first enabled one, which then decides nothing)."""
        return self.judged[0] if self.judged else self.checks[0]

    @property
    def secondaries(self) -> tuple[Check, ...]:
        return self.judged[1:]


@dataclass(frozen=True, slots=True)
class Transition:
    time: float
    target: str
    from_state: State
    to_state: State
    reason: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "target": self.target,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """Everything the machine remembers about one target."""

    state: State = State.UNKNOWN
    since: float = 0.0
    latest: Mapping[Check, ProbeResult] = field(default_factory=dict)
    failures: Mapping[Check, int] = field(default_factory=dict)
    failing_since: Mapping[Check, float] = field(default_factory=dict)
    ok_streak: int = 0
    grace_until: float | None = None
    loading_since: float | None = None
    reason: str = ""
    detail: str = ""
    # when a check last recovered (a probe timestamp), and the checks that have reported
    # since: failures from before it are stale
    recovered_at: float | None = None
    fresh: frozenset[Check] = frozenset()
    # the server's own metrics folded over time (exporter/engine/progress.py)
    engine: EngineView | None = None

    def consecutive_failures(self, check: Check) -> int:
        return self.failures.get(check, 0)

    def awaiting(self, policy: Policy) -> tuple[Check, ...]:
        """The checks that have not reported since the last recovery (none before any)."""
        return awaiting(self.recovered_at, self.fresh, policy)


def awaiting(
    recovered_at: float | None, fresh: frozenset[Check], policy: Policy
) -> tuple[Check, ...]:
    """TargetStatus.awaiting, for a status still being built."""
    if recovered_at is None:
        return ()
    return tuple(c for c in policy.judged if c not in fresh)
