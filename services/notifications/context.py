"""What a message may say, read from the events, and where it goes. Pure, and defensive on purpose.

Routing (antenna, waiting list) and coaching (coach, sponsor, next session) add optional fields to their
events over time; they are read here if present and ignored if absent, so that older and newer writers
both work. Each notification stores its `facts` (from its event, no personal data); names and addresses
come from the case's contacts at send time, so that they are kept in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.notifications.domain import Recipient
from shared.schemas import Envelope

ANTENNA_FIELDS = ("id", "name", "city", "address", "email", "phone", "contact")
VOLUNTEER_ROLES = {Recipient.COACH: "coach", Recipient.SPONSOR: "sponsor"}
ASSOCIATION_NAMES = ("60 000 rebonds", "Second Souffle")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def antenna_of(payload: dict[str, Any]) -> dict[str, str] | None:
    """The antenna a CaseRouted names: a nested `antenna` object or flat `antenna_*` fields.

    Routing publishes `antenna_id`, `antenna_name` and `antenna_contact` (public free text); an email address
    in that text is the coordination's address, and the city is the name without the association's.
    """
    nested = payload.get("antenna")
    source = nested if isinstance(nested, dict) else {
        field: payload.get(f"antenna_{field}") for field in ANTENNA_FIELDS}
    antenna = {field: str(source[field]) for field in ANTENNA_FIELDS if source.get(field)}
    if not antenna.get("email") and (found := _EMAIL.search(antenna.get("contact", ""))):
        antenna["email"] = found.group(0)
    if not antenna.get("city") and antenna.get("name"):
        for association in ASSOCIATION_NAMES:
            if antenna["name"].startswith(association + " "):
                antenna["city"] = antenna["name"][len(association) + 1:]
    return antenna or None


def volunteer_of(payload: dict[str, Any], role: str) -> dict[str, str] | None:
    """A coach or sponsor an event names: a nested object (`coach`) or flat `coach_name`/`coach_email`."""
    nested = payload.get(role)
    if isinstance(nested, dict):
        name = nested.get("name") or " ".join(
            part for part in (nested.get("first_name"), nested.get("last_name")) if part)
        email = nested.get("email")
    else:
        name, email = payload.get(f"{role}_name"), payload.get(f"{role}_email")
    if not email:
        return None
    return {"name": str(name or ""), "email": str(email)}


def next_session_of(payload: dict[str, Any]) -> dict[str, str] | None:
    when = payload.get("next_session_at") or payload.get("next_session_on")
    if not when:
        return None
    place = payload.get("next_session_place") or payload.get("next_session_location")
    return {"when": str(when), **({"place": str(place)} if place else {})}


def facts_of(envelope: Envelope) -> dict[str, Any]:
    """What the messages about this event may mention (no personal data; JSON, stored with each one)."""
    p = envelope.payload
    facts: dict[str, Any] = {"event_type": envelope.event_type, "association": p.get("association")}
    if envelope.event_type == "CaseReceived":
        facts["received_on"] = p["received_at"][:10]
    elif envelope.event_type == "CaseRouted":
        facts.update(routed_on=p["routed_at"][:10], reasons=p.get("reasons", []),
                     received_on=(p.get("received_at") or "")[:10] or None, antenna=antenna_of(p),
                     waitlist_position=p.get("waitlist_position"), beyond_one_hour=bool(p.get("beyond_one_hour")),
                     routing_status=p.get("status"))
    elif envelope.event_type == "CommitteeApproved":
        facts["decided_on"] = p["decided_on"]
    elif envelope.event_type == "SessionHeld":
        facts.update(kind=p["kind"], number=p.get("number"), held_on=p["held_on"],
                     duration_minutes=p.get("duration_minutes"), next_session=next_session_of(p))
    elif envelope.event_type == "CaseClosed":
        facts.update(outcome=p["outcome"], closed_on=p["closed_on"], journey_days=p.get("journey_days"))
    return facts


@dataclass(frozen=True)
class Address:
    name: str
    email: str


def address_of(recipient: Recipient, contact: dict[str, Any] | None, facts: dict[str, Any],
               coordinators: dict[str, str]) -> Address | None:
    """Where a notification goes, or None when no email address is known for that recipient."""
    contact = contact or {}
    if recipient is Recipient.ENTREPRENEUR:
        name = f"{contact.get('first_name', '')} {contact.get('last_name', '')}".strip()
        email = contact.get("email")
    elif recipient is Recipient.PARTNER:
        referral = contact.get("referral") or {}
        name, email = referral.get("organisation") or "", referral.get("contact_email")
    elif recipient is Recipient.COORDINATOR:
        antenna = facts.get("antenna") or (contact.get("routing") or {}).get("antenna") or {}
        association = facts.get("association") or (contact.get("routing") or {}).get("association")
        name = f"Coordination {antenna['name']}" if antenna.get("name") else "Coordination"
        email = antenna.get("email") or coordinators.get(association or "")
    else:
        volunteer = (contact.get("volunteers") or {}).get(VOLUNTEER_ROLES[recipient]) or {}
        name, email = volunteer.get("name", ""), volunteer.get("email")
    return Address(name, email) if email else None


def still_unknown(recipient: Recipient, contact: dict[str, Any] | None, facts: dict[str, Any]) -> bool:
    """Whether the event that tells where this message goes has not been handled yet (another topic).

    The coordinator's address comes from the routing (CaseRouted), everyone else's from the CaseReceived.
    """
    contact = contact or {}
    if recipient is Recipient.COORDINATOR:
        return not facts.get("antenna") and not contact.get("routing")
    return not contact.get("received")
