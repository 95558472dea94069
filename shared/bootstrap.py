"""What every service is made of, wired once: settings, logs, metrics, store, broker, consumer, outbox.

A service's `app.py` (its composition root) builds one `ServiceRuntime`, registers its handlers and
routes, and asks for the HTTP app; starting and stopping everything is the runtime's lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from shared import logs, tracing
from shared.auth import AuditHook, Authenticator, FailedAttempts, PartnerDirectory, StaffTokens, log_refusal
from shared.broker import ensure_topics, kafka_access, make_broker, send, wait_for_group_coordinator
from shared.consumer import EventConsumer
from shared.http import RequestGuard, RequestMetrics, install_error_handlers, install_health_and_metrics
from shared.lag import ConsumerLagMonitor
from shared.metrics import Metrics
from shared.outbox import OutboxRelay
from shared.readiness import DependencyMonitor
from shared.settings import InsecureSettings, ServiceSettings
from shared.store import connect, ping

log = logging.getLogger("relais.runtime")


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        logs.configure(settings.service_name, settings.log_level)
        tracing.configure(settings.service_name, settings.otlp_endpoint)
        self.metrics = Metrics(settings.service_name)
        self.broker = make_broker(settings, self.metrics)
        self.consumer = EventConsumer(self.broker, settings, self.metrics)
        self.client, self.db = connect(settings.mongo_url, settings.mongo_db, listeners=[self.metrics.store_listener()])
        self.relay = self._outbox_relay()
        self.lag: ConsumerLagMonitor | None = None
        self.dependencies = DependencyMonitor(
            {"kafka": lambda: self.broker.ping(timeout=2), "store": lambda: ping(self.db)}, self.metrics
        )
        self._on_start: list[Callable[[], Awaitable[Any]]] = []
        self._on_stop: list[Callable[[], Awaitable[Any]]] = []

    def _outbox_relay(self) -> OutboxRelay:
        """The relay that stores hand their collections to (`relay.watch`) and notify after writes."""

        async def _send(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> Any:
            return await send(self.broker, topic, key, value, headers)

        return OutboxRelay(
            _send,
            scan_interval_s=self.settings.outbox_scan_interval_s,
            on_published=self.metrics.published,
            on_backlog=self.metrics.outbox_backlog.set,
        )

    def on_start(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Run at start-up before consuming (index creation, seed data)."""
        self._on_start.append(hook)

    def on_stop(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Run at shutdown before the broker and the store close (background workers of a service)."""
        self._on_stop.append(hook)

    async def checks(self) -> dict[str, bool]:
        return await self.dependencies.check()

    def authenticator(
        self,
        *,
        partners: PartnerDirectory | None = None,
        audit: AuditHook = log_refusal,
        staff_tokens: StaffTokens | None = None,
    ) -> Authenticator:
        """The service's credential checks (shared/auth.py), throttled as its settings say."""
        return Authenticator(
            self.settings.staff_tokens if staff_tokens is None else staff_tokens,
            partners=partners,
            failures=FailedAttempts(self.settings.auth_max_failures, self.settings.auth_failure_window_s),
            audit=audit,
            registry=self.metrics.registry,
        )

    async def start(self) -> None:
        self.settings.refuse_insecure_defaults()
        # The contract's topics are the admin provisioning's (ops/kafka_security.py); a consumer creates only
        # its group's dead-letter topic, the one topic its principal may create.
        if self.consumer.topics:
            await ensure_topics(self.settings, [self.consumer.dead_letter_topic])
        for hook in self._on_start:
            await hook()
        if self.consumer.topics:
            await wait_for_group_coordinator(self.settings, self.consumer.group_id)
        self.consumer.subscribe()
        await self.broker.start()
        if self.relay.watching:
            await self.relay.start()
        self.lag = ConsumerLagMonitor(
            kafka_access(self.settings), self.consumer.group_id, self.consumer.topics, self.metrics.consumer_lag
        )
        await self.lag.start()
        await self.dependencies.start()
        log.info("service started", extra={"port": self.settings.http_port})

    async def stop(self) -> None:
        for hook in self._on_stop:
            await hook()
        await self.dependencies.stop()
        if self.lag is not None:
            await self.lag.stop()
        await self.relay.stop()
        await self.broker.stop()
        await self.client.close()
        tracing.shutdown()
        log.info("service stopped")

    def http_app(self, title: str, description: str, *routers: APIRouter, form_paths: tuple[str, ...] = ()) -> FastAPI:
        """The service's FastAPI app; `form_paths` are the prefixes of its pages, which post urlencoded forms."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        # FastAPI's own telemetry (0.165+) would record paths, query strings and exception messages once a
        # tracer provider exists: ours (shared.tracing) records route templates and ids only.
        docs = self.settings.expose_docs
        app = FastAPI(
            title=title,
            description=description,
            version="1",
            lifespan=lifespan,
            telemetry=tracing.FASTAPI_TELEMETRY_OFF,
            docs_url="/docs" if docs else None,
            redoc_url="/redoc" if docs else None,
            openapi_url="/openapi.json" if docs else None,
        )
        install_error_handlers(app, self.metrics)
        install_health_and_metrics(app, self.metrics, self.checks, expose_metrics=self.settings.expose_metrics)
        for router in routers:
            app.include_router(router)
        app.add_middleware(
            RequestGuard, max_bytes=self.settings.max_request_bytes, metrics=self.metrics, form_paths=form_paths
        )
        app.add_middleware(RequestMetrics, metrics=self.metrics)  # counts refusals too
        app.add_middleware(tracing.TraceRequests)  # outermost: the span covers everything else
        return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service process (`python -m services.<name>`); refuses default secrets outside development."""
    import sys

    import uvicorn

    try:
        settings.refuse_insecure_defaults()
    except InsecureSettings as exc:
        print(f"relais: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
