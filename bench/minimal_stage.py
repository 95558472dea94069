"""The minimal hand-written stages, run as their own process like a service: the pipeline's baselines.

`python -m bench.minimal_stage [--batched] BOOTSTRAP MONGO_URL SOURCE DESTINATION GROUP` reads SOURCE in
batches (`getmany`) and, for each batch, does what a Relais stage does at the least, then copies the
records to DESTINATION with the producer settings of our services (acks=all, idempotent, linger 2 ms)
and commits the source offsets once the writes and the copies are acknowledged (at-least-once, manual
commit). No decoding, no outbox, no dedup marker: what our plumbing (envelope, outbox relay, consumer
with retries and dead letters) costs is the distance between these and the pipeline.

- default, the **minimal stage**: one PyMongo upsert by `_id` (the record's key) per record, 32 in
  flight: one store command per event, what a stage that updates an aggregate per event pays;
- `--batched`, the **minimal batched stage**: one unordered `insert_many` per batch, `_id` = the record's
  key, so a redelivered record is a duplicate key, taken as already applied: a few store commands per
  batch, the shape issue 14 asks of the hot paths.

Prints `ready` once its partitions are assigned; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from bench.baseline_login import login

DATABASE = "bench_minimal_stage"
CONCURRENCY = 32  # upserts in flight, like the services' consumer_concurrency
BATCH = 200  # records per getmany, like the services' consumer_batch_size
DUPLICATE_KEY = 11000

Store = Callable[[AsyncCollection, list[ConsumerRecord]], Awaitable[None]]


async def upsert_each(collection: AsyncCollection, records: list[ConsumerRecord]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def upsert(record: ConsumerRecord) -> None:
        async with limit:
            await collection.update_one(
                {"_id": record.key.decode()}, {"$set": {"size": len(record.value)}}, upsert=True
            )

    await asyncio.gather(*(upsert(r) for r in records))


async def insert_batch(collection: AsyncCollection, records: list[ConsumerRecord]) -> None:
    """One unordered insert; documents already there (a redelivery) are duplicate keys, i.e. applied."""
    try:
        await collection.insert_many([{"_id": r.key.decode(), "size": len(r.value)} for r in records], ordered=False)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise


async def stage(
    bootstrap: str, mongo_url: str, source: str, destination: str, group: str, store: Store, collection_name: str
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    collection = client[DATABASE][collection_name]
    kafka = login(bootstrap)
    consumer = AIOKafkaConsumer(
        source,
        **kafka.client(),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    producer = AIOKafkaProducer(**kafka.client(), acks="all", enable_idempotence=True, linger_ms=2)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await client.admin.command("ping")
    await producer.start()
    await consumer.start()
    announced = False
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            records = [record for part in batches.values() for record in part]
            if records:
                await store(collection, records)
                acks = [await producer.send(destination, r.value, key=r.key) for r in records]
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.minimal_stage", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batched", action="store_true", help="one insert_many per batch instead of one upsert per record"
    )
    for name in ("bootstrap", "mongo_url", "source", "destination", "group"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    store, collection = (insert_batch, "batched_records") if args.batched else (upsert_each, "records")
    asyncio.run(stage(args.bootstrap, args.mongo_url, args.source, args.destination, args.group, store, collection))


if __name__ == "__main__":
    main()
