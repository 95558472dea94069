"""Coordinators' figures: open cases by step, waiting times, overdue cases, load, waiting list."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.coaching.domain.case_file import CaseFile, Decision, Stage
from services.coaching.domain.figures import (
    NO_ANTENNA,
    Targets,
    coordination,
    waiting_list,
)
from services.coaching.domain.volunteers import Volunteer
from shared.schemas import Association, Outcome, VolunteerRole

TODAY = date(2025, 6, 30)
LYON = "60000_rebonds-lyon"
TARGETS = Targets(committee_days=15, coach_days=30)


def a_file(received: date, antenna_id: str | None = LYON) -> CaseFile:
    at = datetime.combine(received, datetime.min.time(), UTC)
    return CaseFile(
        case_id=uuid.uuid4(),
        association=Association.SOIXANTE_MILLE_REBONDS,
        stage=Stage.AWAITING_COMMITTEE,
        opened_at=at,
        received_at=at,
        antenna_id=antenna_id,
    )


def approved(received: date, on: date, antenna_id: str | None = LYON) -> CaseFile:
    file = a_file(received, antenna_id)
    file.decide(Decision.APPROVED, on, [])
    return file


def coach(volunteer_id: str, max_people: int = 2) -> Volunteer:
    return Volunteer(
        volunteer_id=volunteer_id,
        display_name=volunteer_id,
        role=VolunteerRole.COACH,
        antenna_id=LYON,
        max_people=max_people,
        certified_until=date(2026, 1, 1),
    )


def test_figures_per_antenna() -> None:
    late = a_file(TODAY - timedelta(days=16))  # past the 15-day target
    recent = a_file(TODAY - timedelta(days=3))
    recent.schedule_committee(TODAY + timedelta(days=2))
    waiting = approved(date(2025, 5, 1), date(2025, 5, 11))  # approved 50 days ago, no coach
    followed = approved(date(2025, 4, 1), date(2025, 4, 21))
    followed.assign(VolunteerRole.COACH, coach("c1"), 0, date(2025, 5, 1))
    closed = approved(date(2025, 1, 1), date(2025, 1, 5))
    closed.assign(VolunteerRole.COACH, coach("c2"), 0, date(2025, 1, 7))
    closed.close(Outcome.SALARIED_JOB, date(2025, 6, 1), [])
    elsewhere = a_file(TODAY, antenna_id=None)

    figures = coordination(
        [late, recent, waiting, followed, closed, elsewhere], [coach("c1", 1)], {"c1": 1}, TODAY, TARGETS
    )
    assert set(figures) == {LYON, NO_ANTENNA}
    lyon = figures[LYON]
    assert lyon["open_total"] == 4
    assert {k: v for k, v in lyon["open_cases"].items() if v} == {
        "attente_comite": 1,
        "comite_programme": 1,
        "attente_coach": 1,
        "coaching": 1,
    }
    # Reception -> decision: 10, 20 and 4 days; approval -> coach: 10 and 2 days.
    assert lyon["waiting_days"] == {
        "reception_comite": {"cases": 3, "mean_days": 11.3, "max_days": 20},
        "comite_coach": {"cases": 2, "mean_days": 6.0, "max_days": 10},
    }
    assert lyon["overdue"] == {
        "comite": [{"case_id": str(late.case_id), "days": 16}],
        "coach": [{"case_id": str(waiting.case_id), "days": 50}],
    }
    assert lyon["load"]["coach"] == {"followed": 1, "capacity": 1, "free": 0}
    assert lyon["waiting_list"] == {"coach": {"cases": 1, "blocked": 1}, "parrain": {"cases": 2, "blocked": 2}}
    assert figures[NO_ANTENNA]["open_cases"]["attente_comite"] == 1
    assert coordination([late], [], {}, TODAY, TARGETS, antenna_id=LYON).keys() == {LYON}


def test_the_waiting_list_is_first_approved_first_with_a_place_per_antenna() -> None:
    first = approved(date(2025, 5, 1), date(2025, 5, 2))
    second = approved(date(2025, 5, 1), date(2025, 5, 20))
    other = approved(date(2025, 5, 1), date(2025, 5, 10), antenna_id="60000_rebonds-grenoble")
    entries = waiting_list([second, other, first], [coach("c1")], {}, VolunteerRole.COACH, TODAY)
    assert [(e["case_id"], e["position"], e["blocked"]) for e in entries] == [
        (str(first.case_id), 1, False),
        (str(other.case_id), 1, True),
        (str(second.case_id), 2, False),
    ]
    assert entries[0]["waiting_days"] == 59
    assert (entries[1]["free_volunteers"], entries[1]["free_elsewhere"]) == (0, 1)  # Lyon's coach is not Grenoble's
    blocked = waiting_list([first], [coach("c1", 1)], {"c1": 1}, VolunteerRole.COACH, TODAY)
    assert blocked[0]["blocked"] and blocked[0]["free_volunteers"] == 0
