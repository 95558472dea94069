"""Whether a service's dependencies answer, kept as metrics so that alerts need no failing request.

The store or Kafka can be away while no request arrives and no message is consumed: a 503 counter would
stay silent then. A background check pings each dependency every few seconds and keeps
`relais_dependency_up{dependency}` at 1 or 0; `/health` runs the same checks and refreshes the same gauge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from shared.metrics import Metrics
from shared.runtime import BackgroundTask

log = logging.getLogger("relais.readiness")

Probe = Callable[[], Awaitable[bool]]


class DependencyMonitor:
    def __init__(
        self, probes: Mapping[str, Probe], metrics: Metrics, *, interval_s: float = 5.0, timeout_s: float = 3.0
    ) -> None:
        self._probes = dict(probes)
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._last: dict[str, bool] = {}
        self._task = BackgroundTask(
            "dependency-checks", self._step, interval_s=interval_s, backoff_s=interval_s, backoff_max_s=interval_s
        )

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def check(self) -> dict[str, bool]:
        """Ping every dependency at once; record and return which answered."""
        names = list(self._probes)
        results = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _check(self, name: str) -> bool:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                up = bool(await self._probes[name]())
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any failure of a probe means "not answering"
            up = False
        self._metrics.dependency_seconds.labels(name).observe(time.perf_counter() - started)
        self._metrics.dependency_up.labels(name).set(1 if up else 0)
        if self._last.get(name) and not up:
            log.warning("dependency not answering", extra={"dependency": name})
        self._last[name] = up
        return up

    async def _step(self) -> None:
        await self.check()
