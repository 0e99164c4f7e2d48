"""What a target turned out to be and to offer: the server a probe identified (probes/servers.py)
and the checks it does not offer (a 404 on /health), said once in the log when they change."""

from __future__ import annotations

import logging

from exporter.engine.status import Policy
from exporter.probes.results import Check

__all__ = ["learned_server", "log_offered"]

log = logging.getLogger("exporter.engine.state")


def learned_server(target: str, current: str | None, server: str) -> str | None:
    """The server an `auto` target is known as after a probe said `server`: "" forgets it (it
    is found out again next time), a named server beats "generic" (nothing more known), and
    "generic" never replaces a name."""
    if not server:
        return None
    if server == "generic" and current is not None:
        return current
    if server != current:
        log.debug("target %s: identified as %s", target, server)
    return server


def log_offered(target: str, before: Policy, after: Policy, detail: str) -> None:
    """Say once when a check turns out not to be offered (or is offered again)."""
    for check in sorted(after.unoffered - before.unoffered):
        log.info(
            "target %s: %s not offered by the server (not a failure; asked again every 10 "
            "minutes): %s; the state now rests on %s",
            target,
            check.value,
            detail,
            ", ".join(c.value for c in after.judged) or "nothing",
        )
        if Check.CHAT not in after.judged and after.engine is None:
            log.warning(
                "target %s: no enabled check proves inference now (chat disabled, no engine "
                "view): enable checks.chat or set the target's server (docs/servers.md)",
                target,
            )
    for check in sorted(before.unoffered - after.unoffered):
        log.info("target %s: %s offered again", target, check.value)
