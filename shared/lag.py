"""Consumer lag as Prometheus gauges, measured the way an external monitor would.

Lag = the partition's end offset minus the group's committed offset; it grows when a service falls
behind or stops, which is what an operator must see (a stopped process reports no metrics of its own,
so the surviving instances of a group report the lag of the whole group).
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

from shared.broker import KafkaAccess
from shared.runtime import BackgroundTask

log = logging.getLogger("relais.lag")


class ConsumerLagMonitor:
    def __init__(
        self, access: KafkaAccess, group: str, topics: list[str], gauge: Gauge, interval_s: float = 5.0
    ) -> None:
        """`access` is the service's own principal: it may describe its topics and its own groups only."""
        self.access, self.group, self.topics = access, group, topics
        self.gauge = gauge
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._task = BackgroundTask(
            "consumer-lag",
            self._measure_once,
            interval_s=interval_s,
            backoff_s=interval_s,
            backoff_max_s=interval_s,
            failure_log_level=logging.DEBUG,
        )

    async def start(self) -> None:
        if self.topics:
            await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        await self._close()

    async def _measure_once(self) -> None:
        try:
            if self._admin is None or self._reader is None:
                self._admin = AIOKafkaAdminClient(**self.access.client(), request_timeout_ms=5000)
                self._reader = AIOKafkaConsumer(**self.access.client(), enable_auto_commit=False)
                await self._admin.start()
                await self._reader.start()
            for (topic, partition), lag in (await self.measure(self._admin, self._reader)).items():
                self.gauge.labels(self.group, topic, str(partition)).set(lag)
        except Exception:
            await self._close()  # broker away: reconnect on the next round
            raise

    async def _close(self) -> None:
        admin, reader, self._admin, self._reader = self._admin, self._reader, None, None
        for close in (reader.stop if reader else None, admin.close if admin else None):
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001 - closing a client of a broker that is gone
                    log.debug("closing a lag client failed")

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
