"""Who must be told what after each event, and the life of one notification. Pure rules, no I/O.

A notification is one message to one recipient about one event: its id is `<event_id>:<recipient>`, so
redeliveries of the event never create a second one. Its states:

    a_envoyer ──claim──> envoi_en_cours ──250 to DATA──> envoye
        ^                  │  phase avant_donnees | donnees
        └── 4xx reply ─────┤
                           ├── 5xx reply or last 4xx ──> echec (dead-lettered)
                           ├── opted out ──> desabonne
                           └── no address ──> sans_adresse

Partner notifications follow the referral's status changes (see `services.notifications.referrals`),
the others are planned here from the event alone and the volunteers the case is known to have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.schemas import (
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    ReferralStatus,
    SessionHeld,
    SessionKind,
    VolunteerApplicationDecided,
    VolunteerAssigned,
    VolunteerRole,
)


class Recipient(StrEnum):
    ENTREPRENEUR = "entrepreneur"
    PARTNER = "partenaire"
    COORDINATOR = "coordination"
    COACH = "coach"
    SPONSOR = "parrain"
    APPLICANT = "candidat"  # someone who applied to volunteer


class Status(StrEnum):
    PENDING = "a_envoyer"
    SENDING = "envoi_en_cours"
    SENT = "envoye"
    OPTED_OUT = "desabonne"
    NO_ADDRESS = "sans_adresse"
    FAILED = "echec"


class Phase(StrEnum):
    """Where a send stands; decides what a take-over after a crash does."""

    BEFORE_DATA = "avant_donnees"  # connected, envelope given: the server cannot have the message
    DATA = "donnees"  # DATA sent: the server may have accepted it (in doubt until recorded)


VOLUNTEERS = (Recipient.COACH, Recipient.SPONSOR)
# The roles that follow a person; an expert answers one-off questions and is never assigned to a case.
VOLUNTEER_OF_ROLE = {VolunteerRole.COACH: Recipient.COACH, VolunteerRole.SPONSOR: Recipient.SPONSOR}


@dataclass(frozen=True)
class PlannedNotification:
    recipient: Recipient
    template: str
    channel: str = "email"
    volunteer_id: str | None = None  # for a coach or sponsor: which one (another may follow the case later)


_DIRECT: dict[type[Contract], tuple[PlannedNotification, ...]] = {
    CaseReceived: (PlannedNotification(Recipient.ENTREPRENEUR, "accuse_reception"),),
    CaseRouted: (
        PlannedNotification(Recipient.ENTREPRENEUR, "orientation"),
        PlannedNotification(Recipient.COORDINATOR, "nouveau_dossier"),
    ),
    CommitteeApproved: (PlannedNotification(Recipient.ENTREPRENEUR, "decision_comite"),),
    SessionHeld: (PlannedNotification(Recipient.ENTREPRENEUR, "suivi_seance"),),
    CaseClosed: (
        PlannedNotification(Recipient.ENTREPRENEUR, "cloture"),
        PlannedNotification(Recipient.COORDINATOR, "cloture_dossier"),
    ),
    VolunteerAssigned: (),
    VolunteerApplicationDecided: (PlannedNotification(Recipient.APPLICANT, "candidature_benevole"),),
}

# The volunteer who led a session hears about the next one; those still following hear of the closing.
_SESSION_VOLUNTEER = {SessionKind.COACHING: Recipient.COACH, SessionKind.SPONSOR: Recipient.SPONSOR}
_VOLUNTEER_TEMPLATES = {
    (VolunteerAssigned, Recipient.COACH): "attribution_coach",
    (VolunteerAssigned, Recipient.SPONSOR): "attribution_parrain",
    (SessionHeld, Recipient.COACH): "seance_coach",
    (SessionHeld, Recipient.SPONSOR): "seance_parrain",
    (CaseClosed, Recipient.COACH): "fin_accompagnement_coach",
    (CaseClosed, Recipient.SPONSOR): "fin_accompagnement_parrain",
}

PARTNER_TEMPLATES: dict[ReferralStatus, str] = {
    ReferralStatus.RECEIVED: "accuse_reception_partenaire",
    ReferralStatus.ROUTED: "orientation_partenaire",
    ReferralStatus.ACCEPTED: "decision_comite_partenaire",
    ReferralStatus.DECLINED: "cloture_partenaire",
    ReferralStatus.CLOSED: "cloture_partenaire",
}


def plan(payload: Contract, following: Mapping[Recipient, str] | None = None) -> list[PlannedNotification]:
    """The notifications an event causes directly.

    `following` maps the coach and sponsor who follow the case (as far as this service knows when the
    event is handled) to their volunteer ids. A session names who led it; without that name, the one
    following the case in that role is told.
    """
    following = following or {}
    planned = list(_DIRECT[type(payload)])
    volunteers: list[tuple[Recipient, str]] = []
    if isinstance(payload, VolunteerAssigned):
        recipient = VOLUNTEER_OF_ROLE.get(payload.role)
        if recipient is not None and not payload.released:
            volunteers = [(recipient, payload.volunteer_id)]
    elif isinstance(payload, SessionHeld):
        led_by = _SESSION_VOLUNTEER.get(payload.kind)
        volunteer_id = (payload.volunteer_id or following.get(led_by)) if led_by else None
        volunteers = [(led_by, volunteer_id)] if led_by and volunteer_id else []
    elif isinstance(payload, CaseClosed):
        volunteers = [(r, following[r]) for r in VOLUNTEERS if r in following]
    for recipient, volunteer_id in volunteers:
        planned.append(
            PlannedNotification(recipient, _VOLUNTEER_TEMPLATES[(type(payload), recipient)], volunteer_id=volunteer_id)
        )
    return planned


def partner_notification(status: ReferralStatus) -> PlannedNotification:
    return PlannedNotification(Recipient.PARTNER, PARTNER_TEMPLATES[status])


def notification_id(event_id: object, recipient: Recipient) -> str:
    """One notification per event and recipient, whatever the number of deliveries."""
    return f"{event_id}:{recipient.value}"


def message_id(notification: str, domain: str) -> str:
    """The same Message-ID for every attempt of one notification: receivers deduplicate on it.

    Made of the event id and the recipient's role only: no personal data in a header.
    """
    event_id, recipient = notification.split(":", 1)
    return f"<{event_id}.{recipient}@{domain}>"


def backoff_s(failures: int, base_ms: int, max_ms: int) -> float:
    doubling: int = 2 ** max(0, failures - 1)  # a non-negative exponent: an int (typeshed says Any)
    return min(base_ms * doubling, max_ms) / 1000
