"""What one simulated server's request handlers share: its counters and a client connection."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

__all__ = ["Conn", "SimStats"]


@dataclass(slots=True)
class SimStats:
    """What the server has done; `sim.stats` hands out a copy."""

    requests: int = 0
    health: int = 0
    models: int = 0
    metrics: int = 0
    chat_completions: int = 0
    completed: int = 0
    aborted: int = 0
    errors: int = 0
    injected_faults: int = 0
    connections: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class Conn:
    """One client connection: the stream reader (to notice the client leaving) and writer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def wait_closed_by_peer(self) -> None:
        """Never answer: read (and drop) whatever comes until the client gives up."""
        while await self.reader.read(65536):
            pass

    def close_now(self) -> None:
        """End the connection with a FIN, mid-response or not."""
        self.writer.close()
