"""`relais dlq list|replay`: inspect dead letters and re-inject them after a fix.

Listing shows where each message came from and why it failed, never its payload (it may hold personal
data). Replaying publishes the original bytes, key and headers back to the source topic; consumers are
idempotent, so groups that had already processed it ignore it. Replay progress is a consumer group of its
own (`relais-dlq-replay`), so a dead letter is replayed once. Both run as the admin principal: no service
may read dead letters, and a replay writes to any service's topics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from shared.broker import KafkaAccess

DLQ_PREFIX = "relais.dead-letter."
REPLAY_GROUP = "relais-dlq-replay"


@dataclass
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool

    @property
    def source(self) -> str:
        h = self.headers
        return (
            f"{h.get('dlq-source-topic', '?')}[{h.get('dlq-source-partition', '?')}]@{h.get('dlq-source-offset', '?')}"
        )

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers.items() if not k.startswith("dlq-")]


async def dead_letter_topics(access: KafkaAccess, group: str | None = None) -> list[str]:
    admin = AIOKafkaAdminClient(**access.client(), request_timeout_ms=10000)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith(DLQ_PREFIX))
    finally:
        await admin.close()
    if group:
        topics = [t for t in topics if t == f"{DLQ_PREFIX}{group}.v1"]
    return topics


async def read_all(access: KafkaAccess, topics: list[str]) -> list[DeadLetter]:
    """Every dead letter present now, marked replayed when the replay group has passed it."""
    if not topics:
        return []
    consumer = AIOKafkaConsumer(**access.client(), enable_auto_commit=False, group_id=REPLAY_GROUP)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        replayed_upto = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        letters: list[DeadLetter] = []
        for tp in partitions:
            consumer.seek(tp, 0)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000)
            if not batch:
                break
            for tp, records in batch.items():
                for r in records:
                    letters.append(
                        DeadLetter(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value or b"",
                            {k: v.decode(errors="replace") for k, v in (r.headers or [])},
                            replayed=r.offset < replayed_upto[tp],
                        )
                    )
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return sorted(letters, key=lambda d: (d.topic, d.partition, d.offset))
    finally:
        await consumer.stop()


async def replay(access: KafkaAccess, topics: list[str]) -> list[DeadLetter]:
    """Re-publish every dead letter not yet replayed to its source topic; record progress."""
    letters = [d for d in await read_all(access, topics) if not d.replayed]
    if not letters:
        return []
    producer = AIOKafkaProducer(**access.client(), acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(**access.client(), enable_auto_commit=False, group_id=REPLAY_GROUP)
    await producer.start()
    await consumer.start()
    try:
        progress: dict[TopicPartition, int] = {}
        for letter in letters:
            source = letter.headers.get("dlq-source-topic")
            if not source:
                continue
            await producer.send_and_wait(
                source,
                letter.value,
                key=letter.key,
                headers=[
                    *letter.original_headers(),
                    ("dlq-replayed-from", f"{letter.topic}[{letter.partition}]@{letter.offset}".encode()),
                ],
            )
            progress[TopicPartition(letter.topic, letter.partition)] = letter.offset + 1
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in progress.items()})
        return letters
    finally:
        await consumer.stop()
        await producer.stop()


def table(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    rows = [("dead-letter topic", "at", "source", "event", "failed at", "replayed", "reason")]
    for d in letters:
        rows.append(
            (
                d.topic.removeprefix(DLQ_PREFIX),
                f"{d.partition}@{d.offset}",
                d.source,
                d.headers.get("event-type", "?"),
                d.headers.get("dlq-failed-at", "")[:19],
                "yes" if d.replayed else "no",
                d.headers.get("dlq-reason", ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in rows)


def run(action: str, access: KafkaAccess, group: str | None) -> int:
    async def main() -> int:
        topics = await dead_letter_topics(access, group)
        if action == "list":
            print(table(await read_all(access, topics)))
        else:
            done = await replay(access, topics)
            print(f"replayed {len(done)} dead letter(s)")
            if done:
                print(table(done))
        return 0

    return asyncio.run(main())
