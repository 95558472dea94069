"""Volunteers of one association: who may follow one more person today, who fits a case best, and an
antenna's free places.

Pure rules. A volunteer's load is not stored: it is the number of open cases that name them, counted by
the store, so that closing or handing over a case frees the place without a second write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shared.schemas import Association, SectorFamily, VolunteerRole

# `<association>-<city>`: lowercase ASCII words joined by "-", shared with routing (e.g. 60000_rebonds-lyon).
ANTENNA_ID = re.compile(r"^(second_souffle|60000_rebonds)-[a-z0-9]+(?:-[a-z0-9]+)*$")

ROLE_LABELS = {
    VolunteerRole.COACH: "coach",
    VolunteerRole.SPONSOR: "parrain ou marraine",
    VolunteerRole.EXPERT: "expert",
}
# Roles that follow people over months (experts answer one-off questions and carry no load).
FOLLOWING_ROLES = (VolunteerRole.COACH, VolunteerRole.SPONSOR)


def antenna_belongs_to(antenna_id: str, association: Association) -> bool:
    return bool(ANTENNA_ID.match(antenna_id)) and antenna_id.startswith(f"{association.value}-")


def normalise_sector(sector: str) -> str:
    return " ".join(sector.split()).lower()


def french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


@dataclass
class Volunteer:
    volunteer_id: str
    display_name: str
    role: VolunteerRole
    antenna_id: str
    sectors: list[str] = field(default_factory=list)
    max_people: int = 1
    certified_until: date | None = None  # coaches only: the certification's expiry date
    available: bool = True
    unavailable_until: date | None = None  # e.g. holidays: available again the day after
    email: str | None = None  # professional contact, kept in this association's instance only

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Volunteer:
        return cls(
            volunteer_id=doc["_id"],
            display_name=doc["display_name"],
            role=VolunteerRole(doc["role"]),
            antenna_id=doc["antenna_id"],
            sectors=list(doc.get("sectors", [])),
            max_people=doc["max_people"],
            certified_until=as_date(doc.get("certified_until")),
            available=doc.get("available", True),
            unavailable_until=as_date(doc.get("unavailable_until")),
            email=doc.get("email"),
        )

    def to_doc(self) -> dict[str, Any]:
        """The stored document (`_id` is the volunteer id)."""
        return {"_id": self.volunteer_id, **self.state()}

    def state(self) -> dict[str, Any]:
        """Every stored field but the id."""
        return {
            "display_name": self.display_name,
            "role": self.role.value,
            "antenna_id": self.antenna_id,
            "sectors": [normalise_sector(s) for s in self.sectors],
            "max_people": self.max_people,
            "certified_until": self.certified_until.isoformat() if self.certified_until else None,
            "available": self.available,
            "unavailable_until": self.unavailable_until.isoformat() if self.unavailable_until else None,
            "email": self.email,
        }

    def unavailability(self, today: date) -> str | None:
        """Why this volunteer cannot take anyone on today, whatever their load (French), or None."""
        if self.role is VolunteerRole.COACH:
            if self.certified_until is None:
                return "Ce coach n'est pas certifié : il ne peut pas suivre d'entrepreneur."
            if self.certified_until < today:
                return f"La certification de ce coach a expiré le {french_date(self.certified_until)}."
        if not self.available:
            return "Ce bénévole est indiqué comme indisponible."
        if self.unavailable_until is not None and self.unavailable_until >= today:
            return f"Ce bénévole est indisponible jusqu'au {french_date(self.unavailable_until)}."
        return None

    def refusal(self, today: date, load: int) -> str | None:
        """Why this volunteer cannot follow one more person today (French, shown to staff), or None."""
        reason = self.unavailability(today)
        if reason is None and load >= self.max_people:
            reason = f"Ce bénévole suit déjà {load} personne(s) pour {self.max_people} au plus : il est complet."
        return reason

    def free_slots(self, today: date, load: int) -> int:
        return 0 if self.unavailability(today) else max(0, self.max_people - load)

    def covers(self, sector: str | None, sector_family: SectorFamily | None = None) -> bool:
        """Has experience of the case's sector, named as staff or intake wrote it or by its broad family."""
        wanted = {normalise_sector(s) for s in (sector, sector_family) if s is not None}
        return bool(wanted & {normalise_sector(s) for s in self.sectors})


@dataclass(frozen=True)
class Candidate:
    """A volunteer who could follow the case, with what the ranking looked at."""

    volunteer: Volunteer
    load: int
    same_antenna: bool
    sector_match: bool

    @property
    def free_slots(self) -> int:
        return self.volunteer.max_people - self.load

    def rank_key(self) -> tuple[Any, ...]:
        # Same antenna first (the one-hour promise), then sector experience, then the least loaded.
        return (
            not self.same_antenna,
            not self.sector_match,
            self.load / self.volunteer.max_people,
            -self.free_slots,
            self.volunteer.volunteer_id,
        )


def rank(
    volunteers: Iterable[Volunteer],
    loads: Mapping[str, int],
    role: VolunteerRole,
    antenna_id: str | None,
    sector: str | None,
    today: date,
    sector_family: SectorFamily | None = None,
) -> list[Candidate]:
    """Volunteers of `role` who can take the case today, best first."""
    candidates = [
        Candidate(v, loads.get(v.volunteer_id, 0), v.antenna_id == antenna_id, v.covers(sector, sector_family))
        for v in volunteers
        if v.role is role and v.refusal(today, loads.get(v.volunteer_id, 0)) is None
    ]
    return sorted(candidates, key=Candidate.rank_key)


def free_slots_by_role(
    volunteers: Iterable[Volunteer], loads: Mapping[str, int], today: date
) -> dict[VolunteerRole, int]:
    """How many more people the given volunteers can follow today, per following role."""
    free = dict.fromkeys(FOLLOWING_ROLES, 0)
    for volunteer in volunteers:
        if volunteer.role in free:
            free[volunteer.role] += volunteer.free_slots(today, loads.get(volunteer.volunteer_id, 0))
    return free


@dataclass(frozen=True)
class AntennaCapacity:
    """An antenna's free places as last published to routing."""

    antenna_id: str
    coach_slots_free: int
    sponsor_slots_free: int
    as_of: datetime


def as_date(value: Any) -> date | None:
    """A stored date (ISO string), or a datetime's day."""
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(value) if isinstance(value, str) else value
