"""One trace per case, in memory: a request's span reaches the events it emits (outbox item headers), a
consumer continues it, and nothing personal goes into spans. Off by default."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from shared import tracing
from shared.consumer import EventConsumer
from shared.metrics import Metrics
from shared.outbox import outbox_items
from shared.schemas import EVENTS, Association, CaseRouted, new_envelope
from shared.settings import ServiceSettings
from tests.observability import ROOT

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    tracing.configure("test", "", exporter=EXPORTER)  # once per process; the global provider stays
    tracing.shutdown()
    EXPORTER.clear()
    return EXPORTER


def routed(case_id: uuid.UUID | None = None, cause=None):
    payload = CaseRouted(association=Association.SECOND_SOUFFLE, rule="r", reasons=["x"], routed_at=datetime.now(UTC))
    return new_envelope(payload, case_id=case_id or uuid.uuid4(), producer="routing", cause=cause)


def test_tracing_is_off_by_default_no_traceparent_is_written() -> None:
    code = (
        "from shared.bootstrap import ServiceRuntime\n"
        "from shared.settings import ServiceSettings\n"
        "from shared import tracing\n"
        "from shared.outbox import outbox_items\n"
        "from tests.unit.test_tracing import routed\n"
        "ServiceRuntime(ServiceSettings())\n"
        "with tracing.tracer().start_as_current_span('x'):\n"
        "    print(outbox_items([routed()])[0]['headers'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert "traceparent" not in headers and headers["event-type"] == "CaseRouted"


async def test_a_request_span_is_named_by_route_and_its_events_carry_its_trace(spans: InMemorySpanExporter) -> None:
    app = FastAPI(telemetry=tracing.FASTAPI_TELEMETRY_OFF)  # as ServiceRuntime.http_app builds it
    items = []

    @app.post("/cases/{case_id}/closing")
    async def close(case_id: uuid.UUID) -> dict:
        items.extend(outbox_items([routed(case_id)]))
        return {}

    app.add_middleware(tracing.TraceRequests)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        case_id = uuid.uuid4()
        assert (await client.post(f"/cases/{case_id}/closing?name=Martin")).status_code == 200
        await client.get("/health")
    tracing.shutdown()
    [span] = spans.get_finished_spans()
    assert span.name == "POST /cases/{case_id}/closing" and span.attributes is not None
    attributes = dict(span.attributes)
    assert attributes["http.response.status_code"] == 200
    assert str(case_id) not in json.dumps(attributes) and "Martin" not in json.dumps(attributes)
    trace_id = f"{span.context.trace_id:032x}"
    assert items[0]["headers"]["traceparent"].split("-")[1] == trace_id
    assert attributes["relais.correlation_id"] == json.loads(items[0]["value"])["correlation_id"]


async def test_a_consumer_continues_the_trace_of_the_event_and_passes_it_on(spans: InMemorySpanExporter) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    consumer = EventConsumer(broker, ServiceSettings(consumer_group="g"), Metrics("t", CollectorRegistry()))
    emitted = []

    async def handler(envelope) -> None:
        emitted.extend(outbox_items([routed(envelope.case_id, cause=envelope)]))

    consumer.on("CaseRouted", handler)
    consumer.subscribe()
    with tracing.tracer().start_as_current_span("POST /cases") as upstream:
        [item] = outbox_items([routed()])
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            item["value"].encode(), topic=EVENTS["CaseRouted"].topic, key=item["key"].encode(), headers=item["headers"]
        )
    tracing.shutdown()
    [process] = [s for s in spans.get_finished_spans() if s.name == "CaseRouted process"]
    trace_id = upstream.get_span_context().trace_id
    assert process.context.trace_id == trace_id
    assert process.parent is not None and process.parent.span_id == upstream.get_span_context().span_id
    assert process.attributes is not None
    attributes = dict(process.attributes)
    assert attributes["relais.correlation_id"] == json.loads(item["value"])["correlation_id"]
    assert attributes["messaging.destination.name"] == EVENTS["CaseRouted"].topic
    assert emitted[0]["headers"]["traceparent"].split("-")[1] == f"{trace_id:032x}"
