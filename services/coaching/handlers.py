"""Coaching's event handlers: routing's decisions open, follow or skip case files (per association)."""

from __future__ import annotations

import logging

from services.coaching.service import CoachingService
from shared.schemas import CaseRouted, Envelope

log = logging.getLogger("relais.coaching")


class CaseRoutedHandler:
    def __init__(self, service: CoachingService) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        assert envelope.case_id is not None  # CaseRouted is about a case: decoding checked its key
        routed = envelope.payload_as(CaseRouted)
        log.debug(
            "case routed",
            extra={"case_id": str(envelope.case_id), "event_id": str(envelope.event_id), "sequence": routed.sequence},
        )
        await self.service.case_routed(envelope.case_id, routed, envelope.correlation_id)
