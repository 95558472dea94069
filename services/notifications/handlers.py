"""One handler for the five events: plan who must be told, record it once."""

from __future__ import annotations

from services.notifications.domain import plan
from services.notifications.store import NotificationStore
from shared.schemas import CaseReceived, Envelope

SUBSCRIBED = ("CaseReceived", "CaseRouted", "CommitteeApproved", "SessionHeld", "CaseClosed")


class FlowEventHandler:
    def __init__(self, store: NotificationStore) -> None:
        self.store = store

    async def __call__(self, envelope: Envelope) -> None:
        if envelope.event_type == "CaseReceived":
            received: CaseReceived = envelope.typed()  # type: ignore[assignment]
            await self.store.remember_contact(envelope, received)
        await self.store.record(envelope, plan(envelope))
