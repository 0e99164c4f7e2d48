"""Run an argv without a shell: own process group, hard timeout, capped output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from exporter.recovery.actions.base import ActionResult

__all__ = ["run_argv"]

_DRAIN_SECONDS = 1.0
_KILL_GRACE_SECONDS = 3.0


class _CappedReader:
    """Keeps the first `cap` bytes of a stream and discards the rest (so the child never blocks)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0

    async def consume(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.cap - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        out = self.data.decode("utf-8", errors="replace").strip()
        if self.dropped:
            out += f" …[{self.dropped} bytes dropped]"
        return out


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def run_argv(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    max_output_bytes: int,
    cwd: Path | None = None,
) -> ActionResult:
    """Exit 0 within `timeout` is success; on timeout the whole process group is killed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        return ActionResult(False, f"cannot start {argv[0]!r}: {type(exc).__name__}")
    pgid = proc.pid  # start_new_session: the child leads its own group
    reader = _CappedReader(max_output_bytes)
    assert proc.stdout is not None
    read_task = asyncio.ensure_future(reader.consume(proc.stdout))
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                returncode = await proc.wait()
        except TimeoutError:
            timed_out = True
            _kill_group(pgid, signal.SIGTERM)
            try:
                async with asyncio.timeout(_KILL_GRACE_SECONDS):
                    returncode = await proc.wait()
            except TimeoutError:
                _kill_group(pgid, signal.SIGKILL)
                returncode = await proc.wait()
            _kill_group(pgid, signal.SIGKILL)  # stragglers that ignored SIGTERM
    except asyncio.CancelledError:
        _kill_group(pgid, signal.SIGKILL)
        read_task.cancel()
        raise
    # A daemon the command started may keep the pipe open: drain briefly, then let go.
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(read_task), _DRAIN_SECONDS)
    if not read_task.done():
        read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await read_task
    output = reader.text()
    if timed_out:
        return ActionResult(False, f"timed out after {timeout:g}s; process group killed. {output}")
    if returncode != 0:
        return ActionResult(False, f"exit status {returncode}. {output}".strip())
    return ActionResult(True, output)
