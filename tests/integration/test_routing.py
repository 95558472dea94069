"""Routing on the real Kafka and FerretDB: CaseReceived in, one CaseRouted out; poison to the dead-letter topic."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.routing.app import create_app
from services.routing.settings import RoutingSettings
from shared.broker import dead_letter_topic
from shared.schemas import EVENTS, Association, CaseReceived, CaseRouted, Envelope, decode, new_envelope
from shared.schemas.envelope import MAX_EVENT_BYTES
from shared.store import PROCESSED_FIELD
from tests.conftest import Infra, case_id_of, running, staff_headers, wait_for
from tests.integration.conftest import Reader, document, headers_of, publish, wait_consumed, wait_relayed

RECEIVED_TOPIC = EVENTS["CaseReceived"].topic
ROUTED_TOPIC = EVENTS["CaseRouted"].topic


def case_received(procedure: str, decided: date | None = None, message: str = "Besoin d'aide.") -> Envelope:
    payload = CaseReceived(
        situation={"procedure": procedure, "court_decision_date": decided, "postal_code": "38000"},
        referral={"kind": "tribunal", "organisation": "Tribunal des activités économiques de Lyon"},
        personal={"first_name": "Paul", "last_name": "Durand", "email": "paul.durand@example.fr", "message": message},
        received_at=datetime.now(UTC),
    )
    return new_envelope(payload, case_id=uuid.uuid4(), producer="intake")


async def test_received_cases_are_routed_to_the_right_association(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer
) -> None:
    routed = await reader(ROUTED_TOPIC)
    liquidation = case_received("liquidation_judiciaire", date(2025, 1, 15))
    sauvegarde = case_received("sauvegarde")
    redressement = case_received("redressement_judiciaire")
    staff = staff_headers(Association.SOIXANTE_MILLE_REBONDS)
    async with running(create_app(infra.settings(RoutingSettings)), staff) as client:
        for envelope in (liquidation, sauvegarde, redressement):
            await publish(producer, envelope)
        expected = [(liquidation, "60000_rebonds"), (sauvegarde, "second_souffle"), (redressement, "second_souffle")]
        for cause, association in expected:
            [record] = await routed.wait_keyed(case_id_of(cause))
            event = decode(record.value, key=record.key, expected_type="CaseRouted")
            decision = event.payload_as(CaseRouted)
            assert decision.association.value == association
            assert decision.rule == f"procedure:{cause.payload['situation']['procedure']}"
            assert event.causation_id == cause.event_id and event.correlation_id == cause.correlation_id
            assert decision.received_at == cause.payload_as(CaseReceived).received_at
            assert "Durand" not in record.value.decode()  # no personal data leaves routing

        [record] = routed.keyed(case_id_of(liquidation))
        reason = decode(record.value, key=record.key).payload_as(CaseRouted).reasons[0]
        assert reason.startswith("Liquidation judiciaire, décision du tribunal il y a ")
        [record] = routed.keyed(case_id_of(redressement))
        redressement_reasons = decode(record.value, key=record.key).payload_as(CaseRouted).reasons
        assert any("liquidation" in reason for reason in redressement_reasons[1:]), redressement_reasons

        view = (await client.get(f"/cases/{liquidation.case_id}")).json()
        assert view["association"] == "60000_rebonds" and len(view["history"]) == 1
        assert view["referral_kind"] == "tribunal"
        assert "Durand" not in json.dumps(view)
        missing = await client.get(f"/cases/{uuid.uuid4()}")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Dossier introuvable."})
        other = await client.get(f"/cases/{liquidation.case_id}", headers=staff_headers(Association.SECOND_SOUFFLE))
        assert (other.status_code, other.json()) == (404, {"detail": "Dossier introuvable."})
        anonymous = await client.get(f"/cases/{liquidation.case_id}", headers={"Authorization": ""})
        assert anonymous.status_code == 401


async def test_an_event_delivered_twice_is_routed_once(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer, admin: AIOKafkaAdminClient, mongo: AsyncMongoClient
) -> None:
    settings = infra.settings(RoutingSettings)
    routed = await reader(ROUTED_TOPIC)
    envelope = case_received("cession_a_la_barre")
    async with running(create_app(settings)):
        first = await publish(producer, envelope)
        second = await publish(producer, envelope)
        await wait_consumed(admin, settings.consumer_group, first, second)
        stored = await document(mongo, settings, "routes", envelope.case_id)
        assert stored is not None and len(stored["history"]) == 1
        assert stored[PROCESSED_FIELD] == [str(envelope.event_id)]
        await wait_relayed(mongo, settings, "routes", envelope.case_id)
        assert len(await routed.all_keyed(case_id_of(envelope))) == 1


def poison_messages(marker: str) -> dict[str, tuple[bytes, bytes | None, str]]:
    """name -> (value, key, expected start of the dlq-reason); each value carries `marker` to find it again."""

    def body(envelope: Envelope, **changes: object) -> bytes:
        data = json.loads(envelope.encode())
        data.update(changes)
        return json.dumps(data).encode()

    breaking = case_received("sauvegarde", message=marker)
    breaking_body = json.loads(breaking.encode())
    del breaking_body["payload"]["situation"]
    future = case_received("sauvegarde", message=marker)
    oversize = case_received("sauvegarde", message=marker + "x" * MAX_EVENT_BYTES)
    keyless = case_received("sauvegarde", message=marker)
    return {
        "not JSON": (f"pas du JSON {marker}".encode(), str(uuid.uuid4()).encode(), "invalid envelope:"),
        "breaking the schema": (
            json.dumps(breaking_body).encode(),
            breaking.key,
            "invalid CaseReceived payload: situation (missing)",
        ),
        "unknown schema version": (
            body(future, schema_version=7),
            future.key,
            "unsupported schema version 7 of CaseReceived",
        ),
        "oversize": (oversize.encode(), oversize.key, "oversize payload:"),
        "missing key": (keyless.encode(), None, "missing message key"),
    }


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_flow_goes_on(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer
) -> None:
    settings = infra.settings(RoutingSettings)
    routed = await reader(ROUTED_TOPIC)
    marker = f"poison-{uuid.uuid4()}"
    poison = poison_messages(marker)
    valid = case_received("conciliation")
    async with running(create_app(settings)):
        dead_letters = await reader(dead_letter_topic(settings.consumer_group))
        for value, key, _ in poison.values():
            await producer.send_and_wait(RECEIVED_TOPIC, value, key=key, headers=[("event-type", b"CaseReceived")])
        await publish(producer, valid)

        [record] = await routed.wait_keyed(case_id_of(valid))
        assert decode(record.value, key=record.key).payload_as(CaseRouted).association.value == "second_souffle"

        async def all_dead_lettered() -> list | None:
            await dead_letters.poll()
            mine = [r for r in dead_letters.records if marker.encode() in r.value]
            return mine if len(mine) >= len(poison) else None

        await wait_for(all_dead_lettered, 15, "every poison message on the dead-letter topic")

    by_value = {r.value: r for r in dead_letters.records}
    for name, (value, key, reason) in poison.items():
        assert value in by_value, f"{name}: original bytes not on the dead-letter topic"
        record = by_value[value]
        assert record.key == key, name
        headers = headers_of(record)
        assert headers["dlq-reason"].startswith(reason), (name, headers["dlq-reason"])
        assert "Durand" not in headers["dlq-reason"] and marker not in headers["dlq-reason"], name
        assert headers["dlq-reason-kind"] == "invalid"
        assert headers["dlq-source-topic"] == RECEIVED_TOPIC
        assert headers["dlq-consumer-group"] == settings.consumer_group
        assert headers["event-type"] == "CaseReceived"  # the original headers travel along
    # Only the poison of CaseReceived, once each (other tests' re-routing requests for cases this fresh
    # group never routed are dead-lettered too, from their own topic).
    from_received = [r for r in dead_letters.records if headers_of(r)["dlq-source-topic"] == RECEIVED_TOPIC]
    assert len(from_received) == len(poison)
    assert len(await routed.all_keyed(case_id_of(valid))) == 1
