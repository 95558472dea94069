"""Staff API on case files: profile, consent, committee, volunteers, sessions, checkpoints, closing, handover.

Every route needs a staff bearer token of this instance's association and is audited (`guard`).
"""
# No `from __future__ import annotations` here: FastAPI must see the routes' local `Authenticated` type itself.

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, Self, TypeAlias
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import Field, field_validator, model_validator

from services.coaching.api.guard import AntennaId, Guard, Responses, check_antenna
from services.coaching.api.views import CaseAudit, CaseList, CaseView, CheckpointView, SuggestionsView
from services.coaching.audit import AuditEntry, AuditTrail
from services.coaching.auth import Staff, StaffAuth
from services.coaching.domain.case_file import CaseFile, Decision, Orientation, Stage
from services.coaching.service import CoachingService, SessionReport
from shared.http import MULTILINE, StrictRequest
from shared.schemas import Outcome, Procedure, SectorFamily, SessionKind, VolunteerRole

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Reasons = Annotated[list[Reason], Field(max_length=10), MULTILINE]
FollowingRole = Literal[VolunteerRole.COACH, VolunteerRole.SPONSOR]
NOT_FOUND: Responses = {404: {"description": "Dossier introuvable"}}
REFUSED: Responses = {**NOT_FOUND, 409: {"description": "Étape impossible dans l'état du dossier : rien n'est changé"}}
# Staff give the time of the next meeting as they read it on a clock in France.
LOCAL_TIME = ZoneInfo("Europe/Paris")


class ConsentIn(StrictRequest):
    given: bool
    recorded_on: date | None = None


class CommitteeDateIn(StrictRequest):
    scheduled_on: date


class CommitteeDecisionIn(StrictRequest):
    decision: Decision
    decided_on: date | None = None
    reasons: Reasons = Field(default_factory=list)
    orientation: Orientation | None = None

    @model_validator(mode="after")
    def reasons_and_orientation(self) -> Self:
        if self.decision is not Decision.APPROVED and not self.reasons:
            raise ValueError("Indiquez au moins un motif pour un refus ou un ajournement.")
        if self.orientation is not None and self.decision is not Decision.DECLINED:
            raise ValueError("Seul un refus oriente le dossier ailleurs : retirez « orientation ».")
        return self


class ProfileIn(StrictRequest):
    antenna_id: AntennaId | None = None
    sector: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    sector_family: SectorFamily | None = None


class AssignmentIn(StrictRequest):
    role: FollowingRole
    volunteer_id: Annotated[str, Field(min_length=1, max_length=64)]


class SessionIn(StrictRequest):
    kind: Literal[SessionKind.COACHING, SessionKind.SPONSOR, SessionKind.EXPERT]
    held_on: date | None = None
    duration_minutes: int | None = Field(None, ge=1, le=600)
    attended: bool = True
    volunteer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    next_session_at: datetime | None = Field(
        None, description="Prochain rendez-vous convenu (heure de Paris si aucun fuseau n'est indiqué)"
    )
    next_session_place: Annotated[str, Field(min_length=1, max_length=120)] | None = Field(
        None, description="Lieu public ou « visioconférence » : jamais l'adresse personnelle de quiconque"
    )

    @field_validator("next_session_at")
    @classmethod
    def local_time(cls, at: datetime | None) -> datetime | None:
        return at.replace(tzinfo=LOCAL_TIME) if at is not None and at.tzinfo is None else at

    @model_validator(mode="after")
    def expert_only(self) -> Self:
        if self.volunteer_id is not None and self.kind is not SessionKind.EXPERT:
            raise ValueError("« volunteer_id » désigne l'expert d'une consultation (kind = expertise).")
        if self.next_session_place is not None and self.next_session_at is None:
            raise ValueError("Indiquez la date du prochain rendez-vous (« next_session_at ») avec son lieu.")
        return self


class CheckpointIn(StrictRequest):
    antenna_id: AntennaId
    held_on: date | None = None
    duration_minutes: int | None = Field(None, ge=1, le=600)
    present: Annotated[list[uuid.UUID], Field(min_length=1, max_length=60)]
    absent: Annotated[list[uuid.UUID], Field(max_length=60)] = Field(default_factory=list)

    @model_validator(mode="after")
    def each_case_once(self) -> Self:
        everyone = [*self.present, *self.absent]
        if len(set(everyone)) != len(everyone):
            raise ValueError("Chaque dossier ne figure qu'une fois, parmi les présents ou les absents.")
        return self


class ClosingIn(StrictRequest):
    outcome: Outcome
    closed_on: date | None = None
    reasons: Reasons = Field(default_factory=list)


class HandoverIn(StrictRequest):
    procedure: Literal[Procedure.LIQUIDATION_JUDICIAIRE, Procedure.CESSION_A_LA_BARRE] = (
        Procedure.LIQUIDATION_JUDICIAIRE
    )
    court_decision_date: date | None = None
    # A note for the other association's staff: no personal data (it travels on Kafka).
    comment: Annotated[str, Field(max_length=500), MULTILINE] | None = None


def router(service: CoachingService, auth: StaffAuth, audit: AuditTrail) -> APIRouter:
    api = APIRouter(tags=["case files"])
    guard = Guard(audit)
    Authenticated: TypeAlias = Annotated[Staff, Depends(auth)]

    def shown(file: CaseFile) -> CaseView:
        return CaseView.of(file, service.sessions_planned)

    @api.get(
        "/cases", response_model=CaseList, summary="This association's case files (open ones unless open_only=false)"
    )
    async def list_cases(
        staff: Authenticated, open_only: bool = True, stage: Stage | None = None, antenna_id: str | None = None
    ) -> CaseList:
        files = await guard(staff, "case.list", lambda: service.find_cases(open_only, stage, antenna_id), count=len)
        return CaseList.of(files)

    @api.get(
        "/cases/{case_id}",
        response_model=CaseView,
        summary="The case file with its whole timeline",
        responses=NOT_FOUND,
    )
    async def get_case(case_id: uuid.UUID, staff: Authenticated) -> CaseView:
        return shown(await guard(staff, "case.read", lambda: service.case(case_id), case_id=case_id))

    @api.patch(
        "/cases/{case_id}",
        response_model=CaseView,
        responses=REFUSED,
        summary="Set the case's antenna or sector (when routing gave none)",
    )
    async def set_profile(case_id: uuid.UUID, body: ProfileIn, staff: Authenticated) -> CaseView:
        check_antenna(body.antenna_id, service.association)
        return shown(
            await guard(
                staff,
                "case.profile",
                lambda: service.set_profile(
                    case_id,
                    staff.user,
                    antenna_id=body.antenna_id,
                    sector=body.sector,
                    sector_family=body.sector_family,
                ),
                case_id=case_id,
            )
        )

    @api.post(
        "/cases/{case_id}/consent",
        response_model=CaseView,
        responses=REFUSED,
        summary="Record the consent asked again after a handover",
    )
    async def consent(case_id: uuid.UUID, body: ConsentIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.consent",
                lambda: service.record_consent(case_id, body.given, staff.user, body.recorded_on),
                case_id=case_id,
            )
        )

    @api.post(
        "/cases/{case_id}/committee-date",
        response_model=CaseView,
        responses=REFUSED,
        summary="Schedule the case for an engagement committee",
    )
    async def committee_date(case_id: uuid.UUID, body: CommitteeDateIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.committee_date",
                lambda: service.schedule_committee(case_id, body.scheduled_on, staff.user),
                case_id=case_id,
            )
        )

    @api.post(
        "/cases/{case_id}/committee-decision",
        response_model=CaseView,
        responses=REFUSED,
        summary="Record the engagement committee's decision",
    )
    async def committee(case_id: uuid.UUID, body: CommitteeDecisionIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.committee_decision",
                lambda: service.decide_committee(
                    case_id,
                    body.decision,
                    body.reasons,
                    staff.user,
                    orientation=body.orientation,
                    decided_on=body.decided_on,
                ),
                case_id=case_id,
            )
        )

    @api.get(
        "/cases/{case_id}/suggestions",
        response_model=SuggestionsView,
        responses=NOT_FOUND,
        summary="Volunteers who could follow the case, best first",
    )
    async def suggestions(
        case_id: uuid.UUID, staff: Authenticated, role: Annotated[FollowingRole, Query()] = VolunteerRole.COACH
    ) -> SuggestionsView:
        found = await guard(staff, "case.suggestions", lambda: service.suggestions(case_id, role), case_id=case_id)
        return SuggestionsView.of(found)

    @api.post(
        "/cases/{case_id}/assignments",
        response_model=CaseView,
        responses={**REFUSED, 404: {"description": "Dossier ou bénévole introuvable"}},
        summary="Confirm the coach or sponsor who follows the person (VolunteerAssigned)",
    )
    async def assign(case_id: uuid.UUID, body: AssignmentIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.assign",
                lambda: service.assign(case_id, body.role, body.volunteer_id, staff.user),
                case_id=case_id,
                volunteer_id=body.volunteer_id,
            )
        )

    @api.delete(
        "/cases/{case_id}/assignments/{role}",
        response_model=CaseView,
        responses=REFUSED,
        summary="The coach or sponsor stops following the person (VolunteerAssigned, released)",
    )
    async def release(case_id: uuid.UUID, role: FollowingRole, staff: Authenticated) -> CaseView:
        return shown(
            await guard(staff, "case.release", lambda: service.release(case_id, role, staff.user), case_id=case_id)
        )

    @api.post(
        "/cases/{case_id}/sessions",
        status_code=201,
        response_model=CaseView,
        responses=REFUSED,
        summary="Record a coaching session, sponsor meeting or expert consultation, with attendance "
        "and the next meeting agreed",
    )
    async def session(case_id: uuid.UUID, body: SessionIn, staff: Authenticated) -> CaseView:
        report = SessionReport(**body.model_dump())
        return shown(
            await guard(
                staff, "case.session", lambda: service.hold_session(case_id, report, staff.user), case_id=case_id
            )
        )

    @api.post(
        "/checkpoints",
        status_code=201,
        response_model=CheckpointView,
        tags=["checkpoints"],
        responses=REFUSED,
        summary="Record a collective checkpoint: one SessionHeld per entrepreneur present",
    )
    async def checkpoint(body: CheckpointIn, staff: Authenticated) -> CheckpointView:
        check_antenna(body.antenna_id, service.association)
        recorded = await guard(
            staff,
            "checkpoint.record",
            lambda: service.record_checkpoint(
                body.antenna_id, body.held_on, body.duration_minutes, body.present, body.absent, staff.user
            ),
        )
        for case_id in [*recorded.present, *recorded.absent]:
            await audit.record(staff.user, "case.checkpoint", "ok", case_id=str(case_id))
        return CheckpointView.of(recorded)

    @api.post(
        "/cases/{case_id}/closing",
        response_model=CaseView,
        responses=REFUSED,
        summary="Close the accompaniment with its outcome",
    )
    async def closing(case_id: uuid.UUID, body: ClosingIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.closing",
                lambda: service.close(case_id, body.outcome, body.reasons, staff.user, body.closed_on),
                case_id=case_id,
            )
        )

    @api.post(
        "/cases/{case_id}/handover",
        response_model=CaseView,
        responses=REFUSED,
        summary="The company went into liquidation: hand the person over to 60 000 rebonds",
    )
    async def handover(case_id: uuid.UUID, body: HandoverIn, staff: Authenticated) -> CaseView:
        return shown(
            await guard(
                staff,
                "case.handover",
                lambda: service.request_handover(
                    case_id, body.procedure, body.court_decision_date, body.comment, staff.user
                ),
                case_id=case_id,
            )
        )

    @api.get(
        "/cases/{case_id}/audit",
        response_model=CaseAudit,
        responses=NOT_FOUND,
        summary="Who read or changed this case file, and when",
    )
    async def case_audit(case_id: uuid.UUID, staff: Authenticated) -> CaseAudit:
        async def entries() -> list[AuditEntry]:
            await service.case(case_id)
            return await audit.for_case(str(case_id))

        return CaseAudit.of(case_id, await guard(staff, "case.audit", entries, case_id=case_id))

    return api
