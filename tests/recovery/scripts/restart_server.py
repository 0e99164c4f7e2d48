"""The test's restart command: stop the server named in PIDFILE (if alive), start a fresh one
detached, record the new pid. Usage: restart_server.py PIDFILE PORT STARTUP_SECONDS."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

pidfile, port, startup = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
server = Path(__file__).with_name("model_server.py")
proc = subprocess.Popen(
    [sys.executable, str(server), port, startup],
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    start_new_session=True,
)
pidfile.write_text(str(proc.pid))
print(f"started pid {proc.pid} for target {os.environ.get('LLMHB_TARGET')}")
