"""Logging set-up: text for people, JSON lines for log pipelines."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

__all__ = ["JsonFormatter", "RepeatFilter", "setup_logging"]

_STD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class RepeatFilter(logging.Filter):
    """Lets `burst` of each identical warning or error (same logger, level and message) through
    per `window` seconds; the next one that passes says how many were dropped. A flood (an
    accept loop out of file descriptors, one failure a thousand times a second) costs a few
    lines a minute, not megabytes of log and a core; ordinary repeats are all kept."""

    def __init__(self, window: float = 60.0, burst: int = 10, max_keys: int = 4096) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self.max_keys = max_keys
        # key -> (window start, lines let through in it, lines dropped since the last one)
        self._seen: dict[tuple[str, int, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage()[:1000])
        now = record.created
        start, passed, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, passed = now, 0
        if passed >= self.burst:
            self._seen[key] = (start, passed, dropped + 1)
            return False
        if key not in self._seen and len(self._seen) >= self.max_keys:
            self._seen.clear()  # bounded memory: many distinct messages are not one flood
        self._seen[key] = (start, passed + 1, 0)
        if dropped:
            record.msg = f"{record.msg} [{dropped} identical message(s) suppressed]"
        return True


def setup_logging(fmt: str = "text", level: str = "info", log_file: Path | None = None) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn.error's INFO lines ("Started server process", "Uvicorn running on ...") repeat
    # what the exporter logs itself ("status page http://..."); its errors still show.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
