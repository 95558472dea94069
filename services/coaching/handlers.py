"""Coaching's event handlers: a routed case opens (or moves) its case file."""

from __future__ import annotations

from services.coaching.store import CaseFileStore
from shared.schemas import CaseRouted, Envelope


class CaseRoutedHandler:
    def __init__(self, store: CaseFileStore) -> None:
        self.store = store

    async def __call__(self, envelope: Envelope) -> None:
        routed: CaseRouted = envelope.typed()  # type: ignore[assignment]
        await self.store.open(envelope, routed)
