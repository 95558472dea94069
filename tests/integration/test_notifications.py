"""Notifications on the real Kafka and FerretDB: each event plans its notifications, once per delivery set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.schemas import (
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Envelope,
    Outcome,
    SessionHeld,
    SessionKind,
    VolunteerAssigned,
    VolunteerRole,
    new_envelope,
)
from tests.conftest import Infra, running, staff_headers, wait_for
from tests.integration.conftest import publish, wait_consumed

SS = Association.SECOND_SOUFFLE


def flow(case_id: uuid.UUID, referrer: str) -> list[Envelope]:
    """One case's events, each caused by the previous one: a coach is assigned, leads a session, is told
    of the closing."""
    today = datetime.now(UTC).date()
    received = new_envelope(
        CaseReceived(
            situation={"procedure": "sauvegarde", "postal_code": "69003"},
            referral={"kind": referrer, "organisation": None if referrer == "self" else "CCI Lyon Métropole"},
            personal={"first_name": "Luc", "last_name": "Bernard", "email": "luc.bernard@example.fr"},
            received_at=datetime.now(UTC),
        ),
        case_id=case_id,
        producer="intake",
    )
    payloads = [
        CaseRouted(
            association=SS,
            rule="procedure:sauvegarde",
            reasons=["Procédure de sauvegarde → Second Souffle"],
            routed_at=datetime.now(UTC),
        ),
        CommitteeApproved(association=SS, decided_on=today),
        VolunteerAssigned(
            association=SS,
            role=VolunteerRole.COACH,
            volunteer_id="vol-1",
            display_name="Inès Coach",
            email="ines.coach@example.org",
            assigned_on=today,
        ),
        SessionHeld(
            association=SS,
            session_id="s-1",
            kind=SessionKind.COACHING,
            held_on=today,
            number=1,
            volunteer_id="vol-1",
        ),
        CaseClosed(association=SS, outcome=Outcome.SALARIED_JOB, closed_on=today, journey_days=200),
    ]
    events = [received]
    for payload in payloads:
        events.append(new_envelope(payload, case_id=case_id, producer="test", cause=events[-1]))
    return events


EXPECTED_SELF_REFERRED = sorted(
    [
        ("CaseReceived", "entrepreneur", "accuse_reception"),
        ("CaseRouted", "entrepreneur", "orientation"),
        ("CaseRouted", "coordination", "nouveau_dossier"),
        ("CommitteeApproved", "entrepreneur", "decision_comite"),
        ("VolunteerAssigned", "coach", "attribution_coach"),
        ("SessionHeld", "entrepreneur", "suivi_seance"),
        ("SessionHeld", "coach", "seance_coach"),
        ("CaseClosed", "entrepreneur", "cloture"),
        ("CaseClosed", "coordination", "cloture_dossier"),
        ("CaseClosed", "coach", "fin_accompagnement_coach"),
    ]
)
# The referring partner hears of each status of its referral (received, routed, accepted, closed).
EXPECTED_PARTNER_REFERRED = sorted(
    [
        *EXPECTED_SELF_REFERRED,
        ("CaseReceived", "partenaire", "accuse_reception_partenaire"),
        ("CaseRouted", "partenaire", "orientation_partenaire"),
        ("CommitteeApproved", "partenaire", "decision_comite_partenaire"),
        ("CaseClosed", "partenaire", "cloture_partenaire"),
    ]
)


def summary(notifications: list[dict]) -> list[tuple[str, str, str]]:
    return sorted((n["event_type"], n["recipient"], n["template"]) for n in notifications)


async def test_each_event_plans_its_notifications_once_whatever_the_deliveries(
    infra: Infra, producer: AIOKafkaProducer, admin: AIOKafkaAdminClient, mongo: AsyncMongoClient
) -> None:
    settings = infra.settings(NotificationsSettings, email_enabled=False)  # planning only: nothing is sent
    partner_case, self_case = uuid.uuid4(), uuid.uuid4()
    async with running(create_app(settings), staff_headers(SS)) as client:
        flows = [flow(partner_case, "cci"), flow(self_case, "self")]
        # Up to the assignment, then the rest: a closing tells the volunteers known when it is handled, and
        # the two come on different topics (in life the assignment comes months before).
        for part in (slice(0, 4), slice(4, None)):
            sent = []
            for envelope in [e for events in flows for e in events[part]]:
                sent.append(await publish(producer, envelope))
                sent.append(await publish(producer, envelope))  # every event delivered twice
            await wait_consumed(admin, settings.consumer_group, *sent)

        async def notifications(case_id: uuid.UUID) -> list[dict]:
            response = await client.get(f"/cases/{case_id}/notifications")
            assert response.status_code == 200
            return response.json()["notifications"]

        partner = await notifications(partner_case)
        assert summary(partner) == EXPECTED_PARTNER_REFERRED
        assert all(n["status"] == "a_envoyer" and n["channel"] == "email" for n in partner)
        assert "Bernard" not in str(partner)  # the API lists notifications, not contact details
        assert summary(await notifications(self_case)) == EXPECTED_SELF_REFERRED

        contact = await mongo[settings.mongo_db]["contacts"].find_one({"_id": str(partner_case)})
        assert contact is not None
        assert contact["email"] == "luc.bernard@example.fr" and contact["referral"]["kind"] == "cci"
        assert contact["volunteers"]["coach"] == {
            "volunteer_id": "vol-1",
            "name": "Inès Coach",
            "email": "ines.coach@example.org",
        }

        empty = await client.get(f"/cases/{uuid.uuid4()}/notifications")
        assert empty.json()["notifications"] == []
        invalid = await client.get("/cases/42/notifications")
        assert invalid.status_code == 422
        other = await client.get(
            f"/cases/{partner_case}/notifications", headers=staff_headers(Association.SOIXANTE_MILLE_REBONDS)
        )
        assert other.status_code == 404  # routed to Second Souffle: 60 000 rebonds' staff cannot see it


async def test_a_notification_is_planned_as_soon_as_its_event_arrives(infra: Infra, producer: AIOKafkaProducer) -> None:
    case_id = uuid.uuid4()
    [received, *_] = flow(case_id, "tribunal")
    settings = infra.settings(NotificationsSettings, email_enabled=False)
    async with running(create_app(settings), staff_headers(SS)) as client:
        await publish(producer, received)

        async def planned() -> list | None:
            body = (await client.get(f"/cases/{case_id}/notifications")).json()
            return body["notifications"] if len(body["notifications"]) == 2 else None

        found = await wait_for(planned, 15, "the receipts of a new case")
        assert {n["recipient"] for n in found} == {"entrepreneur", "partenaire"}
        assert {n["event_id"] for n in found} == {str(received.event_id)}
