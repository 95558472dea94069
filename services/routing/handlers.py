"""Routing's event handlers: thin, each maps its event to a use case of the Router."""

from __future__ import annotations

from services.routing.router import Router, Rerouting
from shared.schemas import Envelope, RerouteCause, RerouteRequested


class CaseReceivedHandler:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, envelope: Envelope) -> None:
        await self.router.route_new(envelope)


class RerouteRequestedHandler:
    """Coaching asks for a handover or judges the case out of scope: a new CaseRouted answers."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, envelope: Envelope) -> None:
        request: RerouteRequested = envelope.typed()  # type: ignore[assignment]
        changes = {key: value for key, value in
                   (("procedure", request.procedure), ("court_decision_date", request.court_decision_date))
                   if value is not None}
        rerouting = Rerouting(RerouteCause(request.reason.value), request.requested_by, changes)
        await self.router.reroute(str(envelope.case_id), rerouting, cause=envelope)


class AntennaCapacityChangedHandler:
    """Free places reported by coaching; a place that frees up goes to the waitlist first."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, envelope: Envelope) -> None:
        await self.router.capacity_changed(envelope)
