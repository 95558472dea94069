"""Routing on the real Kafka and FerretDB: directory, antenna choice with capacity, beyond one hour,
waitlist and its promotion, handover and out-of-scope re-routing, APESA first then resumed, unknown
commune then corrected, and intake's new fields reaching routing.

Every test gets its own database and its own antenna ids (suffix), so that the capacity events it
publishes on the shared topic never touch another test's antennas.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.routing.app import create_app
from services.routing.directory import default_antennas
from services.routing.settings import RoutingSettings
from shared.schemas import (
    AntennaCapacityChanged,
    Association,
    CaseReceived,
    Envelope,
    RerouteRequested,
    new_envelope,
)
from tests.conftest import Infra, a_case, running, staff_headers, wait_for

pytestmark = pytest.mark.infra
SS, SR = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS


@pytest.fixture
def directory(tmp_path: Path) -> tuple[Path, str]:
    """The default antennas with ids unique to this test: `60000_rebonds-lyon-t1a2b3c`."""
    tag = "t" + uuid.uuid4().hex[:6]
    antennas = [{**a, "id": f"{a['id']}-{tag}"} for a in default_antennas()]
    path = tmp_path / "antennas.json"
    path.write_text(json.dumps({"antennas": antennas}))
    return path, tag


@pytest.fixture
def settings(infra: Infra, directory: tuple[Path, str]) -> RoutingSettings:
    return infra.settings(RoutingSettings, antennas_file=directory[0])


async def publish(infra: Infra, *envelopes: Envelope) -> None:
    producer = AIOKafkaProducer(**infra.admin.client(), acks="all")
    await producer.start()
    try:
        for e in envelopes:
            await producer.send_and_wait(
                e.spec.topic, e.encode(), key=e.key, headers=[(k, v.encode()) for k, v in e.headers().items()]
            )
    finally:
        await producer.stop()


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
        received_at=datetime.now(UTC),
    )
    return new_envelope(payload, case_id=uuid.uuid4(), producer="test")


def capacity(
    antenna_id: str, coach: int, sponsor: int = 5, association: str = "60000_rebonds", as_of: datetime | None = None
) -> Envelope:
    payload = AntennaCapacityChanged(
        association=association,
        antenna_id=antenna_id,
        coach_slots_free=coach,
        sponsor_slots_free=sponsor,
        as_of=as_of or datetime.now(UTC),
    )
    return new_envelope(payload, antenna_id=antenna_id, producer="test")


async def decision(
    client: httpx.AsyncClient, envelope_or_id: Envelope | str, sequence: int = 1, what: str = "routing decision"
) -> dict[str, Any]:
    case_id = str(envelope_or_id.case_id) if isinstance(envelope_or_id, Envelope) else envelope_or_id

    async def probe() -> dict[str, Any] | None:
        for association in Association:  # the staff of whichever association holds it
            response = await client.get(f"/cases/{case_id}", headers=staff_headers(association))
            if response.status_code == 200 and response.json()["current"]["sequence"] >= sequence:
                return response.json()
        return None

    return (await wait_for(probe, timeout=30, what=what))["current"]


async def test_directory_is_seeded_once_and_editable(
    infra: Infra, settings: RoutingSettings, directory: tuple[Path, str]
) -> None:
    _, tag = directory
    async with running(create_app(settings), staff_headers(SR)) as client:
        antennas = (await client.get("/antennas")).json()
        others = (await client.get("/antennas", headers=staff_headers(SS))).json()
        assert len(antennas) + len(others) == 9
        assert {a["association"] for a in antennas} == {"60000_rebonds"}
        assert {a["association"] for a in others} == {"second_souffle"}
        bourg = next(a for a in antennas if a["city"] == "Bourg-en-Bresse")
        assert bourg["status"] == "en_ouverture" and bourg["free_places"] is None and bourg["dept"] == "01"
        edited = await client.patch(
            f"/antennas/60000_rebonds-grenoble-{tag}", json={"contact": "grenoble@example.org", "status": "fermee"}
        )
        assert edited.status_code == 200 and edited.json()["contact"] == "grenoble@example.org"
        new = {
            "association": "second_souffle",
            "name": "Second Souffle Grenoble",
            "city": "Grenoble",
            "insee_code": "38185",
            "status": "en_ouverture",
            "contact": "grenoble@example.org",
        }
        refused = await client.put(f"/antennas/second_souffle-grenoble-{tag}", json=new)
        assert refused.status_code == 403  # 60 000 rebonds' staff edit only their own antennas
        created = await client.put(f"/antennas/second_souffle-grenoble-{tag}", json=new, headers=staff_headers(SS))
        assert created.status_code == 201 and created.json()["lat"] == pytest.approx(45.19, abs=0.01)
        wrong = await client.put(
            f"/antennas/60000_rebonds-nulle-part-{tag}",
            json={
                "association": "60000_rebonds",
                "name": "X",
                "insee_code": "99999",
                "status": "ouverte",
                "contact": "x",
            },
        )
        assert wrong.status_code == 422 and wrong.json()["detail"] == "Commune inconnue : aucun code INSEE 99999."
        mismatch = await client.put(
            f"/antennas/second_souffle-x-{tag}",
            json={
                "association": "60000_rebonds",
                "name": "X",
                "insee_code": "38185",
                "status": "ouverte",
                "contact": "x",
            },
            headers=staff_headers(SS),
        )
        assert mismatch.status_code == 422
        assert (await client.patch("/antennas/absente", json={"status": "ouverte"})).status_code == 404
        other = await client.patch(f"/antennas/second_souffle-grenoble-{tag}", json={"status": "ouverte"})
        assert other.status_code == 404
    # A second start keeps the edits and does not seed again.
    async with running(create_app(settings), staff_headers(SR)) as client:
        antennas = {a["id"]: a for a in (await client.get("/antennas")).json()}
        antennas |= {a["id"]: a for a in (await client.get("/antennas", headers=staff_headers(SS))).json()}
        assert len(antennas) == 10
        assert antennas[f"60000_rebonds-grenoble-{tag}"]["status"] == "fermee"


async def test_quickest_antenna_with_room_then_beyond_one_hour(
    infra: Infra, settings: RoutingSettings, directory: tuple[Path, str]
) -> None:
    _, tag = directory
    async with running(create_app(settings), staff_headers(SR)) as client:
        lyon_case = received()
        await publish(infra, lyon_case)
        routed = await decision(client, lyon_case)
        assert (routed["status"], routed["antenna_id"]) == ("oriente", f"60000_rebonds-lyon-{tag}")
        assert routed["travel_minutes"] <= 5 and routed["beyond_one_hour"] is False
        assert routed["antenna_contact"].startswith("60 000 rebonds Lyon")

        # Coaching reports no free coach in Lyon: the next case from Lyon goes to the next quickest antenna.
        await publish(infra, capacity(f"60000_rebonds-lyon-{tag}", coach=0))

        async def lyon_full() -> bool:
            antenna = (await client.get(f"/antennas/60000_rebonds-lyon-{tag}")).json()
            return antenna["free_places"] is not None and antenna["free_places"] <= 0

        await wait_for(lyon_full, what="capacity taken in")
        second = received(postal_code="69003", commune="Lyon")
        await publish(infra, second)
        routed = await decision(client, second)
        assert routed["antenna_id"] == f"60000_rebonds-saint-etienne-{tag}"
        assert any("plus proche" in r and "complète" in r for r in routed["reasons"])

        far = received(postal_code="15000", commune="Aurillac")
        await publish(infra, far)
        routed = await decision(client, far)
        assert routed["antenna_id"] == f"60000_rebonds-clermont-ferrand-{tag}"
        assert routed["beyond_one_hour"] is True and routed["travel_minutes"] > 60

        # Bourg-en-Bresse opens: a case from the Bresse now goes there.
        await client.patch(f"/antennas/60000_rebonds-bourg-en-bresse-{tag}", json={"status": "ouverte"})
        bresse = received(postal_code="01000", commune="Bourg-en-Bresse")
        await publish(infra, bresse)
        assert (await decision(client, bresse))["antenna_id"] == f"60000_rebonds-bourg-en-bresse-{tag}"
        metrics = (await client.get("/metrics")).text
        assert 'relais_routing_beyond_one_hour_total{association="60000_rebonds"}' in metrics


async def test_waitlist_when_no_room_then_first_come_first_served(
    infra: Infra, settings: RoutingSettings, directory: tuple[Path, str]
) -> None:
    _, tag = directory
    ids = [a["id"] for a in json.loads(directory[0].read_text())["antennas"] if a["association"] == "60000_rebonds"]
    async with running(create_app(settings), staff_headers(SR)) as client:
        await publish(infra, *(capacity(i, coach=0) for i in ids))

        async def all_full() -> bool:
            antennas = (await client.get("/antennas")).json()
            return all(a["free_places"] is not None and a["free_places"] <= 0 for a in antennas if a["id"] in ids)

        await wait_for(all_full, what="every 60 000 rebonds antenna full")
        first, second = received(), received(postal_code="38000", commune="Grenoble")
        await publish(infra, first)
        one = await decision(client, first)
        await publish(infra, second)
        two = await decision(client, second)
        assert one["status"] == two["status"] == "liste_attente"
        assert one["antenna_id"] is None and two["waitlist_position"] > one["waitlist_position"] >= 1
        assert one["reasons"][-1] == f"Liste d'attente de 60 000 rebonds : position {one['waitlist_position']}."
        waitlist = (await client.get("/waitlists/60000_rebonds")).json()["entries"]
        order = [e["case_id"] for e in waitlist]
        assert order.index(str(first.case_id)) < order.index(str(second.case_id))
        assert "relais_routing_waitlist_size" in (await client.get("/metrics")).text

        # Places free up in Grenoble, as many as there are cases up to the first one: it is promoted.
        await publish(infra, capacity(f"60000_rebonds-grenoble-{tag}", coach=order.index(str(first.case_id)) + 1))
        promoted = await decision(client, first, sequence=2, what="first waitlisted case promoted")
        assert promoted["status"] == "oriente" and promoted["reroute_reason"] == "place_liberee"
        assert promoted["antenna_id"] == f"60000_rebonds-grenoble-{tag}"
        assert promoted["previous"]["status"] == "liste_attente"
        still = (await client.get(f"/cases/{second.case_id}")).json()
        assert still["status"] == "liste_attente"
        remaining = [e["case_id"] for e in (await client.get("/waitlists/60000_rebonds")).json()["entries"]]
        assert str(first.case_id) not in remaining and str(second.case_id) in remaining


async def test_handover_and_out_of_scope_keep_the_history(
    infra: Infra, settings: RoutingSettings, directory: tuple[Path, str]
) -> None:
    _, tag = directory
    async with running(create_app(settings), staff_headers(SS)) as client:
        redressement = received("redressement_judiciaire")
        await publish(infra, redressement)
        first = await decision(client, redressement)
        assert (first["association"], first["handover_watch"]) == ("second_souffle", True)
        assert first["antenna_id"] == f"second_souffle-lyon-{tag}"

        handover = RerouteRequested(
            requested_by="second_souffle",
            reason="transmission",
            procedure="liquidation_judiciaire",
            court_decision_date=(datetime.now(UTC) - timedelta(days=40)).date(),
        )
        await publish(infra, new_envelope(handover, case_id=redressement.case_id, producer="coaching"))
        second = await decision(client, redressement, sequence=2, what="handover")
        assert second["association"] == "60000_rebonds" and second["reroute_reason"] == "transmission"
        assert second["antenna_id"] == f"60000_rebonds-lyon-{tag}"
        assert second["previous"] == {
            **second["previous"],
            "sequence": 1,
            "association": "second_souffle",
            "antenna_id": f"second_souffle-lyon-{tag}",
        }
        assert second["reasons"][0] == "Transmission demandée par Second Souffle."

        out_of_scope = RerouteRequested(requested_by="60000_rebonds", reason="hors_champ")
        await publish(infra, new_envelope(out_of_scope, case_id=redressement.case_id, producer="coaching"))
        third = await decision(client, redressement, sequence=3, what="out of scope")
        assert third["association"] == "second_souffle" and third["reroute_reason"] == "hors_champ"
        body = (await client.get(f"/cases/{redressement.case_id}")).json()
        assert [h["association"] for h in body["history"]] == ["second_souffle", "60000_rebonds", "second_souffle"]
        assert body["situation"]["procedure"] == "liquidation_judiciaire"
        # Each re-routing let go of any place held before (places are held only against a capacity report).
        for antenna in (await client.get("/antennas")).json():
            if str(redressement.case_id) in antenna["held_by"]:
                assert antenna["id"] == f"second_souffle-lyon-{tag}", antenna["id"]


async def test_apesa_first_then_resumed_by_staff(infra: Infra, settings: RoutingSettings) -> None:
    async with running(create_app(settings), staff_headers(SR)) as client:
        distressed = received(acute_distress=True, apesa_consent=True)
        await publish(infra, distressed)
        first = await decision(client, distressed)
        assert first["status"] == "apesa_d_abord" and first["antenna_id"] is None
        assert first["association"] == "60000_rebonds"

        resumed = await client.post(f"/cases/{distressed.case_id}/reroute", json={"reason": "reprise_apres_apesa"})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["status"] == "oriente" and resumed.json()["sequence"] == 2
        again = await client.post(f"/cases/{distressed.case_id}/reroute", json={"reason": "reprise_apres_apesa"})
        assert again.status_code == 409 and again.json()["detail"] == "Ce dossier n'attend pas le retour d'APESA."
        missing = await client.post(f"/cases/{uuid.uuid4()}/reroute", json={"reason": "reprise_apres_apesa"})
        assert missing.status_code == 404
        other = await client.post(
            f"/cases/{distressed.case_id}/reroute", json={"reason": "reprise_apres_apesa"}, headers=staff_headers(SS)
        )
        assert other.status_code == 404  # held by 60 000 rebonds: Second Souffle's staff cannot even see it


async def test_unknown_commune_is_routed_then_placed_by_staff(infra: Infra, settings: RoutingSettings) -> None:
    async with running(create_app(settings), staff_headers(SS)) as client:
        lost = received("sauvegarde", postal_code="00000", commune="Inconnue")
        await publish(infra, lost, lost)  # delivered twice: decided once
        first = await decision(client, lost)
        assert (first["status"], first["association"], first["location_flagged"]) == (
            "localisation_a_verifier",
            "second_souffle",
            True,
        )

        no_place = await client.post(f"/cases/{lost.case_id}/reroute", json={"reason": "localisation_corrigee"})
        assert no_place.status_code == 422
        assert no_place.json()["errors"][0]["message"] == "Indiquez le code INSEE ou le code postal de la commune."
        fixed = await client.post(
            f"/cases/{lost.case_id}/reroute", json={"reason": "localisation_corrigee", "insee_code": "42218"}
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["status"] == "oriente" and fixed.json()["location_flagged"] is False
        body = (await client.get(f"/cases/{lost.case_id}")).json()
        assert len(body["history"]) == 2 and body["location"]["code"] == "42218"
        held = [a["id"] for a in (await client.get("/antennas")).json() if str(lost.case_id) in a["held_by"]]
        # No capacity report in this test: nothing to hold a place against, and nothing left held elsewhere.
        assert all(antenna.startswith("second_souffle-lyon-") for antenna in held) and len(held) <= 1


async def test_intake_fields_reach_routing_and_the_case_routed_topic(infra: Infra, settings: RoutingSettings) -> None:
    consumer = AIOKafkaConsumer(
        "relais.case-routed.v1",
        **infra.admin.client(),
        auto_offset_reset="latest",
        group_id=f"probe-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        await wait_for(lambda: _assigned(consumer), what="probe consumer assigned")
        intake = create_intake(infra.settings(IntakeSettings))
        async with running(create_app(settings), staff_headers(SR)) as routing, running(intake) as front:
            case = a_case()
            case["situation"] = {
                "procedure": "cession_a_la_barre",
                "postal_code": "74000",
                "commune": "Annecy",
                "insee_code": "74010",
                "naf_code": "43.21A",
                "company_size": "1_9",
            }
            submitted = await front.post("/cases", json=case)
            assert submitted.status_code == 201, submitted.text
            case_id = submitted.json()["case_id"]
            routed = await decision(routing, case_id)
            assert routed["antenna_id"].startswith("60000_rebonds-annecy-")
            stored = (await routing.get(f"/cases/{case_id}")).json()["situation"]
            assert (stored["sector_family"], stored["insee_code"]) == ("construction", "74010")

            async def on_topic() -> dict[str, Any] | None:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        envelope = json.loads(record.value)
                        if envelope["case_id"] == case_id:
                            return envelope["payload"]
                return None

            payload = await wait_for(on_topic, timeout=30, what="CaseRouted on Kafka")
            assert payload["antenna_id"] == routed["antenna_id"] and payload["status"] == "oriente"
            assert "Martin" not in json.dumps(payload)
    finally:
        await consumer.stop()


async def _assigned(consumer: AIOKafkaConsumer) -> bool:
    await consumer.getmany(timeout_ms=100)
    return bool(consumer.assignment())
