"""Where the services' store time goes, from the command sums bench/profiling/sitecustomize.py writes.

`snapshot()` reads them per service; `top(before, after)` gives, for what happened in between, each
service's store commands by total time: count, seconds, mean milliseconds, and the share of the total.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ops.devstack import ROOT

PROFILING_DIR = Path(__file__).parent / "profiling"

Snapshot = dict[str, dict[str, dict[str, float]]]  # service -> command key -> {"count", "seconds"}


def env(profile_dir: Path) -> dict[str, str]:
    """What a service's environment needs for its store commands to be timed.

    The checkout's root stays on the path after the profiling folder: without it the services would be
    imported through the virtual environment's editable install, which may point at another checkout.
    """
    return {
        "PYTHONPATH": os.pathsep.join([str(PROFILING_DIR), str(ROOT)]),
        "RELAIS_BENCH_PROFILE_DIR": str(profile_dir),
    }


def snapshot(profile_dir: Path, pids: dict[str, int]) -> Snapshot:
    found: Snapshot = {}
    for service, pid in pids.items():
        try:
            found[service] = json.loads((profile_dir / f"{pid}.json").read_text())
        except (OSError, ValueError):
            found[service] = {}
    return found


def top(before: Snapshot, after: Snapshot, limit: int = 8) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for service, commands in after.items():
        rows: list[dict[str, Any]] = []
        for key, now in commands.items():
            was = before.get(service, {}).get(key, {"count": 0, "seconds": 0.0})
            count, seconds = now["count"] - was["count"], now["seconds"] - was["seconds"]
            if count > 0:
                rows.append(
                    {
                        "command": key,
                        "count": int(count),
                        "seconds": round(seconds, 2),
                        "mean_ms": round(seconds / count * 1000, 2),
                    }
                )
        total = sum(r["seconds"] for r in rows)
        rows.sort(key=lambda r: r["seconds"], reverse=True)
        for r in rows:
            r["share"] = round(r["seconds"] / total, 3) if total else None
        result[service] = {
            "store_seconds": round(total, 2),
            "commands": sum(r["count"] for r in rows),
            "top": rows[:limit],
        }
    return result
