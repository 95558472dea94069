"""The shared metrics plumbing: readiness gauges, flow counters and the routing latency at publication,
HTTP request counts, handler timings and the series that exist before the first failure."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry
from pymongo import monitoring

from shared.consumer import EventConsumer
from shared.http import RequestMetrics
from shared.metrics import Metrics
from shared.outbox import outbox_items
from shared.readiness import DependencyMonitor
from shared.schemas import (
    Association,
    CaseClosed,
    CaseRouted,
    Outcome,
    RoutingStatus,
    new_envelope,
)
from shared.settings import ServiceSettings


def metrics() -> Metrics:
    return Metrics("test", CollectorRegistry())


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def test_dependency_gauges_follow_the_checks_and_a_hanging_probe_counts_as_down() -> None:
    m = metrics()
    store_up = True

    async def store() -> bool:
        return store_up

    async def kafka() -> bool:
        await asyncio.sleep(10)
        return True

    monitor = DependencyMonitor({"store": store, "kafka": kafka}, m, interval_s=60, timeout_s=0.05)
    assert await monitor.check() == {"store": True, "kafka": False}
    assert value(m, "relais_dependency_up", dependency="store") == 1
    assert value(m, "relais_dependency_up", dependency="kafka") == 0
    store_up = False
    assert (await monitor.check())["store"] is False
    assert value(m, "relais_dependency_up", dependency="store") == 0
    assert value(m, "relais_dependency_check_seconds_count", dependency="store") == 2


async def test_dependency_checks_run_in_the_background_without_any_request() -> None:
    m = metrics()
    calls = 0

    async def store() -> bool:
        nonlocal calls
        calls += 1
        raise ConnectionError("away")

    monitor = DependencyMonitor({"store": store}, m, interval_s=0.01)
    await monitor.start()
    try:
        for _ in range(200):
            if calls >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await monitor.stop()
    assert calls >= 3
    assert value(m, "relais_dependency_up", dependency="store") == 0


def published(envelope, relay_seconds: float = 0.01) -> dict:
    (item,) = outbox_items([envelope])
    return {**item, "relay_seconds": relay_seconds}


def routed(sequence: int = 1, received_ago_s: float = 0.4, now: datetime | None = None) -> CaseRouted:
    now = now or datetime.now(UTC)
    return CaseRouted(
        association=Association.SOIXANTE_MILLE_REBONDS,
        rule="r",
        reasons=["x"],
        routed_at=now,
        received_at=now - timedelta(seconds=received_ago_s),
        sequence=sequence,
        status=RoutingStatus.ORIENTED,
        antenna_id="60000_rebonds-lyon",
    )


def test_first_routing_is_timed_from_reception_and_counted_per_association_and_antenna() -> None:
    m = metrics()
    now = datetime.now(UTC)
    m.published(
        published(new_envelope(routed(received_ago_s=0.4, now=now), case_id=uuid.uuid4(), producer="routing")), now=now
    )
    m.published(
        published(
            new_envelope(routed(sequence=2, received_ago_s=86400, now=now), case_id=uuid.uuid4(), producer="routing")
        ),
        now=now,
    )
    assert value(m, "relais_case_routing_seconds_count") == 1  # the re-routing is not a first routing
    assert value(m, "relais_case_routing_seconds_bucket", le="0.5") == 1
    assert value(m, "relais_case_routing_seconds_bucket", le="0.25") == 0
    assert (
        value(
            m,
            "relais_flow_events_total",
            event_type="CaseRouted",
            association="60000_rebonds",
            antenna="60000_rebonds-lyon",
            outcome="",
        )
        == 2
    )
    assert value(m, "relais_outbox_published_total", event_type="CaseRouted") == 2
    assert value(m, "relais_outbox_relay_seconds_count") == 2


def test_closed_cases_are_counted_by_outcome() -> None:
    m = metrics()
    closed = CaseClosed(
        association=Association.SECOND_SOUFFLE,
        outcome=Outcome.NEW_BUSINESS,
        closed_on=datetime.now(UTC).date(),
        journey_days=40,
    )
    m.published(published(new_envelope(closed, case_id=uuid.uuid4(), producer="coaching")))
    assert (
        value(
            m,
            "relais_flow_events_total",
            event_type="CaseClosed",
            association="second_souffle",
            antenna="",
            outcome=Outcome.NEW_BUSINESS.value,
        )
        == 1
    )


def test_an_unreadable_flow_item_is_counted_as_published_only() -> None:
    m = metrics()
    m.published({"event_type": "CaseRouted", "event_id": "x", "value": "{not json", "relay_seconds": 0.1})
    assert value(m, "relais_outbox_published_total", event_type="CaseRouted") == 1
    assert value(m, "relais_case_routing_seconds_count") == 0


def test_store_commands_are_timed_by_name_and_outcome() -> None:
    m = metrics()
    listener = m.store_listener()
    assert isinstance(listener, monitoring.CommandListener)

    class Event:
        command_name, duration_micros = "find", 2500

    listener.succeeded(Event())  # type: ignore[arg-type]
    listener.failed(Event())  # type: ignore[arg-type]
    assert value(m, "relais_store_command_seconds_count", command="find", outcome="ok") == 1
    assert value(m, "relais_store_command_seconds_sum", command="find", outcome="error") == 0.0025


async def test_requests_are_counted_by_status_an_error_as_500_and_probes_not_at_all() -> None:
    m = metrics()
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict:
        return {}

    @app.get("/missing")
    async def missing() -> dict:
        raise HTTPException(404)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("boom")

    @app.get("/health")
    async def health() -> dict:
        return {}

    app.add_middleware(RequestMetrics, metrics=m)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/ok", "/ok", "/missing", "/boom", "/health"):
            await client.get(path)
    assert value(m, "relais_http_requests_total", method="GET", status="200") == 2
    assert value(m, "relais_http_requests_total", method="GET", status="404") == 1
    assert value(m, "relais_http_requests_total", method="GET", status="500") == 1
    assert value(m, "relais_http_request_seconds_count", method="GET") == 4


async def test_consumer_series_exist_at_zero_before_any_failure_and_handlers_are_timed() -> None:
    from faststream.kafka import KafkaBroker, TestKafkaBroker

    from shared.schemas import EVENTS

    m = metrics()
    broker = KafkaBroker("127.0.0.1:1")
    consumer = EventConsumer(broker, ServiceSettings(consumer_group="g"), m)
    handled = []

    async def handler(envelope) -> None:
        handled.append(envelope.event_id)

    consumer.on("CaseRouted", handler)
    consumer.subscribe()
    topic = EVENTS["CaseRouted"].topic
    for kind in ("invalid", "handler"):
        assert value(m, "relais_dead_letters_total", topic=topic, reason=kind) == 0
    assert value(m, "relais_handler_retries_total", event_type="CaseRouted") == 0
    envelope = new_envelope(routed(), case_id=uuid.uuid4(), producer="routing")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(envelope.encode(), topic=topic, key=envelope.key, headers=envelope.headers())
    assert handled == [envelope.event_id]
    assert value(m, "relais_handler_seconds_count", event_type="CaseRouted") == 1
    assert value(m, "relais_events_handled_total", event_type="CaseRouted", result="ok") == 1
