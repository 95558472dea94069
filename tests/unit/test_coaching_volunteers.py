"""Volunteers: who can follow one more person, who fits a case best, and an antenna's free places."""

from __future__ import annotations

from datetime import date

from services.coaching.domain.volunteers import (
    Volunteer,
    antenna_belongs_to,
    free_slots_by_role,
    rank,
)
from shared.schemas import Association, SectorFamily, VolunteerRole

TODAY = date(2025, 6, 1)
LYON, GRENOBLE = "60000_rebonds-lyon", "60000_rebonds-grenoble"


def volunteer(
    volunteer_id: str,
    role: VolunteerRole = VolunteerRole.COACH,
    antenna_id: str = LYON,
    sectors: tuple[str, ...] = (),
    max_people: int = 3,
    **overrides,
) -> Volunteer:
    certified = date(2026, 1, 1) if role is VolunteerRole.COACH else None
    return Volunteer(
        **{
            "volunteer_id": volunteer_id,
            "display_name": volunteer_id,
            "role": role,
            "antenna_id": antenna_id,
            "sectors": list(sectors),
            "max_people": max_people,
            "certified_until": certified,
            **overrides,
        }
    )


def ranked(volunteers: list[Volunteer], loads: dict[str, int], sector: str | None = "commerce") -> list[str]:
    return [c.volunteer.volunteer_id for c in rank(volunteers, loads, VolunteerRole.COACH, LYON, sector, TODAY)]


def test_same_antenna_comes_first_then_sector_then_the_least_loaded() -> None:
    volunteers = [
        volunteer("grenoble-commerce", antenna_id=GRENOBLE, sectors=("commerce",)),
        volunteer("lyon-btp", sectors=("construction",)),
        volunteer("lyon-commerce-busy", sectors=("Commerce",)),
        volunteer("lyon-commerce-free", sectors=("commerce ",)),
    ]
    loads = {"lyon-commerce-busy": 2, "lyon-commerce-free": 1}
    assert ranked(volunteers, loads) == ["lyon-commerce-free", "lyon-commerce-busy", "lyon-btp", "grenoble-commerce"]


def test_a_sector_matches_by_name_or_by_its_family() -> None:
    volunteers = [volunteer("lyon-btp", sectors=("construction",)), volunteer("lyon-commerce", sectors=("commerce",))]
    by_family = rank(volunteers, {}, VolunteerRole.COACH, LYON, "Boulangerie", TODAY, SectorFamily.COMMERCE)
    assert [(c.volunteer.volunteer_id, c.sector_match) for c in by_family] == [
        ("lyon-commerce", True),
        ("lyon-btp", False),
    ]


def test_load_is_compared_as_a_share_of_what_each_can_follow() -> None:
    volunteers = [volunteer("small", max_people=2), volunteer("large", max_people=6)]
    assert ranked(volunteers, {"small": 1, "large": 2}, sector=None) == ["large", "small"]


def test_only_volunteers_who_can_take_one_more_person_are_suggested() -> None:
    volunteers = [
        volunteer("full", max_people=1),
        volunteer("expired", certified_until=date(2025, 5, 31)),
        volunteer("away", unavailable_until=date(2025, 6, 1)),
        volunteer("back", unavailable_until=date(2025, 5, 31)),
        volunteer("off", available=False),
        volunteer("a-sponsor", role=VolunteerRole.SPONSOR),
    ]
    assert ranked(volunteers, {"full": 1}) == ["back"]


def test_free_places_of_an_antenna_per_role() -> None:
    volunteers = [
        volunteer("c1", max_people=2),
        volunteer("c2", max_people=3),
        volunteer("expired", certified_until=date(2025, 1, 1)),
        volunteer("s1", role=VolunteerRole.SPONSOR, max_people=4),
        volunteer("e1", role=VolunteerRole.EXPERT),
    ]
    assert free_slots_by_role(volunteers, {"c1": 2, "c2": 1, "s1": 5}, TODAY) == {
        VolunteerRole.COACH: 2,
        VolunteerRole.SPONSOR: 0,
    }


def test_antenna_ids_belong_to_one_association() -> None:
    assert antenna_belongs_to("60000_rebonds-clermont-ferrand", Association.SOIXANTE_MILLE_REBONDS)
    assert not antenna_belongs_to("60000_rebonds-lyon", Association.SECOND_SOUFFLE)
    assert not antenna_belongs_to("60000_rebonds-Lyon", Association.SOIXANTE_MILLE_REBONDS)
    assert not antenna_belongs_to("60000_rebonds-", Association.SOIXANTE_MILLE_REBONDS)
