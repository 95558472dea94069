"""Routing's event handlers: each decodes its event, logs the ids and calls one use case of RoutingService."""

from __future__ import annotations

import logging
import uuid

from services.routing.service import RoutingService
from shared.schemas import (
    AntennaCapacityChanged,
    CaseReceived,
    Envelope,
    RerouteRequested,
)

log = logging.getLogger("relais.routing")


def _case_id(envelope: Envelope) -> uuid.UUID:
    assert envelope.case_id is not None  # decode() refuses a case event without its case id
    return envelope.case_id


class CaseReceivedHandler:
    def __init__(self, service: RoutingService) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        log.debug("case received", extra={"case_id": str(envelope.case_id), "event_id": str(envelope.event_id)})
        await self.service.route_new_case(_case_id(envelope), envelope.payload_as(CaseReceived), envelope)


class RerouteRequestedHandler:
    """Coaching asks for a handover or judges the case out of scope: a new CaseRouted answers."""

    def __init__(self, service: RoutingService) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        log.debug("reroute requested", extra={"case_id": str(envelope.case_id), "event_id": str(envelope.event_id)})
        await self.service.reroute_requested(_case_id(envelope), envelope.payload_as(RerouteRequested), envelope)


class AntennaCapacityChangedHandler:
    """Free places reported by coaching; a place that frees up goes to the waitlist first."""

    def __init__(self, service: RoutingService) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        log.debug(
            "antenna capacity changed", extra={"antenna_id": envelope.antenna_id, "event_id": str(envelope.event_id)}
        )
        await self.service.capacity_changed(envelope.payload_as(AntennaCapacityChanged), envelope)
