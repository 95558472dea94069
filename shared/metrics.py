"""One Prometheus registry per service: FastStream's broker metrics plus Relais business counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


@dataclass
class Metrics:
    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_handled = Counter(
            "relais_events_handled_total",
            "Events whose effect was stored, by type and result",
            ["event_type", "result"],
            registry=r,
        )
        self.handler_retries = Counter(
            "relais_handler_retries_total", "Handler attempts that failed and were retried", ["event_type"], registry=r
        )
        self.dead_letters = Counter(
            "relais_dead_letters_total",
            "Messages sent to the dead-letter topic, by topic and reason kind",
            ["topic", "reason"],
            registry=r,
        )
        self.events_published = Counter(
            "relais_outbox_published_total", "Events relayed from the outbox to Kafka", ["event_type"], registry=r
        )
        self.outbox_backlog = Gauge(
            "relais_outbox_backlog", "Events stored but not yet relayed (last scan)", registry=r
        )
        self.outbox_lag = Histogram(
            "relais_outbox_relay_seconds",
            "Time from an event's creation to its publication",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.business = Counter(
            "relais_business_events_total",
            "Steps of the referral flow seen by this service",
            ["step", "association"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "relais_consumer_lag",
            "Messages not yet processed by a consumer group, per partition",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.http_rejections = Counter(
            "relais_http_rejections_total", "HTTP requests refused, by status", ["status"], registry=r
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
