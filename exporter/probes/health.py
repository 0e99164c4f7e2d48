"""The health check: the server's own cheap liveness answer. 200 is healthy; 503 means up but
still loading. The path is the server's (probes/servers.py): `/health` for vLLM, SGLang, TGI
and llama-server, `/api/version` for Ollama, `/health/liveliness` for LiteLLM, none for a
hosted API. A 404 or 405 means the server has no such endpoint: `not_offered`, neither a pass
nor a failure (the state rests on the other checks; it is asked again every 10 minutes).

It can lie (vLLM keeps answering 200 while its engine is hung), which is why the chat probe
exists; this one tells "loading" and "unreachable" apart.
"""

from __future__ import annotations

from exporter.errors import ConnectFailed, InputError
from exporter.probes._base import Attempt, get_body, guarded, http_failure
from exporter.probes._http import ProbeContext
from exporter.probes.errors import error_message
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.servers import (
    GENERIC,
    LITELLM_ALIVE_PATH,
    OLLAMA_ROOT_PATH,
    PROFILES,
    is_litellm_alive,
    is_ollama_root,
    profile_for,
)

__all__ = ["identify", "probe_health"]

_SMALL = 4 << 10  # identification answers are a few bytes; a web UI is not read


async def identify(ctx: ProbeContext) -> str | None:
    """What an `auto` target is, from two cheap GETs asked once: Ollama's `/` and LiteLLM's
    `/health/liveliness` (a 404 from both: "generic"). None when the server did not answer."""
    for path, test, name in (
        (OLLAMA_ROOT_PATH, is_ollama_root, "ollama"),
        (LITELLM_ALIVE_PATH, is_litellm_alive, "litellm"),
    ):
        scratch = Attempt(Check.HEALTH)
        try:
            body = await get_body(ctx, scratch, path, _SMALL)
        except ConnectFailed:
            return None  # nothing to learn from a server that is not there
        except (InputError, UnicodeDecodeError):
            body = b""  # too large, malformed: not the answer looked for
        if scratch.status_code is not None and test(scratch.status_code, body):
            return name
    return GENERIC.name


async def probe_health(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.health
    configured = ctx.target.server

    async def body(attempt: Attempt) -> ProbeResult:
        learned: str | None = None
        profile = profile_for(configured, ctx.server)
        if profile is None:  # auto, not identified yet
            learned = await identify(ctx)
            profile = PROFILES.get(learned or "", GENERIC)
        # a path set in the config wins over the profile's
        path = spec.path if "path" in spec.model_fields_set else profile.health_path
        if path is None:
            return attempt.fail(
                Reason.NOT_OFFERED,
                f"server: {profile.name} has no health endpoint (not a failure)",
                server=learned,
            )
        payload = await get_body(ctx, attempt, path, min(ctx.target.max_body_bytes, 64 << 10))
        status = attempt.status_code
        if status == 200:
            return attempt.ok(server=learned)
        if status in (404, 405):
            # an `auto` target found out again next time: it may be another server by then
            forget = "" if configured == "auto" and learned is None else learned
            return attempt.fail(
                Reason.NOT_OFFERED,
                f"HTTP {status} on {path}: the server has no such endpoint (not a failure; "
                "the state rests on the other checks)",
                server=forget,
            )
        if status == 503 and profile.name != "ollama":
            message = error_message(payload) or ""
            if "server busy" not in message.lower():
                return attempt.fail(Reason.LOADING, f"HTTP 503 {message}".strip(), server=learned)
        return http_failure(attempt, payload)

    return await guarded(Check.HEALTH, ctx, body)
