"""Helpers of the integration tests: publish to and read from the session's real Kafka, read FerretDB.

Topics are shared by every test of the session (services read them from the earliest offset), so tests
name their own case ids and filter what they read by key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata
from pymongo import AsyncMongoClient

from shared.broker import EVENT_TOPICS, KafkaAccess, ensure_topics
from shared.outbox import OUTBOX_COUNT_FIELD, PROGRESS_COLLECTION
from shared.outbox import _progress_id as progress_id
from shared.schemas import Envelope
from shared.settings import ServiceSettings
from tests.conftest import Infra, wait_for

# The personal values of `a_case()`: none may appear in Kafka keys or headers, or in what APIs return.
PERSONAL_VALUES = (
    "Jeanne",
    "Martin",
    "jeanne.martin@example.fr",
    "06 12 34 56 78",
    "Boulangerie",
    "732829320",
    "Je cherche à rebondir",
)


class TopicReader:
    """Every record of one topic from its beginning, fetched on demand by a consumer outside any group."""

    def __init__(self, access: KafkaAccess, topic: str) -> None:
        self.topic = topic
        self.records: list[ConsumerRecord] = []
        # Outside any group, a subscription is assigned every partition of the topic.
        self._consumer = AIOKafkaConsumer(
            topic,
            **access.client(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._consumer.start()

        async def assigned() -> set[TopicPartition]:
            return self._consumer.assignment()

        self._partitions = sorted(await wait_for(assigned, 10, f"partitions of {self.topic}"))

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 100) -> None:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        for batch in batches.values():
            self.records.extend(batch)

    async def drain(self, timeout: float = 10) -> None:  # noqa: ASYNC109 - on expiry it names the topic it could not read (asyncio.timeout would not)
        """Read up to the end of every partition as it is now."""
        ends = await self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout
        while True:
            positions = {tp: await self._consumer.position(tp) for tp in self._partitions}
            if all(positions[tp] >= ends[tp] for tp in self._partitions):
                return
            assert time.monotonic() < deadline, f"could not read {self.topic} to its end"
            await self.poll(200)

    def keyed(self, key: uuid.UUID | str | bytes) -> list[ConsumerRecord]:
        key = key if isinstance(key, bytes) else str(key).encode()
        return [r for r in self.records if r.key == key]

    async def wait_keyed(
        self,
        key: uuid.UUID | str | bytes,
        count: int = 1,
        timeout: float = 15,  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
    ) -> list[ConsumerRecord]:
        """Wait until at least `count` records carry `key`; return them."""

        async def probe() -> list[ConsumerRecord] | None:
            await self.poll()
            found = self.keyed(key)
            return found if len(found) >= count else None

        return await wait_for(probe, timeout, f"{count} record(s) keyed {key!r} on {self.topic}")

    async def all_keyed(self, key: uuid.UUID | str | bytes) -> list[ConsumerRecord]:
        """Every record with `key` on the topic right now (read to the end first)."""
        await self.drain()
        return self.keyed(key)


Reader = Callable[[str], Awaitable[TopicReader]]


def headers_of(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


@pytest.fixture(scope="session")
async def event_topics(infra: Infra) -> None:
    """The topics of the contract exist before a test reads or writes them (the provisioning created them)."""
    await ensure_topics(ServiceSettings(kafka_bootstrap=infra.bootstrap), EVENT_TOPICS, access=infra.admin)


@pytest.fixture
async def reader(infra: Infra, event_topics: None) -> AsyncIterator[Reader]:
    """`await reader(topic)` gives a started TopicReader, stopped at the end of the test."""
    started: list[TopicReader] = []

    async def make(topic: str) -> TopicReader:
        topic_reader = TopicReader(infra.admin, topic)
        started.append(topic_reader)
        await topic_reader.start()
        return topic_reader

    yield make
    for topic_reader in started:
        await topic_reader.stop()


@pytest.fixture(scope="session")
async def producer(infra: Infra, event_topics: None) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(
        **infra.admin.client(), acks="all", enable_idempotence=True, max_request_size=2 * 1024 * 1024
    )
    await kafka.start()
    yield kafka
    await kafka.stop()


async def publish(producer: AIOKafkaProducer, envelope: Envelope) -> RecordMetadata:
    """Publish an envelope the way the services do: on its topic, keyed by its case id, with its headers."""
    return await producer.send_and_wait(
        envelope.spec.topic,
        envelope.encode(),
        key=envelope.key,
        headers=[(k, v.encode()) for k, v in envelope.headers().items()],
    )


@pytest.fixture(scope="session")
async def admin(infra: Infra) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**infra.admin.client())
    await client.start()
    yield client
    await client.close()


async def wait_consumed(admin: AIOKafkaAdminClient, group: str, *sent: RecordMetadata, timeout: float = 15) -> None:  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
    """Wait until `group` has committed past every record in `sent` (their effects are then stored)."""

    async def probe() -> bool:
        offsets = await admin.list_consumer_group_offsets(group)
        return all(
            (committed := offsets.get(TopicPartition(m.topic, m.partition))) is not None and committed.offset > m.offset
            for m in sent
        )

    await wait_for(probe, timeout, f"consumer group {group} to commit past {len(sent)} record(s)")


@pytest.fixture(scope="session")
async def mongo(infra: Infra) -> AsyncIterator[AsyncMongoClient]:
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_url, tz_aware=True, uuidRepresentation="standard")
    yield client
    await client.close()


def without_personal_values(text: str) -> bool:
    return not any(value in text for value in PERSONAL_VALUES)


def document(client: AsyncMongoClient, settings: Any, collection: str, doc_id: Any) -> Awaitable[dict | None]:
    return client[settings.mongo_db][collection].find_one({"_id": str(doc_id)})


async def wait_relayed(
    client: AsyncMongoClient,
    settings: Any,
    collection: str,
    doc_id: Any,
    timeout: float = 15,  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
) -> None:
    """Wait until the outbox relay has published every event stored in the document (then counting is final)."""
    db = client[settings.mongo_db]

    state: dict[str, Any] = {}

    async def probe() -> bool:
        doc = await db[collection].find_one({"_id": str(doc_id)}, {OUTBOX_COUNT_FIELD: 1})
        progress = await db[PROGRESS_COLLECTION].find_one({"_id": progress_id(collection, str(doc_id))})
        state.update(stored=(doc or {}).get(OUTBOX_COUNT_FIELD), published=(progress or {}).get("published"))
        return bool(doc and progress and progress["published"] >= doc.get(OUTBOX_COUNT_FIELD, 0))

    try:
        await wait_for(probe, timeout, f"the outbox of {collection}/{doc_id} to be relayed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {state}") from None
