"""What a message may say, read from the events' declared fields, and where it goes. Pure.

Each notification stores its `facts` (from its event, JSON, no personal data); names and addresses are
kept once per case in its contact record (see `store.py`) and read at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.notifications.domain import VOLUNTEERS, Recipient
from shared.schemas import (
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    SessionHeld,
    VolunteerApplicationDecided,
    VolunteerAssigned,
    spec_for,
)

ANTENNA_FIELDS = ("id", "name", "city", "email", "contact")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def antenna_of(routed: CaseRouted) -> dict[str, str] | None:
    """The antenna a CaseRouted names. Its contact is public free text: an email address in it is the
    coordination's address; the city is the antenna's name without the association's."""
    antenna = {
        field: value
        for field, value in (
            ("id", routed.antenna_id),
            ("name", routed.antenna_name),
            ("contact", routed.antenna_contact),
        )
        if value
    }
    if found := _EMAIL.search(antenna.get("contact", "")):
        antenna["email"] = found.group(0)
    prefix = routed.association.display_name + " "
    if antenna.get("name", "").startswith(prefix):
        antenna["city"] = antenna["name"][len(prefix) :]
    return antenna or None


def city_of(antenna_id: str) -> str:
    """'60000_rebonds-le-puy-en-velay' -> 'Le-Puy-En-Velay': the city named by an antenna id (no accents)."""
    slug = antenna_id.split("-", 1)[1] if "-" in antenna_id else antenna_id
    return "-".join(word.capitalize() for word in slug.split("-"))


def facts_of(payload: Contract) -> dict[str, Any]:
    """What the messages about this event may mention (no personal data; JSON, stored with each one)."""
    association = getattr(payload, "association", None)
    facts: dict[str, Any] = {
        "event_type": spec_for(payload).name,
        "association": association.value if association else None,
    }
    if isinstance(payload, CaseReceived):
        facts["received_on"] = payload.received_at.date().isoformat()
    elif isinstance(payload, CaseRouted):
        facts.update(
            routed_on=payload.routed_at.date().isoformat(),
            reasons=list(payload.reasons),
            received_on=payload.received_at.date().isoformat() if payload.received_at else None,
            antenna=antenna_of(payload),
            waitlist_position=payload.waitlist_position,
            beyond_one_hour=bool(payload.beyond_one_hour),
            routing_status=payload.status.value if payload.status else None,
            priority_callback=bool(payload.priority_callback),
        )
    elif isinstance(payload, CommitteeApproved):
        facts["decided_on"] = payload.decided_on.isoformat()
    elif isinstance(payload, SessionHeld):
        next_session = None
        if payload.next_session_at is not None:
            next_session = {"when": payload.next_session_at.isoformat(), "place": payload.next_session_place}
        facts.update(
            kind=payload.kind.value,
            number=payload.number,
            held_on=payload.held_on.isoformat(),
            duration_minutes=payload.duration_minutes,
            next_session=next_session,
        )
    elif isinstance(payload, CaseClosed):
        facts.update(
            outcome=payload.outcome.value, closed_on=payload.closed_on.isoformat(), journey_days=payload.journey_days
        )
    elif isinstance(payload, VolunteerAssigned):
        facts.update(role=payload.role.value, assigned_on=payload.assigned_on.isoformat())
    elif isinstance(payload, VolunteerApplicationDecided):
        facts.update(
            role=payload.role.value,
            decision=payload.decision.value,
            decided_on=payload.decided_on.isoformat(),
            antenna={"id": payload.antenna_id, "city": city_of(payload.antenna_id)} if payload.antenna_id else None,
        )
    return facts


# --- the case's contact record ----------------------------------------------------------------------------


def contact_of(received: CaseReceived) -> dict[str, Any]:
    """What the CaseReceived tells about who to write to: the person and the referring partner."""
    personal = received.personal
    return {
        "first_name": personal.first_name,
        "last_name": personal.last_name,
        "email": personal.email,
        "phone": personal.phone,
        "referral": received.referral.model_dump(mode="json"),
    }


def routing_of(routed: CaseRouted) -> dict[str, Any]:
    return {"sequence": routed.sequence, "association": routed.association.value, "antenna": antenna_of(routed)}


def volunteer_record(assigned: VolunteerAssigned) -> dict[str, Any]:
    """How a volunteer is reached; a released one is forgotten but for the fact (and who it was)."""
    if assigned.released:
        return {"volunteer_id": assigned.volunteer_id, "released": True}
    return {"volunteer_id": assigned.volunteer_id, "name": assigned.display_name, "email": assigned.email}


def applicant_record(decided: VolunteerApplicationDecided) -> dict[str, Any]:
    """How an applicant is answered: the name and email they gave with their application."""
    return {"name": decided.display_name, "email": decided.email}


def latest_routing(contact: dict[str, Any] | None) -> dict[str, Any]:
    """The case's current routing: a re-routing has a higher sequence than the routing it replaces."""
    routings = (contact or {}).get("routings") or {}
    return routings[max(routings, key=int)] if routings else {}


def following(contact: dict[str, Any] | None) -> dict[Recipient, str]:
    """The coach and sponsor who follow the case now, by volunteer id."""
    volunteers = (contact or {}).get("volunteers") or {}
    return {
        recipient: v["volunteer_id"]
        for recipient in VOLUNTEERS
        if (v := volunteers.get(recipient.value)) and not v.get("released")
    }


@dataclass(frozen=True)
class Address:
    name: str
    email: str


def address_of(
    recipient: Recipient, contact: dict[str, Any] | None, facts: dict[str, Any], coordinators: dict[str, str]
) -> Address | None:
    """Where a notification goes, or None when no email address is known for that recipient."""
    contact = contact or {}
    if recipient is Recipient.ENTREPRENEUR:
        name = f"{contact.get('first_name', '')} {contact.get('last_name', '')}".strip()
        email = contact.get("email")
    elif recipient is Recipient.PARTNER:
        referral = contact.get("referral") or {}
        name, email = referral.get("organisation") or "", referral.get("contact_email")
    elif recipient is Recipient.APPLICANT:
        applicant = contact.get("applicant") or {}
        name, email = applicant.get("name") or "", applicant.get("email")
    elif recipient is Recipient.COORDINATOR:
        routing = latest_routing(contact)
        antenna = facts.get("antenna") or routing.get("antenna") or {}
        association = facts.get("association") or routing.get("association")
        name = f"Coordination {antenna['name']}" if antenna.get("name") else "Coordination"
        email = antenna.get("email") or coordinators.get(association or "")
    else:
        volunteer = _volunteer(contact, recipient, facts)
        if volunteer is None or volunteer.get("released"):
            return None
        name, email = volunteer.get("name") or "", volunteer.get("email")
    return Address(name, email) if email else None


def still_unknown(recipient: Recipient, contact: dict[str, Any] | None, facts: dict[str, Any]) -> bool:
    """Whether the event that tells where this message goes has not been handled yet (another topic).

    The coordinator's address comes from the routing (CaseRouted); a volunteer's from their assignment
    (VolunteerAssigned), and their message names the person (CaseReceived); everyone else's from the
    CaseReceived.
    """
    contact = contact or {}
    if recipient is Recipient.APPLICANT:
        return not contact.get("applicant")
    if recipient is Recipient.COORDINATOR:
        return not facts.get("antenna") and not contact.get("routings")
    if recipient in VOLUNTEERS and _volunteer(contact, recipient, facts) is None:
        return True
    return not contact.get("received")


def _volunteer(contact: dict[str, Any], recipient: Recipient, facts: dict[str, Any]) -> dict[str, Any] | None:
    """The stored volunteer of that role, if it is the one the message is for."""
    volunteer = (contact.get("volunteers") or {}).get(recipient.value)
    if volunteer is None or volunteer.get("volunteer_id") != facts.get("volunteer_id"):
        return None
    return volunteer
