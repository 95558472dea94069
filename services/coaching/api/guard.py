"""What every staff route shares: refusals mapped to French HTTP errors, the access audited, common fields."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field

from services.coaching.audit import AuditTrail
from services.coaching.auth import Staff
from services.coaching.domain.case_file import TransitionRefused
from services.coaching.domain.volunteers import ANTENNA_ID, antenna_belongs_to
from services.coaching.service import ApplicationNotFound, CaseNotFound, VolunteerNotFound
from shared.schemas import Association
from shared.store import VersionConflict

T = TypeVar("T")
# A route's documented refusals, as FastAPI's `responses` takes them.
Responses = dict[int | str, dict[str, Any]]
AntennaId = Annotated[str, Field(pattern=ANTENNA_ID.pattern, max_length=80)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("Adresse e-mail invalide.")
    return value


Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]

# exception -> (status, audited outcome, message; None = the exception's own French message)
_REFUSALS: tuple[tuple[type[Exception], int, str, str | None], ...] = (
    (TransitionRefused, 409, "refuse", None),
    (VersionConflict, 409, "conflit", "Le dossier vient d'être modifié par ailleurs : réessayez."),
    (CaseNotFound, 404, "introuvable", "Dossier introuvable."),
    (VolunteerNotFound, 404, "introuvable", "Bénévole introuvable."),
    (ApplicationNotFound, 404, "introuvable", "Candidature introuvable."),
)


class Guard:
    """Runs one staff step: audits it whatever its outcome, turns refusals into 404/409 responses."""

    def __init__(self, audit: AuditTrail) -> None:
        self.audit = audit

    async def __call__(
        self,
        staff: Staff,
        action: str,
        op: Callable[[], Awaitable[T]],
        *,
        case_id: Any = None,
        volunteer_id: str | None = None,
        count: Callable[[T], int] | None = None,
    ) -> T:
        case = str(case_id) if case_id is not None else None
        try:
            result = await op()
        except tuple(kind for kind, *_ in _REFUSALS) as exc:
            status, outcome, message = next((s, o, m) for kind, s, o, m in _REFUSALS if isinstance(exc, kind))
            await self.audit.record(staff.user, action, outcome, case_id=case, volunteer_id=volunteer_id)
            raise HTTPException(status, message or str(exc)) from None
        await self.audit.record(
            staff.user, action, "ok", case_id=case, volunteer_id=volunteer_id, count=count(result) if count else None
        )
        return result


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as pydantic's, for checks that need the service's settings."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}])


def check_antenna(antenna_id: str | None, association: Association) -> None:
    """422 unless the antenna is one of this instance's association."""
    if antenna_id is not None and not antenna_belongs_to(antenna_id, association):
        raise invalid("antenna_id", f"Cette antenne n'est pas une antenne de {association.value}.")
