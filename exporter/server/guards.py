"""Browser guards for the exporter's own HTTP side.

- `cross_origin`: POST /-/reload trusts a loopback peer, and a browser on the operator's
  machine is one. A page from anywhere can make that browser POST to 127.0.0.1 (a "simple"
  request: text/plain or a form, no preflight). Browsers say where a request comes from
  (`Origin`, `Sec-Fetch-Site`); a request that comes from another origin, or that only a form
  or a simple cross-site request would send, is refused. curl, scripts and sidecars send none
  of these and are not affected.
- `NoStore`: the JSON API and the operational endpoints answer `Cache-Control: no-store`,
  so no browser or proxy cache keeps a target list or the token-protected recovery status.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NoStore", "cross_origin"]

_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
_NO_STORE_PREFIXES = ("/api/", "/-/", "/hooks/")


def cross_origin(request: Request) -> str | None:
    """Why this looks like a cross-origin browser request (None: it does not)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site[:20]}"
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        host = request.headers.get("host", "")
        if origin == "null" or parts.netloc.lower() != host.lower():
            return "Origin is another site"
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype in _SIMPLE_TYPES:
        return f"a {ctype} body (what a form or a simple cross-site request sends)"
    return None


class NoStore:
    """Pure ASGI middleware: `Cache-Control: no-store` on API answers that set none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_NO_STORE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)
