"""What every config model shares: strictness, names, header names, the defaults."""

from __future__ import annotations

import re
from urllib.parse import SplitResult

from pydantic import BaseModel, ConfigDict

from exporter.util.net import redact_url

__all__ = [
    "DEFAULT_EXPECT",
    "DEFAULT_MODEL_URL",
    "DEFAULT_PROMPT",
    "HEADER_NAME",
    "NAME",
    "Strict",
    "check_authority",
    "redact_url",
]

DEFAULT_MODEL_URL = "http://localhost:8000"
DEFAULT_PROMPT = "Reply with exactly one word: the capital of France."
DEFAULT_EXPECT = "Paris"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Strict(BaseModel):
    """Unknown keys are errors; a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_authority(parts: SplitResult) -> None:
    """Reject what would put a password where it is shown: a `/`, `?` or `#` in it ends the
    authority early, so the rest of the password would be read as the path (and land in
    metrics, the API, the page and logs). The messages never repeat any part of the URL."""
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        raise ValueError(
            "url has an '@' after the host: if the password (or user name) contains '/', "
            "'?', '#' or '@', percent-encode it (%2F, %3F, %23, %40)"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("url has an invalid port: it must be a number from 1 to 65535")
