"""Fuzzed webhook bodies never produce a 5xx (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from exporter.recovery import RecoveryService
from exporter.recovery.api import build_routes
from tests.recovery.helpers import AUTH, FakeTargets, alert, make_config, payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
alert_fields = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "", "FIRING"]) | json_values,
        "labels": st.dictionaries(st.text(max_size=10), st.text(max_size=30)) | json_values,
        "annotations": json_values,
        "startsAt": st.sampled_from(
            ["2025-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2025-13-01T00:00:00Z", "now"]
        )
        | json_values,
        "endsAt": json_values,
        "fingerprint": st.text(max_size=300) | json_values,
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "version": json_values,
        "status": json_values,
        "groupKey": json_values,
        "truncatedAlerts": st.integers(min_value=-5, max_value=2**70) | json_values,
        "alerts": st.lists(alert_fields, max_size=4) | json_values,
        "commonLabels": json_values,
    },
)


Post = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Post]:
    """The app on an event loop in a helper thread; `post(**kw)` sends one webhook and waits."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    svc = RecoveryService(make_config(tmp, dry_run=True), FakeTargets())
    transport = httpx.ASGITransport(app=Starlette(routes=build_routes(svc)))
    with start_blocking_portal() as portal:
        portal.call(svc.start)
        client = httpx.AsyncClient(transport=transport, base_url="http://exporter")

        def send(**kw: Any) -> httpx.Response:
            return portal.call(partial(client.post, "/hooks/alertmanager", **kw))

        try:
            yield send
        finally:
            portal.call(client.aclose)
            portal.call(svc.stop)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2048))
def test_random_bytes(post: Post, body: bytes) -> None:
    r = post(content=body, headers=AUTH)
    assert r.status_code < 500
    assert r.status_code in (200, 400)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages)
def test_structured_garbage(post: Post, message: dict) -> None:
    r = post(content=json.dumps(message), headers=AUTH)
    assert r.status_code in (200, 400), r.text
    assert "error" in r.json() or r.json()["status"] == "ok"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(
        st.sampled_from(["authorization", "content-length", "content-type", "transfer-encoding"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )
)
def test_odd_headers(post: Post, headers: dict[str, str]) -> None:
    headers = {k: v for k, v in headers.items() if k != "transfer-encoding"}
    r = post(content=json.dumps(payload(alert())), headers=headers)
    assert r.status_code < 500
