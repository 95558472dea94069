"""One Prometheus registry per service: FastStream's broker metrics plus Relais delivery and flow metrics.

The names here are what `ops/prometheus/*.yml` and the boards in `ops/grafana/` query; the tests check
that every name those files use is one a service exports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from pymongo import monitoring

from shared.schemas import CaseClosed, CaseRouted, Envelope

log = logging.getLogger("relais.metrics")

# "A case is routed within one second" (ops/prometheus/slo.yml): 1 must stay a bucket boundary.
CASE_ROUTING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Events of the referral flow counted at publication, with the labels they carry (never personal data).
FLOW_EVENTS = ("CaseRouted", "CommitteeApproved", "SessionHeld", "CaseClosed")


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
        self.handler_seconds = Histogram(
            "relais_handler_seconds",
            "Duration of a successful handler attempt (the effect stored), by event type",
            ["event_type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
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
        self.http_requests = Counter(
            "relais_http_requests_total",
            "HTTP requests answered (health and metrics excepted), by method and status",
            ["method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "relais_http_request_seconds",
            "Time to answer an HTTP request (health and metrics excepted)",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.dependency_up = Gauge(
            "relais_dependency_up",
            "1 when the dependency answered the last readiness check, else 0",
            ["dependency"],
            registry=r,
        )
        self.dependency_seconds = Histogram(
            "relais_dependency_check_seconds",
            "Duration of a readiness check (ping) of a dependency",
            ["dependency"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_seconds = Histogram(
            "relais_store_command_seconds",
            "Duration of a database command, by command name and outcome",
            ["command", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.flow_events = Counter(
            "relais_flow_events_total",
            "Events of the referral flow published by this service (at least once), by association, antenna "
            "and outcome where the event has them",
            ["event_type", "association", "antenna", "outcome"],
            registry=r,
        )
        self.case_routing_seconds = Histogram(
            "relais_case_routing_seconds",
            "Time from a case's reception by intake to its first routing decision published",
            buckets=CASE_ROUTING_BUCKETS,
            registry=r,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def published(self, item: dict[str, Any], now: datetime | None = None) -> None:
        """Count an outbox item the relay has just published (`relay_seconds` set by the relay)."""
        self.events_published.labels(item["event_type"]).inc()
        self.outbox_lag.observe(item["relay_seconds"])
        if item["event_type"] in FLOW_EVENTS:
            self._flow(item, now or datetime.now(UTC))

    def _flow(self, item: dict[str, Any], now: datetime) -> None:
        try:
            envelope = Envelope.model_validate_json(item["value"])
            payload = envelope.typed()
        except (ValidationError, KeyError, ValueError):
            log.warning("unreadable outbox item not counted", extra={"event_id": item.get("event_id")})
            return
        antenna = getattr(payload, "antenna_id", None) or ""
        outcome = payload.outcome.value if isinstance(payload, CaseClosed) else ""
        association = getattr(payload, "association", None)
        self.flow_events.labels(envelope.event_type, association.value if association else "", antenna, outcome).inc()
        if isinstance(payload, CaseRouted) and payload.sequence == 1 and payload.received_at is not None:
            self.case_routing_seconds.observe(max(0.0, (now - payload.received_at).total_seconds()))

    def store_listener(self) -> monitoring.CommandListener:
        """A PyMongo command listener timing every database command into `relais_store_command_seconds`."""
        return _StoreCommandTimer(self.store_seconds)


class _StoreCommandTimer(monitoring.CommandListener):
    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.histogram.labels(event.command_name, "ok").observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.histogram.labels(event.command_name, "error").observe(event.duration_micros / 1e6)
