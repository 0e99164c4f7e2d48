"""An incremental Server-Sent Events decoder (WHATWG rules), fed raw bytes as they arrive.

Events can be split across reads and several can arrive in one read: it parses lines, not
reads. Only `data` fields matter to the chat probe; comments and other fields are skipped.
"""

from __future__ import annotations

import codecs

__all__ = ["SSEDecoder"]


class SSEDecoder:
    """Feed bytes, get back the `data` payload of each completed event, in order."""

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buf = ""
        self._data: list[str] = []
        self._max_line = max_line
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """Decode a chunk; raises UnicodeDecodeError on invalid UTF-8 and ValueError on a
        line longer than max_line."""
        text = self._utf8.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buf += text
        events: list[str] = []
        while True:
            idx = _line_end(self._buf)
            if idx < 0:
                break
            line = self._buf[:idx]
            sep = 2 if self._buf.startswith("\r\n", idx) else 1
            if self._buf[idx] == "\r" and idx + 1 == len(self._buf):
                self._pending_cr = True  # a "\r\n" may be split across reads
            self._buf = self._buf[idx + sep :]
            self._line(line, events)
        if len(self._buf) > self._max_line:
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
        return bool(self._buf.strip() or self._data)


def _line_end(buf: str) -> int:
    cr = buf.find("\r")
    lf = buf.find("\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)
