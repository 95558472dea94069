"""Routing's use cases, for the event handlers and the admin API: route a new case, route again, take a
capacity report in, serve the waitlist, edit the directory, and the reads behind the API.

Each routing reads what the pure rules need (located commune, antennas with free places), asks the rules,
then writes: the place held or the waitlist entry (idempotent), then the decision with its CaseRouted in
the outbox (once per causing event). A crash in between is repaired by the redelivery.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from pydantic import Field

from services.routing.directory import placed
from services.routing.domain import (
    Antenna,
    AntennaDetails,
    AntennaEntry,
    AntennaStatus,
    Capacity,
    CapacityReport,
    Rerouting,
    Reservation,
    Route,
    RoutedCase,
    RuleBook,
    decide,
    decide_again,
    reservation_key,
    route,
    routed_event,
)
from services.routing.geo import Gazetteer, Location
from services.routing.store import Decision, RoutingStores
from services.routing.travel import TravelModel
from shared.metrics import Metrics
from shared.schemas import (
    AntennaCapacityChanged,
    Association,
    CaseReceived,
    CaseRouted,
    Envelope,
    PreviousDecision,
    ReferrerKind,
    RerouteCause,
    RerouteRequested,
    RoutingStatus,
    new_envelope,
)
from shared.schemas.events import Situation

PRODUCER = "routing"
# Staff re-routings name their CaseRouted by (case, sequence): a repeated request changes nothing.
ADMIN_NAMESPACE = uuid.UUID("0d5e7c1a-93f4-4c8e-b1a6-6f2d0c9e4b17")
log = logging.getLogger("relais.routing")


class CaseNotRouted(LookupError):
    """A re-routing for a case routing has not seen (from an event: retried, then dead-lettered)."""


class NotAwaitingApesa(ValueError):
    """Staff resume after APESA a case that is not waiting for APESA."""


class RerouteRaced(RuntimeError):
    """Another re-routing of the case took the same sequence number first."""


class AntennaView(AntennaEntry):
    """An antenna of the directory with its latest capacity report and the cases holding a place there."""

    reported_capacity: CapacityReport | None = None
    free_places: int | None = None
    held_by: list[str] = Field(default_factory=list)  # case ids only


class RoutingMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.decisions = Counter(
            "relais_routing_decisions_total",
            "Routing decisions by association and status",
            ["association", "status"],
            registry=r,
        )
        self.beyond_one_hour = Counter(
            "relais_routing_beyond_one_hour_total",
            "Cases oriented to an antenna more than one hour away",
            ["association"],
            registry=r,
        )
        self.location_flagged = Counter(
            "relais_routing_location_flagged_total",
            "Cases whose commune was unknown or placed approximately",
            registry=r,
        )
        self.waitlisted = Counter(
            "relais_routing_waitlisted_total", "Cases put on a waitlist", ["association"], registry=r
        )
        self.waitlist_size = Gauge(
            "relais_routing_waitlist_size", "Cases waiting for a place, by association", ["association"], registry=r
        )
        self.reroutes = Counter("relais_routing_reroutes_total", "Cases routed again, by cause", ["reason"], registry=r)
        self.decision_seconds = Histogram(
            "relais_routing_decision_seconds",
            "Time of the pure routing decision (rules, place, antenna)",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01),
            registry=r,
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


class RoutingService:
    def __init__(
        self,
        stores: RoutingStores,
        *,
        gazetteer: Gazetteer,
        model: TravelModel,
        rules: RuleBook,
        metrics: Metrics,
        directory: list[AntennaEntry],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.stores = stores
        self.gazetteer = gazetteer
        self.model = model
        self.rules = rules
        self.metrics = RoutingMetrics(metrics)
        self.directory = directory  # the antennas seeded on the first start
        self.clock = clock

    async def start(self) -> None:
        now = self.clock()
        await self.stores.antennas.seed([entry.model_copy(update={"updated_at": now}) for entry in self.directory])
        # The waitlist gauge shows the stored sizes from the start, not only after a first change.
        for association in Association:
            size = len(await self.stores.waitlists.entries(association))
            self.metrics.waitlist_size.labels(association.value).set(size)

    # --- use cases: events ------------------------------------------------------------------------------------

    async def route_new_case(self, case_id: uuid.UUID, received: CaseReceived, cause: Envelope) -> CaseRouted | None:
        """Route a case intake received; None when this CaseReceived was routed already."""
        if await self.stores.routes.was_applied(case_id, cause.event_id):
            return None
        return await self._route(
            case_id,
            received.situation,
            cause,
            sequence=1,
            received_at=received.received_at,
            first_seen=(received.referral.kind, received.received_at),
        )

    async def reroute_requested(
        self, case_id: uuid.UUID, request: RerouteRequested, cause: Envelope
    ) -> CaseRouted | None:
        """Coaching hands the case over or judges it out of scope; None when this request was applied."""
        changes = {
            key: value
            for key, value in (("procedure", request.procedure), ("court_decision_date", request.court_decision_date))
            if value is not None
        }
        return await self._reroute(
            case_id, Rerouting(RerouteCause(request.reason.value), request.requested_by, changes), cause
        )

    async def capacity_changed(self, report: AntennaCapacityChanged, cause: Envelope) -> int:
        """Take coaching's report in; places that free up go to the waitlist first. Returns the promoted."""
        await self.stores.capacities.report(
            report.antenna_id,
            report.association,
            CapacityReport(
                coach_slots_free=report.coach_slots_free,
                sponsor_slots_free=report.sponsor_slots_free,
                as_of=report.as_of,
            ),
        )
        return await self.promote_waitlist(report.association, cause)

    async def promote_waitlist(self, association: Association, cause: Envelope | None = None) -> int:
        """Route waitlisted cases, first come first served, while an open antenna has room."""
        promoted = 0
        for case_id in await self.stores.waitlists.entries(association):
            case = await self.stores.routes.get(uuid.UUID(case_id))
            if case is None or case.status is not RoutingStatus.WAITLISTED:
                await self._waitlist_remove(case_id)
                continue
            antennas = await self._antennas(case_id)
            if not any(a.has_room for a in antennas if a.association is association and a.status is AntennaStatus.OPEN):
                break
            routed = await self._reroute(case.case_id, Rerouting(RerouteCause.PLACE_FREED), cause, case)
            if routed is not None and routed.status is RoutingStatus.ORIENTED:
                promoted += 1
        return promoted

    # --- use cases: staff -------------------------------------------------------------------------------------

    async def reroute_by_staff(self, case_id: uuid.UUID, rerouting: Rerouting) -> CaseRouted:
        case = await self.stores.routes.get(case_id)
        if case is None:
            raise CaseNotRouted(str(case_id))
        if rerouting.cause is RerouteCause.APESA_RESUMED and case.status is not RoutingStatus.APESA_FIRST:
            raise NotAwaitingApesa(str(case_id))
        routed = await self._reroute(case_id, rerouting, None, case)
        if routed is None:
            raise RerouteRaced(str(case_id))
        return routed

    async def put_antenna(self, antenna_id: str, details: AntennaDetails) -> tuple[AntennaView, bool]:
        """Create or replace an antenna (raises `directory.UnknownCommune`); an open one serves the waitlist."""
        fields = placed(details.model_dump(mode="json"), self.gazetteer)
        entry, created = await self.stores.antennas.put(
            AntennaEntry.model_validate({**fields, "id": antenna_id, "updated_at": self.clock()})
        )
        await self._after_edit(entry)
        return await self._view(entry), created

    async def patch_antenna(self, antenna_id: str, changes: Mapping[str, Any]) -> AntennaView | None:
        fields = dict(changes)
        if fields.get("insee_code"):
            fields = placed(fields, self.gazetteer)
        entry = await self.stores.antennas.patch(antenna_id, {**fields, "updated_at": self.clock()})
        if entry is None:
            return None
        await self._after_edit(entry)
        return await self._view(entry)

    # --- reads --------------------------------------------------------------------------------------------------

    async def case(self, case_id: uuid.UUID) -> RoutedCase | None:
        return await self.stores.routes.get(case_id)

    async def antennas(self, association: Association | None = None) -> list[AntennaView]:
        """The directory, or one association's part of it."""
        capacities = await self.stores.capacities.all()
        return [
            self._antenna_view(entry, capacities.get(entry.id))
            for entry in await self.stores.antennas.all()
            if association is None or entry.association is association
        ]

    async def antenna(self, antenna_id: str) -> AntennaView | None:
        entry = await self.stores.antennas.get(antenna_id)
        return None if entry is None else await self._view(entry)

    async def waitlist(self, association: Association) -> list[str]:
        return await self.stores.waitlists.entries(association)

    # --- the common path ----------------------------------------------------------------------------------------

    async def _reroute(
        self, case_id: uuid.UUID, rerouting: Rerouting, cause: Envelope | None, case: RoutedCase | None = None
    ) -> CaseRouted | None:
        """Route a case again; `cause` is the event asking for it (None: staff through the admin API)."""
        case = case or await self.stores.routes.get(case_id)
        if case is None:
            raise CaseNotRouted(str(case_id))
        if cause is not None and await self.stores.routes.was_applied(case_id, cause.event_id):
            return None
        current = case.current
        sequence = current.sequence + 1
        situation = Situation.model_validate({**case.situation.model_dump(), **rerouting.changes})
        previous = PreviousDecision(
            sequence=current.sequence,
            association=current.association,
            rule=current.rule,
            status=current.status,
            antenna_id=current.antenna_id,
            routed_at=current.routed_at,
        )
        event_id = uuid.uuid5(ADMIN_NAMESPACE, f"{case_id}/{sequence}") if cause is None else None
        apesa_done = case.apesa_done or rerouting.cause is RerouteCause.APESA_RESUMED
        routed = await self._route(
            case_id,
            situation,
            cause,
            sequence=sequence,
            received_at=current.received_at,
            previous=previous,
            rerouting=rerouting,
            apesa_done=apesa_done,
            event_id=event_id,
        )
        if routed is not None:
            self.metrics.reroutes.labels(rerouting.cause.value).inc()
        return routed

    async def _route(
        self,
        case_id: uuid.UUID,
        situation: Situation,
        cause: Envelope | None,
        *,
        sequence: int,
        received_at: datetime | None,
        previous: PreviousDecision | None = None,
        rerouting: Rerouting | None = None,
        apesa_done: bool = False,
        event_id: uuid.UUID | None = None,
        first_seen: tuple[ReferrerKind, datetime] | None = None,
    ) -> CaseRouted | None:
        now = self.clock()
        antennas = await self._antennas(str(case_id))
        started = time.perf_counter()
        location = self.gazetteer.locate(situation.insee_code, situation.postal_code, situation.commune)
        if rerouting is None:
            decision = decide(situation, now.date(), self.rules)
        else:
            decision = decide_again(situation, now.date(), rerouting.cause, rerouting.requested_by, self.rules)
        decided = route(decision, situation, location, antennas, self.model, self.rules, apesa_done)
        self.metrics.decision_seconds.observe(time.perf_counter() - started)

        # A place is held once per causing event (or per staff re-routing): a retry holds it once.
        hold_key = cause.event_id if cause is not None else event_id
        assert hold_key is not None
        position = await self._hold(str(case_id), decided, reservation_key(str(case_id), hold_key), now)
        routed = routed_event(
            decided,
            routed_at=now,
            received_at=received_at,
            sequence=sequence,
            waitlist_position=position,
            previous=previous,
            reroute_reason=rerouting.cause if rerouting else None,
        )
        envelope = new_envelope(routed, case_id=case_id, producer=PRODUCER, cause=cause, event_id=event_id)
        referral_kind, first_received_at = first_seen or (None, None)
        record = Decision(routed, situation, location, apesa_done, referral_kind, first_received_at)
        if not await self.stores.routes.record(case_id, cause or envelope, record, envelope):
            return None
        self._count(routed, location)
        log.info(
            "case routed",
            extra={
                "case_id": str(case_id),
                "sequence": sequence,
                "status": routed.status,
                "association": routed.association.value,
                "antenna_id": routed.antenna_id,
            },
        )
        return routed

    async def _hold(self, case_id: str, decided: Route, key: str, now: datetime) -> int | None:
        """Hold a place at the chosen antenna or join the waitlist; let go of anything held before."""
        antenna = decided.placement.antenna
        # Holds count only against a capacity report; before the first one there is nothing to count
        # against, and holding anyway would grow the antenna's document with every case routed there.
        if antenna is not None and antenna.free_places is not None:
            await self.stores.capacities.hold(antenna.id, Reservation(key=key, case_id=case_id, at=now))
        await self.stores.capacities.release(case_id, keep_key=key if antenna is not None else None)
        association = decided.decision.association
        if decided.status is RoutingStatus.WAITLISTED:
            position, size = await self.stores.waitlists.add(association, case_id)
            self.metrics.waitlist_size.labels(association.value).set(size)
            return position
        await self._waitlist_remove(case_id)
        return None

    async def _waitlist_remove(self, case_id: str) -> None:
        for association, size in (await self.stores.waitlists.remove(case_id)).items():
            self.metrics.waitlist_size.labels(association.value).set(size)

    async def _antennas(self, case_id: str | None = None) -> list[Antenna]:
        """Antennas placed on the map with their free places (not counting `case_id`'s own hold)."""
        capacities = await self.stores.capacities.all()
        result = []
        for entry in await self.stores.antennas.all():
            if entry.lat is None or entry.lon is None:
                continue
            capacity = capacities.get(entry.id)
            free = (
                None
                if capacity is None
                else capacity.free_places(self.rules.first_volunteer[entry.association], exclude_case=case_id)
            )
            result.append(
                Antenna(
                    entry.id, entry.association, entry.name, entry.status, entry.contact, entry.lat, entry.lon, free
                )
            )
        return result

    async def _after_edit(self, entry: AntennaEntry) -> None:
        """An antenna that opens (or reopens) takes the waitlist's first cases if it has room."""
        if entry.status is AntennaStatus.OPEN:
            await self.promote_waitlist(entry.association)

    async def _view(self, entry: AntennaEntry) -> AntennaView:
        return self._antenna_view(entry, (await self.stores.capacities.all()).get(entry.id))

    def _antenna_view(self, entry: AntennaEntry, capacity: Capacity | None) -> AntennaView:
        capacity = capacity or Capacity(antenna_id=entry.id)
        return AntennaView(
            **dict(entry),
            reported_capacity=capacity.reported,
            free_places=capacity.free_places(self.rules.first_volunteer[entry.association]),
            held_by=[r.case_id for r in capacity.reservations],
        )

    def _count(self, routed: CaseRouted, location: Location | None) -> None:
        association = routed.association.value
        self.metrics.decisions.labels(association, routed.status.value if routed.status else "").inc()
        if routed.beyond_one_hour:
            self.metrics.beyond_one_hour.labels(association).inc()
        if routed.status is RoutingStatus.WAITLISTED:
            self.metrics.waitlisted.labels(association).inc()
        if location is None or location.flagged:
            self.metrics.location_flagged.inc()
