"""Waiting with a deadline, and progress lines so that a person sees what the benchmark is doing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class BenchError(RuntimeError):
    """The benchmark could not run (something did not become ready in time)."""


async def wait_until(
    done: Callable[[], bool],
    deadline_s: float,
    *,
    progress: Callable[[], str] | None = None,
    every_s: float = 2.0,
    poll_s: float = 0.02,
    advanced: Callable[[], int] | None = None,
    stall_s: float = 120.0,
) -> bool:
    """Poll `done` until it holds; print `progress()` every few seconds.

    Gives up after `deadline_s`, or when the counter `advanced()` (if given) has not moved for `stall_s`:
    a slow system is waited for, a stuck one is not.
    """
    start = last_move = time.monotonic()
    next_report = start + every_s
    count = advanced() if advanced else 0
    while not done():
        now = time.monotonic()
        if advanced is not None and advanced() != count:
            count, last_move = advanced(), now
        if now - start > deadline_s or now - last_move > stall_s:
            return False
        if progress is not None and now >= next_report:
            print(f"    … {progress()}", flush=True)
            next_report = now + every_s
        await asyncio.sleep(poll_s)
    return True


@asynccontextmanager
async def reporting(progress: Callable[[], str], every_s: float = 2.0) -> AsyncIterator[None]:
    """Print `progress()` every few seconds while the body runs."""

    async def report() -> None:
        while True:
            await asyncio.sleep(every_s)
            print(f"    … {progress()}", flush=True)

    task = asyncio.create_task(report())
    try:
        yield
    finally:
        task.cancel()
