"""Test tools for notifications: a real SMTP server in process, flow events to publish, topics to read."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiosmtpd.controller import Controller

from ops.mailsink import MailSink
from services.notifications.app import SUBSCRIPTIONS
from shared.broker import EVENT_TOPICS, KafkaAccess, ensure_topics
from shared.schemas import (
    EVENTS,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Envelope,
    SessionHeld,
    VolunteerApplicationDecided,
    VolunteerAssigned,
    new_envelope,
)
from shared.settings import ServiceSettings
from tests.conftest import free_port

# Recognisable personal values: none may reach the partner feed, a key, a header or a log.
PERSON = {
    "first_name": "Éloïse",
    "last_name": "Zébulon-D'Arcy <b>&",
    "email": "eloise.zebulon@example.fr",
    "phone": "06 98 76 54 32",
    "company_name": "Fromagerie Zébulon",
    "siren": "732829320",
    "message": "Mon secret : les dettes de la fromagerie Zébulon.",
}
PARTNER = {
    "kind": "mandataire",
    "organisation": "Étude Martin & Associés",
    "partner_reference": "LJ-2026-0427",
    "contact_email": "greffe@etude-martin.example",
}
# The same partner referring with its account (its HTTP token): its statuses go to its own topic.
PARTNER_ACCOUNT = "etude-martin"
PARTNER_WITH_ACCOUNT = {**PARTNER, "partner": PARTNER_ACCOUNT}
ANTENNA_EMAIL = "saint-etienne@60000rebonds.example"


def antenna(email: str = ANTENNA_EMAIL) -> dict[str, str]:
    """Routing's fields naming the antenna: its public contact is free text holding the coordination's email."""
    return {
        "antenna_id": "60000_rebonds-saint-etienne",
        "antenna_name": "60 000 rebonds Saint-Étienne",
        "antenna_contact": f"12 rue de la République, 42000 Saint-Étienne, 04 77 00 00 00, {email}",
    }


ANTENNA = antenna()
# A volunteer application accepted by 60 000 rebonds (keyed by the application's id).
APPLICATION = new_envelope(
    VolunteerApplicationDecided(
        association="60000_rebonds",
        role="parrain",
        display_name="Bérénice Aidante",
        email="berenice.aidante@example.org",
        decision="acceptee",
        decided_on=date(2026, 3, 2),
        antenna_id="60000_rebonds-saint-etienne",
        volunteer_id="parrain-0a1b2c3d4e5f",
    ),
    case_id=uuid.UUID("5b3a2f7e-0c41-4d8e-9a65-2f4e7d9c1b08"),
    producer="coaching",
)
# The coach coaching assigns (VolunteerAssigned): their professional contact.
COACH = {"volunteer_id": "vol-aurelien", "display_name": "Aurélien Coach", "email": "aurelien.coach@example.org"}


SUBSCRIBED_TOPICS = tuple(EVENTS[name].topic for name in SUBSCRIPTIONS)


class Inbox(MailSink):
    """The test's mail server: keeps every delivery; `refusals` maps an address to an SMTP reply."""

    def __init__(self) -> None:
        super().__init__(None)
        self.refusals: dict[str, str] = {}
        self.refused: list[str] = []

    def refuse(self, envelope) -> str | None:
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.refusals:
                self.refused.append(rcpt)
                return self.refusals[rcpt]
        return None

    def to(self, address: str) -> list[Any]:
        return [d for d in self.deliveries if address in d.rcpt_tos]


def body(message: EmailMessage, subtype: str = "plain") -> str:
    """The text of an email's plain or html part."""
    part = message.get_body((subtype,))
    assert part is not None, f"the email has no {subtype} part"
    return part.get_content()


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def flow(
    case_id: uuid.UUID | None = None,
    *,
    person: dict | None = None,
    referral: dict | None = None,
    routed_extra: dict | None = None,
    coach: dict | None = None,
) -> dict[str, Envelope]:
    """The events of one case, as the other services would publish them: a coach is assigned, leads a
    session and is still following the person at the closing."""
    case_id = case_id or uuid.uuid4()
    coach = coach or COACH
    received = new_envelope(
        CaseReceived(
            situation={
                "procedure": "liquidation_judiciaire",
                "postal_code": "42000",
                "commune": "Saint-Étienne",
                "court_decision_date": "2025-09-15",
            },
            referral=referral or PARTNER,
            personal=person or PERSON,
            received_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        ),
        case_id=case_id,
        producer="intake",
    )
    routed = new_envelope(
        CaseRouted.model_validate(
            {
                "association": "60000_rebonds",
                "rule": "procedure:liquidation_judiciaire",
                "reasons": ["Liquidation judiciaire, décision du tribunal il y a 5 mois → 60 000 rebonds"],
                "routed_at": "2026-03-02T10:00:00+00:00",
                "received_at": "2026-03-01T09:30:00+00:00",
                **(routed_extra if routed_extra is not None else ANTENNA),
            }
        ),
        case_id=case_id,
        producer="routing",
        cause=received,
    )
    approved = new_envelope(
        CommitteeApproved(association="60000_rebonds", decided_on=date(2026, 3, 12)),
        case_id=case_id,
        producer="coaching",
    )
    assigned = new_envelope(
        VolunteerAssigned(association="60000_rebonds", role="coach", assigned_on=date(2026, 3, 13), **coach),
        case_id=case_id,
        producer="coaching",
    )
    session = new_envelope(
        SessionHeld(
            association="60000_rebonds",
            session_id="s-1",
            kind="coaching",
            held_on=date(2026, 3, 19),
            duration_minutes=60,
            number=1,
            volunteer_id=coach["volunteer_id"],
            next_session_at=datetime.fromisoformat("2026-04-02T14:30:00+02:00"),
            next_session_place="antenne de Saint-Étienne",
        ),
        case_id=case_id,
        producer="coaching",
    )
    closed = new_envelope(
        CaseClosed(
            association="60000_rebonds", outcome="emploi_salarie", closed_on=date(2027, 1, 29), journey_days=334
        ),
        case_id=case_id,
        producer="coaching",
    )
    return {
        "received": received,
        "routed": routed,
        "approved": approved,
        "assigned": assigned,
        "session": session,
        "closed": closed,
    }


def metric(text: str, recipient: str, result: str) -> float:
    """A value of `relais_notifications_total` in a /metrics page (0 when absent)."""
    match = re.search(rf'relais_notifications_total{{recipient="{recipient}",result="{result}"}} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


async def publish(access: KafkaAccess, *envelopes: Envelope) -> None:
    producer = AIOKafkaProducer(**access.client(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                envelope.spec.topic,
                envelope.encode(),
                key=envelope.key,
                headers=[(k, v.encode()) for k, v in envelope.headers().items()],
            )
    finally:
        await producer.stop()


async def publish_raw(
    access: KafkaAccess, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(**access.client(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def read_topic(access: KafkaAccess, topic: str) -> list[Any]:
    """Every record currently in a topic, from the beginning (no consumer group)."""
    consumer = AIOKafkaConsumer(**access.client(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for items in batch.values():
                records.extend(items)
        return records
    finally:
        await consumer.stop()


async def skip_backlog(access: KafkaAccess, group: str) -> None:
    """Start a new consumer group at the end of the flow's topics, as if it had read everything before.

    Topics are shared by the whole test session; a notifications service under test would otherwise send
    the emails of every earlier test's events before reaching its own.
    """
    await ensure_topics(ServiceSettings(kafka_bootstrap=access.bootstrap), EVENT_TOPICS, access=access)
    consumer = AIOKafkaConsumer(**access.client(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in SUBSCRIBED_TOPICS
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - a topic created after the consumer started
    return consumer.partitions_for_topic(topic) or set()
