"""The history stores under abuse (issue 26): a file of hundreds of megabytes, a full disk, a
second writer, a flood of garbage lines. Memory and bytes read are asserted, never time."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.engine.history import HistoryWriter, read_history
from exporter.engine.state import State, Transition
from exporter.errors import HistoryInUse
from exporter.recovery.history import HistoryFile
from exporter.util.jsonl import TailReader
from exporter.util.jsonl_file import JsonlFile

MB = 1 << 20


def transition(i: int, target: str = "a") -> Transition:
    return Transition(float(i), target, State.UP, State.DOWN, "health_timeout", f"#{i}")


def bytes_read() -> int:
    """What this process read through read(2) so far (the kernel's own count)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def measured(fn: Callable[[], object]) -> tuple[int, int]:
    """(bytes read, peak bytes allocated) while `fn` runs."""
    before = bytes_read()
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return bytes_read() - before, peak


def huge(path: Path, size: int, tail: list[str]) -> None:
    """A file of `size` bytes: a sparse hole (no disk, no time to make) ending a line, then
    `tail` lines."""
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.seek(size)
        fh.write(("\n" + "".join(tail)).encode())


def line(i: int) -> str:
    return f'{{"detail":"#{i}","from":"up","reason":"r","target":"a","time":{i},"to":"down"}}\n'


def test_a_200_mb_transition_history_is_read_from_its_end_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    huge(path, 200 * MB, [line(i) for i in range(1000)])
    got: list[dict[str, object]] = []
    read, peak = measured(lambda: got.extend(read_history(path, 50)))
    assert [r["detail"] for r in got] == [f"#{i}" for i in range(950, 1000)]
    assert read < 2 * MB, f"read {read} bytes of a 200 MB file to find 50 records"
    assert peak < 16 * MB, f"peak {peak} bytes"


def test_the_first_write_to_a_200_mb_history_compacts_from_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    huge(path, 200 * MB, [line(i) for i in range(1000)])
    writer = HistoryWriter(path, max_bytes=1 * MB)

    def write_one() -> None:
        writer.append(transition(5000))
        writer.close()

    read, peak = measured(write_one)
    assert path.stat().st_size <= 1 * MB
    details = [r["detail"] for r in read_history(path, 10_000)]
    assert details[-1] == "#5000" and "#999" in details
    assert read < 4 * MB, f"read {read} bytes to compact"
    assert peak < 16 * MB, f"peak {peak} bytes"


def test_a_200_mb_recovery_history_loads_its_newest_events_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    events = [
        '{"event":"attempt","target":"vllm","started_at":100.0,"rule":"r","action":"command"}\n',
        '{"event":"exhausted","target":"vllm","at":101.0}\n',
    ]
    huge(path, 200 * MB, events)
    hist = HistoryFile(path, max_bytes=1 * MB)
    loaded: dict[str, object] = {}
    with caplog.at_level(logging.WARNING):
        read, peak = measured(lambda: loaded.update(hist.load()))
    record = loaded["vllm"]
    assert record.exhausted and [a.started_at for a in record.attempts] == [100.0]  # type: ignore[attr-defined]
    assert read < 8 * MB and peak < 32 * MB, (read, peak)
    assert any("only the newest" in r.message for r in caplog.records)


def test_200000_garbage_lines_make_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    good = '{"event":"attempt","target":"a","started_at":5.0}\n'
    path.write_text("garbage, not json\n" * 200_000 + good)
    with caplog.at_level(logging.WARNING):
        records = HistoryFile(path).load()
    assert [a.started_at for a in records["a"].attempts] == [5.0]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "200000 line(s) skipped" in warnings[0].getMessage()


def test_tail_reader_reads_lines_across_blocks_in_order(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    lines = [line(i) for i in range(5000)]  # ~380 kB: many 64 KiB blocks
    path.write_text("".join(lines))
    got = [r["detail"] for r in TailReader(path, 10 * MB).records()]
    assert got == [f"#{i}" for i in range(5000)]
    newest = [r["detail"] for r in TailReader(path, 10 * MB).records(limit=3)]
    assert newest == ["#4997", "#4998", "#4999"]


class FullDisk:
    """A write seam: ENOSPC while `full`, after writing half of what it was given (a torn
    line on disk, as a real full disk leaves)."""

    def __init__(self) -> None:
        self.full = True
        self.failures = 0

    def __call__(self, fd: int, data: bytes) -> int:
        if self.full:
            self.failures += 1
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def test_the_writer_survives_a_full_disk_and_writes_everything_once_space_is_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.jsonl"
    disk = FullDisk()
    file = JsonlFile(path, retry_interval=0.05, write=disk)
    for i in range(5):
        file.append({"n": i})
    file.flush()
    assert file.errors >= 1 and file.problem == os.strerror(errno.ENOSPC)
    assert file.pending == 5
    disk.full = False
    file.append({"n": 5})
    file.flush()
    assert file.problem is None and file.pending == 0
    file.append({"n": 6})
    file.close()
    assert [r["n"] for r in TailReader(path, MB).records()] == list(range(7))
    assert path.read_text().count("\n") == 7  # the half-written bytes were cut, not kept


def test_the_writer_retries_on_its_own_when_nothing_new_comes(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    disk = FullDisk()
    file = JsonlFile(path, retry_interval=0.02, write=disk)
    file.append({"n": 1})
    file.flush()
    seen = disk.failures
    disk.full = False
    from tests.waiting import wait_until

    wait_until(lambda: file.pending == 0, 10, "the retry timer writes the line")
    file.close()
    assert seen >= 1 and [r["n"] for r in TailReader(path, MB).records()] == [1]


def test_a_memory_error_does_not_end_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    calls = {"n": 0}

    def flaky(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError
        return os.write(fd, data)

    file = JsonlFile(path, retry_interval=0.02, write=flaky)
    file.append({"n": 1})
    file.flush()
    assert file.errors == 1
    file.append({"n": 2})
    file.close()
    assert [r["n"] for r in TailReader(path, MB).records()] == [1, 2]


def test_a_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    first = JsonlFile(path)
    first.append({"by": "first"})
    first.flush()
    second = JsonlFile(path, retry_interval=0.02)
    with pytest.raises(HistoryInUse, match="another llm-heartbeat writes this history file"):
        second.claim()
    second.append({"by": "second"})
    second.flush()
    assert second.errors >= 1 and "another llm-heartbeat" in (second.problem or "")
    first.append({"by": "first"})
    first.close()  # the lock goes with the first writer: the second writes what it kept
    second.flush()
    from tests.waiting import wait_until

    wait_until(lambda: second.pending == 0, 10, "the second writer writes once the lock is free")
    second.close()
    assert [r["by"] for r in TailReader(path, MB).records()] == ["first", "first", "second"]


def test_a_second_exporter_process_on_the_same_history_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    mine = JsonlFile(path)
    mine.claim()
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from exporter.errors import HistoryInUse
        from exporter.util.jsonl_file import JsonlFile
        try:
            JsonlFile(Path({str(path)!r})).claim()
        except HistoryInUse as exc:
            print("refused:", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.startswith("refused:") and f"pid {os.getpid()}" in out.stdout
    mine.close()


def test_a_real_write_error_from_the_kernel_is_survived(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), as a full disk
    refuses them; raising the limit is the space coming back."""
    path = tmp_path / "h.jsonl"
    code = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from exporter.util.jsonl_file import JsonlFile
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        f = JsonlFile(Path({str(path)!r}), retry_interval=0.05)
        for i in range(40):
            f.append({{"n": i, "pad": "x" * 40}})
        f.flush()
        print("errors", f.errors, "pending", f.pending, "problem", f.problem)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        f.append({{"n": 40, "pad": ""}})
        f.close()
        print("after", f.pending, f.problem)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    first, after = out.stdout.splitlines()
    assert first.startswith("errors ") and int(first.split()[1]) >= 1, out.stdout
    assert after == "after 0 None", out.stdout
    assert [r["n"] for r in TailReader(path, MB).records()] == list(range(41))
