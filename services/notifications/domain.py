"""Who must be told what after each event. Pure rules; sending is a separate concern."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.schemas import CaseReceived, Envelope, ReferrerKind


class Recipient(StrEnum):
    ENTREPRENEUR = "entrepreneur"
    PARTNER = "partenaire"
    COORDINATOR = "coordination"


@dataclass(frozen=True)
class PlannedNotification:
    recipient: Recipient
    template: str
    channel: str = "email"


_BY_EVENT: dict[str, tuple[PlannedNotification, ...]] = {
    "CaseReceived": (PlannedNotification(Recipient.ENTREPRENEUR, "accuse_reception"),),
    "CaseRouted": (
        PlannedNotification(Recipient.ENTREPRENEUR, "orientation"),
        PlannedNotification(Recipient.COORDINATOR, "nouveau_dossier"),
    ),
    "CommitteeApproved": (PlannedNotification(Recipient.ENTREPRENEUR, "decision_comite"),),
    "SessionHeld": (PlannedNotification(Recipient.ENTREPRENEUR, "suivi_seance"),),
    "CaseClosed": (
        PlannedNotification(Recipient.ENTREPRENEUR, "cloture"),
        PlannedNotification(Recipient.COORDINATOR, "cloture_dossier"),
    ),
}


def plan(envelope: Envelope) -> list[PlannedNotification]:
    planned = list(_BY_EVENT.get(envelope.event_type, ()))
    if envelope.event_type == "CaseReceived":
        received: CaseReceived = envelope.typed()  # type: ignore[assignment]
        if received.referral.kind is not ReferrerKind.SELF:
            planned.append(PlannedNotification(Recipient.PARTNER, "accuse_reception_partenaire"))
    return planned


def notification_id(envelope: Envelope, planned: PlannedNotification) -> str:
    """One notification per event and recipient, whatever the number of deliveries."""
    return f"{envelope.event_id}:{planned.recipient.value}"
