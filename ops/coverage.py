"""`relais coverage`: how much of Auvergne-Rhône-Alpes lives within one hour of an open antenna.

For each association and for both together: the share of AURA's communes and of its population within
the one-hour promise, per department, the least-served areas, and the commune where one new antenna
would bring the most uncovered people within the hour. Same travel model as routing (its settings).

Vectorised with numpy: communes are unit vectors on the sphere, so "within D km of each other" for every
pair is one matrix product compared with cos(D / R) (about 4,000 × 4,000 pairs in well under a second).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.routing.directory import ANTENNAS_FILE, placed, shared_gazetteer
from services.routing.geo import Gazetteer
from services.routing.travel import EARTH_RADIUS_KM, TravelModel, great_circle_km
from shared.schemas import Association

AURA_DEPARTMENTS = ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74")
BOTH = "ensemble"
SCOPES = (Association.SOIXANTE_MILLE_REBONDS.value, Association.SECOND_SOUFFLE.value, BOTH)
SCOPE_LABELS = {
    Association.SOIXANTE_MILLE_REBONDS.value: "60 000 rebonds",
    Association.SECOND_SOUFFLE.value: "Second Souffle",
    BOTH: "Both together",
}
OPEN = "ouverte"


@dataclass(frozen=True)
class Site:
    id: str
    association: str
    name: str
    status: str
    lat: float
    lon: float


@dataclass
class Territory:
    """AURA's current communes as arrays (one row per commune)."""

    codes: np.ndarray
    names: np.ndarray
    depts: np.ndarray
    population: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    dept_names: dict[str, str]

    @classmethod
    def of(cls, gazetteer: Gazetteer, departments: tuple[str, ...] = AURA_DEPARTMENTS) -> Territory:
        places = sorted((p for p in gazetteer.current_communes() if p.dept in departments), key=lambda p: p.code)
        return cls(
            codes=np.array([p.code for p in places]),
            names=np.array([p.name for p in places]),
            depts=np.array([p.dept for p in places]),
            population=np.array([p.population for p in places], dtype=np.int64),
            lat=np.array([p.lat for p in places]),
            lon=np.array([p.lon for p in places]),
            dept_names={d: gazetteer.departments[d].name for d in departments if d in gazetteer.departments},
        )

    def unit_vectors(self) -> np.ndarray:
        lat, lon = np.radians(self.lat), np.radians(self.lon)
        return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


def load_sites(
    gazetteer: Gazetteer, path: Path = ANTENNAS_FILE, open_ids: tuple[str, ...] = (), close_ids: tuple[str, ...] = ()
) -> list[Site]:
    """The directory (the default file, or a JSON export of GET /antennas) with statuses overridden.

    `open_ids`/`close_ids` match an antenna id or its city suffix: `bourg-en-bresse` opens
    `60000_rebonds-bourg-en-bresse`.
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    entries = raw["antennas"] if isinstance(raw, dict) else raw
    sites = []
    for entry in entries:
        if "lat" not in entry:
            entry = placed(entry, gazetteer)
        status = entry["status"]
        if _matches(entry["id"], open_ids):
            status = OPEN
        if _matches(entry["id"], close_ids):
            status = "fermee"
        sites.append(
            Site(entry["id"], entry["association"], entry.get("name", entry["id"]), status, entry["lat"], entry["lon"])
        )
    unknown = [i for i in (*open_ids, *close_ids) if not any(_matches(s.id, (i,)) for s in sites)]
    if unknown:
        raise ValueError(f"unknown antenna(s): {', '.join(unknown)} (ids: {', '.join(s.id for s in sites)})")
    return sites


def _matches(antenna_id: str, wanted: tuple[str, ...]) -> bool:
    return any(antenna_id == w or antenna_id.endswith(f"-{w}") for w in wanted)


@dataclass
class ScopeCoverage:
    scope: str
    antennas: list[str]
    communes: int
    communes_covered: int
    population: int
    population_covered: int
    departments: list[dict[str, Any]] = field(default_factory=list)
    largest_uncovered: list[dict[str, Any]] = field(default_factory=list)
    best_new_antenna: dict[str, Any] | None = None

    @property
    def communes_share(self) -> float:
        return self.communes_covered / self.communes if self.communes else 0.0

    @property
    def population_share(self) -> float:
        return self.population_covered / self.population if self.population else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "label": SCOPE_LABELS[self.scope],
            "open_antennas": self.antennas,
            "communes": self.communes,
            "communes_covered": self.communes_covered,
            "communes_share": round(self.communes_share, 4),
            "population": self.population,
            "population_covered": self.population_covered,
            "population_share": round(self.population_share, 4),
            "departments": self.departments,
            "least_served_departments": self.least_served(),
            "largest_uncovered_communes": self.largest_uncovered,
            "best_new_antenna": self.best_new_antenna,
        }

    def least_served(self, count: int = 3) -> list[dict[str, Any]]:
        return sorted(self.departments, key=lambda d: (d["population_share"], d["code"]))[:count]


class CoverageAnalysis:
    """Minutes from every commune to the nearest open antenna, and who a new antenna would reach."""

    def __init__(self, territory: Territory, model: TravelModel, min_population: int = 5000) -> None:
        self.territory = territory
        self.model = model
        # Where an antenna could open: a town with premises and volunteers, not a hamlet.
        self.min_population = min_population
        self.candidates = territory.population >= min_population
        vectors = territory.unit_vectors()
        # Pairs of communes within the hour of each other (symmetric; the diagonal is always true).
        radius_km = model.km_within(model.one_hour_minutes)
        self.reach = (vectors @ vectors.T) >= np.cos(radius_km / EARTH_RADIUS_KM)

    def minutes_to_nearest(self, sites: list[Site]) -> np.ndarray:
        if not sites:
            return np.full(len(self.territory.codes), np.inf)
        lat = np.array([s.lat for s in sites])[:, None]
        lon = np.array([s.lon for s in sites])[:, None]
        km = great_circle_km(self.territory.lat[None, :], self.territory.lon[None, :], lat, lon, xp=np)
        return self.model.minutes(km).min(axis=0)

    def scope(self, scope: str, sites: list[Site]) -> ScopeCoverage:
        chosen = [s for s in sites if s.status == OPEN and (scope == BOTH or s.association == scope)]
        t = self.territory
        covered = self.minutes_to_nearest(chosen) <= self.model.one_hour_minutes
        result = ScopeCoverage(
            scope,
            [s.id for s in chosen],
            len(t.codes),
            int(covered.sum()),
            int(t.population.sum()),
            int(t.population[covered].sum()),
        )
        for dept in sorted(t.dept_names):
            mask = t.depts == dept
            pop = int(t.population[mask].sum())
            pop_cov = int(t.population[mask & covered].sum())
            result.departments.append(
                {
                    "code": dept,
                    "name": t.dept_names[dept],
                    "communes": int(mask.sum()),
                    "communes_covered": int((mask & covered).sum()),
                    "population": pop,
                    "population_covered": pop_cov,
                    "population_share": round(pop_cov / pop, 4) if pop else 0.0,
                }
            )
        uncovered = ~covered
        order = np.argsort(-t.population * uncovered, kind="stable")[:5]
        result.largest_uncovered = [
            {
                "code": str(t.codes[i]),
                "name": str(t.names[i]),
                "dept": str(t.depts[i]),
                "population": int(t.population[i]),
            }
            for i in order
            if uncovered[i]
        ]
        result.best_new_antenna = self.best_new_antenna(uncovered)
        return result

    def best_new_antenna(self, uncovered: np.ndarray) -> dict[str, Any] | None:
        """The candidate town whose hour-radius holds the most uncovered people (ties: the larger town)."""
        t = self.territory
        gained = np.where(self.candidates, self.reach @ (t.population * uncovered), 0)
        if not gained.max():
            return None
        best = int(np.lexsort((-t.population, -gained))[0])
        return {
            "code": str(t.codes[best]),
            "name": str(t.names[best]),
            "dept": str(t.depts[best]),
            "population_gained": int(gained[best]),
            "communes_gained": int((self.reach[best] & uncovered).sum()),
        }


def analyse(analysis: CoverageAnalysis, sites: list[Site], baseline_sites: list[Site] | None = None) -> dict[str, Any]:
    model = analysis.model
    report: dict[str, Any] = {
        "region": "Auvergne-Rhône-Alpes",
        "promise_minutes": model.one_hour_minutes,
        "travel_model": {
            "detour_factor": model.detour_factor,
            "road_speed_kmh": model.road_speed_kmh,
            "overhead_minutes": model.overhead_minutes,
        },
        "new_antenna_min_population": analysis.min_population,
        "scopes": [analysis.scope(scope, sites).as_dict() for scope in SCOPES],
    }
    if baseline_sites is not None:
        report["baseline"] = [analysis.scope(scope, baseline_sites).as_dict() for scope in SCOPES]
    return report


def run(
    geodata: Path,
    antennas: Path,
    model: TravelModel,
    open_ids: tuple[str, ...] = (),
    close_ids: tuple[str, ...] = (),
    min_population: int = 5000,
) -> tuple[dict[str, Any], list[Site], CoverageAnalysis]:
    """The report for the directory with the given changes (and the directory as it is, to compare)."""
    gazetteer = shared_gazetteer(geodata)
    sites = load_sites(gazetteer, antennas, open_ids, close_ids)
    baseline = load_sites(gazetteer, antennas) if (open_ids or close_ids) else None
    analysis = CoverageAnalysis(Territory.of(gazetteer), model, min_population)
    return analyse(analysis, sites, baseline), sites, analysis


# --- output -------------------------------------------------------------------------------------------------


def _pct(share: float) -> str:
    return f"{share * 100:5.1f} %"


def _n(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def render_table(report: dict[str, Any]) -> str:
    tm = report["travel_model"]
    lines = [
        f"Coverage of {report['region']}: communes and people within {report['promise_minutes']:.0f} min "
        f"of an open antenna",
        f"(travel model: great-circle km × {tm['detour_factor']} at {tm['road_speed_kmh']} km/h"
        f" + {tm['overhead_minutes']} min)",
        "",
    ]
    baseline = {s["scope"]: s for s in report.get("baseline", [])}
    header = f"{'':<16}{'communes':>24}{'population':>30}"
    lines += [header + ("   before → after (population)" if baseline else ""), "-" * len(header)]
    for s in report["scopes"]:
        row = (
            f"{s['label']:<16}{_n(s['communes_covered']):>9} / {_n(s['communes'])} {_pct(s['communes_share'])}"
            f"{_n(s['population_covered']):>13} / {_n(s['population'])} {_pct(s['population_share'])}"
        )
        if s["scope"] in baseline:
            row += f"   {_pct(baseline[s['scope']]['population_share'])} → {_pct(s['population_share'])}"
        lines.append(row)
    lines += ["", "Population within the hour, per department"]
    scopes = report["scopes"]
    lines.append(f"{'':<26}" + "".join(f"{s['label']:>18}" for s in scopes))
    for i, dept in enumerate(scopes[0]["departments"]):
        cells = []
        for s in scopes:
            d = s["departments"][i]
            cell = _pct(d["population_share"])
            if s["scope"] in baseline:
                before = baseline[s["scope"]]["departments"][i]["population_share"]
                if round(before * 1000) != round(d["population_share"] * 1000):
                    cell = f"{before * 100:.1f}→{d['population_share'] * 100:.1f} %"
            cells.append(f"{cell:>18}")
        lines.append(f"{dept['code']:<4}{dept['name']:<22}" + "".join(cells))
    lines += ["", "Least-served areas"]
    for s in scopes:
        worst = ", ".join(f"{d['name']} {_pct(d['population_share']).strip()}" for d in s["least_served_departments"])
        towns = ", ".join(f"{c['name']} ({c['dept']}, {_n(c['population'])})" for c in s["largest_uncovered_communes"])
        lines.append(f"  {s['label']}: {worst}")
        if towns:
            lines.append(f"  {'':<{len(s['label'])}}  largest towns beyond the hour: {towns}")
    lines += [
        "",
        "Best commune for one new antenna (uncovered people it would bring within the hour; "
        f"communes of {_n(report['new_antenna_min_population'])}+ inhabitants)",
    ]
    for s in scopes:
        best = s["best_new_antenna"]
        text = (
            "everyone is already within the hour"
            if best is None
            else f"{best['name']} ({best['code']}, {best['dept']}): +{_n(best['population_gained'])} people, "
            f"+{best['communes_gained']} communes"
        )
        lines.append(f"  {s['label']:<16}{text}")
    return "\n".join(lines)
