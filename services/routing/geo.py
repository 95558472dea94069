"""Where a person is: the commune they gave, placed on the map, with an honest fallback when it is unknown.

Lookup order, best first:
1. the INSEE code, when it names a known commune (current, delegated, associated, or a municipal district);
2. the postal code and the commune's name among the communes of that postal code (or its only commune);
3. the postal code alone: the population-weighted centre of its communes (approximate, flagged);
4. the department the postal code belongs to: its prefecture (approximate, flagged);
5. nothing known: the association is still chosen, and staff place the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from services.routing.geodata import DEFAULT_PATH, Place, load_places, normalise


class Precision(StrEnum):
    COMMUNE = "commune"
    POSTAL_CODE = "code_postal"
    DEPARTMENT = "departement"


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float
    precision: Precision
    label: str  # what the position stands for, in French: "Bourg-en-Bresse (01053)", "département de l'Ain"
    code: str | None = None  # INSEE code when the commune itself is known
    dept: str | None = None
    note: str | None = None  # French explanation for staff when the commune was not recognised as given

    @property
    def flagged(self) -> bool:
        return self.precision is not Precision.COMMUNE or self.note is not None


def department_of_postal_code(postal_code: str) -> str:
    """The department a postal code belongs to, the usual way (Corsica's 20xxx split, overseas 97x)."""
    if postal_code.startswith("20"):
        return "2A" if postal_code[:3] in ("200", "201") else "2B"
    if postal_code.startswith("97"):
        return postal_code[:3]
    return postal_code[:2]


class Gazetteer:
    """Every place of the data set, indexed for the lookups above."""

    def __init__(self, places: list[Place]) -> None:
        self.communes: dict[str, Place] = {}
        self.departments: dict[str, Place] = {}
        self.by_postal_code: dict[str, list[Place]] = {}
        for place in places:
            if place.kind == "DEP":
                self.departments[place.code] = place
                continue
            # A commune nouvelle's chief delegated commune shares its code: the current commune wins.
            if place.kind == "COM" or place.code not in self.communes:
                self.communes[place.code] = place
            for postal_code in place.postal_codes:
                self.by_postal_code.setdefault(postal_code, []).append(place)
        # (postal code, name as typed) -> place; a district also answers to its city's name ("Lyon", 69003).
        self.by_postal_and_name: dict[tuple[str, str], list[Place]] = {}
        for postal_code, candidates in self.by_postal_code.items():
            for place in candidates:
                names = {normalise(place.name)}
                if place.kind == "ARM" and place.parent in self.communes:
                    names.add(normalise(self.communes[place.parent].name))
                for name in names:
                    self.by_postal_and_name.setdefault((postal_code, name), []).append(place)

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> Gazetteer:
        return cls(load_places(path))

    def current_communes(self) -> list[Place]:
        """Communes as they are today (no delegated or associated communes, no districts): for coverage."""
        return [p for p in self.communes.values() if p.kind == "COM"]

    def locate(self, insee_code: str | None, postal_code: str | None, name: str | None) -> Location | None:
        note = None
        if insee_code:
            place = self.communes.get(insee_code)
            if place is not None:
                return _at(place)
            note = f"code commune {insee_code} inconnu"
        candidates = self.by_postal_code.get(postal_code or "", [])
        if candidates:
            named = self.by_postal_and_name.get((postal_code or "", normalise(name)), []) if name else []
            if name and not named:
                note = _join(note, f"commune « {name} » absente du code postal {postal_code}")
            if len(named) == 1 or len(candidates) == 1:
                return _at((named or candidates)[0], note)
            return _centre_of(named or candidates, postal_code or "", note)
        if postal_code:
            dept = self.departments.get(department_of_postal_code(postal_code))
            if dept is not None:
                note = _join(note, f"code postal {postal_code} inconnu")
                return Location(
                    dept.lat,
                    dept.lon,
                    Precision.DEPARTMENT,
                    f"département {dept.name} ({dept.code})",
                    dept=dept.code,
                    note=note,
                )
        return None


def _at(place: Place, note: str | None = None) -> Location:
    return Location(
        place.lat,
        place.lon,
        Precision.COMMUNE,
        f"{place.name} ({place.code})",
        code=place.code,
        dept=place.dept,
        note=note,
    )


def _centre_of(places: list[Place], postal_code: str, note: str | None) -> Location:
    weights = [max(p.population, 1) for p in places]
    total = sum(weights)
    lat = sum(p.lat * w for p, w in zip(places, weights, strict=True)) / total
    lon = sum(p.lon * w for p, w in zip(places, weights, strict=True)) / total
    return Location(
        lat,
        lon,
        Precision.POSTAL_CODE,
        f"code postal {postal_code} ({len(places)} communes)",
        dept=places[0].dept,
        note=note,
    )


def _join(first: str | None, second: str) -> str:
    return f"{first} ; {second}" if first else second
