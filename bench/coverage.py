"""Speed of `relais coverage` for all of AURA: `measure()` returns the numbers, `python -m bench.coverage`
prints them. Times the whole analysis (communes to arrays, the commune × commune reach matrix, three
scopes with their best new site) for the directory as it is and with Bourg-en-Bresse open, after the
gazetteer is loaded once (its load time is reported apart)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ops.coverage import run
from services.routing.directory import shared_gazetteer
from services.routing.settings import RoutingSettings


def measure(repeat: int = 3) -> dict[str, Any]:
    settings = RoutingSettings()
    started = time.perf_counter()
    shared_gazetteer(settings.geodata_file)
    load_s = time.perf_counter() - started
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        report, _, _ = run(
            settings.geodata_file, settings.antennas_file, settings.travel_model(), open_ids=("bourg-en-bresse",)
        )
        runs.append(time.perf_counter() - t0)
    ain = {
        name: next(d for d in scopes[0]["departments"] if d["code"] == "01")["population_share"]
        for name, scopes in (("before", report["baseline"]), ("after", report["scopes"]))
    }
    return {
        "communes": report["scopes"][0]["communes"],
        "gazetteer_load_s": round(load_s, 3),
        "analysis_s": {"best": round(min(runs), 3), "worst": round(max(runs), 3)},
        "analyses_per_run": 2,
        "ain_population_share_60000_rebonds": ain,
    }


def main() -> int:
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
