"""A tiny process supervisor: restart the simulator whenever it exits.

    python -m exporter.simulate.supervisor --pidfile /tmp/sim.pid \
        --restart-count-file /tmp/sim.restarts -- --port 8000 --startup-seconds 5

The child's pid is kept in --pidfile, so a recovery action can restart the "model server"
with `kill -TERM "$(cat /tmp/sim.pid)"`; SIGHUP to the supervisor does the same. The number
of restarts so far is kept in --restart-count-file. SIGTERM/SIGINT stop child and supervisor.

--no-auto-restart models a unit with `Restart=no`: a child that dies on its own stays dead
until something restarts it (SIGHUP to the supervisor, as a recovery action would), so a
crash is an outage a monitor has to notice. --child-args-file names a file of extra
simulator arguments (shell words) read at every (re)start, so a test can decide what the
next start looks like: `--exit-after 1` for a crash loop, `--fault loading:seconds=8` for a
slow start.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

__all__ = ["add_supervisor_args", "main", "read_child_args", "supervise", "supervise_from_args"]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def supervise(
    child_args: list[str],
    pidfile: Path | None = None,
    restart_count_file: Path | None = None,
    restart_delay: float = 0.5,
    max_restarts: int | None = None,
    supervisor_pidfile: Path | None = None,
    auto_restart: bool = True,
    child_args_file: Path | None = None,
) -> int:
    """Run `python -m exporter.simulate CHILD_ARGS` until told to stop; returns an exit code."""
    state: dict[str, object] = {"stopping": False, "proc": None, "hup": False}

    def on_stop(signum: int, frame: FrameType | None) -> None:
        state["stopping"] = True
        proc = state["proc"]
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.terminate()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        state["hup"] = True
        proc = state["proc"]
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    if supervisor_pidfile is not None:
        _write_atomic(supervisor_pidfile, f"{os.getpid()}\n")
    restarts = 0
    if restart_count_file is not None:
        _write_atomic(restart_count_file, "0\n")
    code = 0
    try:
        while True:
            state["hup"] = False
            cmd = [sys.executable, "-m", "exporter.simulate", *child_args]
            cmd += read_child_args(child_args_file)
            proc = subprocess.Popen(cmd)
            state["proc"] = proc
            if pidfile is not None:
                _write_atomic(pidfile, f"{proc.pid}\n")
            code = proc.wait()
            if state["stopping"]:
                return 0
            if not auto_restart and not state["hup"]:
                print(f"simulate supervisor: child exited ({code}), waiting for SIGHUP", flush=True)
                if pidfile is not None:
                    pidfile.unlink(missing_ok=True)
                while not state["hup"] and not state["stopping"]:
                    time.sleep(0.05)
                if state["stopping"]:
                    return 0
            if max_restarts is not None and restarts >= max_restarts:
                print(f"simulate supervisor: child exited ({code}), no restarts left", flush=True)
                return code or 1
            print(f"simulate supervisor: child exited ({code}), restarting", flush=True)
            deadline = time.monotonic() + restart_delay
            while time.monotonic() < deadline and not state["stopping"]:
                time.sleep(min(0.05, restart_delay))
            if state["stopping"]:
                return 0
            restarts += 1
            if restart_count_file is not None:
                _write_atomic(restart_count_file, f"{restarts}\n")
    finally:
        last = state["proc"]
        if isinstance(last, subprocess.Popen) and last.poll() is None:
            last.terminate()
            try:
                last.wait(10)
            except subprocess.TimeoutExpired:
                last.kill()
        for path in (pidfile, supervisor_pidfile):
            if path is not None:
                path.unlink(missing_ok=True)


def read_child_args(path: Path | None) -> list[str]:
    """Extra simulator arguments from `path` (shell words; '#' starts a comment), if it exists."""
    if path is None:
        return []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return shlex.split(text, comments=True)


def add_supervisor_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("supervisor (with --supervise)")
    group.add_argument("--pidfile", type=Path, help="where the child's pid is written")
    group.add_argument(
        "--supervisor-pidfile", type=Path, help="where the supervisor's own pid is written"
    )
    group.add_argument(
        "--restart-count-file", type=Path, help="file holding the number of restarts so far"
    )
    group.add_argument(
        "--restart-delay", type=float, default=0.5, help="seconds before a restart (0.5)"
    )
    group.add_argument("--max-restarts", type=int, default=None, help="give up after N restarts")
    group.add_argument(
        "--no-auto-restart", dest="auto_restart", action="store_false",
        help="a child that exits on its own stays down until SIGHUP (like Restart=no)",
    )  # fmt: skip
    group.add_argument(
        "--child-args-file", type=Path,
        help="extra simulator arguments read from this file at every (re)start",
    )  # fmt: skip


def supervise_from_args(child: list[str], args: argparse.Namespace) -> int:
    """`supervise` with the options `add_supervisor_args` parsed (one place for both CLIs)."""
    return supervise(
        child,
        pidfile=args.pidfile,
        restart_count_file=args.restart_count_file,
        restart_delay=args.restart_delay,
        max_restarts=args.max_restarts,
        supervisor_pidfile=args.supervisor_pidfile,
        auto_restart=args.auto_restart,
        child_args_file=args.child_args_file,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        split = argv.index("--")
        own, child = argv[:split], argv[split + 1 :]
    else:
        own, child = argv, []
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulate.supervisor",
        description="Restart the simulated model server whenever it exits.",
        epilog="Arguments after -- go to the simulator.",
    )
    add_supervisor_args(parser)
    args = parser.parse_args(own)
    return supervise_from_args(child, args)


if __name__ == "__main__":
    sys.exit(main())
