"""What the staff API answers: typed views of case files, volunteers and figures, never the stored documents
(no `_id`, outbox or version)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.coaching.audit import AuditEntry
from services.coaching.domain.applications import Application, ApplicationStatus
from services.coaching.domain.case_file import CaseFile, CaseStep, Stage
from services.coaching.domain.checkpoint import Checkpoint
from services.coaching.domain.volunteers import AntennaCapacity, normalise_sector
from services.coaching.service import Suggestions, VolunteerStatus
from shared.schemas import Association, Outcome, SectorFamily, SessionKind, VolunteerRole


class AssignedVolunteer(BaseModel):
    volunteer_id: str
    assigned_on: date | None


class CaseHistory(BaseModel):
    """A case handed over from the other association: same case id there, with its earlier history."""

    case_id: uuid.UUID
    previous_association: Association


class NextSession(BaseModel):
    """The next meeting agreed at the latest session that named one."""

    at: datetime
    place: str | None
    session_kind: SessionKind


class TimelineEntry(BaseModel):
    """One step of the case's story; its other fields depend on `kind` (e.g. `decision` for `comite`)."""

    model_config = ConfigDict(extra="allow")

    kind: str
    at: datetime | None = None
    by: str | None = None  # staff user, or `routage`


class CaseView(BaseModel):
    case_id: uuid.UUID
    association: Association
    stage: Stage
    step: CaseStep | None
    antenna_id: str | None
    sector: str | None
    sector_family: SectorFamily | None
    opened_at: datetime
    received_at: datetime | None
    routing_sequence: int
    history: CaseHistory | None
    consent_on: date | None
    committee_on: date | None
    decided_on: date | None
    deferrals: int
    approved_on: date | None
    coach: AssignedVolunteer | None
    sponsor: AssignedVolunteer | None
    sessions: int
    sessions_by_kind: dict[str, int]
    coaching_sessions_planned: int
    next_session: NextSession | None
    closed_on: date | None
    outcome: Outcome | None
    oriented_to: str | None
    timeline: list[TimelineEntry]

    @classmethod
    def of(cls, file: CaseFile, sessions_planned: int) -> CaseView:
        def volunteer(role: VolunteerRole) -> AssignedVolunteer | None:
            assigned = file.assigned(role)
            return AssignedVolunteer(volunteer_id=assigned, assigned_on=file.assigned_on(role)) if assigned else None

        history = (
            CaseHistory(case_id=file.case_id, previous_association=file.previous_association)
            if file.previous_association
            else None
        )
        next_session = file.next_session()
        return cls(
            case_id=file.case_id,
            association=file.association,
            stage=file.stage,
            step=file.step(),
            antenna_id=file.antenna_id,
            sector=file.sector,
            sector_family=file.sector_family,
            opened_at=file.opened_at,
            received_at=file.received_at,
            routing_sequence=file.routing_sequence,
            history=history,
            consent_on=file.consent_on,
            committee_on=file.committee_on,
            decided_on=file.decided_on,
            deferrals=file.deferrals,
            approved_on=file.approved_on,
            coach=volunteer(VolunteerRole.COACH),
            sponsor=volunteer(VolunteerRole.SPONSOR),
            sessions=file.sessions,
            sessions_by_kind=file.sessions_by_kind(),
            coaching_sessions_planned=sessions_planned,
            next_session=NextSession(**next_session) if next_session else None,
            closed_on=file.closed_on,
            outcome=file.outcome,
            oriented_to=file.oriented_to,
            timeline=[TimelineEntry(**entry) for entry in file.timeline],
        )


class CaseSummary(BaseModel):
    case_id: uuid.UUID
    stage: Stage
    step: CaseStep | None
    antenna_id: str | None
    opened_at: datetime
    approved_on: date | None


class CaseList(BaseModel):
    cases: list[CaseSummary]

    @classmethod
    def of(cls, files: list[CaseFile]) -> CaseList:
        return cls(
            cases=[
                CaseSummary(
                    case_id=f.case_id,
                    stage=f.stage,
                    step=f.step(),
                    antenna_id=f.antenna_id,
                    opened_at=f.opened_at,
                    approved_on=f.approved_on,
                )
                for f in files
            ]
        )


class WaitingEntry(BaseModel):
    case_id: uuid.UUID
    role: VolunteerRole
    antenna_id: str  # `sans_antenne` for a case without one
    sector: str | None
    waiting_since: date | None
    waiting_days: int
    position: int  # in its antenna's queue, first approved first
    free_volunteers: int  # at its antenna
    free_elsewhere: int
    blocked: bool  # nobody of the role at its antenna can take one more person


class CandidateView(BaseModel):
    volunteer_id: str
    display_name: str
    antenna_id: str
    same_antenna: bool
    sector_match: bool
    load: int
    max_people: int
    free_slots: int


class SuggestionsView(BaseModel):
    case_id: uuid.UUID
    role: VolunteerRole
    antenna_id: str | None
    sector: str | None
    already_assigned: str | None
    candidates: list[CandidateView]
    waiting_list: WaitingEntry | None
    message: str | None

    @classmethod
    def of(cls, found: Suggestions) -> SuggestionsView:
        place, role = found.waiting, found.role
        message = None
        if place is not None and place["blocked"]:
            message = (
                f"Aucun bénévole ({role.value}) disponible à l'antenne {place['antenna_id']} : le dossier "
                f"attend en file, position {place['position']}."
                + (" D'autres antennes ont de la place (voir les propositions)." if found.candidates else "")
            )
        return cls(
            case_id=found.file.case_id,
            role=role,
            antenna_id=found.file.antenna_id,
            sector=found.file.sector,
            already_assigned=found.file.assigned(role),
            candidates=[
                CandidateView(
                    volunteer_id=c.volunteer.volunteer_id,
                    display_name=c.volunteer.display_name,
                    antenna_id=c.volunteer.antenna_id,
                    same_antenna=c.same_antenna,
                    sector_match=c.sector_match,
                    load=c.load,
                    max_people=c.volunteer.max_people,
                    free_slots=c.free_slots,
                )
                for c in found.candidates
            ],
            waiting_list=WaitingEntry(**place) if place else None,
            message=message,
        )


class CheckpointView(BaseModel):
    checkpoint_id: str
    antenna_id: str
    held_on: date
    present: list[uuid.UUID]
    absent: list[uuid.UUID]
    refused: dict[str, str]  # case id -> why its file could not take it after all

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointView:
        return cls(
            checkpoint_id=checkpoint.checkpoint_id,
            antenna_id=checkpoint.antenna_id,
            held_on=checkpoint.held_on,
            present=checkpoint.present,
            absent=checkpoint.absent,
            refused=checkpoint.refused,
        )


class AuditEntryView(BaseModel):
    at: datetime
    who: str
    association: str
    action: str
    outcome: str
    case_id: str | None = None
    volunteer_id: str | None = None
    count: int | None = None


class CaseAudit(BaseModel):
    case_id: uuid.UUID
    entries: list[AuditEntryView]

    @classmethod
    def of(cls, case_id: uuid.UUID, entries: list[AuditEntry]) -> CaseAudit:
        return cls(case_id=case_id, entries=[AuditEntryView(**vars(e)) for e in entries])


class VolunteerView(BaseModel):
    volunteer_id: str
    display_name: str
    role: VolunteerRole
    antenna_id: str
    sectors: list[str]
    max_people: int
    certified_until: date | None
    available: bool
    unavailable_until: date | None
    email: str | None
    load: int
    free_slots: int
    unavailable: str | None  # why they cannot take anyone on today

    @classmethod
    def of(cls, status: VolunteerStatus) -> VolunteerView:
        v = status.volunteer
        return cls(
            volunteer_id=v.volunteer_id,
            display_name=v.display_name,
            role=v.role,
            antenna_id=v.antenna_id,
            sectors=[normalise_sector(s) for s in v.sectors],
            max_people=v.max_people,
            certified_until=v.certified_until,
            available=v.available,
            unavailable_until=v.unavailable_until,
            email=v.email,
            load=status.load,
            free_slots=status.free_slots,
            unavailable=status.unavailable,
        )


class VolunteerList(BaseModel):
    volunteers: list[VolunteerView]


class AntennaView(BaseModel):
    antenna_id: str
    coach_slots_free: int
    sponsor_slots_free: int
    as_of: datetime

    @classmethod
    def of(cls, capacity: AntennaCapacity) -> AntennaView:
        return cls(**vars(capacity))


class AntennaList(BaseModel):
    antennas: list[AntennaView]


class WaitingListView(BaseModel):
    role: VolunteerRole
    cases: list[WaitingEntry]


class WaitStats(BaseModel):
    cases: int
    mean_days: float | None
    max_days: int | None


class OverdueCase(BaseModel):
    case_id: uuid.UUID
    days: int


class VolunteerLoad(BaseModel):
    volunteer_id: str
    role: VolunteerRole
    load: int
    max_people: int
    free_slots: int
    unavailable: str | None


class RoleLoad(BaseModel):
    followed: int
    capacity: int
    free: int


class WaitingCount(BaseModel):
    cases: int
    blocked: int


class AntennaFigures(BaseModel):
    open_cases: dict[str, int]  # per step
    open_total: int
    waiting_days: dict[str, WaitStats]  # reception_comite, comite_coach
    overdue: dict[str, list[OverdueCase]]  # comite, coach
    volunteers: list[VolunteerLoad]
    load: dict[str, RoleLoad]  # per following role
    waiting_list: dict[str, WaitingCount]  # per following role
    needed: dict[str, int]  # per following role: volunteers to find for the cases waiting, beyond free places
    outcomes: dict[str, int]  # closed cases by outcome


class TargetsView(BaseModel):
    committee_days: int
    coach_days: int


class CoordinationView(BaseModel):
    association: Association
    as_of: date
    targets: TargetsView
    antennas: dict[str, AntennaFigures]

    @classmethod
    def of(
        cls,
        association: Association,
        as_of: date,
        committee_days: int,
        coach_days: int,
        figures: dict[str, dict[str, Any]],
    ) -> CoordinationView:
        return cls(
            association=association,
            as_of=as_of,
            targets=TargetsView(committee_days=committee_days, coach_days=coach_days),
            antennas={antenna: AntennaFigures(**f) for antenna, f in figures.items()},
        )


class ApplicationView(BaseModel):
    """A volunteer application as staff read it (personal data of this instance only)."""

    application_id: uuid.UUID
    display_name: str
    email: str
    phone: str | None
    role: VolunteerRole
    city: str | None
    sectors: list[str]
    experience: str | None
    received_at: datetime
    status: ApplicationStatus
    decided_on: date | None
    decided_by: str | None
    volunteer_id: str | None

    @classmethod
    def of(cls, application: Application) -> ApplicationView:
        return cls(
            application_id=application.application_id,
            display_name=application.display_name,
            email=application.email,
            phone=application.phone,
            role=application.role,
            city=application.city,
            sectors=application.sectors,
            experience=application.experience,
            received_at=application.received_at,
            status=application.status,
            decided_on=application.decided_on,
            decided_by=application.decided_by,
            volunteer_id=application.volunteer_id,
        )


class ApplicationList(BaseModel):
    applications: list[ApplicationView]
