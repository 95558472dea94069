"""The consumer side: one handler per subscribed event, each decoding its payload and calling one use case."""

from __future__ import annotations

import logging

from services.notifications.service import NotificationsService
from shared.schemas import (
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Envelope,
    SessionHeld,
    VolunteerApplicationDecided,
    VolunteerAssigned,
)

log = logging.getLogger("relais.notifications")


class _Handler:
    def __init__(self, service: NotificationsService) -> None:
        self.service = service

    async def __call__(self, envelope: Envelope) -> None:
        raise NotImplementedError

    @staticmethod
    def _log(envelope: Envelope) -> None:
        log.debug(
            "event received",
            extra={
                "event_type": envelope.event_type,
                "event_id": str(envelope.event_id),
                "case_id": str(envelope.case_id),
            },
        )


class CaseReceivedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        received = envelope.payload_as(CaseReceived)
        self._log(envelope)
        await self.service.case_received(envelope, received)


class CaseRoutedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        routed = envelope.payload_as(CaseRouted)
        self._log(envelope)
        await self.service.case_routed(envelope, routed)


class CommitteeApprovedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        approved = envelope.payload_as(CommitteeApproved)
        self._log(envelope)
        await self.service.committee_approved(envelope, approved)


class SessionHeldHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        session = envelope.payload_as(SessionHeld)
        self._log(envelope)
        await self.service.session_held(envelope, session)


class CaseClosedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        closed = envelope.payload_as(CaseClosed)
        self._log(envelope)
        await self.service.case_closed(envelope, closed)


class VolunteerAssignedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        assigned = envelope.payload_as(VolunteerAssigned)
        self._log(envelope)
        await self.service.volunteer_assigned(envelope, assigned)


class VolunteerApplicationDecidedHandler(_Handler):
    async def __call__(self, envelope: Envelope) -> None:
        decided = envelope.payload_as(VolunteerApplicationDecided)
        self._log(envelope)
        await self.service.volunteer_application_decided(envelope, decided)
