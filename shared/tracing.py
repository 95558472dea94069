"""One trace per case across HTTP and Kafka (OpenTelemetry), exported over OTLP when configured.

Off by default: without the `OTLP_ENDPOINT` setting no tracer provider is installed, every span is a
no-op and no `traceparent` is written. With it, each service exports its spans over OTLP/HTTP, and
- an HTTP request continues the caller's trace (W3C `traceparent`) or starts one;
- every event a request or a handler emits carries the current `traceparent` in its outbox item's headers,
  so the relay publishes it with the event whenever it runs (`shared.outbox.outbox_items`);
- a consumer continues the trace of the event it handles (`shared.consumer`).
So a case's reception, routing, opening by coaching and emails are one trace. A staff action in coaching
is a request of its own and starts its own trace; the correlation id still ties its events to the case.
Only W3C trace context is propagated (no baggage), and span attributes are names and ids (route, topic,
event type and id, correlation id): never personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # FastAPI before 0.165 has no fastapi.telemetry
    from fastapi.telemetry import TelemetryConfig

log = logging.getLogger("relais.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()
_UNTRACED_PATHS = frozenset({"/health", "/metrics"})
_provider: Any = None
# Passed to FastAPI(telemetry=...): its built-in spans, metrics and logs stay off (older FastAPI ignores it).
FASTAPI_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def configure(service: str, endpoint: str, *, exporter: Any = None) -> bool:
    """Install this process' tracer provider once: OTLP/HTTP to `endpoint` (`http://host:4318`), or
    `exporter` (tests). Returns whether tracing is on."""
    global _provider
    if _provider is not None:
        return True
    if not endpoint and exporter is None:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": f"relais-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on", extra={"otlp_endpoint": endpoint or "in-process"})
    return True


def shutdown() -> None:
    """Export the spans still buffered (at service stop)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def tracer() -> trace.Tracer:
    return trace.get_tracer("relais")


def trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span; empty when tracing is off or no span is current."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def emitting(correlation_ids: Iterable[str]) -> dict[str, str]:
    """Headers for events emitted now; the current span records their correlation id(s)."""
    span = trace.get_current_span()
    if span.is_recording():
        ids = sorted(set(correlation_ids))
        if ids:
            span.set_attribute("relais.correlation_id", ids[0] if len(ids) == 1 else ",".join(ids))
    return trace_headers()


@contextmanager
def consuming(topic: str, headers: Mapping[str, str], event_type: str, attributes: Mapping[str, str]) -> Iterator[Span]:
    """The span of one consumed event, child of the span that emitted it (its `traceparent` header)."""
    parent = _PROPAGATOR.extract(dict(headers))
    with tracer().start_as_current_span(
        f"{event_type} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            **attributes,
        },
    ) as span:
        yield span


def failed(span: Span, reason: str) -> None:
    span.set_status(Status(StatusCode.ERROR, reason[:200]))


class TraceRequests:
    """ASGI middleware: one server span per request (health and metrics excepted), named after the route
    template (`POST /cases/{case_id}/closing`), never the path with its ids or a query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parent = _PROPAGATOR.extract(headers)
        method = scope["method"]
        with tracer().start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:
            status = 500

            async def recording(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, recording)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
