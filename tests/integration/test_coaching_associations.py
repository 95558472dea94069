"""Coaching per association on the real Kafka and FerretDB: isolation, audit, committee, volunteers,
sessions, checkpoints, closing, handover, waiting list and the coordinators' figures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from services.coaching.app import create_app
from services.coaching.settings import CoachingSettings
from shared.schemas import Association
from tests.coaching_support import (
    SR,
    SS,
    STAFF,
    EventLog,
    StaffClient,
    capacity_is,
    case_routed,
    coaching_settings,
    event_log,
    publish,
    staff,
    unique_antenna,
    wait_consumed,
)
from tests.conftest import Infra, case_id_of, running, wait_for

pytestmark = pytest.mark.infra
TODAY = datetime.now(UTC).date()
AUDIT_FIELDS = {"_id", "at", "who", "association", "action", "outcome", "case_id", "volunteer_id", "count"}


@dataclass
class Instance(StaffClient):
    settings: CoachingSettings
    infra: Infra

    async def approved_case(self, antenna_id: str, days_ago: int = 20) -> uuid.UUID:
        routed = case_routed(
            self.association, received_at=datetime.now(UTC) - timedelta(days=days_ago), antenna_id=antenna_id
        )
        await publish(self.infra, routed)
        await self.opened(case_id_of(routed))
        await self.post(f"/cases/{routed.case_id}/committee-decision", {"decision": "approuve"})
        return case_id_of(routed)


@pytest.fixture
async def coaching(infra: Infra) -> AsyncIterator[dict[Association, Instance]]:
    """Both associations' coaching instances, each with its own database, group and staff."""
    async with AsyncExitStack() as stack:
        instances = {}
        for association in (SS, SR):
            settings = coaching_settings(infra, association, dashboard_refresh_s=3600)
            client = await stack.enter_async_context(running(create_app(settings)))
            instances[association] = Instance(client, association, STAFF[association][1], settings, infra)
        yield instances


@pytest.fixture
async def log(infra: Infra) -> AsyncIterator[EventLog]:
    async with event_log(infra) as events:
        yield events


@pytest.fixture
async def mongo(infra: Infra) -> AsyncIterator[AsyncMongoClient]:
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield client
    await client.close()


def capacities(found: list) -> list[tuple[int, int]]:
    return [(e.payload["coach_slots_free"], e.payload["sponsor_slots_free"]) for e in found]


async def test_each_instance_keeps_only_the_cases_routed_to_its_association(
    infra: Infra, coaching: dict[Association, Instance]
) -> None:
    ss, sr = coaching[SS], coaching[SR]
    for_ss, for_sr = case_routed(SS), case_routed(SR)
    sent = await publish(infra, for_ss, for_sr)
    await wait_consumed(infra, ss.settings.consumer_group, *sent)
    await wait_consumed(infra, sr.settings.consumer_group, *sent)

    assert (await ss.get(f"/cases/{for_ss.case_id}")).json()["association"] == "second_souffle"
    assert (await sr.get(f"/cases/{for_sr.case_id}")).json()["association"] == "60000_rebonds"
    # Each database holds its own cases only: the other association's case does not exist here.
    assert (await ss.get(f"/cases/{for_sr.case_id}")).status_code == 404
    assert (await sr.get(f"/cases/{for_ss.case_id}")).status_code == 404
    listed = {c["case_id"] for c in (await ss.get("/cases")).json()["cases"]}  # other tests' cases too
    assert str(for_ss.case_id) in listed and str(for_sr.case_id) not in listed

    # The same routing decision delivered again (a replay) opens nothing twice.
    again = await publish(infra, for_sr)
    await wait_consumed(infra, sr.settings.consumer_group, *again)
    assert [e["kind"] for e in (await sr.get(f"/cases/{for_sr.case_id}")).json()["timeline"]] == ["oriente"]


async def test_staff_of_one_association_cannot_use_the_other_s_instance_and_access_is_audited(
    infra: Infra, coaching: dict[Association, Instance], mongo: AsyncMongoClient
) -> None:
    ss, sr = coaching[SS], coaching[SR]
    routed = case_routed(SR)
    await publish(infra, routed)
    await sr.opened(case_id_of(routed))
    path = f"/cases/{routed.case_id}"

    for headers in (staff(SS), {}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic a2FyaW0="}):
        read = await sr.client.get(path, headers=headers)
        assert read.status_code == 401 and read.headers["www-authenticate"] == "Bearer"
        assert read.json() == {"detail": "Jeton d'accès manquant ou inconnu pour cette association."}
        write = await sr.client.post(f"{path}/committee-decision", json={"decision": "approuve"}, headers=headers)
        assert write.status_code == 401
    assert (await sr.get(path)).json()["stage"] == "attente_comite"  # nothing changed
    assert (await ss.client.get("/volunteers", headers=staff(SR))).status_code == 401
    assert (await ss.client.get("/coordination", headers=staff(SR))).status_code == 401

    await sr.post(f"{path}/committee-decision", {"decision": "approuve"})
    await sr.post(f"{path}/sessions", {"kind": "coaching"}, expect=409)
    trail = (await sr.get(f"{path}/audit")).json()["entries"]
    trail = trail[next(i for i, e in enumerate(trail) if e["outcome"] == "ok") :]  # from the first read found
    assert [(e["who"], e["action"], e["outcome"]) for e in trail] == [
        ("karim", "case.read", "ok"),
        *[("anonyme", action, "non_authentifie") for _ in range(4) for action in ("get_case", "committee")],
        ("karim", "case.read", "ok"),
        ("karim", "case.committee_decision", "ok"),
        ("karim", "case.session", "refuse"),
    ]
    stored = await mongo[sr.settings.mongo_db]["audit"].find({"case_id": str(routed.case_id)}).to_list(None)
    assert all(set(entry) <= AUDIT_FIELDS and entry["association"] == "60000_rebonds" for entry in stored)
    assert await mongo[ss.settings.mongo_db]["audit"].count_documents({"case_id": str(routed.case_id)}) == 0


async def test_a_case_goes_through_committee_coach_sponsor_sessions_checkpoint_and_closing(
    infra: Infra, coaching: dict[Association, Instance], log: EventLog, mongo: AsyncMongoClient
) -> None:
    sr = coaching[SR]
    antenna, elsewhere = unique_antenna(SR, "valence"), unique_antenna(SR, "grenoble")
    await sr.volunteer("valence-coach", "coach", antenna, max_people=2, email="anne.valence@example.org")
    await sr.volunteer("valence-coach-expired", "coach", antenna, certified_until=str(TODAY - timedelta(days=1)))
    await sr.volunteer("grenoble-coach", "coach", elsewhere)
    await sr.volunteer("valence-sponsor", "parrain", antenna, max_people=3)
    await sr.volunteer("valence-expert", "expert", antenna)
    await wait_for(lambda: capacity_is(log, antenna, (2, 3)), 20, "the antenna's first places")

    routed = case_routed(SR, received_at=datetime.now(UTC) - timedelta(days=20))
    await publish(infra, routed)
    case = f"/cases/{routed.case_id}"
    await sr.opened(case_id_of(routed))
    await sr.patch(case, {"antenna_id": antenna, "sector": "commerce"})
    foreign = await sr.patch(case, {"antenna_id": "second_souffle-lyon"}, expect=422)
    assert foreign["errors"][0]["message"] == "Cette antenne n'est pas une antenne de 60000_rebonds."

    await sr.post(f"{case}/committee-date", {"scheduled_on": str(TODAY)})
    assert (await sr.get(case)).json()["step"] == "comite_programme"
    await sr.post(f"{case}/committee-decision", {"decision": "ajourne", "reasons": ["Pièces manquantes"]})
    approved = await sr.post(f"{case}/committee-decision", {"decision": "approuve", "reasons": ["Démarche sincère"]})
    assert (approved["stage"], approved["step"], approved["deferrals"]) == ("accompagnement", "attente_coach", 1)
    [event] = await log.wait("CommitteeApproved", case_id_of(routed))
    assert event.payload["reasons"] == []  # the committee's reasons stay in the case file
    assert (await sr.get(case)).json()["timeline"][-1]["reasons"] == ["Démarche sincère"]

    suggested = (await sr.get(f"{case}/suggestions", params={"role": "coach"})).json()
    assert [c["volunteer_id"] for c in suggested["candidates"]] == ["valence-coach", "grenoble-coach"]
    assert (
        suggested["candidates"][0] | {"same_antenna": True, "sector_match": True, "load": 0}
        == suggested["candidates"][0]
    )

    before = await mongo[sr.settings.mongo_db]["case_files"].find_one({"_id": str(routed.case_id)})
    expired = await sr.post(
        f"{case}/assignments", {"role": "coach", "volunteer_id": "valence-coach-expired"}, expect=409
    )
    assert expired["detail"].startswith("La certification de ce coach a expiré le ")
    early = await sr.post(f"{case}/sessions", {"kind": "coaching"}, expect=409)
    assert early["detail"] == "Aucun coach n'est attribué à ce dossier : attribuez-en un avant la séance."
    after = await mongo[sr.settings.mongo_db]["case_files"].find_one({"_id": str(routed.case_id)})
    assert before is not None and after is not None
    assert after["version"] == before["version"] and after["timeline"] == before["timeline"]

    await sr.post(f"{case}/assignments", {"role": "coach", "volunteer_id": "valence-coach"})
    await sr.post(f"{case}/assignments", {"role": "parrain", "volunteer_id": "valence-sponsor"})
    await wait_for(lambda: capacity_is(log, antenna, (1, 2)), 20, "capacity after assignments")
    assigned = await log.wait("VolunteerAssigned", case_id_of(routed), count=2)
    assert [
        (e.payload["role"], e.payload["volunteer_id"], e.payload["email"], e.payload["released"]) for e in assigned
    ] == [("coach", "valence-coach", "anne.valence@example.org", False), ("parrain", "valence-sponsor", None, False)]

    next_at = datetime.combine(TODAY + timedelta(days=7), datetime.min.time(), UTC).replace(hour=14)
    for body in (
        {
            "kind": "coaching",
            "duration_minutes": 60,
            "next_session_at": next_at.isoformat(),
            "next_session_place": "Visioconférence",
        },
        {"kind": "coaching", "attended": False},
        {"kind": "parrainage", "duration_minutes": 90},
        {"kind": "expertise", "volunteer_id": "valence-expert", "duration_minutes": 30},
    ):
        await sr.post(f"{case}/sessions", body, expect=201)
    not_expert = await sr.post(f"{case}/sessions", {"kind": "expertise", "volunteer_id": "valence-coach"}, expect=409)
    assert not_expert["detail"] == "Ce bénévole n'est pas expert : une consultation se tient avec un expert."

    other = await sr.approved_case(antenna)
    checkpoint = await sr.post(
        "/checkpoints",
        {"antenna_id": antenna, "duration_minutes": 120, "present": [str(routed.case_id)], "absent": [str(other)]},
        expect=201,
    )
    assert checkpoint["refused"] == {}
    held = await log.wait("SessionHeld", case_id_of(routed), count=4)
    assert [e.payload["kind"] for e in held] == ["coaching", "parrainage", "expertise", "point_etape_collectif"]
    assert [e.payload["volunteer_id"] for e in held] == ["valence-coach", "valence-sponsor", "valence-expert", None]
    assert (datetime.fromisoformat(held[0].payload["next_session_at"]), held[0].payload["next_session_place"]) == (
        next_at,
        "Visioconférence",
    )
    assert held[-1].payload["session_id"] == checkpoint["checkpoint_id"]
    assert await log.of("SessionHeld", other) == []  # absent: noted, not published
    assert (await sr.get(f"/cases/{other}")).json()["timeline"][-1]["kind"] == "absence"

    closed = await sr.post(f"{case}/closing", {"outcome": "emploi_salarie", "reasons": ["CDI signé"]})
    assert closed["sessions_by_kind"] == {"coaching": 1, "parrainage": 1, "point_etape_collectif": 1, "expertise": 1}
    [event] = await log.wait("CaseClosed", case_id_of(routed))
    assert (
        event.payload
        | {
            "outcome": "emploi_salarie",
            "journey_days": 20,
            "days_to_committee": 20,
            "days_to_coach": 0,
            "accompaniment_days": 0,
        }
        == event.payload
    )
    await wait_for(lambda: capacity_is(log, antenna, (2, 3)), 20, "places freed by the closing")
    await sr.post(f"{case}/closing", {"outcome": "emploi_salarie"}, expect=409)

    figures = (await sr.get("/coordination")).json()["antennas"][antenna]
    assert figures["open_total"] == 1 and figures["open_cases"]["attente_coach"] == 1
    assert figures["waiting_days"]["comite_coach"] == {"cases": 1, "mean_days": 0.0, "max_days": 0}
    metrics = (await sr.client.get("/metrics")).text
    labels = f'antenna="{antenna}",association="60000_rebonds"'
    assert f'relais_coaching_open_cases{{{labels},step="attente_coach"}} 1.0' in metrics
    assert f'relais_coaching_volunteer_slots_free{{{labels},role="coach"}} 2.0' in metrics


async def test_with_every_coach_full_the_case_waits_in_the_waiting_list(
    infra: Infra, coaching: dict[Association, Instance], log: EventLog
) -> None:
    sr = coaching[SR]
    antenna = unique_antenna(SR, "annecy")
    await sr.volunteer("annecy-coach", "coach", antenna, max_people=1)
    first = await sr.approved_case(antenna)
    second = await sr.approved_case(antenna, days_ago=10)
    await sr.post(f"/cases/{first}/assignments", {"role": "coach", "volunteer_id": "annecy-coach"})
    await wait_for(lambda: capacity_is(log, antenna, (0, 0)), 20, "the antenna full")

    suggested = (await sr.get(f"/cases/{second}/suggestions")).json()
    assert suggested["candidates"] == []
    assert suggested["message"] == (
        f"Aucun bénévole (coach) disponible à l'antenne {antenna} : le dossier attend en file, position 1."
    )
    waiting = (await sr.get("/waiting-list", params={"role": "coach", "antenna_id": antenna})).json()["cases"]
    assert [(w["case_id"], w["position"], w["blocked"]) for w in waiting] == [(str(second), 1, True)]
    full = await sr.post(f"/cases/{second}/assignments", {"role": "coach", "volunteer_id": "annecy-coach"}, expect=409)
    assert full["detail"] == "Ce bénévole suit déjà 1 personne(s) pour 1 au plus : il est complet."
    assert (await sr.get(f"/cases/{second}")).json()["coach"] is None

    await sr.post(f"/cases/{first}/closing", {"outcome": "creation_entreprise"})
    await wait_for(lambda: capacity_is(log, antenna, (1, 0)), 20, "the place freed")
    suggested = (await sr.get(f"/cases/{second}/suggestions")).json()
    assert [c["volunteer_id"] for c in suggested["candidates"]] == ["annecy-coach"]
    await sr.post(f"/cases/{second}/assignments", {"role": "coach", "volunteer_id": "annecy-coach"})
    assert (await sr.get("/waiting-list", params={"antenna_id": antenna})).json()["cases"] == []

    # More room: the coach can follow two people now, published at once for routing.
    await sr.patch("/volunteers/annecy-coach", {"max_people": 2})
    published = await log.wait("AntennaCapacityChanged", antenna, count=5)
    assert capacities(published) == [(1, 0), (0, 0), (1, 0), (0, 0), (1, 0)]


async def test_a_declined_case_is_oriented_to_the_other_association(
    infra: Infra, coaching: dict[Association, Instance], log: EventLog
) -> None:
    ss, sr = coaching[SS], coaching[SR]
    routed = case_routed(SS, received_at=datetime.now(UTC) - timedelta(days=5))
    await publish(infra, routed)
    await ss.opened(case_id_of(routed))
    declined = await ss.post(
        f"/cases/{routed.case_id}/committee-decision",
        {"decision": "refuse", "reasons": ["Entreprise déjà liquidée"], "orientation": "autre_association"},
    )
    assert (declined["stage"], declined["outcome"], declined["oriented_to"]) == (
        "clos",
        "refus_comite",
        "60000_rebonds",
    )
    [closed] = await log.wait("CaseClosed", case_id_of(routed))
    assert (closed.payload["oriented_to"], closed.payload["days_to_committee"]) == ("60000_rebonds", 5)
    [reroute] = await log.wait("RerouteRequested", case_id_of(routed))
    assert reroute.payload | {"requested_by": "second_souffle", "reason": "hors_champ"} == reroute.payload
    assert reroute.correlation_id == routed.correlation_id  # the case's whole story shares one correlation id

    await publish(infra, case_routed(SR, routed.case_id, sequence=2, previous=SS))  # routing's answer
    received = await sr.opened(case_id_of(routed))
    assert received["stage"] == "attente_consentement"
    assert received["history"] == {"case_id": str(routed.case_id), "previous_association": "second_souffle"}

    async def noted() -> bool:
        return (await ss.get(f"/cases/{routed.case_id}")).json()["timeline"][-1]["kind"] == "reoriente"

    await wait_for(noted, 20, "the reorientation noted by Second Souffle")
    assert (await ss.get(f"/cases/{routed.case_id}")).json()["stage"] == "clos"


async def test_a_liquidation_hands_a_second_souffle_case_over_to_60000_rebonds(
    infra: Infra, coaching: dict[Association, Instance], log: EventLog
) -> None:
    ss, sr = coaching[SS], coaching[SR]
    antenna = unique_antenna(SS, "lyon")
    await ss.volunteer("ss-lyon-sponsor", "parrain", antenna, max_people=1)
    case_id = await ss.approved_case(antenna)
    case = f"/cases/{case_id}"
    await ss.post(f"{case}/assignments", {"role": "parrain", "volunteer_id": "ss-lyon-sponsor"})
    await wait_for(lambda: capacity_is(log, antenna, (0, 0)), 20, "the sponsor busy")

    wrong = await ss.client.post(f"{case}/handover", json={"procedure": "sauvegarde"}, headers=staff(SS))
    assert wrong.status_code == 422
    requested = await ss.post(
        f"{case}/handover",
        {"court_decision_date": str(TODAY - timedelta(days=3)), "comment": "Liquidation prononcée, suivi à reprendre"},
    )
    assert requested["stage"] == "transmission_demandee"
    [reroute] = await log.wait("RerouteRequested", case_id)
    assert (
        reroute.payload
        | {"requested_by": "second_souffle", "reason": "transmission", "procedure": "liquidation_judiciaire"}
        == reroute.payload
    )
    assert reroute.payload["comment"] is None  # the note stays in Second Souffle's case file
    assert (await ss.get(case)).json()["timeline"][-1]["comment"] == "Liquidation prononcée, suivi à reprendre"
    assert (await sr.get(case)).status_code == 404  # not routed to 60 000 rebonds yet

    # Routing's answer (routing does not run in this test): the case goes to 60 000 rebonds.
    await publish(infra, case_routed(SR, case_id, sequence=2, previous=SS, reroute_reason="transmission"))
    received = await sr.opened(case_id)
    assert (received["stage"], received["routing_sequence"]) == ("attente_consentement", 2)
    assert received["history"] == {"case_id": str(case_id), "previous_association": "second_souffle"}

    async def handed_over() -> dict | None:
        file = (await ss.get(case)).json()
        return file if file["stage"] == "transmis" else None

    assert (await wait_for(handed_over, 20, "Second Souffle's file handed over"))["timeline"][-1][
        "to"
    ] == "60000_rebonds"
    await wait_for(lambda: capacity_is(log, antenna, (0, 1)), 20, "the sponsor free again")

    early = await sr.post(f"{case}/committee-decision", {"decision": "approuve"}, expect=409)
    assert early["detail"] == "Le consentement de l'entrepreneur doit être recueilli à nouveau avant le comité."
    await sr.post(f"{case}/consent", {"given": True})
    assert (await sr.post(f"{case}/committee-decision", {"decision": "approuve"}))["stage"] == "accompagnement"
    assert (await ss.post(f"{case}/sessions", {"kind": "parrainage"}, expect=409))[
        "detail"
    ] == "Ce dossier est transmis à l'autre association : aucune nouvelle séance."


async def test_a_checkpoint_interrupted_by_a_crash_is_finished_at_the_next_start(
    infra: Infra, log: EventLog, mongo: AsyncMongoClient
) -> None:
    settings = coaching_settings(infra, SR, dashboard_refresh_s=3600)
    antenna = unique_antenna(SR, "clermont-ferrand")
    async with running(create_app(settings)) as client:
        case_id = await Instance(client, SR, STAFF[SR][1], settings, infra).approved_case(antenna)
    # What a crash right after storing the checkpoint leaves: the checkpoint, and no file recorded it.
    checkpoint_id = str(uuid.uuid4())
    await mongo[settings.mongo_db]["checkpoints"].insert_one(
        {
            "_id": checkpoint_id,
            "antenna_id": antenna,
            "held_on": str(TODAY),
            "duration_minutes": 90,
            "present": [str(case_id)],
            "absent": [],
            "by": "karim",
            "at": datetime.now(UTC),
            "status": "en_cours",
        }
    )

    async with running(create_app(settings)):
        [held] = await log.wait("SessionHeld", case_id)
    assert (held.payload["session_id"], held.payload["kind"]) == (checkpoint_id, "point_etape_collectif")
    stored = await mongo[settings.mongo_db]["checkpoints"].find_one({"_id": checkpoint_id})
    assert stored is not None
    assert (stored["status"], stored["refused"]) == ("enregistre", {})
