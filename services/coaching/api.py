"""Staff API on case files: consent, committee, volunteers, sessions, checkpoints, closing, handover.

Every route needs a staff bearer token of this instance's association and is audited (`api_guard`).
"""

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Query
from pydantic import Field, model_validator

from services.coaching.accompaniment import Accompaniment
from services.coaching.api_guard import AntennaId, Guard, Strict, check_antenna
from services.coaching.audit import AuditTrail
from services.coaching.auth import Staff, StaffAuth
from services.coaching.domain import CaseFile, Decision, Orientation, Stage
from services.coaching.volunteers import Role
from shared.schemas import Contract, Outcome, Procedure, SessionKind

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Reasons = Annotated[list[Reason], Field(max_length=10)]
NOT_FOUND = {404: {"description": "Dossier introuvable"}}
REFUSED = {**NOT_FOUND, 409: {"description": "Étape impossible dans l'état du dossier : rien n'est changé"}}


class ConsentIn(Strict):
    given: bool
    recorded_on: date | None = None


class CommitteeDateIn(Strict):
    scheduled_on: date


class CommitteeDecisionIn(Strict):
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


class ProfileIn(Strict):
    antenna_id: AntennaId | None = None
    sector: Annotated[str, Field(min_length=1, max_length=80)] | None = None


class AssignmentIn(Strict):
    role: Literal[Role.COACH, Role.SPONSOR]
    volunteer_id: Annotated[str, Field(min_length=1, max_length=64)]


class SessionIn(Strict):
    kind: Literal[SessionKind.COACHING, SessionKind.SPONSOR, SessionKind.EXPERT]
    held_on: date | None = None
    duration_minutes: int | None = Field(None, ge=1, le=600)
    attended: bool = True
    volunteer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def expert_only(self) -> Self:
        if self.volunteer_id is not None and self.kind is not SessionKind.EXPERT:
            raise ValueError("« volunteer_id » désigne l'expert d'une consultation (kind = expertise).")
        return self


class CheckpointIn(Strict):
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


class ClosingIn(Strict):
    outcome: Outcome
    closed_on: date | None = None
    reasons: Reasons = Field(default_factory=list)


class HandoverIn(Strict):
    procedure: Literal[Procedure.LIQUIDATION_JUDICIAIRE, Procedure.CESSION_A_LA_BARRE] = \
        Procedure.LIQUIDATION_JUDICIAIRE
    court_decision_date: date | None = None
    # A note for the other association's staff: no personal data (it travels on Kafka).
    comment: Annotated[str, Field(max_length=500)] | None = None


def view(file: CaseFile, sessions_planned: int) -> dict[str, Any]:
    def volunteer(role: Role) -> dict[str, Any] | None:
        assigned = file.assigned(role)
        on = file.coach_assigned_on if role is Role.COACH else file.sponsor_assigned_on
        return {"volunteer_id": assigned, "assigned_on": on} if assigned else None

    return {
        "case_id": str(file.case_id),
        "association": file.association.value,
        "stage": file.stage.value,
        "step": file.step(),
        "antenna_id": file.antenna_id,
        "sector": file.sector,
        "opened_at": file.opened_at,
        "received_at": file.received_at,
        "routing_sequence": file.routing_sequence,
        # A case handed over from the other association: same case id there, with its earlier history.
        "history": ({"case_id": str(file.case_id), "previous_association": file.previous_association.value}
                    if file.previous_association else None),
        "consent_on": file.consent_on,
        "committee_on": file.committee_on,
        "decided_on": file.decided_on,
        "deferrals": file.deferrals,
        "approved_on": file.approved_on,
        "coach": volunteer(Role.COACH),
        "sponsor": volunteer(Role.SPONSOR),
        "sessions": file.sessions,
        "sessions_by_kind": file.sessions_by_kind(),
        "coaching_sessions_planned": sessions_planned,
        "closed_on": file.closed_on,
        "outcome": file.outcome,
        "oriented_to": file.oriented_to,
        "timeline": file.timeline,
    }


def router(service: Accompaniment, auth: StaffAuth, audit: AuditTrail, sessions_planned: int) -> APIRouter:
    api = APIRouter(tags=["case files"])
    guard = Guard(audit)
    Authenticated = Annotated[Staff, Depends(auth)]

    def shown(file: CaseFile) -> dict[str, Any]:
        return view(file, sessions_planned)

    async def step(staff: Staff, action: str, case_id: uuid.UUID,
                   rule: Callable[[CaseFile], list[Contract]]) -> dict[str, Any]:
        """One audited change of one case file by one domain rule."""
        return shown(await guard(staff, action, lambda: service.change(case_id, rule, staff.user), case_id=case_id))

    @api.get("/cases", summary="This association's case files (open ones unless open_only=false)")
    async def list_cases(staff: Authenticated, open_only: bool = True, stage: Stage | None = None,
                         antenna_id: str | None = None) -> dict[str, Any]:
        files = await guard(staff, "case.list", lambda: service.find(open_only, stage, antenna_id), count=len)
        return {"cases": [{"case_id": str(f.case_id), "stage": f.stage.value, "step": f.step(),
                           "antenna_id": f.antenna_id, "opened_at": f.opened_at, "approved_on": f.approved_on}
                          for f in files]}

    @api.get("/cases/{case_id}", summary="The case file with its whole timeline", responses=NOT_FOUND)
    async def get_case(case_id: uuid.UUID, staff: Authenticated) -> dict[str, Any]:
        return shown(await guard(staff, "case.read", lambda: service.read(case_id), case_id=case_id))

    @api.patch("/cases/{case_id}", summary="Set the case's antenna or sector (when routing gave none)",
               responses=REFUSED)
    async def set_profile(case_id: uuid.UUID, body: ProfileIn, staff: Authenticated) -> dict[str, Any]:
        check_antenna(body.antenna_id, service.association)
        return await step(staff, "case.profile", case_id, lambda f: f.set_profile(body.antenna_id, body.sector))

    @api.post("/cases/{case_id}/consent", summary="Record the consent asked again after a handover",
              responses=REFUSED)
    async def consent(case_id: uuid.UUID, body: ConsentIn, staff: Authenticated) -> dict[str, Any]:
        on = body.recorded_on or service.today()
        return await step(staff, "case.consent", case_id, lambda f: f.record_consent(body.given, on))

    @api.post("/cases/{case_id}/committee-date", summary="Schedule the case for an engagement committee",
              responses=REFUSED)
    async def committee_date(case_id: uuid.UUID, body: CommitteeDateIn, staff: Authenticated) -> dict[str, Any]:
        return await step(staff, "case.committee_date", case_id, lambda f: f.schedule_committee(body.scheduled_on))

    @api.post("/cases/{case_id}/committee-decision", summary="Record the engagement committee's decision",
              responses=REFUSED)
    async def committee(case_id: uuid.UUID, body: CommitteeDecisionIn, staff: Authenticated) -> dict[str, Any]:
        decided_on = body.decided_on or service.today()
        return await step(staff, "case.committee_decision", case_id,
                          lambda f: f.decide(body.decision, decided_on, body.reasons, body.orientation))

    @api.get("/cases/{case_id}/suggestions", summary="Volunteers who could follow the case, best first",
             responses=NOT_FOUND)
    async def suggestions(case_id: uuid.UUID, staff: Authenticated,
                          role: Literal[Role.COACH, Role.SPONSOR] = Query(Role.COACH)) -> dict[str, Any]:
        file, candidates, place = await guard(staff, "case.suggestions",
                                              lambda: service.suggestions(case_id, role), case_id=case_id)
        message = None
        if place is not None and place["blocked"]:
            message = (f"Aucun bénévole ({role.value}) disponible à l'antenne {place['antenna_id']} : le dossier "
                       f"attend en file, position {place['position']}."
                       + (" D'autres antennes ont de la place (voir les propositions)." if candidates else ""))
        return {
            "case_id": str(case_id), "role": role.value, "antenna_id": file.antenna_id, "sector": file.sector,
            "already_assigned": file.assigned(role),
            "candidates": [{"volunteer_id": c.volunteer.volunteer_id, "display_name": c.volunteer.display_name,
                            "antenna_id": c.volunteer.antenna_id, "same_antenna": c.same_antenna,
                            "sector_match": c.sector_match, "load": c.load, "max_people": c.volunteer.max_people,
                            "free_slots": c.free_slots} for c in candidates],
            "waiting_list": place,
            "message": message,
        }

    @api.post("/cases/{case_id}/assignments", summary="Confirm the coach or sponsor who follows the person",
              responses={**REFUSED, 404: {"description": "Dossier ou bénévole introuvable"}})
    async def assign(case_id: uuid.UUID, body: AssignmentIn, staff: Authenticated) -> dict[str, Any]:
        return shown(await guard(staff, "case.assign", lambda: service.assign(
            case_id, body.role, body.volunteer_id, staff.user), case_id=case_id, volunteer_id=body.volunteer_id))

    @api.delete("/cases/{case_id}/assignments/{role}", summary="The coach or sponsor stops following the person",
                responses=REFUSED)
    async def release(case_id: uuid.UUID, role: Literal[Role.COACH, Role.SPONSOR],
                      staff: Authenticated) -> dict[str, Any]:
        return shown(await guard(staff, "case.release", lambda: service.release(case_id, role, staff.user),
                                 case_id=case_id))

    @api.post("/cases/{case_id}/sessions", status_code=201, responses=REFUSED,
              summary="Record a coaching session, sponsor meeting or expert consultation, with attendance")
    async def session(case_id: uuid.UUID, body: SessionIn, staff: Authenticated) -> dict[str, Any]:
        held_on = body.held_on or service.today()
        return shown(await guard(staff, "case.session", lambda: service.hold_session(
            case_id, body.kind, held_on, body.duration_minutes, body.attended, body.volunteer_id, staff.user),
            case_id=case_id))

    @api.post("/checkpoints", status_code=201, tags=["checkpoints"], responses=REFUSED,
              summary="Record a collective checkpoint: one SessionHeld per entrepreneur present")
    async def checkpoint(body: CheckpointIn, staff: Authenticated) -> dict[str, Any]:
        check_antenna(body.antenna_id, service.association)
        held_on = body.held_on or service.today()
        recorded = await guard(staff, "checkpoint.record", lambda: service.record_checkpoint(
            body.antenna_id, held_on, body.duration_minutes, body.present, body.absent, staff.user))
        for case_id in [*recorded["present"], *recorded["absent"]]:
            await audit.record(staff.user, "case.checkpoint", "ok", case_id=case_id)
        return recorded

    @api.post("/cases/{case_id}/closing", summary="Close the accompaniment with its outcome", responses=REFUSED)
    async def closing(case_id: uuid.UUID, body: ClosingIn, staff: Authenticated) -> dict[str, Any]:
        closed_on = body.closed_on or service.today()
        return shown(await guard(staff, "case.closing", lambda: service.close(
            case_id, lambda f: f.close(body.outcome, closed_on, body.reasons), staff.user), case_id=case_id))

    @api.post("/cases/{case_id}/handover", responses=REFUSED,
              summary="The company went into liquidation: hand the person over to 60 000 rebonds")
    async def handover(case_id: uuid.UUID, body: HandoverIn, staff: Authenticated) -> dict[str, Any]:
        on = service.today()
        return await step(staff, "case.handover", case_id, lambda f: f.request_handover(
            body.procedure, body.court_decision_date, body.comment, on))

    @api.get("/cases/{case_id}/audit", summary="Who read or changed this case file, and when",
             responses=NOT_FOUND)
    async def case_audit(case_id: uuid.UUID, staff: Authenticated) -> dict[str, Any]:
        async def entries() -> list[dict[str, Any]]:
            await service.read(case_id)
            return await audit.for_case(str(case_id))

        return {"case_id": str(case_id), "entries": await guard(staff, "case.audit", entries, case_id=case_id)}

    return api

