"""In-memory stand-in for intake's store: same semantics as MongoCaseStore (an existing id is not replaced)."""

from __future__ import annotations

import uuid

from services.intake.domain import RECEIVED, Case
from shared.schemas import CaseReceived, Envelope


class FakeCaseStore:
    def __init__(self) -> None:
        self.cases: dict[uuid.UUID, Case] = {}
        self.outbox: list[Envelope] = []  # every event stored to publish, in order

    async def add(self, received: CaseReceived, event: Envelope, fingerprint: str) -> bool:
        assert event.case_id is not None
        if event.case_id in self.cases:
            return False
        self.cases[event.case_id] = Case(
            case_id=event.case_id,
            status=RECEIVED,
            received_at=received.received_at,
            situation=received.situation,
            referral_kind=received.referral.kind,
            fingerprint=fingerprint,
        )
        self.outbox.append(event)
        return True

    async def get(self, case_id: uuid.UUID) -> Case | None:
        return self.cases.get(case_id)
