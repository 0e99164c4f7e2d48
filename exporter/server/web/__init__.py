"""The human status page at `/`: server-rendered HTML that a small same-origin script keeps
fresh from `/api/v1/targets`. No external sources, so it works in an air-gapped cluster."""

from __future__ import annotations

from exporter.server.web.routes import status_routes

__all__ = ["status_routes"]
