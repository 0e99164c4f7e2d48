"""The page's same-origin files, read once from the package and served with a content hash
in their URL (so a new version is never hidden by a cache)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["ASSET_NAMES", "Asset", "load_assets"]

ASSET_NAMES = {
    "status.js": "text/javascript; charset=utf-8",
    "status.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    media_type: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    @property
    def url(self) -> str:
        """Relative, so the page also works under a reverse proxy's path prefix."""
        return f"static/{self.name}?v={self.etag.strip(chr(34))}"


def load_assets() -> dict[str, Asset]:
    folder = resources.files("exporter.server.web").joinpath("static")
    return {
        name: Asset(name, folder.joinpath(name).read_bytes(), media_type)
        for name, media_type in ASSET_NAMES.items()
    }
