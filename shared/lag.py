"""Consumer lag as Prometheus gauges, measured the way an external monitor would.

Lag = the partition's end offset minus the group's committed offset; it grows when a service falls
behind or stops, which is what an operator must see (a stopped process reports no metrics of its own,
so the surviving instances of a group report the lag of the whole group).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

log = logging.getLogger("relais.lag")


class ConsumerLagMonitor:
    def __init__(self, bootstrap: str, group: str, topics: list[str], gauge: Gauge, interval_s: float = 5.0):
        self.bootstrap, self.group, self.topics = bootstrap, group, topics
        self.gauge, self.interval_s = gauge, interval_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.topics:
            self._task = asyncio.create_task(self._run(), name="consumer-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        started = False
        try:
            while True:
                try:
                    if not started:
                        await admin.start()
                        await reader.start()
                        started = True
                    for (topic, partition), lag in (await self.measure(admin, reader)).items():
                        self.gauge.labels(self.group, topic, str(partition)).set(lag)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - broker away: try again next round
                    log.debug("lag measurement failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(self.interval_s)
        finally:
            if started:
                await reader.stop()
                await admin.close()

    async def measure(self, admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer) -> dict[tuple[str, int], int]:
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(reader.partitions_for_topic(topic) or await _partitions(reader, topic))
        ]
        ends = await reader.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
        lags = {}
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lags[(tp.topic, tp.partition)] = max(0, ends[tp] - done)
        return lags


async def _partitions(reader: AIOKafkaConsumer, topic: str) -> set[int]:
    await reader._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
    return reader.partitions_for_topic(topic) or set()
