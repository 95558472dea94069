"""The second baseline: a minimal hand-written stage, run as its own process like a service.

`python -m bench.minimal_stage BOOTSTRAP MONGO_URL SOURCE DESTINATION GROUP` does, for every record of
SOURCE, what a Relais stage does at the least: one PyMongo upsert by `_id` (the record's key) into
FerretDB, then a copy to DESTINATION with the producer settings of our services (acks=all, idempotent,
linger 2 ms); it commits the source offsets once the batch's writes and copies are acknowledged
(at-least-once, manual commit). No decoding, no outbox, no dedup marker, no lock: what our plumbing
(envelope, outbox relay, consumer with retries and dead letters, document locks) costs is the distance
between this and the pipeline. Prints `ready` once its partitions are assigned; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from bench.baseline_login import login

DATABASE = "bench_minimal_stage"
CONCURRENCY = 32  # upserts in flight, like the services' consumer_concurrency


async def stage(bootstrap: str, mongo_url: str, source: str, destination: str, group: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    collection = client[DATABASE]["records"]
    kafka = login(bootstrap)
    consumer = AIOKafkaConsumer(source, **kafka.client(), group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=100)
    producer = AIOKafkaProducer(**kafka.client(), acks="all", enable_idempotence=True, linger_ms=2)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def handle(key: bytes, value: bytes) -> asyncio.Future:
        async with limit:
            await collection.update_one({"_id": key.decode()}, {"$set": {"size": len(value)}}, upsert=True)
        return await producer.send(destination, value, key=key)

    await client.admin.command("ping")
    await producer.start()
    await consumer.start()
    announced = False
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=200)
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            records = [record for part in batches.values() for record in part]
            if records:
                acks = await asyncio.gather(*(handle(r.key, r.value) for r in records))
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await client.close()


if __name__ == "__main__":
    asyncio.run(stage(*sys.argv[1:6]))
