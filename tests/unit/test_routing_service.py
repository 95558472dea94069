"""Routing's use cases on in-memory stores, wired by the same `build_service` as production: what is
decided, stored and emitted, redelivery, re-routing, capacity and the waitlist, refusals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.routing.app import build_service
from services.routing.domain import AntennaStatus, Rerouting, RoutedCase
from services.routing.service import (
    PRODUCER,
    AntennaView,
    CaseNotRouted,
    NotAwaitingApesa,
    RoutingService,
)
from services.routing.settings import RoutingSettings
from shared.schemas import (
    AntennaCapacityChanged,
    Association,
    CaseReceived,
    CaseRouted,
    Envelope,
    RerouteCause,
    RerouteRequested,
    RoutingStatus,
    SectorFamily,
    decode,
    new_envelope,
)
from tests.conftest import case_id_of
from tests.fakes.routing import FakeRouteStore, fake_stores

SS, REBONDS = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(clock: Clock) -> RoutingService:
    routing = build_service(RoutingSettings(), stores=fake_stores(), clock=clock)
    await routing.start()  # seeds the default directory, as on a first start
    return routing


def routes_of(service: RoutingService) -> FakeRouteStore:
    assert isinstance(service.stores.routes, FakeRouteStore)
    return service.stores.routes


def received(
    procedure: str = "liquidation_judiciaire",
    postal_code: str = "69003",
    commune: str | None = "Lyon",
    **situation: Any,
) -> Envelope:
    payload = CaseReceived(
        situation={"procedure": procedure, "postal_code": postal_code, "commune": commune, **situation},
        referral={"kind": "mandataire", "organisation": "Étude Dupont"},
        personal={"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.fr"},
        received_at=T0 - timedelta(hours=1),
    )
    return new_envelope(payload, case_id=uuid.uuid4(), producer="intake")


async def route(service: RoutingService, envelope: Envelope) -> CaseRouted | None:
    return await service.route_new_case(case_id_of(envelope), envelope.payload_as(CaseReceived), envelope)


async def decided(service: RoutingService, envelope: Envelope) -> CaseRouted:
    """The decision on a case received for the first time (a redelivery decides nothing)."""
    routed = await route(service, envelope)
    assert routed is not None
    return routed


async def stored(service: RoutingService, case_id: uuid.UUID) -> RoutedCase:
    case = await service.case(case_id)
    assert case is not None
    return case


async def antenna(service: RoutingService, antenna_id: str) -> AntennaView:
    view = await service.antenna(antenna_id)
    assert view is not None
    return view


def capacity(
    antenna_id: str, coach: int, as_of: datetime, sponsor: int = 5, association: Association = REBONDS
) -> Envelope:
    payload = AntennaCapacityChanged(
        association=association, antenna_id=antenna_id, coach_slots_free=coach, sponsor_slots_free=sponsor, as_of=as_of
    )
    return new_envelope(payload, antenna_id=antenna_id, producer="coaching")


async def report(service: RoutingService, envelope: Envelope) -> int:
    return await service.capacity_changed(envelope.payload_as(AntennaCapacityChanged), envelope)


def emitted(service: RoutingService, case_id: uuid.UUID | None) -> list[CaseRouted]:
    return [e.payload_as(CaseRouted) for e in routes_of(service).outbox if e.case_id == case_id]


async def test_a_new_case_is_routed_with_its_reasons_sector_and_antenna(service: RoutingService) -> None:
    cause = received(naf_code="47.11B", sector="commerce", sector_family="commerce")
    routed = await route(service, cause)
    assert routed is not None
    assert (routed.association, routed.status, routed.antenna_id) == (
        REBONDS,
        RoutingStatus.ORIENTED,
        "60000_rebonds-lyon",
    )
    assert routed.reasons[0] == "Liquidation judiciaire → 60 000 rebonds"
    assert routed.reasons[-1].startswith("Antenne 60 000 rebonds Lyon : environ ")
    assert (routed.sector, routed.sector_family) == ("commerce", SectorFamily.COMMERCE)
    assert (routed.sequence, routed.routed_at, routed.received_at) == (1, T0, T0 - timedelta(hours=1))

    [envelope] = routes_of(service).outbox
    assert envelope.producer == PRODUCER and envelope.case_id == cause.case_id
    assert envelope.causation_id == cause.event_id and envelope.correlation_id == cause.correlation_id
    assert envelope.payload_as(CaseRouted) == routed
    assert decode(envelope.encode(), key=envelope.key, expected_type="CaseRouted") == envelope
    assert "Martin" not in envelope.encode().decode()

    case = await stored(service, case_id_of(cause))
    assert case.referral_kind is not None and case.location is not None
    assert case.current == routed and case.history == [routed] and case.referral_kind.value == "mandataire"
    assert case.location.code == "69383" and case.situation.naf_code == "47.11B"


async def test_the_same_case_received_twice_is_decided_and_emitted_once(service: RoutingService) -> None:
    cause = received()
    first = await route(service, cause)
    assert await route(service, cause) is None
    assert emitted(service, cause.case_id) == [first]
    assert len((await stored(service, case_id_of(cause))).history) == 1


async def test_a_crash_after_holding_a_place_is_repaired_by_the_redelivery(
    service: RoutingService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await report(service, capacity("60000_rebonds-lyon", coach=3, as_of=T0))
    clock.tick()
    cause = received()
    record = routes_of(service).record
    crashes = iter([True])

    async def crash_once(*args: Any) -> bool:
        if next(crashes, False):
            raise ConnectionError("store went away after the place was held")
        return await record(*args)

    monkeypatch.setattr(routes_of(service), "record", crash_once)
    with pytest.raises(ConnectionError):
        await route(service, cause)
    routed = await route(service, cause)
    assert routed is not None and routed.antenna_id == "60000_rebonds-lyon"
    lyon = await antenna(service, "60000_rebonds-lyon")
    assert lyon.held_by == [str(cause.case_id)] and lyon.free_places == 2
    assert len(emitted(service, cause.case_id)) == 1


async def test_a_handover_routes_again_with_the_previous_decision(service: RoutingService, clock: Clock) -> None:
    cause = received("redressement_judiciaire", sector="BTP")
    first = await decided(service, cause)
    assert (first.association, first.handover_watch) == (SS, True)
    clock.tick(60)
    request = new_envelope(
        RerouteRequested(
            requested_by=SS,
            reason="transmission",
            procedure="liquidation_judiciaire",
            court_decision_date=date(2026, 3, 20),
        ),
        case_id=cause.case_id,
        producer="coaching",
    )
    second = await service.reroute_requested(case_id_of(cause), request.payload_as(RerouteRequested), request)
    assert second is not None and second.previous is not None
    assert (second.sequence, second.association, second.reroute_reason) == (2, REBONDS, RerouteCause.HANDOVER)
    assert second.previous.model_dump() == {
        "sequence": 1,
        "association": SS,
        "rule": "procedure:redressement_judiciaire",
        "status": RoutingStatus.ORIENTED,
        "antenna_id": "second_souffle-lyon",
        "routed_at": T0,
    }
    assert second.reasons[0] == "Transmission demandée par Second Souffle."
    assert second.sector == "BTP" and second.received_at == first.received_at

    assert await service.reroute_requested(case_id_of(cause), request.payload_as(RerouteRequested), request) is None
    assert emitted(service, cause.case_id) == [first, second]
    case = await stored(service, case_id_of(cause))
    assert [d.sequence for d in case.history] == [1, 2] and case.situation.procedure.value == "liquidation_judiciaire"
    [envelope] = [e for e in routes_of(service).outbox if e.payload_as(CaseRouted) == second]
    assert envelope.causation_id == request.event_id


async def test_a_reroute_of_an_unknown_case_is_refused(service: RoutingService) -> None:
    case_id = uuid.uuid4()
    request = new_envelope(RerouteRequested(requested_by=SS, reason="hors_champ"), case_id=case_id, producer="coaching")
    with pytest.raises(CaseNotRouted):
        await service.reroute_requested(case_id, request.payload_as(RerouteRequested), request)
    with pytest.raises(CaseNotRouted):
        await service.reroute_by_staff(case_id, Rerouting(RerouteCause.APESA_RESUMED))
    assert routes_of(service).outbox == []


async def test_a_capacity_report_promotes_the_waitlist_first_come_first_served(
    service: RoutingService, clock: Clock
) -> None:
    ids = [a.id for a in await service.antennas() if a.association is REBONDS]
    for antenna_id in ids:
        await report(service, capacity(antenna_id, coach=0, as_of=T0))
    clock.tick()
    first, second = received(), received(postal_code="38000", commune="Grenoble")
    one, two = await decided(service, first), await decided(service, second)
    assert one.status is two.status is RoutingStatus.WAITLISTED and one.antenna_id is None
    assert (one.waitlist_position, two.waitlist_position) == (1, 2)
    assert one.reasons[-1] == "Liste d'attente de 60 000 rebonds : position 1."
    assert await service.waitlist(REBONDS) == [str(first.case_id), str(second.case_id)]

    # An older report changes nothing and promotes no one.
    assert await report(service, capacity("60000_rebonds-grenoble", coach=4, as_of=T0 - timedelta(days=1))) == 0
    clock.tick()
    freed = capacity("60000_rebonds-grenoble", coach=1, as_of=clock.now)
    clock.tick()
    assert await report(service, freed) == 1
    promoted = (await stored(service, case_id_of(first))).current
    assert (promoted.sequence, promoted.status, promoted.reroute_reason) == (
        2,
        RoutingStatus.ORIENTED,
        RerouteCause.PLACE_FREED,
    )
    assert promoted.antenna_id == "60000_rebonds-grenoble"
    assert promoted.previous is not None and promoted.previous.status is RoutingStatus.WAITLISTED
    assert (await stored(service, case_id_of(second))).status is RoutingStatus.WAITLISTED
    assert await service.waitlist(REBONDS) == [str(second.case_id)]
    grenoble = await antenna(service, "60000_rebonds-grenoble")
    assert (grenoble.free_places, grenoble.held_by) == (0, [str(first.case_id)])

    # The same report delivered again promotes no one twice.
    assert await report(service, freed) == 0
    assert len(emitted(service, first.case_id)) == 2 and len(emitted(service, second.case_id)) == 1


async def test_an_antenna_that_opens_takes_the_waitlist(service: RoutingService, clock: Clock) -> None:
    for antenna in await service.antennas():
        if antenna.association is REBONDS and antenna.status is AntennaStatus.OPEN:
            await report(service, capacity(antenna.id, coach=0, as_of=T0))
    clock.tick()
    bresse = received(postal_code="01000", commune="Bourg-en-Bresse")
    assert (await decided(service, bresse)).status is RoutingStatus.WAITLISTED
    opened = await service.patch_antenna("60000_rebonds-bourg-en-bresse", {"status": "ouverte"})
    assert opened is not None and opened.status is AntennaStatus.OPEN and opened.updated_at == clock.now
    current = (await stored(service, case_id_of(bresse))).current
    assert (current.status, current.antenna_id) == (RoutingStatus.ORIENTED, "60000_rebonds-bourg-en-bresse")
    assert await service.waitlist(REBONDS) == []


async def test_staff_resume_a_case_after_apesa_once(service: RoutingService) -> None:
    cause = received(acute_distress=True, apesa_consent=True)
    first = await decided(service, cause)
    assert first.status is RoutingStatus.APESA_FIRST and first.antenna_id is None
    resumed = await service.reroute_by_staff(case_id_of(cause), Rerouting(RerouteCause.APESA_RESUMED))
    assert (resumed.status, resumed.sequence) == (RoutingStatus.ORIENTED, 2)
    assert resumed.reroute_reason is RerouteCause.APESA_RESUMED
    assert first is not None
    assert not any("APESA" in reason or "Détresse" in reason for reason in [*first.reasons, *resumed.reasons])
    with pytest.raises(NotAwaitingApesa):
        await service.reroute_by_staff(case_id_of(cause), Rerouting(RerouteCause.APESA_RESUMED))
    assert len(emitted(service, cause.case_id)) == 2


async def test_the_directory_is_seeded_once(service: RoutingService) -> None:
    assert len(await service.antennas()) == 9
    await service.patch_antenna("60000_rebonds-grenoble", {"status": "fermee"})
    await service.start()  # a second start keeps the edit
    assert (await antenna(service, "60000_rebonds-grenoble")).status is AntennaStatus.CLOSED
