"""A consumer that timestamps the arrival of each key on a topic (the benchmark's stopwatch end)."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer

from bench.waiting import BenchError, wait_until


class ArrivalRecorder:
    """Reads a topic from the earliest offset in a group of its own; notes when each key first arrives.

    Times come from `time.perf_counter()` taken when a fetched batch is handed over, so they compare with
    the send times the benchmark takes in the same process.
    """

    def __init__(self, bootstrap: str, topic: str, label: str) -> None:
        self.topic = topic
        self.arrivals: dict[bytes, float] = {}
        self.records = 0
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=f"bench-{label}-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=100,
        )
        self._task: asyncio.Task | None = None

    async def start(self, deadline_s: float = 60) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"arrivals-{self.topic}")
        if not await wait_until(lambda: bool(self._consumer.assignment()) or self._task.done(), deadline_s):
            raise BenchError(f"no partition of {self.topic} assigned after {deadline_s:.0f}s")
        if self._task.done():
            self._task.result()  # re-raise the consumer's failure

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()

    def arrived(self, keys: list[bytes]) -> int:
        return sum(1 for key in keys if key in self.arrivals)

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=1000)
            now = time.perf_counter()
            for records in batches.values():
                self.records += len(records)
                for record in records:
                    self.arrivals.setdefault(record.key, now)
