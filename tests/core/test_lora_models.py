"""LoRA adapters: `checks.models.require` names every served name a target must list (vLLM
lists each loaded adapter in /v1/models with `parent` = its base model, as in vLLM 0.34's
`entrypoints/openai/serving_models.py` `show_available_models`); a missing one is
`model_missing`, naming it. A config without `require` works as before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exporter.config import TargetConfig
from exporter.errors import ConfigError
from exporter.probes import probe_models
from exporter.probes.results import Reason

from .local_server import LocalServer

BASE = "meta-llama/Llama-3.1-8B-Instruct"


def listing(*adapters: str) -> dict:
    card = {"object": "model", "created": 1765000000, "owned_by": "vllm", "max_model_len": 8192}
    data = [{**card, "id": BASE, "root": BASE, "parent": None}]
    data += [{**card, "id": a, "root": f"/adapters/{a}", "parent": BASE} for a in adapters]
    return {"object": "list", "data": data}


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


async def test_every_required_adapter_listed_passes(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, json=listing("sql-lora", "chat-lora"))
    ctx = server.context(model=BASE, checks={"models": {"require": ["sql-lora", "chat-lora"]}})
    r = await probe_models(ctx)
    assert r.success and r.models == (BASE, "sql-lora", "chat-lora"), r.detail


async def test_a_missing_adapter_is_model_missing_naming_it(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, json=listing("sql-lora"))
    ctx = server.context(model=BASE, checks={"models": {"require": ["sql-lora", "chat-lora"]}})
    r = await probe_models(ctx)
    assert not r.success and r.reason is Reason.MODEL_MISSING
    assert "'chat-lora' not served" in r.detail and "'sql-lora'" not in r.detail.split(" not")[0]


async def test_the_single_model_config_still_works(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, json=listing())
    assert (await probe_models(server.context(model=BASE))).success
    r = await probe_models(server.context(model="other/model"))
    assert r.reason is Reason.MODEL_MISSING and "'other/model' not served" in r.detail


def test_an_empty_required_name_is_a_config_error() -> None:
    with pytest.raises((ConfigError, ValueError)) as err:
        TargetConfig(name="t", url="http://127.0.0.1:1", checks={"models": {"require": [" "]}})
    assert "checks.models.require" in str(err.value)
