"""One module per inference server's engine view, the way blackbox_exporter keeps one prober
per protocol: `ENGINES` maps a flavour (the `checks.engine.flavour` config value) to the
class that reads that server. Adding a server is adding a module and a line here."""

from __future__ import annotations

from exporter.config.engine import EngineNames
from exporter.probes.engines.base import Engine, Found, Names, base_name, read_sample
from exporter.probes.engines.llamacpp import NAMES as LLAMACPP
from exporter.probes.engines.llamacpp import LlamaCpp
from exporter.probes.engines.sglang import NAMES as SGLANG
from exporter.probes.engines.sglang import Sglang
from exporter.probes.engines.tgi import NAMES as TGI
from exporter.probes.engines.tgi import Tgi
from exporter.probes.engines.vllm import NAMES as VLLM
from exporter.probes.engines.vllm import Vllm

__all__ = ["ENGINES", "Engine", "Found", "Names", "base_name", "engines_for", "read_sample"]

ENGINES: dict[str, Engine] = {
    "vllm": Vllm(VLLM),
    "sglang": Sglang(SGLANG),
    "llamacpp": LlamaCpp(LLAMACPP),
    "tgi": Tgi(TGI),
}


def engines_for(flavour: str, override: EngineNames | None) -> list[Engine]:
    """The engines to try: one flavour, or all of them for `auto`; names in `override`
    replace the flavour's own (under `auto` they describe a server no module knows)."""
    if flavour == "auto":
        if override is None:
            return list(ENGINES.values())
        return [Engine(_names(Names("custom"), override))]
    engine = ENGINES[flavour]
    if override is None:
        return [engine]
    return [type(engine)(_names(engine.names, override))]


def _names(base: Names, override: EngineNames) -> Names:
    def pick(q: str) -> tuple[str, ...]:
        given: list[str] = getattr(override, q)
        return tuple(given) if given else getattr(base, q)

    return Names(
        base.flavour,
        pick("running"),
        pick("waiting"),
        pick("kv_usage"),
        pick("progress"),
        pick("generated"),
        base.extra,
    )
