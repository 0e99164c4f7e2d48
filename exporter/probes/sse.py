"""An incremental Server-Sent Events decoder (WHATWG rules), fed raw bytes as they arrive.

Events can be split across reads and several can arrive in one read: it parses lines, not
reads. Only `data` fields matter to the chat probe; comments and other fields are skipped.
Linear in the input: each character is scanned once (a target that sends a megabyte of blank
lines, or one long line in tiny reads, must not cost quadratic CPU on the probe loop).
"""

from __future__ import annotations

import codecs
import re

__all__ = ["SSEDecoder"]

_EOL = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Feed bytes, get back the `data` payload of each completed event, in order."""

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._tail: list[str] = []  # pieces of the line not ended yet
        self._tail_len = 0
        self._data: list[str] = []
        self._max_line = max_line
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """Decode a chunk; raises UnicodeDecodeError on invalid UTF-8 and ValueError on a
        line longer than max_line."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the "\n" of a "\r\n" split across reads
        self._pending_cr = False
        events: list[str] = []
        pos = 0
        for match in _EOL.finditer(text):
            line = text[pos : match.start()]
            if self._tail:
                line = "".join(self._tail) + line
                self._tail.clear()
                self._tail_len = 0
            self._line(line, events)
            pos = match.end()
            self._pending_cr = match.group() == "\r" and pos == len(text)
        if pos < len(text):
            self._tail.append(text[pos:])
            self._tail_len += len(text) - pos
            if self._tail_len > self._max_line:
                raise ValueError("an SSE line exceeds the size limit")
        return events

    def _line(self, line: str, events: list[str]) -> None:
        if line == "":
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)

    @property
    def has_partial(self) -> bool:
        """Bytes or data lines are waiting for an event boundary (a truncated stream)."""
        return bool("".join(self._tail).strip() or self._data)
