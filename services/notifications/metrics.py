"""Counters of the notifications service, in the service's own registry (exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.results = Counter(
            "relais_notifications_total",
            "Notification outcomes by recipient: sent, retried, failed (dead-lettered), opted_out, no_address, "
            "resent_in_doubt (taken over after DATA and sent again), assumed_sent (taken over, recorded as sent)",
            ["recipient", "result"],
            registry=registry,
        )
        self.feed_records = Counter(
            "relais_partner_feed_records_total",
            "Records written to the partner status feed, by status",
            ["status"],
            registry=registry,
        )

    def count(self, recipient: str, result: str) -> None:
        self.results.labels(recipient, result).inc()
