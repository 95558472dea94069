"""Reading several documents by `_id` on FerretDB and MongoDB alike."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.documents import Collection


async def find_by_ids(collection: Collection, ids: list[Any], projection: dict[str, int]) -> list[dict[str, Any]]:
    """One `_id` lookup each, concurrently: FerretDB reads the whole collection for an `$in` filter, while
    `{"_id": <value>}` alone is an indexed SQL lookup. Documents not found are left out."""
    found = await asyncio.gather(*(collection.find_one({"_id": i}, projection) for i in ids))
    return [doc for doc in found if doc is not None]
