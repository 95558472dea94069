"""Kafka settings in one place: the broker every service uses, topic creation, and raw sends.

Producers are idempotent with `acks=all`; consumers start from the earliest offset and commit only after
the handler's effect is stored (manual acknowledgement in `shared.consumer`). Every client, FastStream's or
a raw aiokafka one, authenticates with the same `KafkaAccess`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLScram512

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
SASL_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True, repr=False)
class KafkaAccess:
    """Where the broker is and who this client is: the one place the security options are spelled out."""

    bootstrap: str
    username: str = ""
    password: str = ""
    security_protocol: str = "SASL_PLAINTEXT"
    ssl_cafile: str = ""

    def __repr__(self) -> str:  # never the password
        return f"KafkaAccess({self.bootstrap!r}, user={self.username!r}, {self.security_protocol})"

    def security(self) -> dict[str, Any]:
        """The aiokafka keyword arguments that authenticate this client (any producer, consumer or admin)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        if self.security_protocol == "SASL_SSL":
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile or None)
        return options

    @property
    def servers(self) -> list[str]:
        """The bootstrap servers one by one: `bootstrap` may list a cluster's brokers, comma-separated, which
        FastStream would pass on to aiokafka as a single host."""
        return [server.strip() for server in self.bootstrap.split(",") if server.strip()]

    def client(self) -> dict[str, Any]:
        """`bootstrap_servers` plus `security()`: `AIOKafkaConsumer(topic, **access.client(), ...)`."""
        return {"bootstrap_servers": self.servers, **self.security()}

    def faststream_security(self) -> BaseSecurity | None:
        if self.security_protocol == "PLAINTEXT":
            return None
        ssl = self.security_protocol == "SASL_SSL"
        return SASLScram512(
            self.username,
            self.password,
            use_ssl=ssl,
            ssl_context=create_ssl_context(cafile=self.ssl_cafile or None) if ssl else None,
        )


def kafka_access(settings: ServiceSettings) -> KafkaAccess:
    """The service's own principal, from its settings (the password from its file when one is named)."""
    password = settings.kafka_password.get_secret_value()
    if settings.kafka_password_file:
        password = Path(settings.kafka_password_file).read_text().strip()
    return KafkaAccess(
        settings.kafka_bootstrap,
        settings.kafka_username,
        password,
        settings.kafka_security_protocol,
        settings.kafka_ssl_cafile,
    )


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
    access = kafka_access(settings)
    return KafkaBroker(
        access.servers,
        security=access.faststream_security(),
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


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str], access: KafkaAccess | None = None) -> None:
    """Create the topics if they do not exist (idempotent, safe to race).

    A service may create only its own dead-letter topics (shared/topology.py); a topic it may not describe
    looks missing to it, and creating it is refused by the broker.
    """
    access = access or kafka_access(settings)
    admin = AIOKafkaAdminClient(**access.client(), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication)
                for t in missing
            ]
        )
        refused = {
            error[0]: error[1] for error in response.topic_errors if error[1] not in (0, TopicAlreadyExistsError.errno)
        }
        if refused:  # e.g. a topic of the contract that the admin provisioning has not created
            topic, code = next(iter(refused.items()))
            raise for_code(code)(f"could not create {sorted(refused)}: {topic} refused with error {code}")
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
    admin = AIOKafkaAdminClient(**kafka_access(settings).client(), request_timeout_ms=5000)
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
