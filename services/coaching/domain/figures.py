"""Coordinators' figures and the waiting list, computed from case files and volunteers.

Pure functions: the API answers with them and the Prometheus gauges are set from the same result, so
both always show the same numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from statistics import fmean
from typing import Any, TypedDict

from services.coaching.domain.case_file import CaseFile, CaseStep, Stage
from services.coaching.domain.volunteers import FOLLOWING_ROLES, Volunteer, rank
from shared.schemas import Outcome, VolunteerRole

NO_ANTENNA = "sans_antenne"
WAITS = ("reception_comite", "comite_coach")


@dataclass(frozen=True)
class Targets:
    committee_days: int  # arrival -> committee decision
    coach_days: int  # approval -> coach assigned


class VolunteerFigures(TypedDict):
    volunteer_id: str
    role: str
    load: int
    max_people: int
    free_slots: int
    unavailable: str | None  # why the volunteer can take nobody today, if so


def antenna_of(file: CaseFile) -> str:
    return file.antenna_id or NO_ANTENNA


def overdue(file: CaseFile, today: date, targets: Targets) -> tuple[str, int] | None:
    """The target an open case has missed (`comite`: no decision in time, `coach`: none assigned in time)
    with the days it has waited, or None."""
    if file.stage in (Stage.AWAITING_CONSENT, Stage.AWAITING_COMMITTEE):
        days = _days(file.arrived_on, today)
        return ("comite", days) if days > targets.committee_days else None
    if file.stage is Stage.ACCOMPANIED and file.coach_id is None:
        days = _days(file.approved_on, today)
        return ("coach", days) if days > targets.coach_days else None
    return None


def waiting_list(
    files: Iterable[CaseFile],
    volunteers: list[Volunteer],
    loads: Mapping[str, int],
    role: VolunteerRole,
    today: date,
    antenna_id: str | None = None,
) -> list[dict[str, Any]]:
    """Approved cases still without a volunteer of `role`, first approved first, with their place per antenna.

    `blocked` marks the cases that wait because nobody of that role at their antenna (anywhere, for a
    case without antenna) can take one more person; `free_elsewhere` counts who could at other antennas.
    """
    waiting = sorted(
        (f for f in files if f.stage is Stage.ACCOMPANIED and f.assigned(role) is None),
        key=lambda f: (f.approved_on or date.max, str(f.case_id)),
    )
    positions: Counter[str] = Counter()
    entries = []
    for file in waiting:
        antenna = antenna_of(file)
        positions[antenna] += 1
        if antenna_id is not None and antenna != antenna_id:
            continue
        candidates = rank(volunteers, loads, role, file.antenna_id, file.sector, today, file.sector_family)
        local = [c for c in candidates if c.same_antenna] if file.antenna_id else candidates
        entries.append(
            {
                "case_id": str(file.case_id),
                "role": role.value,
                "antenna_id": antenna,
                "sector": file.sector,
                "waiting_since": file.approved_on,
                "waiting_days": _days(file.approved_on, today),
                "position": positions[antenna],
                "free_volunteers": len(local),
                "free_elsewhere": len(candidates) - len(local),
                "blocked": not local,
            }
        )
    return entries


def coordination(
    files: list[CaseFile],
    volunteers: list[Volunteer],
    loads: Mapping[str, int],
    today: date,
    targets: Targets,
    antenna_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per antenna: open cases by step, waiting times, overdue cases, volunteers' load, waiting list size.

    `files` are all the association's case files (closed ones count in the waiting times).
    """
    antennas = {antenna_of(f) for f in files if f.is_open} | {v.antenna_id for v in volunteers}
    if antenna_id is not None:
        antennas = {antenna_id}
    return {
        antenna: _antenna_figures(
            [f for f in files if antenna_of(f) == antenna],
            [v for v in volunteers if v.antenna_id == antenna],
            volunteers,
            loads,
            today,
            targets,
        )
        for antenna in sorted(antennas)
    }


def _antenna_figures(
    files: list[CaseFile],
    local: list[Volunteer],
    everyone: list[Volunteer],
    loads: Mapping[str, int],
    today: date,
    targets: Targets,
) -> dict[str, Any]:
    open_files = [f for f in files if f.is_open]
    by_step = dict.fromkeys((s.value for s in CaseStep), 0)
    for file in open_files:
        step = file.step()
        assert step is not None  # only closed and handed-over files have no step
        by_step[step.value] += 1
    waits = {
        "reception_comite": [_days(f.arrived_on, f.decided_on) for f in files if f.decided_on],
        "comite_coach": [
            _days(f.approved_on, f.coach_assigned_on) for f in files if f.approved_on and f.coach_assigned_on
        ],
    }
    late: dict[str, list[dict[str, Any]]] = {"comite": [], "coach": []}
    for file in open_files:
        missed = overdue(file, today, targets)
        if missed is not None:
            late[missed[0]].append({"case_id": str(file.case_id), "days": missed[1]})
    people: list[VolunteerFigures] = [
        {
            "volunteer_id": v.volunteer_id,
            "role": v.role.value,
            "load": loads.get(v.volunteer_id, 0),
            "max_people": v.max_people,
            "free_slots": v.free_slots(today, loads.get(v.volunteer_id, 0)),
            "unavailable": v.unavailability(today),
        }
        for v in local
    ]
    load = {
        role.value: {
            "followed": sum(p["load"] for p in people if p["role"] == role.value),
            "capacity": sum(p["max_people"] for p in people if p["role"] == role.value and not p["unavailable"]),
            "free": sum(p["free_slots"] for p in people if p["role"] == role.value),
        }
        for role in FOLLOWING_ROLES
    }
    waiting = {role.value: waiting_list(open_files, everyone, loads, role, today) for role in FOLLOWING_ROLES}
    outcomes = Counter(f.outcome.value for f in files if f.stage is Stage.CLOSED and f.outcome is not None)
    return {
        "open_cases": by_step,
        "open_total": len(open_files),
        "waiting_days": {name: _stats(values) for name, values in waits.items()},
        "overdue": late,
        "volunteers": people,
        "load": load,
        "waiting_list": {
            role: {"cases": len(entries), "blocked": sum(e["blocked"] for e in entries)}
            for role, entries in waiting.items()
        },
        # Volunteers to find so that every approved case waiting here gets one: beyond the free places.
        "needed": {role: max(0, len(entries) - load[role]["free"]) for role, entries in waiting.items()},
        "outcomes": {outcome.value: outcomes[outcome.value] for outcome in Outcome},
    }


def _days(since: date | None, until: date | None) -> int:
    return max(0, (until - since).days) if since and until else 0


def _stats(values: list[int]) -> dict[str, Any]:
    return {
        "cases": len(values),
        "mean_days": round(fmean(values), 1) if values else None,
        "max_days": max(values) if values else None,
    }
