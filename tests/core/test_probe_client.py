"""The probe client skips httpx's cookie parsing only when there is nothing to parse: a
response that sets a cookie still lands in the jar, exactly as with a plain AsyncClient."""

from __future__ import annotations

import httpx

from exporter.probes import make_client
from exporter.probes._http import ProbeClient


def _handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/set":
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})
    return httpx.Response(200, json={"cookie": request.headers.get("cookie")})


async def test_set_cookie_is_kept_and_sent_back_like_httpx() -> None:
    for client in (
        ProbeClient(transport=httpx.MockTransport(_handler)),
        httpx.AsyncClient(transport=httpx.MockTransport(_handler)),
    ):
        async with client:
            await client.get("http://server.test/set")
            assert client.cookies.get("session") == "abc"
            echoed = (await client.get("http://server.test/echo")).json()
            assert echoed == {"cookie": "session=abc"}


async def test_responses_without_set_cookie_leave_the_jar_empty() -> None:
    async with ProbeClient(transport=httpx.MockTransport(_handler)) as client:
        await client.get("http://server.test/echo")
        assert len(client.cookies.jar) == 0
        client.cookies = {"a": "1"}  # the setter keeps the fast jar
        assert client.cookies.get("a") == "1"
        assert type(client.cookies).__name__ == "_Cookies"


def test_make_client_uses_the_probe_client() -> None:
    for transport in ("aiohttp", "httpx"):
        assert isinstance(make_client(4, transport=transport), ProbeClient)
