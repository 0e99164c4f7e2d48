"""The scale plot: CPU per 1,000 probes and cores used, ours against blackbox_exporter's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]


def plot(results: dict[str, Any], path: Path) -> bool:
    """Write the PNG; False when matplotlib is not installed (the JSON and table still are)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    runs = results["runs"]
    ns = [r["n"] for r in runs]
    bb_runs = [r for r in runs if r.get("blackbox")]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.5))
    ax1.plot(ns, [r["us"]["cpu_s_per_1000_probes"] for r in runs], "o-", label="llm-heartbeat")
    if bb_runs:
        bn = [r["n"] for r in bb_runs]
        ax1.plot(bn, [r["blackbox"]["cpu_s_per_1000_probes"] for r in bb_runs], "s-",
                 label="blackbox_exporter")  # fmt: skip
        ax1.plot(bn, [r["blackbox"]["cpu_s_per_1000_probes_with_driver"] for r in bb_runs],
                 "s--", label="blackbox_exporter + driver")  # fmt: skip
    ax1.set_title("CPU seconds per 1,000 probes")
    ax2.plot(ns, [r["us"]["cores"] for r in runs], "o-", label="llm-heartbeat")
    if bb_runs:
        ax2.plot([r["n"] for r in bb_runs], [r["blackbox"]["cores"] for r in bb_runs], "s-",
                 label="blackbox_exporter")  # fmt: skip
    ax2.axhline(0.25, color="grey", linestyle=":", label="goal: 1/4 core at 5,000")
    ax2.set_title("cores used (CPU s per s)")
    ax3.plot(ns, [r["us"]["timing_error_ms"]["p99"] for r in runs], "o-", label="llm-heartbeat p99")
    ax3.plot(
        ns, [r["us"]["timing_error_ms"]["p50"] for r in runs], "o--", label="llm-heartbeat p50"
    )
    if bb_runs:
        bn = [r["n"] for r in bb_runs]
        ax3.plot(bn, [r["blackbox"]["timing_error_ms"]["p99"] for r in bb_runs], "s-",
                 label="blackbox p99")  # fmt: skip
        ax3.plot(bn, [r["blackbox"]["timing_error_ms"]["p50"] for r in bb_runs], "s--",
                 label="blackbox p50")  # fmt: skip
    ax3.axhline(2.0, color="grey", linestyle=":", label="goal: p99 2 ms")
    ax3.set_title("timing error (measured - injected delay), ms")
    ax3.set_yscale("symlog", linthresh=1.0)
    ax3.set_ylim(bottom=0)
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xlabel("targets (N)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"llm-heartbeat vs blackbox_exporter, {results['machine']['nproc']} CPUs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
