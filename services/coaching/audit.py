"""Access audit: who read or changed which case, when, and with what result; never any personal data.

One entry per staff request on a case (and per list of cases), written before the answer leaves: an
audit write that fails fails the request, so no access goes unrecorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.schemas import Association


class AuditTrail:
    def __init__(self, db: AsyncDatabase, association: Association) -> None:
        self.entries = db["audit"]
        self.association = association

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("case_id", 1), ("at", 1)])

    async def record(self, who: str, action: str, outcome: str, *, case_id: str | None = None,
                     volunteer_id: str | None = None, count: int | None = None) -> None:
        """`action` names the endpoint (e.g. case.read); `outcome` is ok / refuse / introuvable / ..."""
        entry: dict[str, Any] = {"_id": str(uuid.uuid4()), "at": datetime.now(UTC), "who": who,
                                 "association": self.association.value, "action": action, "outcome": outcome}
        for key, value in (("case_id", case_id), ("volunteer_id", volunteer_id), ("count", count)):
            if value is not None:
                entry[key] = value
        await self.entries.insert_one(entry)

    async def for_case(self, case_id: str, limit: int = 200) -> list[dict[str, Any]]:
        cursor = self.entries.find({"case_id": case_id}, {"_id": 0}).sort("at", 1).limit(limit)
        return await cursor.to_list(None)
