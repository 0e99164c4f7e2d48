"""`python -m exporter.simulate ...` (the same as `llm-heartbeat simulate ...`)."""

from __future__ import annotations

import sys

from exporter.simulate.cli import main

sys.exit(main(sys.argv[1:]))
