"""What the commands share: exit codes, the logger, a one-line validation message."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from exporter.errors import validation_messages

__all__ = [
    "EXIT_BUSY",
    "EXIT_OK",
    "EXIT_STARTING",
    "EXIT_UNHEALTHY",
    "EXIT_USAGE",
    "first_error",
    "log",
]

log = logging.getLogger("llm-heartbeat")

# `probe`: 0 healthy, 1 unhealthy, 2 usage error, 3 starting (loading: /health 503),
# 4 busy (rate limited: 429 or Ollama's "server busy"; nothing broken)
EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE, EXIT_STARTING, EXIT_BUSY = 0, 1, 2, 3, 4


def first_error(exc: ValidationError) -> str:
    where, msg = validation_messages(exc, limit=1)[0]
    return f"{where}: {msg}" if where else msg
