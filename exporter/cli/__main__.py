"""`python -m exporter.cli`."""

from exporter.cli import main

raise SystemExit(main())
