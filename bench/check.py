"""After the phases: what became of every case posted, from real data, not from the counters we kept.

- routed: the CaseRouted topic (the bench's recorder read all of it); more than one distinct event id
  for a case is a duplicated routing (a republished copy has the same id and is not one);
- notified: the notifications store, read once at the end (one scan, never in a loop: FerretDB reads
  the whole collection for any filter but `{"_id": ...}`): each case must have exactly
  NOTIFICATIONS_PER_CASE notifications; fewer is lost, more is duplicated;
- the bench partner's own topic: one record id per case and status, more is duplicated.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import AsyncMongoClient

from bench.pipeline import NOTIFICATIONS_PER_CASE, Phase, Pipeline

NOTIFICATIONS = ("relais_notifications", "notifications")


async def notifications_per_case(mongo_url: str) -> Counter:
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        collection = client[NOTIFICATIONS[0]][NOTIFICATIONS[1]]
        return Counter([doc["case_id"] async for doc in collection.find({}, {"case_id": 1})])
    finally:
        await client.close()


async def check_cases(pipeline: Pipeline, phases: tuple[Phase, ...], mongo_url: str) -> dict[str, Any]:
    accepted = {case: phase for phase in phases for case in phase.sent}
    per_case = await notifications_per_case(mongo_url)
    routed, routed_ids = pipeline.routed.arrivals, pipeline.routed.ids
    feed_ids = pipeline.feed.ids
    not_routed = [c for c in accepted if c not in routed]
    short = [c for c in accepted if per_case.get(c.decode(), 0) < NOTIFICATIONS_PER_CASE]
    routed_twice = [c for c in accepted if len(routed_ids.get(c, ())) > 1]
    too_many = [c for c in accepted if per_case.get(c.decode(), 0) > NOTIFICATIONS_PER_CASE]
    twice_refs = {key.split(b"|")[0] for key, ids in feed_ids.items() if len(ids) > 1}
    feed_twice = [c for c, phase in accepted.items() if phase.notified_key[c].split(b"|")[0] in twice_refs]
    lost = set(not_routed) | set(short)
    duplicated = set(routed_twice) | set(too_many) | set(feed_twice)
    return {
        "cases_total": sum(phase.planned for phase in phases),
        "accepted": len(accepted),
        "rejected_by_intake": sum(phase.http_errors for phase in phases),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "not_routed": len(not_routed),
        "notifications_missing": len(short),
        "routed_more_than_once": len(routed_twice),
        "notifications_more_than_expected": len(too_many),
        "feed_records_more_than_once": len(feed_twice),
        "notifications_stored": sum(per_case.values()),
        "notifications_expected": NOTIFICATIONS_PER_CASE * len(accepted),
    }
