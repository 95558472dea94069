"""The outbox after a crash: events stored but never published go out when the service starts again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.outbox import PROGRESS_COLLECTION, OutboxRelay, new_outbox, with_outbox
from shared.schemas import EVENTS, CaseReceived, Envelope, decode, new_envelope
from tests.conftest import Infra, case_id_of, running, wait_for
from tests.integration.conftest import Reader, wait_relayed

TOPIC = EVENTS["CaseReceived"].topic


def case_received(case_id: uuid.UUID) -> Envelope:
    payload = CaseReceived(
        situation={"procedure": "conciliation", "postal_code": "63000"},
        referral={"kind": "self"},
        personal={"first_name": "Inès", "last_name": "Roux", "phone": "0612345678"},
        received_at=datetime.now(UTC),
    )
    return new_envelope(payload, case_id=case_id, producer="intake")


def a_crashed_case(*events: Envelope) -> dict:
    """A case document as intake writes it, with its events in the outbox, as a crash leaves it."""
    first = events[0]
    return {
        "_id": str(first.case_id),
        "status": "received",
        "received_at": datetime.now(UTC),
        "situation": first.payload["situation"],
        "referral": first.payload["referral"],
        "personal": first.payload["personal"],
        "fingerprint": "crash-test",
        **new_outbox(list(events)),
    }


async def test_unsent_events_are_published_when_the_service_starts(
    infra: Infra, reader: Reader, mongo: AsyncMongoClient
) -> None:
    settings = infra.settings(IntakeSettings)
    db = mongo[settings.mongo_db]
    received = await reader(TOPIC)

    # Never published: the process died right after the write.
    unsent = case_received(uuid.uuid4())
    # Two events, the relay had published the first one before the crash.
    half_id = uuid.uuid4()
    half_sent, half_unsent = case_received(half_id), case_received(half_id)
    # Fully published before the crash: must not go out again.
    sent = case_received(uuid.uuid4())
    await db["cases"].insert_many(
        [a_crashed_case(unsent), a_crashed_case(half_sent, half_unsent), a_crashed_case(sent)]
    )
    await db[PROGRESS_COLLECTION].insert_many(
        [{"_id": f"cases:{half_id}", "published": 1}, {"_id": f"cases:{sent.case_id}", "published": 1}]
    )

    async with running(create_app(settings)):
        [record] = await received.wait_keyed(case_id_of(unsent))
        assert decode(record.value, key=record.key).event_id == unsent.event_id
        [record] = await received.wait_keyed(half_id)
        assert decode(record.value, key=record.key).event_id == half_unsent.event_id

        await wait_relayed(mongo, settings, "cases", unsent.case_id)
        await wait_relayed(mongo, settings, "cases", half_id)

    await received.drain()
    assert [r.value for r in received.keyed(case_id_of(unsent))] == [unsent.encode()]
    assert [decode(r.value, key=r.key).event_id for r in received.keyed(half_id)] == [half_unsent.event_id]
    assert received.keyed(case_id_of(sent)) == []
    # The outbox is the document's event history: it stays, the progress says what went out.
    half = await db["cases"].find_one({"_id": str(half_id)})
    assert half is not None and half["outbox_count"] == 2


async def test_an_event_stored_while_its_document_is_being_relayed_is_not_left_behind(
    infra: Infra, reader: Reader, producer: AIOKafkaProducer, mongo: AsyncMongoClient
) -> None:
    """A write notified while the relay publishes the same document must get its own round.

    The relay's periodic scan would find it eventually; the scan is pushed out of reach here so that only
    the writer's notification can get the second event out.
    """
    received = await reader(TOPIC)
    cases = mongo[f"relay_{uuid.uuid4().hex[:8]}"]["cases"]
    case_id = uuid.uuid4()
    first, second = case_received(case_id), case_received(case_id)
    await cases.insert_one(a_crashed_case(first))

    publishing, release = asyncio.Event(), asyncio.Event()

    async def send(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> Awaitable[Any]:
        publishing.set()
        await release.wait()  # the relay is held in the middle of publishing `first`
        return await producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])

    relay = OutboxRelay(send, scan_interval_s=3600)
    relay.watch(cases)
    await relay.start()
    try:

        async def held() -> bool:
            return publishing.is_set()

        await wait_for(held, 10, "the relay to start publishing")
        await cases.update_one({"_id": str(case_id)}, with_outbox({}, [second]))
        relay.notify(cases, str(case_id))
        release.set()
        records = await received.wait_keyed(case_id, count=2, timeout=10)
        assert [decode(r.value, key=r.key).event_id for r in records] == [first.event_id, second.event_id]
    finally:
        await relay.stop()


async def test_stop_returns_when_a_write_notifies_the_relay_as_it_stops(
    infra: Infra, producer: AIOKafkaProducer, mongo: AsyncMongoClient
) -> None:
    """A service shutting down just as a request or a handler notifies the relay must still stop.

    On Python 3.11, `asyncio.wait_for` loses a cancellation that arrives together with the result it
    waits for; the relay then went on waiting for its next scan and `stop()` never returned.
    """
    cases = mongo[f"relay_{uuid.uuid4().hex[:8]}"]["cases"]
    scanned = asyncio.Event()

    async def send(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> Awaitable[Any]:
        return await producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])

    relay = OutboxRelay(send, scan_interval_s=3600, on_backlog=lambda _: scanned.set())
    relay.watch(cases)
    await relay.start()

    async def idle() -> bool:  # scanned at start, then waiting for a notification
        return scanned.is_set()

    await wait_for(idle, 10, "the relay's first scan")
    relay.notify(cases, str(uuid.uuid4()))
    stopping = asyncio.create_task(relay.stop())
    try:

        async def stopped() -> bool:
            return stopping.done()

        await wait_for(stopped, 10, "OutboxRelay.stop() to return")
    finally:
        if not stopping.done():  # cancelling stop() cancels the relay again, so that the session goes on
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
