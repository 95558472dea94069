"""The accompaniment of one case: which steps may follow which, and the events each step causes.

Pure rules: the store loads a CaseFile, a method checks the transition and returns the event, the store
saves the new state and the event together. A refused transition raises TransitionRefused (HTTP 409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shared.schemas import (
    Association,
    CaseClosed,
    CommitteeApproved,
    Outcome,
    SessionHeld,
    SessionKind,
)


class Stage(StrEnum):
    AWAITING_COMMITTEE = "attente_comite"
    ACCOMPANIED = "accompagnement"
    CLOSED = "clos"


class Decision(StrEnum):
    APPROVED = "approuve"
    DECLINED = "refuse"
    DEFERRED = "ajourne"


class TransitionRefused(Exception):
    """The step is impossible in the case's current stage; the message is shown to staff (French)."""


@dataclass
class CaseFile:
    case_id: uuid.UUID
    association: Association
    stage: Stage
    opened_at: datetime
    received_at: datetime | None = None
    approved_on: date | None = None
    sessions: int = 0
    closed_on: date | None = None
    version: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> CaseFile:
        return cls(
            case_id=uuid.UUID(doc["_id"]), association=Association(doc["association"]),
            stage=Stage(doc["stage"]), opened_at=doc["opened_at"], received_at=doc.get("received_at"),
            approved_on=_date(doc.get("approved_on")), sessions=doc.get("sessions", 0),
            closed_on=_date(doc.get("closed_on")), version=doc.get("version", 0),
            timeline=doc.get("timeline", []),
        )

    def decide(self, decision: Decision, decided_on: date, reasons: list[str]) -> CommitteeApproved | CaseClosed | None:
        if self.stage is not Stage.AWAITING_COMMITTEE:
            raise TransitionRefused("Le comité d'engagement a déjà statué sur ce dossier.")
        if decision is Decision.APPROVED:
            self.stage, self.approved_on = Stage.ACCOMPANIED, decided_on
            return CommitteeApproved(association=self.association, decided_on=decided_on, reasons=reasons)
        if decision is Decision.DECLINED:
            return self._close(Outcome.DECLINED, decided_on, reasons)
        return None

    def hold_session(self, kind: SessionKind, held_on: date, duration_minutes: int | None) -> SessionHeld:
        if self.stage is Stage.AWAITING_COMMITTEE:
            raise TransitionRefused("Aucune séance avant l'accord du comité d'engagement.")
        if self.stage is Stage.CLOSED:
            raise TransitionRefused("Ce dossier est clos : aucune nouvelle séance.")
        if self.approved_on and held_on < self.approved_on:
            raise TransitionRefused("Une séance ne peut pas précéder l'accord du comité.")
        self.sessions += 1
        return SessionHeld(association=self.association, session_id=str(uuid.uuid4()), kind=kind,
                           held_on=held_on, duration_minutes=duration_minutes, number=self.sessions)

    def close(self, outcome: Outcome, closed_on: date, reasons: list[str]) -> CaseClosed:
        if self.stage is Stage.CLOSED:
            raise TransitionRefused("Ce dossier est déjà clos.")
        if self.stage is Stage.AWAITING_COMMITTEE and outcome is not Outcome.WITHDREW:
            raise TransitionRefused("Avant le comité, un dossier ne peut être clos que par un abandon.")
        if outcome is Outcome.DECLINED:
            raise TransitionRefused("Un refus se prononce par la décision du comité d'engagement.")
        return self._close(outcome, closed_on, reasons)

    def _close(self, outcome: Outcome, closed_on: date, reasons: list[str]) -> CaseClosed:
        self.stage, self.closed_on = Stage.CLOSED, closed_on
        start = (self.received_at or self.opened_at).date()
        return CaseClosed(association=self.association, outcome=outcome, closed_on=closed_on,
                          journey_days=max(0, (closed_on - start).days), reasons=reasons)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(value)
