"""Write the dashboards' JSON from their code, or check that the committed JSON is current.

    python -m grafana.generate            # regenerate grafana/dashboards/llm-heartbeat/*.json
    python -m grafana.generate --check    # exit 1 if a committed file differs (CI, make test)

Grafana provisions the files from grafana/dashboards/ (the sub-folder becomes the folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana.dashboards_src import DASHBOARDS
from grafana.dashboards_src.common import RECOVERY_ANNOTATION_EXTRA

__all__ = ["OUTPUT_DIR", "SCHEMA_VERSION", "main", "render", "render_all"]

OUTPUT_DIR = Path(__file__).resolve().parent / "dashboards" / "llm-heartbeat"
# The dashboard schema of current Grafana releases (12.x; v41 dropped timepicker.time_options).
# The SDK writes an older one, which makes Grafana migrate the JSON on every load.
SCHEMA_VERSION = 41


def _finish(data: dict[str, Any]) -> dict[str, Any]:
    """Add what the SDK does not model: Prometheus annotation fields, the current schema."""
    data["schemaVersion"] = SCHEMA_VERSION
    data.get("timepicker", {}).pop("time_options", None)
    for annotation in data.get("annotations", {}).get("list", []):
        if annotation.get("name") == "Recovery actions":
            annotation.update(RECOVERY_ANNOTATION_EXTRA)
    return data


def render(name: str) -> str:
    """The JSON text of one dashboard, exactly as committed."""
    built = DASHBOARDS[name]().build()
    data = json.loads(json.dumps(built, cls=JSONEncoder))
    return json.dumps(_finish(data), indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[Path, str]:
    return {OUTPUT_DIR / f"{name}.json": render(name) for name in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.generate", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed JSON is not up to date"
    )
    args = parser.parse_args(argv)
    rendered = render_all()
    stale = sorted(
        path.name
        for path, text in rendered.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    )
    extra = sorted(p.name for p in OUTPUT_DIR.glob("*.json") if p not in rendered)
    if args.check:
        for name in stale:
            print(f"grafana/dashboards: {name} is out of date", file=sys.stderr)
        for name in extra:
            print(f"grafana/dashboards: {name} has no generator", file=sys.stderr)
        if stale or extra:
            print("run: python -m grafana.generate", file=sys.stderr)
            return 1
        return 0
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"wrote grafana/dashboards/llm-heartbeat/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
