"""Helpers of the coaching tests: one staff token per association, events in and out of the real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata

from services.coaching.auth import hash_token
from services.coaching.settings import CoachingSettings
from shared.broker import EVENT_TOPICS, ensure_topics
from shared.schemas import Association, CaseRouted, Envelope, EnvelopeError, PreviousDecision, decode, new_envelope
from shared.settings import ServiceSettings
from tests.conftest import STAFF_TOKENS, Infra, wait_for

SS, SR = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS
# Test-only tokens; each instance stores only the hash of its own association's token.
STAFF = STAFF_TOKENS


def staff(association: Association) -> dict[str, str]:
    """Headers of a staff member of `association`."""
    return {"Authorization": f"Bearer {STAFF[association][1]}"}


def unique_antenna(association: Association, city: str) -> str:
    """Antenna events of every test share one topic: each test gets antennas of its own."""
    return f"{association.value}-{city}-t{uuid.uuid4().hex[:6]}"


@dataclass
class StaffClient:
    """A staff member of one association calling its coaching instance."""

    client: httpx.AsyncClient
    association: Association
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def post(self, path: str, body: dict, expect: int | None = 200) -> dict:
        response = await self.client.post(path, json=body, headers=self.headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    async def patch(self, path: str, body: dict, expect: int | None = 200) -> dict:
        response = await self.client.patch(path, json=body, headers=self.headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    async def opened(self, case_id: uuid.UUID | str) -> dict:
        """The case file, once routing's decision has opened it here."""

        async def probe() -> dict | None:
            response = await self.get(f"/cases/{case_id}")
            return response.json() if response.status_code == 200 else None

        return await wait_for(probe, 30, f"case {case_id} opened by {self.association.value}")

    async def volunteer(self, volunteer_id: str, role: str, antenna_id: str, max_people: int = 2, **extra: Any) -> dict:
        body = {
            "volunteer_id": volunteer_id,
            "display_name": f"Bénévole {volunteer_id}",
            "role": role,
            "antenna_id": antenna_id,
            "sectors": ["commerce"],
            "max_people": max_people,
            **extra,
        }
        if role == "coach":
            body.setdefault("certified_until", str(datetime.now(UTC).date() + timedelta(days=365)))
        return await self.post("/volunteers", body, expect=201)


def coaching_settings(infra: Infra, association: Association, **overrides: Any) -> CoachingSettings:
    """A coaching instance of `association` on the test infrastructure, with its own database and group."""
    tag = uuid.uuid4().hex[:8]
    user, token = STAFF[association]
    return infra.settings(
        CoachingSettings,
        association=association,
        mongo_db=f"relais_coaching_{association.value}_{tag}",
        consumer_group=f"coaching-{association.value}-{tag}",
        staff_tokens={user: hash_token(token)},
        **overrides,
    )


def case_routed(
    association: Association,
    case_id: uuid.UUID | None = None,
    sequence: int = 1,
    received_at: datetime | None = None,
    previous: Association | None = None,
    **fields: Any,
) -> Envelope:
    """What routing publishes; `previous` names the association of the decision it replaces."""
    if previous is not None:
        fields["previous"] = PreviousDecision(sequence=sequence - 1, association=previous, rule="test")
    routed = CaseRouted(
        association=association,
        rule="test",
        reasons=["Décision de test"],
        routed_at=datetime.now(UTC),
        received_at=received_at or datetime.now(UTC),
        sequence=sequence,
        **fields,
    )
    return new_envelope(routed, case_id=case_id or uuid.uuid4(), producer="routing")


async def publish(infra: Infra, *envelopes: Envelope) -> list[RecordMetadata]:
    await ensure_topics(ServiceSettings(kafka_bootstrap=infra.bootstrap), EVENT_TOPICS, access=infra.admin)
    producer = AIOKafkaProducer(**infra.admin.client(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(
                e.spec.topic, e.encode(), key=e.key, headers=[(k, v.encode()) for k, v in e.headers().items()]
            )
            for e in envelopes
        ]
    finally:
        await producer.stop()


async def capacity_is(log: EventLog, antenna: str, expected: tuple[int, int]) -> bool:
    return await log.last_capacity(antenna) == expected


class EventLog:
    """Every event of the contract's topics from their beginning, read on demand outside any group."""

    def __init__(self, infra: Infra) -> None:
        self.infra = infra
        # Outside any group, a subscription is assigned every partition of its topics.
        self.consumer = AIOKafkaConsumer(
            *EVENT_TOPICS, **infra.admin.client(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self.partitions: list[TopicPartition] = []
        self.seen: list[Envelope] = []

    async def start(self) -> None:
        await ensure_topics(
            ServiceSettings(kafka_bootstrap=self.infra.bootstrap), EVENT_TOPICS, access=self.infra.admin
        )
        await self.consumer.start()

        async def assigned() -> set[TopicPartition] | None:
            partitions = self.consumer.assignment()
            return partitions if {tp.topic for tp in partitions} == set(EVENT_TOPICS) else None

        self.partitions = sorted(await wait_for(assigned, 20, "the contract's partitions"))

    async def stop(self) -> None:
        await self.consumer.stop()

    async def of(self, event_type: str, key: uuid.UUID | str) -> list[Envelope]:
        """The events of that type keyed by `key`, up to the current end of the topics."""
        ends = await self.consumer.end_offsets(self.partitions)
        while [tp for tp in self.partitions if await self.consumer.position(tp) < ends[tp]]:
            for batch in (await self.consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    try:
                        self.seen.append(decode(record.value or b"", key=record.key))
                    except EnvelopeError:  # other tests' poison messages
                        continue
        return [e for e in self.seen if e.event_type == event_type and e.key == str(key).encode()]

    async def wait(self, event_type: str, key: uuid.UUID | str, count: int = 1, timeout: float = 20) -> list[Envelope]:  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
        async def probe() -> list[Envelope] | None:
            found = await self.of(event_type, key)
            return found if len(found) >= count else None

        return await wait_for(probe, timeout, f"{count} {event_type} keyed {key}")

    async def last_capacity(self, antenna_id: str) -> tuple[int, int] | None:
        found = await self.of("AntennaCapacityChanged", antenna_id)
        return (found[-1].payload["coach_slots_free"], found[-1].payload["sponsor_slots_free"]) if found else None


@asynccontextmanager
async def event_log(infra: Infra) -> AsyncIterator[EventLog]:
    log = EventLog(infra)
    await log.start()
    try:
        yield log
    finally:
        await log.stop()


async def wait_consumed(infra: Infra, group: str, *sent: RecordMetadata, timeout: float = 20) -> None:  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
    """Wait until `group` has committed past every record in `sent` (their effects are then stored)."""
    admin = AIOKafkaAdminClient(**infra.admin.client())
    await admin.start()

    async def probe() -> bool:
        offsets = await admin.list_consumer_group_offsets(group)
        return all(
            (done := offsets.get(TopicPartition(m.topic, m.partition))) is not None and done.offset > m.offset
            for m in sent
        )

    try:
        await wait_for(probe, timeout, f"group {group} past {len(sent)} record(s)")
    finally:
        await admin.close()
