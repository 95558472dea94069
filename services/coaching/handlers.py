"""Coaching's event handlers: routing's decisions open, follow or skip case files (per association)."""

from __future__ import annotations

from services.coaching.accompaniment import Accompaniment
from shared.schemas import CaseRouted, Envelope


class CaseRoutedHandler:
    def __init__(self, service: Accompaniment) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        routed: CaseRouted = envelope.typed()  # type: ignore[assignment]
        await self.service.case_routed(envelope, routed)
