"""In-memory stand-ins for routing's stores, with the Mongo stores' semantics: a decision is recorded once
per causing event, a place once per reservation key, an older capacity report changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from services.routing.domain import (
    AntennaEntry,
    Capacity,
    CapacityReport,
    Reservation,
    RoutedCase,
)
from services.routing.store import Decision, RoutingStores
from shared.schemas import Association, Envelope


class FakeRouteStore:
    def __init__(self) -> None:
        self.cases: dict[uuid.UUID, RoutedCase] = {}
        self.applied: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.outbox: list[Envelope] = []  # every event stored to publish, in order

    async def was_applied(self, case_id: uuid.UUID, event_id: uuid.UUID) -> bool:
        return event_id in self.applied.get(case_id, set())

    async def record(self, case_id: uuid.UUID, cause: Envelope, decision: Decision, event: Envelope) -> bool:
        if await self.was_applied(case_id, cause.event_id):
            return False
        before = self.cases.get(case_id)
        routed = decision.routed
        self.cases[case_id] = RoutedCase(
            case_id=case_id,
            association=routed.association,
            status=routed.status,
            situation=decision.situation,
            current=routed,
            history=[*(before.history if before else ()), routed],
            location=decision.location,
            apesa_done=decision.apesa_done,
            referral_kind=before.referral_kind if before else decision.referral_kind,
            received_at=before.received_at if before else decision.received_at,
        )
        self.applied.setdefault(case_id, set()).add(cause.event_id)
        self.outbox.append(event)
        return True

    async def get(self, case_id: uuid.UUID) -> RoutedCase | None:
        return self.cases.get(case_id)


class FakeAntennaStore:
    def __init__(self) -> None:
        self.antennas: dict[str, AntennaEntry] = {}
        self.seeded = False

    async def seed(self, entries: list[AntennaEntry]) -> bool:
        if self.seeded:
            return False
        for entry in entries:
            self.antennas.setdefault(entry.id, entry)
        self.seeded = True
        return True

    async def all(self) -> list[AntennaEntry]:
        return [self.antennas[key] for key in sorted(self.antennas)]

    async def get(self, antenna_id: str) -> AntennaEntry | None:
        return self.antennas.get(antenna_id)

    async def put(self, entry: AntennaEntry) -> tuple[AntennaEntry, bool]:
        created = entry.id not in self.antennas
        self.antennas[entry.id] = entry
        return entry, created

    async def patch(self, antenna_id: str, changes: Mapping[str, Any]) -> AntennaEntry | None:
        if antenna_id not in self.antennas:
            return None
        entry = AntennaEntry.model_validate({**self.antennas[antenna_id].model_dump(), **changes})
        self.antennas[antenna_id] = entry
        return entry


class FakeCapacityStore:
    def __init__(self) -> None:
        self.capacities: dict[str, Capacity] = {}

    async def all(self) -> dict[str, Capacity]:
        return dict(self.capacities)

    async def report(self, antenna_id: str, association: Association, report: CapacityReport) -> bool:
        current = self.capacities.get(antenna_id, Capacity(antenna_id=antenna_id))
        if not current.accepts(report):
            return False
        counted = set(current.counted_in(report))
        self.capacities[antenna_id] = Capacity(
            antenna_id=antenna_id,
            reported=report,
            reservations=tuple(r for r in current.reservations if r not in counted),
        )
        return True

    async def hold(self, antenna_id: str, reservation: Reservation) -> bool:
        current = self.capacities.get(antenna_id, Capacity(antenna_id=antenna_id))
        if any(r.key == reservation.key for r in current.reservations):
            return False
        self.capacities[antenna_id] = current.model_copy(update={"reservations": (*current.reservations, reservation)})
        return True

    async def release(self, case_id: str, keep_key: str | None = None) -> None:
        for antenna_id, capacity in self.capacities.items():
            kept = tuple(r for r in capacity.reservations if r.case_id != case_id or r.key == keep_key)
            self.capacities[antenna_id] = capacity.model_copy(update={"reservations": kept})


class FakeWaitlistStore:
    def __init__(self) -> None:
        self.lists: dict[Association, list[str]] = {}

    async def entries(self, association: Association) -> list[str]:
        return list(self.lists.get(association, []))

    async def add(self, association: Association, case_id: str) -> tuple[int, int]:
        entries = self.lists.setdefault(association, [])
        if case_id not in entries:
            entries.append(case_id)
        return entries.index(case_id) + 1, len(entries)

    async def remove(self, case_id: str) -> dict[Association, int]:
        lengths = {}
        for association, entries in self.lists.items():
            if case_id in entries:
                entries.remove(case_id)
                lengths[association] = len(entries)
        return lengths


def fake_stores() -> RoutingStores:
    return RoutingStores(FakeRouteStore(), FakeAntennaStore(), FakeCapacityStore(), FakeWaitlistStore())
