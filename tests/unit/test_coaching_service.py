"""Coaching's use cases on in-memory stores, wired by the production `build_service` / `create_app`: the state
stored and the envelopes emitted by each, redelivery, lost races and refusals. No Kafka, no FerretDB."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from services.coaching.app import build_service, create_app
from services.coaching.auth import hash_token
from services.coaching.domain.case_file import Decision, Stage, TransitionRefused
from services.coaching.domain.volunteers import Volunteer
from services.coaching.handlers import CaseRoutedHandler
from services.coaching.service import CoachingService, SessionReport
from services.coaching.settings import CoachingSettings
from services.coaching.store import CoachingStores
from shared.schemas import (
    Association,
    CaseClosed,
    CaseRouted,
    CommitteeApproved,
    Envelope,
    Outcome,
    RoutingStatus,
    SectorFamily,
    SessionHeld,
    SessionKind,
    VolunteerAssigned,
    VolunteerRole,
    new_envelope,
)
from shared.store import VersionConflict
from tests.conftest import case_id_of
from tests.fakes.coaching import RacingCaseFileStore, fake_stores

SR = Association.SOIXANTE_MILLE_REBONDS
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
LYON = "60000_rebonds-lyon"
TOKEN = "test-token-karim"
SETTINGS = CoachingSettings(association=SR, staff_tokens={"karim": hash_token(TOKEN)})


def service_on(stores: CoachingStores) -> CoachingService:
    return build_service(SETTINGS, stores=stores, clock=lambda: NOW)


@pytest.fixture
def stores() -> CoachingStores:
    return fake_stores()


@pytest.fixture
def service(stores: CoachingStores) -> CoachingService:
    return service_on(stores)


def routed(association: Association = SR, sequence: int = 1, case_id: uuid.UUID | None = None, **fields) -> Envelope:
    decision = CaseRouted(
        association=association,
        rule="procedure:liquidation_judiciaire",
        reasons=["Liquidation"],
        routed_at=NOW - timedelta(hours=1),
        received_at=NOW - timedelta(days=10),
        sequence=sequence,
        **fields,
    )
    return new_envelope(decision, case_id=case_id or uuid.uuid4(), producer="routing")


def coach(volunteer_id: str = "coach-1", max_people: int = 2, **fields) -> Volunteer:
    return Volunteer(
        **{
            "volunteer_id": volunteer_id,
            "display_name": "Anne C.",
            "role": VolunteerRole.COACH,
            "antenna_id": LYON,
            "sectors": ["commerce"],
            "max_people": max_people,
            "certified_until": TODAY + timedelta(days=365),
            "email": "anne.c@example.org",
            **fields,
        }
    )


def sponsor(volunteer_id: str = "sponsor-1") -> Volunteer:
    return Volunteer(
        volunteer_id=volunteer_id,
        display_name="Paul P.",
        role=VolunteerRole.SPONSOR,
        antenna_id=LYON,
        sectors=["commerce"],
        max_people=2,
        email="paul.p@example.org",
    )


def emitted(stores: CoachingStores, event_type: str, case_id: uuid.UUID | None = None) -> list[Envelope]:
    return [
        e
        for e in stores.cases.events  # type: ignore[attr-defined]
        if e.event_type == event_type and (case_id is None or e.case_id == case_id)
    ]


async def approved_case(service: CoachingService, **fields) -> uuid.UUID:
    envelope = routed(antenna_id=LYON, **fields)
    await CaseRoutedHandler(service)(envelope)
    await service.decide_committee(case_id_of(envelope), Decision.APPROVED, [], "karim")
    return case_id_of(envelope)


# --- routing's decisions -------------------------------------------------------------------------------------


async def test_a_case_routed_here_opens_one_file_even_when_redelivered(
    service: CoachingService, stores: CoachingStores
) -> None:
    envelope = routed(antenna_id=LYON, sector="Boulangerie", sector_family=SectorFamily.COMMERCE)
    handler = CaseRoutedHandler(service)
    await handler(envelope)
    await handler(envelope)  # redelivered
    assert list(stores.cases.docs) == [str(envelope.case_id)]  # type: ignore[attr-defined]
    file = await service.case(case_id_of(envelope))
    assert (file.stage, file.antenna_id, file.sector, file.sector_family) == (
        Stage.AWAITING_COMMITTEE,
        LYON,
        "Boulangerie",
        SectorFamily.COMMERCE,
    )
    assert [(e["kind"], e["by"], e["at"]) for e in file.timeline] == [("oriente", "routage", NOW - timedelta(hours=1))]
    assert file.correlation_id == str(envelope.correlation_id)


async def test_cases_of_the_other_association_or_apesa_first_open_nothing(
    service: CoachingService, stores: CoachingStores
) -> None:
    handler = CaseRoutedHandler(service)
    await handler(routed(Association.SECOND_SOUFFLE))
    await handler(routed(status=RoutingStatus.APESA_FIRST))
    assert stores.cases.docs == {}  # type: ignore[attr-defined]


# --- committee -------------------------------------------------------------------------------------------------


async def test_committee_approval_emits_committee_approved_once(
    service: CoachingService, stores: CoachingStores
) -> None:
    envelope = routed()
    await CaseRoutedHandler(service)(envelope)
    file = await service.decide_committee(case_id_of(envelope), Decision.APPROVED, ["Démarche sincère"], "karim")
    assert (file.stage, file.approved_on) == (Stage.ACCOMPANIED, TODAY)
    with pytest.raises(TransitionRefused, match=re.escape("Le comité d'engagement a déjà statué sur ce dossier.")):
        await service.decide_committee(case_id_of(envelope), Decision.APPROVED, [], "karim")

    [event] = emitted(stores, "CommitteeApproved")
    assert event.payload_as(CommitteeApproved) == CommitteeApproved(association=SR, decided_on=TODAY)
    assert "reasons" not in event.payload or event.payload["reasons"] == []  # kept in the case file only
    assert (event.case_id, event.correlation_id, event.producer) == (
        envelope.case_id,
        envelope.correlation_id,
        "coaching",
    )
    doc = stores.cases.docs[str(envelope.case_id)]  # type: ignore[attr-defined]
    assert doc["version"] == 1 and [e["kind"] for e in doc["timeline"]] == ["oriente", "comite"]
    assert doc["timeline"][-1]["by"] == "karim"


# --- volunteers ------------------------------------------------------------------------------------------------


async def test_assigning_a_coach_emits_volunteer_assigned_with_the_email_in_the_same_write(
    service: CoachingService, stores: CoachingStores
) -> None:
    await service.add_volunteer(coach())
    case_id = await approved_case(service)
    file = await service.assign(case_id, VolunteerRole.COACH, "coach-1", "karim")
    assert (file.coach_id, file.coach_assigned_on) == ("coach-1", TODAY)

    [event] = emitted(stores, "VolunteerAssigned", case_id)
    assert event.payload_as(VolunteerAssigned) == VolunteerAssigned(
        association=SR,
        role=VolunteerRole.COACH,
        volunteer_id="coach-1",
        display_name="Anne C.",
        email="anne.c@example.org",
        assigned_on=TODAY,
        released=False,
    )
    doc = stores.cases.docs[str(case_id)]  # type: ignore[attr-defined]
    assert doc["coach_id"] == "coach-1" and stores.cases.outbox[str(case_id)][-1] == event  # type: ignore[attr-defined]
    # The place taken is published for routing.
    assert [(e.antenna_id, e.payload["coach_slots_free"]) for e in stores.antennas.events] == [  # type: ignore[attr-defined]
        (LYON, 2),
        (LYON, 1),
    ]


async def test_releasing_emits_volunteer_assigned_released(service: CoachingService, stores: CoachingStores) -> None:
    await service.add_volunteer(sponsor())
    case_id = await approved_case(service)
    await service.assign(case_id, VolunteerRole.SPONSOR, "sponsor-1", "karim")
    file = await service.release(case_id, VolunteerRole.SPONSOR, "karim")
    assert file.sponsor_id is None

    assigned, released = (e.payload_as(VolunteerAssigned) for e in emitted(stores, "VolunteerAssigned", case_id))
    assert (assigned.released, released.released) == (False, True)
    assert (released.volunteer_id, released.role, released.email, released.assigned_on) == (
        "sponsor-1",
        VolunteerRole.SPONSOR,
        "paul.p@example.org",
        TODAY,
    )
    with pytest.raises(TransitionRefused, match=re.escape("Aucun parrain ou marraine n'est attribué à ce dossier.")):
        await service.release(case_id, VolunteerRole.SPONSOR, "karim")
    assert len(emitted(stores, "VolunteerAssigned", case_id)) == 2


async def test_two_assignments_never_take_a_volunteer_s_last_place_together(
    service: CoachingService, stores: CoachingStores
) -> None:
    await service.add_volunteer(coach(max_people=1))
    first, second = await approved_case(service), await approved_case(service)
    results = await asyncio.gather(
        service.assign(first, VolunteerRole.COACH, "coach-1", "karim"),
        service.assign(second, VolunteerRole.COACH, "coach-1", "karim"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert [str(r) for r in refused] == ["Ce bénévole suit déjà 1 personne(s) pour 1 au plus : il est complet."]
    assert (await stores.cases.loads())["coach-1"] == 1
    assert len(emitted(stores, "VolunteerAssigned")) == 1


async def test_suggestions_match_the_sector_routing_gave(service: CoachingService) -> None:
    await service.add_volunteer(coach("coach-btp", sectors=["construction"]))
    await service.add_volunteer(coach("coach-commerce", sectors=["commerce"]))
    case_id = await approved_case(service, sector="Boulangerie", sector_family=SectorFamily.COMMERCE)
    found = await service.suggestions(case_id, VolunteerRole.COACH)
    assert [(c.volunteer.volunteer_id, c.sector_match) for c in found.candidates] == [
        ("coach-commerce", True),
        ("coach-btp", False),
    ]
    assert found.waiting is not None and not found.waiting["blocked"]


# --- sessions and checkpoints ----------------------------------------------------------------------------------


async def test_a_session_emits_session_held_with_the_next_meeting_and_who_led_it(
    service: CoachingService, stores: CoachingStores
) -> None:
    await service.add_volunteer(coach())
    case_id = await approved_case(service)
    await service.assign(case_id, VolunteerRole.COACH, "coach-1", "karim")
    next_at = NOW + timedelta(days=7)
    file = await service.hold_session(
        case_id,
        SessionReport(
            SessionKind.COACHING, duration_minutes=60, next_session_at=next_at, next_session_place="Visioconférence"
        ),
        "karim",
    )
    assert file.sessions == 1 and file.next_session() == {
        "at": next_at,
        "place": "Visioconférence",
        "session_kind": "coaching",
    }
    [event] = emitted(stores, "SessionHeld", case_id)
    held = event.payload_as(SessionHeld)
    assert (held.kind, held.held_on, held.number, held.volunteer_id) == (SessionKind.COACHING, TODAY, 1, "coach-1")
    assert (held.next_session_at, held.next_session_place) == (next_at, "Visioconférence")

    await service.hold_session(case_id, SessionReport(SessionKind.COACHING, attended=False), "karim")
    assert len(emitted(stores, "SessionHeld", case_id)) == 1  # an absence is noted, not published


async def test_a_checkpoint_emits_one_session_held_per_person_present_or_nothing_at_all(
    service: CoachingService, stores: CoachingStores
) -> None:
    present, absent = await approved_case(service), await approved_case(service)
    not_yet = routed(antenna_id=LYON)
    await CaseRoutedHandler(service)(not_yet)
    with pytest.raises(TransitionRefused, match="Point d'étape non enregistré"):
        await service.record_checkpoint(LYON, None, 120, [present, case_id_of(not_yet)], [], "karim")
    assert emitted(stores, "SessionHeld") == [] and stores.checkpoints.checkpoints == {}  # type: ignore[attr-defined]

    checkpoint = await service.record_checkpoint(LYON, None, 120, [present], [absent], "karim")
    [held] = emitted(stores, "SessionHeld")
    assert (held.case_id, held.payload_as(SessionHeld).session_id) == (present, checkpoint.checkpoint_id)
    assert (await service.case(absent)).timeline[-1]["kind"] == "absence"
    assert await stores.checkpoints.unfinished() == [] and checkpoint.refused == {}


# --- closing, conflicts and capacity -----------------------------------------------------------------------------


async def test_closing_emits_case_closed_and_frees_the_place(service: CoachingService, stores: CoachingStores) -> None:
    await service.add_volunteer(coach(max_people=1))
    case_id = await approved_case(service)
    await service.assign(case_id, VolunteerRole.COACH, "coach-1", "karim")
    file = await service.close(case_id, Outcome.SALARIED_JOB, ["CDI signé"], "karim")
    assert (file.stage, file.closed_on) == (Stage.CLOSED, TODAY)

    [event] = emitted(stores, "CaseClosed", case_id)
    closed = event.payload_as(CaseClosed)
    assert (closed.outcome, closed.journey_days, closed.days_to_coach, closed.reasons) == (
        Outcome.SALARIED_JOB,
        10,
        0,
        [],
    )
    assert file.timeline[-1]["reasons"] == ["CDI signé"]  # the staff's words stay in the case file
    assert [e.payload["coach_slots_free"] for e in stores.antennas.events] == [1, 0, 1]  # type: ignore[attr-defined]
    with pytest.raises(TransitionRefused, match=re.escape("Ce dossier est déjà clos.")):
        await service.close(case_id, Outcome.SALARIED_JOB, [], "karim")
    assert len(emitted(stores, "CaseClosed")) == 1


async def test_a_lost_race_is_a_version_conflict_that_changes_nothing() -> None:
    stores = fake_stores(RacingCaseFileStore())
    service = service_on(stores)
    envelope = routed()
    await CaseRoutedHandler(service)(envelope)
    before = dict(stores.cases.docs[str(envelope.case_id)])  # type: ignore[attr-defined]
    with pytest.raises(VersionConflict):
        await service.decide_committee(case_id_of(envelope), Decision.APPROVED, [], "karim")
    after = stores.cases.docs[str(envelope.case_id)]  # type: ignore[attr-defined]
    assert (after["stage"], after["timeline"]) == (before["stage"], before["timeline"])
    assert emitted(stores, "CommitteeApproved") == []


async def test_capacity_is_published_only_when_free_places_change(
    service: CoachingService, stores: CoachingStores
) -> None:
    published = stores.antennas.events  # type: ignore[attr-defined]
    await service.add_volunteer(coach(max_people=2))
    await service.add_volunteer(sponsor())
    assert [(e.payload["coach_slots_free"], e.payload["sponsor_slots_free"]) for e in published] == [(2, 0), (2, 2)]
    assert await service.recount_capacity() == []  # nothing changed: nothing published
    await service.change_volunteer("coach-1", {"email": "anne@example.org"})  # no change in places either
    assert len(published) == 2

    await service.change_volunteer("coach-1", {"max_people": 3})
    [capacity] = await service.antenna_capacities()
    assert (capacity.coach_slots_free, capacity.sponsor_slots_free, capacity.as_of) == (3, 2, NOW)
    last = published[-1]
    assert (len(published), last.antenna_id, last.case_id, last.payload["association"]) == (3, LYON, None, SR.value)
    assert await service.recount_capacity() == []


# --- the HTTP API on the same wiring -----------------------------------------------------------------------------


@pytest.fixture
async def racing_api() -> AsyncIterator[tuple[httpx.AsyncClient, CoachingStores]]:
    stores = fake_stores(RacingCaseFileStore())
    app = create_app(SETTINGS, stores=stores, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://coaching", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client, stores


async def test_a_version_conflict_is_a_409_in_the_api(racing_api: tuple[httpx.AsyncClient, CoachingStores]) -> None:
    client, stores = racing_api
    envelope = routed()
    await CaseRoutedHandler(service_on(stores))(envelope)  # opening inserts: no race to lose
    response = await client.post(f"/cases/{envelope.case_id}/committee-decision", json={"decision": "approuve"})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Le dossier vient d'être modifié par ailleurs : réessayez."},
    )
    [entry] = stores.audit.entries  # type: ignore[attr-defined]
    assert (entry.who, entry.action, entry.outcome, entry.case_id) == (
        "karim",
        "case.committee_decision",
        "conflit",
        str(envelope.case_id),
    )


async def test_a_volunteer_s_email_is_validated_and_shown_to_staff(
    racing_api: tuple[httpx.AsyncClient, CoachingStores],
) -> None:
    client, _ = racing_api
    body = {
        "volunteer_id": "coach-lyon-1",
        "display_name": "Anne C.",
        "role": "coach",
        "antenna_id": LYON,
        "max_people": 3,
        "certified_until": str(TODAY + timedelta(days=90)),
    }
    invalid = await client.post("/volunteers", json={**body, "email": "anne-at-example"})
    assert invalid.status_code == 422
    assert [(e["field"], e["message"]) for e in invalid.json()["errors"]] == [("email", "Adresse e-mail invalide.")]

    created = await client.post("/volunteers", json={**body, "email": "anne.c@example.org"})
    assert created.status_code == 201, created.text
    assert created.json() | {"email": "anne.c@example.org", "load": 0, "free_slots": 3} == created.json()
    changed = await client.patch("/volunteers/coach-lyon-1", json={"email": None})
    assert changed.json()["email"] is None
    cleared = await client.patch("/volunteers/coach-lyon-1", json={"max_people": None})
    assert cleared.status_code == 422


async def test_no_answer_exposes_the_storage_format(racing_api: tuple[httpx.AsyncClient, CoachingStores]) -> None:
    client, stores = racing_api
    service = service_on(stores)
    envelope = routed()
    await CaseRoutedHandler(service)(envelope)
    answer = (await client.get(f"/cases/{envelope.case_id}")).json()
    assert not {"_id", "outbox", "outbox_count", "processed_events", "version"} & set(answer)
    assert answer["stage"] == "attente_comite" and answer["next_session"] is None
    assert date.fromisoformat(answer["opened_at"][:10]) == TODAY
