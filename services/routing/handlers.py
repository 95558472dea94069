"""Routing's event handlers: map the event to a decision, store it with the event it causes."""

from __future__ import annotations

from datetime import UTC, datetime

from services.routing.domain import decide
from services.routing.store import RoutingStore
from shared.schemas import CaseReceived, CaseRouted, Envelope, new_envelope

PRODUCER = "routing"


class CaseReceivedHandler:
    def __init__(self, store: RoutingStore) -> None:
        self.store = store

    async def __call__(self, envelope: Envelope) -> None:
        received: CaseReceived = envelope.typed()  # type: ignore[assignment]
        now = datetime.now(UTC)
        decision = decide(received.situation, now.date())
        routed = CaseRouted(association=decision.association, rule=decision.rule,
                            reasons=list(decision.reasons), routed_at=now,
                            received_at=received.received_at)
        event = new_envelope(routed, case_id=envelope.case_id, producer=PRODUCER, cause=envelope)
        await self.store.record(envelope, routed, event)
