"""Coaching on the real Kafka and FerretDB: a routed case opens a file; staff steps emit events or are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from services.coaching.app import create_app
from shared.schemas import EVENTS, Association, CaseClosed, CaseRouted, Envelope, decode, new_envelope
from tests.coaching_support import SR, coaching_settings, staff
from tests.conftest import Infra, case_id_of, running, wait_for
from tests.integration.conftest import Reader, document, publish, wait_relayed

RECEIVED_AT = datetime.now(UTC) - timedelta(days=30)


def case_routed(association: Association = Association.SOIXANTE_MILLE_REBONDS) -> Envelope:
    routed = CaseRouted(
        association=association,
        rule="procedure:liquidation_judiciaire",
        reasons=["Liquidation judiciaire → 60 000 rebonds"],
        routed_at=datetime.now(UTC),
        received_at=RECEIVED_AT,
    )
    return new_envelope(routed, case_id=uuid.uuid4(), producer="routing")


async def opened(client: httpx.AsyncClient, case_id: uuid.UUID) -> dict:
    async def probe() -> dict | None:
        response = await client.get(f"/cases/{case_id}")
        return response.json() if response.status_code == 200 else None

    return await wait_for(probe, 15, f"case file {case_id} opened")


async def test_a_routed_case_opens_a_file_and_a_declined_one_is_closed(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer
) -> None:
    closed = await reader(EVENTS["CaseClosed"].topic)
    routed = case_routed()
    async with running(create_app(coaching_settings(infra, SR))) as client:
        client.headers.update(staff(SR))
        await publish(producer, routed)
        file = await opened(client, case_id_of(routed))
        assert file["stage"] == "attente_comite" and file["association"] == "60000_rebonds"
        assert [entry["kind"] for entry in file["timeline"]] == ["oriente"]

        declined = await client.post(
            f"/cases/{routed.case_id}/committee-decision", json={"decision": "refuse", "reasons": ["Hors périmètre"]}
        )
        assert declined.status_code == 200, declined.text
        assert declined.json()["stage"] == "clos"

        [record] = await closed.wait_keyed(case_id_of(routed))
        event = decode(record.value, key=record.key, expected_type="CaseClosed").payload_as(CaseClosed)
        assert event.outcome.value == "refus_comite"
        assert event.journey_days == 30
        assert event.reasons == []  # the committee's reasons stay in the case file


async def test_impossible_steps_are_refused_and_change_nothing(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer, mongo: AsyncMongoClient
) -> None:
    settings = coaching_settings(infra, SR)
    topics = {name: await reader(EVENTS[name].topic) for name in ("CommitteeApproved", "SessionHeld", "CaseClosed")}
    routed = case_routed()
    case = f"/cases/{routed.case_id}"

    async def refused(path: str, body: dict, message: str) -> None:
        before = await document(mongo, settings, "case_files", routed.case_id)
        response = await client.post(f"{case}/{path}", json=body)
        assert (response.status_code, response.json()) == (409, {"detail": message})
        after = await document(mongo, settings, "case_files", routed.case_id)
        assert before is not None and after is not None
        assert after["version"] == before["version"] and after["timeline"] == before["timeline"]
        assert after["stage"] == before["stage"] and after["sessions"] == before["sessions"]

    async with running(create_app(settings)) as client:
        client.headers.update(staff(SR))
        await publish(producer, routed)
        await opened(client, case_id_of(routed))

        await refused("sessions", {"kind": "coaching"}, "Aucune séance avant l'accord du comité d'engagement.")
        await refused(
            "closing",
            {"outcome": "emploi_salarie"},
            "Avant le comité, un dossier ne peut être clos que par un abandon.",
        )

        approved = await client.post(f"{case}/committee-decision", json={"decision": "approuve"})
        assert approved.status_code == 200 and approved.json()["stage"] == "accompagnement"
        await refused(
            "committee-decision",
            {"decision": "refuse", "reasons": ["Hors périmètre"]},
            "Le comité d'engagement a déjà statué sur ce dossier.",
        )
        await refused(
            "closing", {"outcome": "refus_comite"}, "Un refus se prononce par la décision du comité d'engagement."
        )

        closing = await client.post(f"{case}/closing", json={"outcome": "abandon"})
        assert closing.status_code == 200 and closing.json()["stage"] == "clos"
        await refused("closing", {"outcome": "abandon"}, "Ce dossier est déjà clos.")
        await refused("sessions", {"kind": "coaching"}, "Ce dossier est clos : aucune nouvelle séance.")

        file = (await client.get(case)).json()
        assert [entry["kind"] for entry in file["timeline"]] == ["oriente", "comite", "cloture"]

        # Everything the file holds is published: only the two accepted steps caused events.
        await wait_relayed(mongo, settings, "case_files", routed.case_id)
        assert len(await topics["CommitteeApproved"].all_keyed(case_id_of(routed))) == 1
        assert await topics["SessionHeld"].all_keyed(case_id_of(routed)) == []
        [record] = await topics["CaseClosed"].all_keyed(case_id_of(routed))
        assert decode(record.value, key=record.key).payload_as(CaseClosed).outcome.value == "abandon"


async def test_unknown_case_and_invalid_input(infra: Infra) -> None:
    async with running(create_app(coaching_settings(infra, SR))) as client:
        client.headers.update(staff(SR))
        unknown = uuid.uuid4()
        for response in (
            await client.get(f"/cases/{unknown}"),
            await client.post(f"/cases/{unknown}/committee-decision", json={"decision": "approuve"}),
            await client.post(f"/cases/{unknown}/sessions", json={"kind": "coaching"}),
            await client.post(f"/cases/{unknown}/closing", json={"outcome": "abandon"}),
        ):
            assert (response.status_code, response.json()) == (404, {"detail": "Dossier introuvable."})

        invalid = await client.post(f"/cases/{unknown}/committee-decision", json={"decision": "peut-être"})
        assert invalid.status_code == 422
        [error] = invalid.json()["errors"]
        assert error["field"] == "decision"
        assert error["message"] == "Valeur inconnue. Valeurs possibles : 'approuve', 'refuse' ou 'ajourne'."
