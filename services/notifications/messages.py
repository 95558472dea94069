"""From a notification to the bytes of an email: the template's context, then a MIME message.

The message is deterministic for one notification: same Message-ID and Date on every attempt, so that a
resend after a crash is the very same email, which receivers recognise and keep once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.headerregistry import Address as MimeAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

from services.notifications.domain import VOLUNTEERS, Recipient
from services.notifications.facts import ANTENNA_FIELDS, Address, latest_routing
from services.notifications.templates import Rendered
from shared.schemas import Association

# Every name a template may use, so that a missing fact renders as "absent", never as an error.
FACT_DEFAULTS: dict[str, Any] = {
    "received_on": None,
    "routed_on": None,
    "reasons": [],
    "antenna": None,
    "waitlist_position": None,
    "beyond_one_hour": False,
    "routing_status": None,
    "priority_callback": False,
    "decided_on": None,
    "kind": None,
    "number": None,
    "held_on": None,
    "duration_minutes": None,
    "next_session": None,
    "outcome": None,
    "closed_on": None,
    "journey_days": None,
    "status": None,
    "outcome_category": None,
    "occurred_on": None,
    "partner_reference": None,
    "role": None,
    "assigned_on": None,
    "decision": None,
}


def render_context(
    *,
    recipient: Recipient,
    case_id: str,
    facts: dict[str, Any],
    contact: dict[str, Any] | None,
    address: Address,
    unsubscribe_url: str,
    coordinators: dict[str, str],
) -> dict[str, Any]:
    contact = contact or {}
    routing = latest_routing(contact)
    association_id = facts.get("association") or routing.get("association")
    association = Association(association_id).display_name if association_id else None
    antenna = facts.get("antenna") or routing.get("antenna")
    next_session = facts.get("next_session")
    # Only the volunteers who follow the person learn how to reach them.
    follows = recipient in VOLUNTEERS
    context = {
        **FACT_DEFAULTS,
        **{k: v for k, v in facts.items() if k in FACT_DEFAULTS},
        "antenna": {field: antenna.get(field) for field in ANTENNA_FIELDS} if antenna else None,
        "next_session": {"when": next_session["when"], "place": next_session.get("place")} if next_session else None,
        "association": association,
        "association_id": association_id,
        "coordination_email": coordinators.get(association_id or ""),
        "signature": f"L'équipe {association}" if association else "L'équipe Relais (Second Souffle et 60 000 rebonds)",
        "recipient_name": address.name,
        "first_name": contact.get("first_name", ""),
        "last_name": contact.get("last_name", ""),
        "person_email": contact.get("email") if follows else None,
        "person_phone": contact.get("phone") if follows else None,
        "case_ref": case_id[:8],
        "unsubscribe_url": unsubscribe_url,
    }
    if recipient is Recipient.PARTNER:
        context["partner_reference"] = facts.get("partner_reference")
    return context


def compose(
    *, rendered: Rendered, sender: str, to: Address, message_id: str, composed_at: datetime, unsubscribe_url: str
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = MimeAddress(display_name=to.name, addr_spec=to.email)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(composed_at)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "fr"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # The MIME boundary is random by default; derived from the Message-ID, a resend is byte for byte the same
    # ("=_" never occurs in quoted-printable content, where "=" is written "=3D").
    message.set_boundary("=_relais_" + hashlib.sha256(message_id.encode()).hexdigest()[:32])
    return message


def envelope_sender(sender: str) -> str:
    """The bare address of the From header, for SMTP's MAIL FROM."""
    return parseaddr(sender)[1]
