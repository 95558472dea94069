"""Kafka settings in one place: the broker every service uses, topic creation, and raw sends.

Producers are idempotent with `acks=all`; consumers start from the earliest offset and commit only after
the handler's effect is stored (manual acknowledgement in `shared.consumer`). Every client, FastStream's or
a raw aiokafka one, authenticates with the same `KafkaAccess`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLScram512

from shared.metrics import Metrics
from shared.schemas import EVENTS
from shared.settings import ServiceSettings

log = logging.getLogger("relais.broker")

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

    def client(self) -> dict[str, Any]:
        """`bootstrap_servers` plus `security()`: `AIOKafkaConsumer(topic, **access.client(), ...)`."""
        return {"bootstrap_servers": self.bootstrap, **self.security()}

    def faststream_security(self) -> BaseSecurity | None:
        if self.security_protocol == "PLAINTEXT":
            return None
        ssl = self.security_protocol == "SASL_SSL"
        return SASLScram512(self.username, self.password, use_ssl=ssl,
                            ssl_context=create_ssl_context(cafile=self.ssl_cafile or None) if ssl else None)


def kafka_access(settings: ServiceSettings) -> KafkaAccess:
    """The service's own principal, from its settings (the password from its file when one is named)."""
    password = settings.kafka_password.get_secret_value()
    if settings.kafka_password_file:
        password = Path(settings.kafka_password_file).read_text().strip()
    return KafkaAccess(settings.kafka_bootstrap, settings.kafka_username, password,
                       settings.kafka_security_protocol, settings.kafka_ssl_cafile)


def dead_letter_topic(consumer_group: str) -> str:
    return f"relais.dead-letter.{consumer_group}.v1"


def dead_letter_headers(original: dict[str, str], *, reason: str, kind: str, consumer_group: str,
                        source_topic: str, source_partition: int | None = None,
                        source_offset: int | None = None) -> dict[str, str]:
    """The original headers plus the `dlq-*` headers every dead letter carries (reason without personal data).

    Partition and offset are known when a consumed record fails; a failure found later (an email that
    could not be sent) names only the topic of the event that caused it.
    """
    headers = dict(original)
    headers.update({
        "dlq-reason": reason[:500],
        "dlq-reason-kind": kind,
        "dlq-source-topic": source_topic,
        "dlq-consumer-group": consumer_group,
        "dlq-failed-at": datetime.now(UTC).isoformat(),
    })
    if source_partition is not None:
        headers["dlq-source-partition"] = str(source_partition)
    if source_offset is not None:
        headers["dlq-source-offset"] = str(source_offset)
    return headers


def make_broker(settings: ServiceSettings, metrics: Metrics) -> KafkaBroker:
    access = kafka_access(settings)
    return KafkaBroker(
        access.bootstrap,
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
        logger=logging.getLogger("relais.faststream"),
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
        response = await admin.create_topics([
            NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication)
            for t in missing
        ])
        refused = {error[0]: error[1] for error in response.topic_errors
                   if error[1] not in (0, TopicAlreadyExistsError.errno)}
        if refused:  # e.g. a topic of the contract that the admin provisioning has not created
            topic, code = next(iter(refused.items()))
            raise for_code(code)(f"could not create {sorted(refused)}: {topic} refused with error {code}")
        log.info("topics created", extra={"topics": missing})
    finally:
        await admin.close()


async def send(broker: KafkaBroker, topic: str, key: bytes | None, value: bytes,
               headers: dict[str, str]) -> Awaitable[Any]:
    """Hand a record to the producer; the returned future resolves once the broker acknowledged it."""
    return await broker.publish(value, topic=topic, key=key, headers=headers, no_confirm=True)
