"""Routing's use cases, shared by the event handlers and the admin API: route, route again, take capacity in.

Each use case reads what the pure rules need (located commune, antennas with free places), asks the
rules, then writes: the place held or the waitlist entry (idempotent), then the decision with its
CaseRouted in the outbox (once per causing event). A crash in between is repaired by the redelivery.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.routing.domain import (
    Antenna,
    AntennaStatus,
    RuleBook,
    decide,
    decide_again,
    free_places,
    route,
    routed_event,
)
from services.routing.geo import Gazetteer, Location
from services.routing.store import RoutingStore
from services.routing.travel import TravelModel
from shared.metrics import Metrics
from shared.schemas import (
    AntennaCapacityChanged,
    Association,
    CaseRouted,
    Envelope,
    PreviousDecision,
    RerouteCause,
    RoutingStatus,
    new_envelope,
)
from shared.schemas.events import Situation

PRODUCER = "routing"
# Admin re-routings name their CaseRouted by (case, sequence): a repeated request changes nothing.
ADMIN_NAMESPACE = uuid.UUID("0d5e7c1a-93f4-4c8e-b1a6-6f2d0c9e4b17")
log = logging.getLogger("relais.routing")


class CaseNotRouted(LookupError):
    """A re-routing for a case routing has not seen yet: retried, then dead-lettered."""


class RoutingMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.decisions = Counter("relais_routing_decisions_total", "Routing decisions by association and status",
                                 ["association", "status"], registry=r)
        self.beyond_one_hour = Counter("relais_routing_beyond_one_hour_total",
                                       "Cases oriented to an antenna more than one hour away", ["association"],
                                       registry=r)
        self.location_flagged = Counter("relais_routing_location_flagged_total",
                                        "Cases whose commune was unknown or placed approximately", registry=r)
        self.waitlisted = Counter("relais_routing_waitlisted_total", "Cases put on a waitlist",
                                  ["association"], registry=r)
        self.waitlist_size = Gauge("relais_routing_waitlist_size", "Cases waiting for a place, by association",
                                   ["association"], registry=r)
        self.reroutes = Counter("relais_routing_reroutes_total", "Cases routed again, by cause", ["reason"],
                                registry=r)
        self.decision_seconds = Histogram(
            "relais_routing_decision_seconds", "Time of the pure routing decision (rules, place, antenna)",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01), registry=r)


@dataclass
class Rerouting:
    cause: RerouteCause
    requested_by: Association | None = None
    changes: dict[str, Any] | None = None  # situation fields that changed (procedure, commune, ...)


class Router:
    def __init__(self, store: RoutingStore, gazetteer: Gazetteer, model: TravelModel, rules: RuleBook,
                 metrics: Metrics) -> None:
        self.store = store
        self.gazetteer = gazetteer
        self.model = model
        self.rules = rules
        self.metrics = RoutingMetrics(metrics)

    # --- reading what the rules need ----------------------------------------------------------------------

    async def antennas(self, case_id: str | None = None) -> list[Antenna]:
        """Antennas placed on the map with their free places (not counting `case_id`'s own hold)."""
        capacities = await self.store.list_capacities()
        result = []
        for doc in await self.store.list_antennas():
            if doc.get("lat") is None or doc.get("association") not in Association.__members__.values():
                continue
            association = Association(doc["association"])
            capacity = capacities.get(doc["_id"], {})
            free = free_places(capacity.get("reported"), capacity.get("reservations", []),
                               self.rules.first_volunteer[association], exclude_case=case_id)
            result.append(Antenna(doc["_id"], association, doc["name"], AntennaStatus(doc["status"]),
                                  doc.get("contact", ""), doc["lat"], doc["lon"], free))
        return result

    def locate(self, situation: Situation) -> Location | None:
        return self.gazetteer.locate(situation.insee_code, situation.postal_code, situation.commune)

    # --- use cases ----------------------------------------------------------------------------------------

    async def route_new(self, envelope: Envelope) -> bool:
        case_id = str(envelope.case_id)
        if await self.store.processed(case_id, envelope.event_id):
            return False
        received = envelope.typed()
        situation: Situation = received.situation  # type: ignore[attr-defined]
        return await self._route(
            case_id, situation, envelope, sequence=1, received_at=received.received_at,  # type: ignore[attr-defined]
            on_insert={"referral_kind": received.referral.kind.value,  # type: ignore[attr-defined]
                       "received_at": received.received_at})  # type: ignore[attr-defined]

    async def reroute(self, case_id: str, rerouting: Rerouting, cause: Envelope | None = None) -> CaseRouted | None:
        """Route a case again; `cause` is the event asking for it (None: staff through the admin API)."""
        doc = await self.store.get(case_id)
        if doc is None:
            raise CaseNotRouted(case_id)
        if cause is not None and await self.store.processed(case_id, cause.event_id):
            return None
        current = doc["current"]
        sequence = current.get("sequence", 1) + 1
        situation = Situation.model_validate({**doc["situation"], **(rerouting.changes or {})})
        previous = PreviousDecision(sequence=current.get("sequence", 1), association=current["association"],
                                    rule=current["rule"], status=current.get("status"),
                                    antenna_id=current.get("antenna_id"), routed_at=current.get("routed_at"))
        event_id = uuid.uuid5(ADMIN_NAMESPACE, f"{case_id}/{sequence}") if cause is None else None
        apesa_done = bool(doc.get("apesa_done")) or rerouting.cause is RerouteCause.APESA_RESUMED
        routed = await self._route(
            case_id, situation, cause, sequence=sequence, received_at=current.get("received_at"),
            previous=previous, rerouting=rerouting, apesa_done=apesa_done, event_id=event_id)
        self.metrics.reroutes.labels(rerouting.cause.value).inc()
        return routed if isinstance(routed, CaseRouted) else None

    async def capacity_changed(self, envelope: Envelope) -> None:
        report: AntennaCapacityChanged = envelope.typed()  # type: ignore[assignment]
        await self.store.update_capacity(report, envelope.event_id)
        await self.promote_waitlist(report.association, envelope)

    async def promote_waitlist(self, association: Association, cause: Envelope | None = None) -> int:
        """Route waitlisted cases, first come first served, while an open antenna has room."""
        promoted = 0
        for case_id in await self.store.waitlist(association.value):
            doc = await self.store.get(case_id)
            if doc is None or doc.get("status") != RoutingStatus.WAITLISTED.value:
                await self._waitlist_remove(case_id)
                continue
            antennas = await self.antennas(case_id)
            if not any(a.has_room for a in antennas
                       if a.association is association and a.status is AntennaStatus.OPEN):
                break
            routed = await self.reroute(case_id, Rerouting(RerouteCause.PLACE_FREED), cause)
            if routed is not None and routed.status is RoutingStatus.ORIENTED:
                promoted += 1
        return promoted

    # --- the common path ----------------------------------------------------------------------------------

    async def _route(self, case_id: str, situation: Situation, cause: Envelope | None, *, sequence: int,
                     received_at: Any, previous: PreviousDecision | None = None,
                     rerouting: Rerouting | None = None, apesa_done: bool = False,
                     event_id: uuid.UUID | None = None, on_insert: dict[str, Any] | None = None) -> CaseRouted | bool:
        now = datetime.now(UTC)
        antennas = await self.antennas(case_id)
        started = time.perf_counter()
        location = self.locate(situation)
        if rerouting is None:
            decision = decide(situation, now.date(), self.rules)
        else:
            decision = decide_again(situation, now.date(), rerouting.cause, rerouting.requested_by, self.rules)
        decided = route(decision, situation, location, antennas, self.model, self.rules, apesa_done)
        self.metrics.decision_seconds.observe(time.perf_counter() - started)

        # A place is held once per causing event (or per admin re-routing): a retry holds it once.
        hold_key = cause.event_id if cause is not None else event_id
        position = await self._hold(case_id, decision.association, decided, hold_key, now)
        routed = routed_event(decided, routed_at=now, received_at=received_at, sequence=sequence,
                              waitlist_position=position, previous=previous,
                              reroute_reason=rerouting.cause if rerouting else None, rules=self.rules)
        envelope = new_envelope(routed, case_id=uuid.UUID(case_id), producer=PRODUCER, cause=cause,
                                event_id=event_id)
        extra = {"location": _location_doc(location), "apesa_done": apesa_done}
        applied = await self.store.record(case_id, cause or envelope, routed, envelope,
                                          situation.model_dump(mode="json"), extra=extra, on_insert=on_insert)
        if applied:
            self._count(routed, location)
            log.info("case routed", extra={"case_id": case_id, "sequence": sequence, "status": routed.status,
                                           "association": routed.association.value,
                                           "antenna_id": routed.antenna_id})
            return routed
        return False

    async def _hold(self, case_id: str, association: Association, decided: Any, hold_key: Any,
                    now: datetime) -> int | None:
        """Hold a place at the chosen antenna or join the waitlist; let go of anything held before."""
        antenna = decided.placement.antenna
        if antenna is not None:
            await self.store.reserve(antenna.id, case_id, hold_key, now)
        await self.store.release(case_id, keep_event_id=hold_key if antenna is not None else None)
        if decided.status is RoutingStatus.WAITLISTED:
            position, size = await self.store.waitlist_add(association.value, case_id)
            self.metrics.waitlist_size.labels(association.value).set(size)
            return position
        await self._waitlist_remove(case_id)
        return None

    async def _waitlist_remove(self, case_id: str) -> None:
        for association, size in (await self.store.waitlist_remove(case_id)).items():
            self.metrics.waitlist_size.labels(association).set(size)

    def _count(self, routed: CaseRouted, location: Location | None) -> None:
        association = routed.association.value
        self.metrics.decisions.labels(association, routed.status.value if routed.status else "").inc()
        if routed.beyond_one_hour:
            self.metrics.beyond_one_hour.labels(association).inc()
        if routed.status is RoutingStatus.WAITLISTED:
            self.metrics.waitlisted.labels(association).inc()
        if location is None or location.flagged:
            self.metrics.location_flagged.inc()


def _location_doc(location: Location | None) -> dict[str, Any] | None:
    if location is None:
        return None
    return {"label": location.label, "precision": location.precision.value, "code": location.code,
            "dept": location.dept, "note": location.note, "lat": location.lat, "lon": location.lon}
