"""Speed of the routing decision itself (no Kafka, no store): locate the commune, apply the association
rules, pick the antenna. `measure()` returns the numbers; `python -m bench.routing_decision` prints them.

Measured per case with `time.perf_counter_ns` around `locate + decide + route` on a mix of cases drawn
from every commune of France (weighted towards AURA), a third of them with a postal code and a name
instead of an INSEE code, some with unknown codes, some in distress, against the nine AURA antennas
with random free places (some full). The gazetteer is loaded once before timing, as in the service.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from services.routing.app import load_rules
from services.routing.directory import seed_entries, shared_gazetteer
from services.routing.domain import Antenna, decide, route
from services.routing.geo import Gazetteer
from services.routing.settings import RoutingSettings
from shared.schemas import Procedure
from shared.schemas.events import Situation

AURA = ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74")


def _cases(gazetteer: Gazetteer, count: int, rng: random.Random) -> list[Situation]:
    communes = gazetteer.current_communes()
    aura = [p for p in communes if p.dept in AURA and p.postal_codes]
    france = [p for p in communes if p.postal_codes]
    procedures = list(Procedure)
    cases = []
    for i in range(count):
        place = rng.choice(aura if rng.random() < 0.8 else france)
        fields: dict[str, Any] = {"procedure": rng.choice(procedures), "postal_code": place.postal_codes[0]}
        kind = i % 6
        if kind in (0, 1, 2):
            fields["insee_code"] = place.code
        elif kind in (3, 4):
            fields["commune"] = place.name
        else:
            fields["postal_code"] = place.postal_codes[0][:2] + "999"  # unknown: department fallback
        if i % 20 == 0:
            fields.update(acute_distress=True, apesa_consent=i % 40 == 0)
        cases.append(Situation(**fields))
    return cases


def _antennas(gazetteer: Gazetteer, rng: random.Random) -> list[Antenna]:
    # As the service does: only antennas placed on the map take part (every seeded one is).
    return [
        Antenna(e.id, e.association, e.name, e.status, e.contact, e.lat, e.lon, rng.choice([None, 0, 1, 3, 8]))
        for e in seed_entries(gazetteer)
        if e.lat is not None and e.lon is not None
    ]


def measure(cases: int = 20_000, seed: int = 7) -> dict[str, Any]:
    settings = RoutingSettings()
    started = time.perf_counter()
    gazetteer = shared_gazetteer(settings.geodata_file)
    load_s = time.perf_counter() - started
    rng = random.Random(seed)
    situations = _cases(gazetteer, cases, rng)
    antennas = _antennas(gazetteer, rng)
    model, today, rules = settings.travel_model(), datetime.now(UTC).date(), load_rules(settings.rules_file)
    for s in situations[:500]:  # warm-up
        route(
            decide(s, today, rules), s, gazetteer.locate(s.insee_code, s.postal_code, s.commune), antennas, model, rules
        )
    timings = []
    statuses: dict[str, int] = {}
    clock = time.perf_counter_ns
    for s in situations:
        t0 = clock()
        decided = route(
            decide(s, today, rules), s, gazetteer.locate(s.insee_code, s.postal_code, s.commune), antennas, model, rules
        )
        timings.append(clock() - t0)
        statuses[decided.status.value] = statuses.get(decided.status.value, 0) + 1
    # Batches of 1,000 consecutive cases: the quickest batch shows the cost without other processes' noise.
    batches = [sum(timings[i : i + 1000]) / 1000 / 1000 for i in range(0, len(timings) - 999, 1000)]
    timings.sort()
    micro = [t / 1000 for t in timings]
    return {
        "cases": cases,
        "gazetteer_load_s": round(load_s, 3),
        "decision_us": {
            "mean": round(statistics.fmean(micro), 1),
            "p50": round(micro[len(micro) // 2], 1),
            "p99": round(micro[int(len(micro) * 0.99)], 1),
            "max": round(micro[-1], 1),
            "best_batch_mean": round(min(batches), 1) if batches else None,
        },
        "decisions_per_s": round(cases / (sum(timings) / 1e9)),
        "statuses": statuses,
    }


def main() -> int:
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
