"""Intake's use cases: take a request for help in (once per idempotency key), tell what became of a case."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.intake.domain import (
    RECEIVED,
    Case,
    CaseRequest,
    case_id_for,
    case_received,
)
from services.intake.store import CaseStore
from shared.schemas import new_envelope

PRODUCER = "intake"


class IdempotencyKeyReused(ValueError):
    """The key already named a different request."""


class CaseVanished(RuntimeError):
    """The case of a resubmitted key was deleted between the insert and the read: the client retries."""


@dataclass(frozen=True)
class Submission:
    case: Case
    created: bool  # False: the same request under the same key, answered with the case it created


def utc_now() -> datetime:
    return datetime.now(UTC)


class IntakeService:
    def __init__(self, store: CaseStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock

    async def submit(self, request: CaseRequest, idempotency_key: str | None = None) -> Submission:
        """Store the case with its CaseReceived; a resubmission under the same key changes nothing."""
        case_id = case_id_for(idempotency_key)
        fingerprint = request.fingerprint
        received = case_received(request, self.clock())
        event = new_envelope(received, case_id=case_id, producer=PRODUCER)
        if await self.store.add(received, event, fingerprint, request.personal):
            return Submission(
                Case(
                    case_id=case_id,
                    status=RECEIVED,
                    received_at=received.received_at,
                    situation=request.situation,
                    referral_kind=request.referral.kind,
                    fingerprint=fingerprint,
                    partner=request.referral.partner,
                ),
                created=True,
            )
        existing = await self.store.get(case_id)
        if existing is None:
            raise CaseVanished(str(case_id))
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(idempotency_key)
        return Submission(existing, created=False)

    async def case(self, case_id: uuid.UUID) -> Case | None:
        return await self.store.get(case_id)
