"""What every config model shares: strictness, names, header names, the defaults."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from exporter.util.net import redact_url

__all__ = [
    "DEFAULT_EXPECT",
    "DEFAULT_MODEL_URL",
    "DEFAULT_PROMPT",
    "HEADER_NAME",
    "NAME",
    "Strict",
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
