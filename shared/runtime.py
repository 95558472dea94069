"""Background work of a service: one helper for every loop that must run beside the consumer.

The outbox relay, the consumer-lag monitor, notifications' dispatcher and coaching's refresh all need the
same things: run a step, wait (or be woken early), survive a store or broker outage with a capped
exponential backoff, and stop promptly and cleanly when the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("relais.runtime")

# A step returns how long to wait before the next one (seconds); None means the task's interval.
Step = Callable[[], Awaitable[float | None]]


class BackgroundTask:
    """Runs `step` until stopped: after a success it waits the returned delay (or `interval_s`) unless
    `wake()` is called; after a failure it retries with backoff from `backoff_s` doubling up to
    `backoff_max_s`. Cancellation is never swallowed."""

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        interval_s: float,
        backoff_s: float = 0.1,
        backoff_max_s: float = 5.0,
        min_wait_s: float = 0.0,
        failure_log_level: int = logging.WARNING,
    ) -> None:
        self.name = name
        self._step = step
        self._interval_s = interval_s
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._min_wait_s = min_wait_s
        self._failure_log_level = failure_log_level
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run the next step now rather than after the wait."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._step()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a store or broker outage: retry with backoff
                self.failures += 1
                delay = min(self._backoff_s * 2 ** (self.failures - 1), self._backoff_max_s)
                log.log(
                    self._failure_log_level,
                    "background task failed, retrying",
                    extra={"task": self.name, "error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            wait = self._interval_s if delay is None else delay
            await self._wait(max(self._min_wait_s, wait))

    async def _wait(self, seconds: float) -> None:
        # Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives with the wake-up.
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
