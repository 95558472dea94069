"""Kafka settings in one place: the broker every service uses, topic creation, and raw sends.

Producers are idempotent with `acks=all`; consumers start from the earliest offset and commit only after
the handler's effect is stored (manual acknowledgement in `shared.consumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from shared.metrics import Metrics
from shared.schemas import EVENTS
from shared.settings import ServiceSettings

log = logging.getLogger("relais.broker")


class _AsDebug(logging.Filter):
    """Lowers to DEBUG the library messages that are expected at every start and mean nothing is wrong."""

    def __init__(self, *messages: str) -> None:
        super().__init__()
        self.messages = frozenset(messages)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and record.getMessage() in self.messages:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


# FastStream warns at each subscriber start that it will not create topics: `ensure_topics` already has.
_faststream_log = logging.getLogger("relais.faststream")
_faststream_log.addFilter(_AsDebug("Auto create topics is disabled. Make sure the topics exist."))

EVENT_TOPICS = tuple(spec.topic for spec in EVENTS.values())


def dead_letter_topic(consumer_group: str) -> str:
    return f"relais.dead-letter.{consumer_group}.v1"


def dead_letter_headers(
    original: dict[str, str],
    *,
    reason: str,
    kind: str,
    consumer_group: str,
    source_topic: str,
    source_partition: int | None = None,
    source_offset: int | None = None,
) -> dict[str, str]:
    """The original headers plus the `dlq-*` headers every dead letter carries (reason without personal data).

    Partition and offset are known when a consumed record fails; a failure found later (an email that
    could not be sent) names only the topic of the event that caused it.
    """
    headers = dict(original)
    headers.update(
        {
            "dlq-reason": reason[:500],
            "dlq-reason-kind": kind,
            "dlq-source-topic": source_topic,
            "dlq-consumer-group": consumer_group,
            "dlq-failed-at": datetime.now(UTC).isoformat(),
        }
    )
    if source_partition is not None:
        headers["dlq-source-partition"] = str(source_partition)
    if source_offset is not None:
        headers["dlq-source-offset"] = str(source_offset)
    return headers


def make_broker(settings: ServiceSettings, metrics: Metrics) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"relais-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        allow_auto_create_topics=False,
        request_timeout_ms=15000,
        graceful_timeout=10.0,
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=settings.service_name)],
        # FastStream logs through our JSON handler; per-message lines stay at DEBUG.
        logger=_faststream_log,
        log_level=logging.DEBUG,
    )


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str]) -> None:
    """Create the topics this service uses if they do not exist (idempotent, safe to race)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication)
                    for t in missing
                ]
            )
        log.info("topics created", extra={"topics": missing})
    finally:
        await admin.close()


async def wait_for_group_coordinator(settings: ServiceSettings, group_id: str, deadline_s: float = 60.0) -> bool:
    """Wait until Kafka's coordinator of `group_id` answers; False (and one error log) past the deadline.

    A broker that has just started creates and loads `__consumer_offsets` on the first group request; until
    then every lookup answers COORDINATOR_NOT_AVAILABLE or LOAD_IN_PROGRESS, which aiokafka's consumer logs
    as errors while it retries. Waiting here first keeps a start quiet, so that an error line always means
    something is wrong. Past the deadline the service starts anyway: the consumer keeps retrying on its own.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + deadline_s
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        pause, last = 0.05, ""
        while True:
            try:
                [response] = await admin.describe_consumer_groups([group_id])
                code = response.groups[0][0]  # DescribeGroups: (error_code, group, state, ...) per group
                if code == 0:
                    return True
                error: KafkaError = for_code(code)()
            except KafkaError as exc:  # the lookup itself answers COORDINATOR_NOT_AVAILABLE at first
                error = exc
            if not error.retriable:  # not a matter of time (authorisation, ...): the consumer will say it
                return True
            last = type(error).__name__
            if loop.time() + pause > deadline:
                log.error(
                    "Kafka's group coordinator did not answer: consuming starts when it does",
                    extra={"group": group_id, "waited_s": round(loop.time() - started, 1), "last_error": last},
                )
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
    finally:
        await admin.close()


async def send(
    broker: KafkaBroker, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
) -> Awaitable[Any]:
    """Hand a record to the producer; the returned future resolves once the broker acknowledged it."""
    return await broker.publish(value, topic=topic, key=key, headers=headers, no_confirm=True)
