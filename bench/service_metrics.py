"""Where the time goes inside the services, from their own Prometheus metrics (no change to them).

Two scrapes around a phase give, per service, the mean duration of a consumer handler call (FastStream's
processing histogram: one call per record, or per batch when the subscriber consumes batches) and the
mean time an event waited in the outbox before publication (`relais_outbox_relay_seconds`).
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

# metric family -> short name in the results
TIMERS = {
    "faststream_received_processed_messages_duration_seconds": "handler",
    "relais_outbox_relay_seconds": "outbox_relay",
}

Scrape = dict[str, tuple[float, float]]  # "<service>.<timer>" -> (sum of seconds, count)


async def scrape(client: httpx.AsyncClient, urls: dict[str, str]) -> Scrape:
    found: Scrape = {}
    for service, url in urls.items():
        try:
            text = (await client.get(f"{url}/metrics", timeout=5)).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            short = TIMERS.get(family.name)
            if short is None:
                continue
            total = count = 0.0
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    total += sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
            found[f"{service}.{short}"] = (total, count)
    return found


def mean_ms_between(before: Scrape, after: Scrape) -> dict[str, float]:
    """Mean milliseconds per event of each timer between two scrapes (timers that saw no event are left out)."""
    means: dict[str, float] = {}
    for name, (total, count) in after.items():
        total0, count0 = before.get(name, (0.0, 0.0))
        events = count - count0
        if events > 0:
            means[f"{name}_ms"] = round((total - total0) / events * 1000, 1)
    return means


async def emails(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    """Outcomes of the notifications' sends so far (`relais_notifications_total`), summed over recipients."""
    try:
        text = (await client.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return {}
    outcomes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "relais_notifications":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                result = sample.labels.get("result", "?")
                outcomes[result] = outcomes.get(result, 0) + sample.value
    return outcomes
