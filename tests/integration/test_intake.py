"""Intake on the real Kafka and FerretDB: a submission is stored and published once, bad input changes nothing."""

from __future__ import annotations

import json
import uuid

from pymongo import AsyncMongoClient

from ops.partners import issue_http_token
from services.intake.app import create_app
from services.intake.domain import case_id_for
from services.intake.settings import IntakeSettings
from services.intake.store import MongoPartnerCredentials
from shared.schemas import EVENTS, CaseReceived, decode
from tests.conftest import Infra, a_case, running
from tests.integration.conftest import Reader, document, headers_of, wait_relayed, without_personal_values

TOPIC = EVENTS["CaseReceived"].topic
CASE_FIELDS = ("status", "received_at", "situation", "referral", "personal", "fingerprint")


async def test_submission_is_stored_and_published_once_even_when_resubmitted(
    infra: Infra, reader: Reader, mongo: AsyncMongoClient
) -> None:
    settings = infra.settings(IntakeSettings)
    received = await reader(TOPIC)
    key = f"intake-it-{uuid.uuid4()}"
    async with running(create_app(settings)) as client:
        created = await client.post("/cases", json=a_case(), headers={"Idempotency-Key": key})
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        assert case_id == str(case_id_for(key))
        assert "Idempotent-Replayed" not in created.headers

        stored = await document(mongo, settings, "cases", case_id)
        assert stored is not None and stored["status"] == "received"
        assert stored["personal"]["first_name"] == "Jeanne" and stored["personal"]["siren"] == "732829320"

        [record] = await received.wait_keyed(case_id)
        envelope = decode(record.value, key=record.key, expected_type="CaseReceived")
        assert envelope.case_id == uuid.UUID(case_id) and envelope.producer == "intake"
        assert envelope.payload_as(CaseReceived).situation.procedure.value == "liquidation_judiciaire"
        headers = headers_of(record)
        assert headers["event-type"] == "CaseReceived" and headers["event-id"] == str(envelope.event_id)
        assert without_personal_values(json.dumps(headers, ensure_ascii=False) + record.key.decode())

        replayed = await client.post("/cases", json=a_case(), headers={"Idempotency-Key": key})
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["case_id"] == case_id
        assert replayed.headers["Idempotent-Replayed"] == "true"

        reused = await client.post(
            "/cases", json=a_case(message="Une autre demande."), headers={"Idempotency-Key": key}
        )
        assert reused.status_code == 422
        assert reused.json() == {"detail": "Cette clé d'idempotence a déjà servi pour une demande différente."}
        after = await document(mongo, settings, "cases", case_id)
        assert after is not None
        assert {k: after[k] for k in CASE_FIELDS} == {k: stored[k] for k in CASE_FIELDS}

        await wait_relayed(mongo, settings, "cases", case_id)
        assert len(await received.all_keyed(case_id)) == 1


async def test_submissions_without_a_key_are_distinct_cases(infra: Infra, mongo: AsyncMongoClient) -> None:
    settings = infra.settings(IntakeSettings)
    async with running(create_app(settings)) as client:
        first = await client.post("/cases", json=a_case())
        second = await client.post("/cases", json=a_case())
    assert first.status_code == second.status_code == 201
    assert first.json()["case_id"] != second.json()["case_id"]
    assert await mongo[settings.mongo_db]["cases"].count_documents({}) == 2


async def test_bad_requests_store_and_publish_nothing(infra: Infra, reader: Reader, mongo: AsyncMongoClient) -> None:
    settings = infra.settings(IntakeSettings, max_request_bytes=8192)
    received = await reader(TOPIC)
    keys = [f"intake-bad-{uuid.uuid4()}" for _ in range(4)]
    async with running(create_app(settings)) as client:
        invalid = await client.post("/cases", json=a_case(consent=False), headers={"Idempotency-Key": keys[0]})
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["field"] == "consent"
        wrong_type = await client.post(
            "/cases",
            content=json.dumps(a_case()).encode(),
            headers={"Idempotency-Key": keys[1], "Content-Type": "text/plain"},
        )
        assert wrong_type.status_code == 415
        oversize = await client.post("/cases", json=a_case(message="x" * 9000), headers={"Idempotency-Key": keys[2]})
        assert oversize.status_code == 413
        unknown = await client.post(
            "/cases",
            json=a_case(situation={"procedure": "faillite", "postal_code": "69003"}),
            headers={"Idempotency-Key": keys[3]},
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "situation.procedure"
    assert await mongo[settings.mongo_db]["cases"].count_documents({}) == 0
    await received.drain()
    for key in keys:
        assert received.keyed(case_id_for(key)) == []


async def test_reading_a_case(infra: Infra, mongo: AsyncMongoClient) -> None:
    settings = infra.settings(IntakeSettings)
    # Only the partner that referred the person reads the case back, with its token (`relais partners add`).
    token = await issue_http_token(MongoPartnerCredentials(mongo[settings.mongo_db]), "etude-dupont")
    async with running(create_app(settings), {"Authorization": f"Bearer {token}"}) as client:
        created = await client.post("/cases", json=a_case())
        case_id = created.json()["case_id"]
        assert (await client.get(f"/cases/{case_id}", headers={"Authorization": ""})).status_code == 401

        found = await client.get(f"/cases/{case_id}")
        assert found.status_code == 200
        view = found.json()
        assert view["case_id"] == case_id and view["status"] == "received"
        assert view["situation"]["procedure"] == "liquidation_judiciaire"
        assert view["referral_kind"] == "mandataire"
        assert without_personal_values(found.text), found.text

        unknown = await client.get(f"/cases/{uuid.uuid4()}")
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "Dossier introuvable."})

        invalid = await client.get("/cases/pas-un-identifiant")
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0] == {
            "field": "case_id",
            "message": "Identifiant invalide (UUID attendu).",
            "type": "uuid_parsing",
        }

        health = await client.get("/health")
        assert health.json() == {"status": "ok", "checks": {"kafka": True, "store": True}}
