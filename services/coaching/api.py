"""Coaching's staff API: committee decision, sessions, closing, and the case's timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.coaching.domain import CaseFile, Decision, TransitionRefused
from services.coaching.store import CaseFileStore, VersionConflict, timeline_entry
from shared.schemas import Outcome, SessionKind


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CommitteeDecisionIn(Strict):
    decision: Decision
    decided_on: date | None = None
    reasons: list[str] = Field(default_factory=list, max_length=10)


class SessionIn(Strict):
    kind: SessionKind
    held_on: date | None = None
    duration_minutes: int | None = Field(None, ge=1, le=600)


class ClosingIn(Strict):
    outcome: Outcome
    closed_on: date | None = None
    reasons: list[str] = Field(default_factory=list, max_length=10)


def view(file: CaseFile) -> dict[str, Any]:
    return {
        "case_id": str(file.case_id),
        "association": file.association.value,
        "stage": file.stage.value,
        "opened_at": file.opened_at,
        "received_at": file.received_at,
        "approved_on": file.approved_on,
        "sessions": file.sessions,
        "closed_on": file.closed_on,
        "timeline": file.timeline,
    }


def router(store: CaseFileStore) -> APIRouter:
    api = APIRouter(tags=["case files"])

    async def change(case_id: uuid.UUID, step) -> dict[str, Any]:  # noqa: ANN001
        try:
            file = await store.change(case_id, step)
        except TransitionRefused as refused:
            raise HTTPException(409, str(refused)) from None
        except VersionConflict:
            raise HTTPException(409, "Le dossier vient d'être modifié par ailleurs : réessayez.") from None
        if file is None:
            raise HTTPException(404, "Dossier introuvable.")
        return view(file)

    @api.get("/cases/{case_id}", summary="The case file with its whole timeline", responses={404: {}})
    async def get_case(case_id: uuid.UUID) -> dict[str, Any]:
        file = await store.get(str(case_id))
        if file is None:
            raise HTTPException(404, "Dossier introuvable.")
        return view(file)

    @api.post("/cases/{case_id}/committee-decision", summary="Record the engagement committee's decision",
              responses={404: {}, 409: {}})
    async def committee(case_id: uuid.UUID, body: CommitteeDecisionIn) -> dict[str, Any]:
        decided_on = body.decided_on or _today()

        def step(file: CaseFile):  # noqa: ANN202
            event = file.decide(body.decision, decided_on, body.reasons)
            return event, timeline_entry("comite", decision=body.decision.value, decided_on=decided_on.isoformat(),
                                         reasons=body.reasons)

        return await change(case_id, step)

    @api.post("/cases/{case_id}/sessions", status_code=201, summary="Record a session that took place",
              responses={404: {}, 409: {}})
    async def session(case_id: uuid.UUID, body: SessionIn) -> dict[str, Any]:
        held_on = body.held_on or _today()

        def step(file: CaseFile):  # noqa: ANN202
            event = file.hold_session(body.kind, held_on, body.duration_minutes)
            return event, timeline_entry("seance", session_id=event.session_id, session_kind=body.kind.value,
                                         held_on=held_on.isoformat(), number=event.number)

        return await change(case_id, step)

    @api.post("/cases/{case_id}/closing", summary="Close the accompaniment with its outcome",
              responses={404: {}, 409: {}})
    async def closing(case_id: uuid.UUID, body: ClosingIn) -> dict[str, Any]:
        closed_on = body.closed_on or _today()

        def step(file: CaseFile):  # noqa: ANN202
            event = file.close(body.outcome, closed_on, body.reasons)
            return event, timeline_entry("cloture", outcome=body.outcome.value, closed_on=closed_on.isoformat(),
                                         journey_days=event.journey_days)

        return await change(case_id, step)

    return api


def _today() -> date:
    return datetime.now(UTC).date()
