"""Access audit: who read or changed which case, when, and with what result; never any personal data.

One entry per staff request on a case (and per list of cases), written before the answer leaves: an
audit write that fails fails the request, so no access goes unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shared.schemas import Association

if TYPE_CHECKING:
    from services.coaching.store import AuditStore


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str  # staff user, or `anonyme`
    association: str
    action: str  # the endpoint, e.g. case.read
    outcome: str  # ok / refuse / introuvable / conflit / non_authentifie
    case_id: str | None = None
    volunteer_id: str | None = None
    count: int | None = None  # items returned by a list
    antenna_id: str | None = None  # an antenna of routing's directory changed from the staff pages


class AuditTrail:
    def __init__(self, store: AuditStore, association: Association, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.association = association
        self.clock = clock

    async def record(
        self,
        who: str,
        action: str,
        outcome: str,
        *,
        case_id: str | None = None,
        volunteer_id: str | None = None,
        count: int | None = None,
        antenna_id: str | None = None,
    ) -> None:
        await self.store.add(
            AuditEntry(
                at=self.clock(),
                who=who,
                association=self.association.value,
                action=action,
                outcome=outcome,
                case_id=case_id,
                volunteer_id=volunteer_id,
                count=count,
                antenna_id=antenna_id,
            )
        )

    async def for_case(self, case_id: str) -> list[AuditEntry]:
        return await self.store.for_case(case_id)
