"""Run an argv without a shell: own process group, hard timeout, capped output."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from exporter.recovery.actions.base import ActionResult

__all__ = ["run_argv"]

log = logging.getLogger("exporter.recovery")

_DRAIN_SECONDS = 1.0
_KILL_GRACE_SECONDS = 3.0


class _Capture(asyncio.Protocol):
    """Keeps the first `cap` bytes of the output and discards the rest until EOF.

    It owns the read end of our own pipe, so a daemon the command started can keep writing
    after the command exits (no SIGPIPE, no full pipe) without holding up the result.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        room = max(0, self.cap - len(self.data))
        self.data += data[:room]
        self.dropped += len(data) - min(room, len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def text(self) -> str:
        out = self.data.decode("utf-8", errors="replace").strip()
        if self.dropped:
            out += f" …[{self.dropped} bytes dropped]"
        return out


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _end_group(proc: asyncio.subprocess.Process, pgid: int) -> int:
    """SIGTERM to the process group, `_KILL_GRACE_SECONDS` to exit, then SIGKILL (also to
    stragglers that ignored SIGTERM). Runs to its end even when its task is being cancelled."""
    _kill_group(pgid, signal.SIGTERM)
    try:
        async with asyncio.timeout(_KILL_GRACE_SECONDS):
            returncode = await asyncio.shield(proc.wait())
    except TimeoutError:
        _kill_group(pgid, signal.SIGKILL)
        returncode = await asyncio.shield(proc.wait())
    _kill_group(pgid, signal.SIGKILL)
    return returncode


async def run_argv(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    max_output_bytes: int,
    cwd: Path | None = None,
) -> ActionResult:
    """Exit 0 within `timeout` is success; on timeout the whole process group is ended (TERM,
    grace, KILL). Cancelled (the exporter stops), it is ended the same way, then re-raises."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    )
    cancelled = False
    try:
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:  # it starts anyway: let it, then end it below
            cancelled = True
            proc = await starting
    except (OSError, ValueError) as exc:
        os.close(read_fd)
        return ActionResult(False, f"cannot start {argv[0]!r}: {type(exc).__name__}")
    finally:
        os.close(write_fd)
    pgid = proc.pid  # start_new_session: the child leads its own group
    timed_out = False
    try:
        _, capture = await loop.connect_read_pipe(
            lambda: _Capture(max_output_bytes), os.fdopen(read_fd, "rb", buffering=0)
        )
        if cancelled:
            raise asyncio.CancelledError
        async with asyncio.timeout(timeout):
            returncode = await proc.wait()
    except TimeoutError:
        timed_out = True
        returncode = await _end_group(proc, pgid)
    except asyncio.CancelledError:  # the exporter is stopping: the same TERM, grace, KILL
        log.warning("stopping: sending SIGTERM to %s (pid %d)", argv[0], proc.pid)
        returncode = await _end_group(proc, pgid)
        log.warning("stopping: %s (pid %d) ended with status %s", argv[0], proc.pid, returncode)
        raise
    # Output still buffered in the pipe arrives quickly; a daemon's never-ending output does not.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(capture.closed), _DRAIN_SECONDS)
    output = capture.text()
    if timed_out:
        return ActionResult(False, f"timed out after {timeout:g}s; process group killed. {output}")
    if returncode != 0:
        return ActionResult(False, f"exit status {returncode}. {output}".strip())
    return ActionResult(True, output)
