"""In-memory stand-in for intake's store: same semantics as MongoCaseStore (an existing id is not replaced)."""

from __future__ import annotations

import uuid

from services.intake.domain import RECEIVED, Case
from shared.schemas import CaseReceived, Envelope
from shared.schemas.events import PersonalDetails


class FakeCaseStore:
    def __init__(self) -> None:
        self.cases: dict[uuid.UUID, Case] = {}
        self.personal: dict[uuid.UUID, PersonalDetails] = {}  # as given (the event may carry fewer)
        self.outbox: list[Envelope] = []  # every event stored to publish, in order

    async def add(
        self, received: CaseReceived, event: Envelope, fingerprint: str, private: PersonalDetails | None = None
    ) -> bool:
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
            partner=received.referral.partner,
        )
        self.personal[event.case_id] = private or received.personal
        self.outbox.append(event)
        return True

    async def get(self, case_id: uuid.UUID) -> Case | None:
        return self.cases.get(case_id)


class FakePartnerCredentials:
    def __init__(self) -> None:
        self.by_hash: dict[str, str] = {}

    async def partner_of(self, token_hash: str) -> str | None:
        return self.by_hash.get(token_hash)

    async def add(self, partner: str, token_hash: str) -> None:
        self.by_hash.setdefault(token_hash, partner)

    async def revoke(self, partner: str) -> int:
        gone = [h for h, p in self.by_hash.items() if p == partner]
        for token_hash in gone:
            del self.by_hash[token_hash]
        return len(gone)

    async def partners(self) -> list[str]:
        return sorted(set(self.by_hash.values()))
