"""Idempotent event consumption with bounded retries and dead-lettering, used by every subscriber.

- An undecodable message (not JSON, wrong schema, unknown type or version, oversize, missing key) goes
  straight to the consumer group's dead-letter topic with its original bytes, headers and the reason.
- A handler error is retried with exponential backoff, then dead-lettered; the partition keeps flowing.
- An infrastructure outage (store or broker unreachable) is never the message's fault: the same message
  is retried until the infrastructure is back, and nothing is committed meanwhile.
Offsets are committed only after the handlers' effects are stored or the messages are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import StreamMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from opentelemetry.trace import Span
from pymongo.errors import ConnectionFailure

from shared import tracing
from shared.broker import dead_letter_headers, dead_letter_topic
from shared.metrics import Metrics
from shared.schemas import EVENTS, Envelope, EnvelopeError, decode
from shared.settings import ServiceSettings

log = logging.getLogger("relais.consumer")

Handler = Callable[[Envelope], Awaitable[None]]
TRANSIENT = (ConnectionFailure, KafkaError, ConnectionError, TimeoutError)


class DomainRejection(Exception):
    """A handler refuses an event for good (no retry): its message must be safe to log (no personal data)."""


async def _raw_body(msg: StreamMessage[Any]) -> Any:
    """FastStream's decoder hook: the body stays bytes, `shared.schemas.decode` reads it."""
    return msg.body


async def _tolerant_parser(
    records: ConsumerRecord | tuple[ConsumerRecord, ...],
    original: Callable[[Any], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream decodes headers as strict UTF-8; a record with binary headers would make it skip the
    record silently. Such headers are decoded with replacement instead, so the record is dead-lettered."""
    try:
        return await original(records)
    except UnicodeDecodeError:
        batch = records if isinstance(records, tuple) else (records,)
        cleaned = tuple(
            replace(r, headers=[(k, v.decode(errors="replace").encode()) for k, v in (r.headers or [])]) for r in batch
        )
        return await original(cleaned if isinstance(records, tuple) else cleaned[0])


class EventConsumer:
    def __init__(
        self, broker: KafkaBroker, settings: ServiceSettings, metrics: Metrics, group_id: str | None = None
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.group_id = group_id or settings.consumer_group or settings.service_name
        self.dead_letter_topic = dead_letter_topic(self.group_id)
        self.handlers: dict[str, tuple[str, Handler]] = {}
        self._subscribed = False

    def on(self, event_type: str, handler: Handler) -> None:
        """Route events of `event_type` to `handler` (call before the service starts)."""
        spec = EVENTS[event_type]
        self.handlers[spec.topic] = (event_type, handler)

    @property
    def topics(self) -> list[str]:
        return list(self.handlers)

    def subscribe(self) -> None:
        """One Kafka consumer for all of this service's topics: one group member, one rebalance.

        Records come in batches; one case's records are handled in order, different cases concurrently,
        and the batch's offsets are committed once every record's effect is stored or dead-lettered.
        """
        if not self.handlers or self._subscribed:
            return
        self._subscribed = True
        self._zero_metrics()

        @self.broker.subscriber(
            *self.handlers,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            batch=True,
            max_records=self.settings.consumer_batch_size,
            batch_timeout_ms=200,
            parser=_tolerant_parser,
            decoder=_raw_body,
            max_poll_interval_ms=10 * 60 * 1000,
            title=f"{self.group_id}",
        )
        async def consume(body: list[bytes], msg: KafkaMessage) -> None:
            await self._process_batch(msg.raw_message)
            await msg.ack()

    def _zero_metrics(self) -> None:
        """Every series a board or an alert reads exists from the start at 0, not only after a first failure."""
        for topic, (event_type, _) in self.handlers.items():
            self.metrics.handler_retries.labels(event_type)
            self.metrics.handler_seconds.labels(event_type)
            for result in ("ok", "dead_lettered"):
                self.metrics.events_handled.labels(event_type, result)
            for kind in ("invalid", "handler"):
                self.metrics.dead_letters.labels(topic, kind)

    async def _process_batch(self, records: tuple[ConsumerRecord, ...]) -> None:
        by_case: dict[bytes | None, list[ConsumerRecord]] = {}
        for record in records:
            by_case.setdefault(record.key, []).append(record)
        limit = asyncio.Semaphore(self.settings.consumer_concurrency)

        async def in_order(case_records: list[ConsumerRecord]) -> None:
            async with limit:
                for record in case_records:
                    await self._process(record)

        await asyncio.gather(*(in_order(group) for group in by_case.values()))

    async def _process(self, record: ConsumerRecord) -> None:
        """Store the record's effect, or dead-letter it; returns only when one of them is done."""
        event_type, handler = self.handlers[record.topic]
        try:
            envelope = decode(record.value or b"", key=record.key, expected_type=event_type)
        except EnvelopeError as exc:
            await self._dead_letter(record, str(exc), "invalid")
            return
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or [])}
        with tracing.consuming(
            record.topic,
            headers,
            event_type,
            {
                "messaging.consumer.group.name": self.group_id,
                "relais.event_id": str(envelope.event_id),
                "relais.correlation_id": str(envelope.correlation_id),
            },
        ) as span:
            await self._handle(record, envelope, event_type, handler, span)

    async def _handle(
        self, record: ConsumerRecord, envelope: Envelope, event_type: str, handler: Handler, span: Span
    ) -> None:
        attempt = 0
        outage = 0
        while True:
            started = time.perf_counter()
            try:
                await handler(envelope)
            except TRANSIENT as exc:
                outage += 1
                delay = self._backoff(outage)
                log.warning(
                    "infrastructure unavailable, retrying the same event",
                    extra={"event_id": str(envelope.event_id), "error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            except Exception as exc:  # noqa: BLE001 - any other failure is the message's: bounded retries
                attempt += 1
                if isinstance(exc, DomainRejection) or attempt >= self.settings.max_attempts:
                    tracing.failed(span, _reason(exc, attempt))
                    await self._dead_letter(record, _reason(exc, attempt), "handler")
                    self.metrics.events_handled.labels(event_type, "dead_lettered").inc()
                    return
                self.metrics.handler_retries.labels(event_type).inc()
                await asyncio.sleep(self._backoff(attempt))
                continue
            self.metrics.handler_seconds.labels(event_type).observe(time.perf_counter() - started)
            self.metrics.events_handled.labels(event_type, "ok").inc()
            return

    def _backoff(self, attempt: int) -> float:
        ms = min(self.settings.retry_backoff_ms * 2.0 ** (attempt - 1), self.settings.retry_backoff_max_ms)
        return ms / 1000

    async def _dead_letter(self, record: ConsumerRecord, reason: str, kind: str) -> None:
        headers = dead_letter_headers(
            {k: v.decode(errors="replace") for k, v in (record.headers or [])},
            reason=reason,
            kind=kind,
            consumer_group=self.group_id,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
        )
        outage = 0
        while True:
            try:
                await self.broker.publish(
                    record.value or b"", topic=self.dead_letter_topic, key=record.key, headers=headers
                )
                break
            except TRANSIENT:
                outage += 1
                await asyncio.sleep(self._backoff(outage))
        self.metrics.dead_letters.labels(record.topic, kind).inc()
        log.error(
            "message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason[:500],
                "dead_letter_topic": self.dead_letter_topic,
            },
        )


def _reason(exc: Exception, attempts: int) -> str:
    """Exception type and where it was raised; the message only for our own rejections (no data)."""
    if isinstance(exc, DomainRejection):
        return f"rejected: {exc}"
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}{where} after {attempts} attempts"
