"""People who offer to volunteer with the association: their application waits for staff, who accept it (it
becomes a volunteer, with the antenna, sectors, capacity and certification staff choose) or decline it.
Either way the applicant is told (`VolunteerApplicationDecided`, emailed by notifications).

Pure rules. An application is personal data kept in this association's instance only; what travels is the
decision with the name and email the applicant gave to be answered.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.coaching.domain.case_file import TransitionRefused
from services.coaching.domain.volunteers import Volunteer, as_date
from shared.schemas import ApplicationDecision, Association, VolunteerApplicationDecided, VolunteerRole

# Application ids derived from the form's idempotency key live in their own namespace.
APPLICATION_NAMESPACE = uuid.UUID("0b6f1f0e-5c1d-4c55-9a51-8d7f2f3b9e21")


class ApplicationStatus(StrEnum):
    PENDING = "en_attente"
    ACCEPTED = "acceptee"
    DECLINED = "refusee"


def application_id_for(idempotency_key: str | None) -> uuid.UUID:
    """The same key names the same application: a double click or a refresh sends one."""
    return uuid.uuid5(APPLICATION_NAMESPACE, idempotency_key) if idempotency_key else uuid.uuid4()


@dataclass
class Application:
    application_id: uuid.UUID
    display_name: str
    email: str
    role: VolunteerRole
    received_at: datetime
    phone: str | None = None
    city: str | None = None  # where the applicant can help: staff choose the antenna from it
    sectors: list[str] = field(default_factory=list)
    experience: str | None = None
    status: ApplicationStatus = ApplicationStatus.PENDING
    decided_on: date | None = None
    decided_by: str | None = None
    volunteer_id: str | None = None
    version: int = 0

    @property
    def fingerprint(self) -> str:
        """Tells a resubmission (same answers) from a key reused for other answers."""
        fields = [self.display_name, self.email, self.role.value, self.phone, self.city, self.sectors, self.experience]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    @property
    def volunteer_key(self) -> str:
        """The id of the volunteer this application becomes: the same on a retried acceptance."""
        return f"{self.role.value}-{self.application_id.hex[:12]}"

    def accept(self, volunteer: Volunteer, association: Association, on: date, by: str) -> VolunteerApplicationDecided:
        self._require_pending()
        self.status, self.decided_on, self.decided_by = ApplicationStatus.ACCEPTED, on, by
        self.volunteer_id = volunteer.volunteer_id
        return self._decision(association, ApplicationDecision.ACCEPTED, volunteer.antenna_id)

    def decline(self, association: Association, on: date, by: str) -> VolunteerApplicationDecided:
        self._require_pending()
        self.status, self.decided_on, self.decided_by = ApplicationStatus.DECLINED, on, by
        return self._decision(association, ApplicationDecision.DECLINED, None)

    def _require_pending(self) -> None:
        if self.status is not ApplicationStatus.PENDING:
            raise TransitionRefused("Cette candidature a déjà reçu une réponse.")

    def _decision(
        self, association: Association, decision: ApplicationDecision, antenna_id: str | None
    ) -> VolunteerApplicationDecided:
        assert self.decided_on is not None
        return VolunteerApplicationDecided(
            association=association,
            role=self.role,
            display_name=self.display_name,
            email=self.email,
            decision=decision,
            decided_on=self.decided_on,
            antenna_id=antenna_id,
            volunteer_id=self.volunteer_id,
        )

    # --- persistence -------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "email": self.email,
            "role": self.role.value,
            "received_at": self.received_at,
            "phone": self.phone,
            "city": self.city,
            "sectors": list(self.sectors),
            "experience": self.experience,
            "status": self.status.value,
            "decided_on": self.decided_on.isoformat() if self.decided_on else None,
            "decided_by": self.decided_by,
            "volunteer_id": self.volunteer_id,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Application:
        return cls(
            application_id=uuid.UUID(doc["_id"]),
            display_name=doc["display_name"],
            email=doc["email"],
            role=VolunteerRole(doc["role"]),
            received_at=doc["received_at"],
            phone=doc.get("phone"),
            city=doc.get("city"),
            sectors=list(doc.get("sectors") or []),
            experience=doc.get("experience"),
            status=ApplicationStatus(doc.get("status", ApplicationStatus.PENDING.value)),
            decided_on=as_date(doc.get("decided_on")),
            decided_by=doc.get("decided_by"),
            volunteer_id=doc.get("volunteer_id"),
            version=doc.get("version", 0),
        )
