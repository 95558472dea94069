"""Notifications in the whole system: the four services as processes, real Kafka, FerretDB and SMTP.

A case goes through intake, routing and coaching's APIs; the test's SMTP server counts what arrives.
The coach, assigned in coaching with a professional email, is told who they follow and of the session.
The referring partner opts out by the link in its first email, a second case's partner mailbox refuses
every message (retried, then dead-lettered), and the partner, which referred the person with its account
(`relais partners add`), reads its statuses on its own topic with the documented example consumer.
(A crash in the middle of a send: tests/faults/test_notifications_crash.py.)
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from pymongo import AsyncMongoClient

from examples.partner_consumer import follow
from ops.kafka_security import Secrets
from ops.partners import add, issue_http_token
from ops.stack import SERVICES, Stack, StackConfig
from services.intake.store import MongoPartnerCredentials
from shared.broker import dead_letter_topic
from shared.topology import partner_principal, partner_topic
from tests.coaching_support import SR, StaffClient, unique_antenna
from tests.conftest import Infra, a_case, free_port, wait_for
from tests.e2e.conftest import DEV_TOKENS, SUBMISSIONS, dev_staff
from tests.mail import Inbox, metric, read_topic, skip_backlog, smtp_server

TAG = uuid.uuid4().hex[:8]
GROUP = f"notifications-e2e-{TAG}"
PERSON = {
    "first_name": "Anaïs",
    "last_name": "O'Connor-Bénard",
    "email": f"anais.{TAG}@example.fr",
    "phone": "06 11 22 33 44",
}
COMPANY = {"name": "Atelier Bénard Céramique", "siren": "732829320"}
MESSAGE = "Ma céramique a fermé, je voudrais retravailler."
REFERENCE = f"TAE-LYON-{TAG}"
ACCOUNT = f"tae-lyon-{TAG}"  # the referring court's partner account
PARTNER_EMAIL = f"greffe.{TAG}@tae-lyon.example"
REFUSING_EMAIL = f"boite-pleine.{TAG}@example.org"
COACH_EMAIL = f"coach.{TAG}@example.org"
FINAL = {"envoye", "desabonne", "sans_adresse", "echec"}


@pytest.fixture(scope="module")
def system(infra: Infra, tmp_path_factory: pytest.TempPathFactory):
    with smtp_server() as (inbox, smtp_port):
        config = StackConfig(
            data_dir=tmp_path_factory.mktemp("stack"),
            kafka_port=infra.kafka.port,
            mongo_port=infra.ferretdb.port,
            smtp_port=smtp_port,
            service_ports={name: free_port() for name in SERVICES},
            secrets_dir=infra.kafka.secrets.folder,
            extra_env={
                "RELAIS_NOTIFICATIONS_CONSUMER_GROUP": GROUP,
                "RELAIS_NOTIFICATIONS_MONGO_DB": f"relais_notifications_{TAG}",
                "RELAIS_NOTIFICATIONS_SEND_BACKOFF_MS": "100",
                "RELAIS_NOTIFICATIONS_SEND_MAX_ATTEMPTS": "3",
                **SUBMISSIONS,
            },
        )
        stack = Stack(config)
        stack.kafka, stack.ferretdb = infra.kafka, infra.ferretdb
        asyncio.run(skip_backlog(infra.admin, GROUP))  # earlier tests' events are not this test's
        try:
            stack.start_services()
            yield stack, inbox
        finally:
            for node in stack.services.values():
                node.stop()


async def submit(client: httpx.AsyncClient, stack: Stack, key: str, token: str | None = None, **case: object) -> str:
    headers = {"Idempotency-Key": key, **({"Authorization": f"Bearer {token}"} if token else {})}
    response = await client.post(f"{stack.services['intake'].url}/cases", json=a_case(**case), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def notifications(client: httpx.AsyncClient, stack: Stack, case_id: str) -> list[dict]:
    response = await client.get(
        f"{stack.services['notifications'].url}/cases/{case_id}/notifications", headers=dev_staff(SR)
    )  # the cases are liquidations: 60 000 rebonds'
    return response.json()["notifications"]


async def settled(client: httpx.AsyncClient, stack: Stack, case_id: str, count: int) -> list[dict]:
    async def probe() -> list[dict] | None:
        found = await notifications(client, stack, case_id)
        return found if len(found) >= count and all(n["status"] in FINAL for n in found) else None

    return await wait_for(probe, timeout=90, what=f"{count} notifications of {case_id} settled")


def copies(inbox: Inbox, notification_id: str) -> int:
    event_id, recipient = notification_id.split(":")
    return len(inbox.by_message_id().get(f"<{event_id}.{recipient}@relais.example>", []))


async def partner_account(stack: Stack, partner: str) -> str:
    """`relais partners add <partner>`: its Kafka user, topic and ACLs, then its HTTP token for intake."""
    add(stack.kafka.access(), Secrets(stack.kafka.secrets.folder), partner)
    mongo: AsyncMongoClient = AsyncMongoClient(stack.ferretdb.url, tz_aware=True)
    try:
        return await issue_http_token(MongoPartnerCredentials(mongo["relais_intake"]), partner)
    finally:
        await mongo.close()


async def test_people_are_told_once_partners_follow_without_personal_data(system) -> None:
    stack, inbox = system
    token = await partner_account(stack, ACCOUNT)
    coaching_http = httpx.AsyncClient(base_url=stack.services["coaching-60000_rebonds"].url, timeout=10)
    coaching = StaffClient(coaching_http, SR, DEV_TOKENS[SR])
    async with httpx.AsyncClient(timeout=10) as client, coaching_http:
        case_id = await submit(
            client,
            stack,
            f"e2e-notif-{TAG}",
            token,
            entrepreneur=PERSON,
            company=COMPANY,
            message=MESSAGE,
            referral={
                "kind": "tribunal",
                "organisation": "Greffe du TAE de Lyon",
                "partner_reference": REFERENCE,
                "contact_email": PARTNER_EMAIL,
            },
        )
        refused_case = await submit(
            client,
            stack,
            f"e2e-notif-refused-{TAG}",
            referral={"kind": "expert_comptable", "organisation": "Cabinet Comptable", "contact_email": REFUSING_EMAIL},
        )
        inbox.refusals[REFUSING_EMAIL] = "451 4.2.2 Mailbox full"

        # The partner's receipt arrives; the partner opts out with the link it carries.
        receipt = await wait_for(lambda: _first(inbox, PARTNER_EMAIL), timeout=60, what="the partner's receipt")
        link = receipt.message()["List-Unsubscribe"].strip().strip("<>")
        assert link.startswith(stack.services["notifications"].url + "/desabonnement/")
        assert (await client.get(link)).status_code == 200
        assert (await client.get(link + "/confirmer")).status_code == 200

        file = await coaching.opened(case_id)
        assert file["association"] == "60000_rebonds"
        antenna = unique_antenna(SR, "lyon")
        await coaching.volunteer(f"notif-coach-{TAG}", "coach", antenna, email=COACH_EMAIL)
        await coaching.patch(f"/cases/{case_id}", {"antenna_id": antenna})
        await coaching.post(f"/cases/{case_id}/committee-decision", {"decision": "approuve", "reasons": ["Sincère"]})
        await coaching.post(f"/cases/{case_id}/assignments", {"role": "coach", "volunteer_id": f"notif-coach-{TAG}"})
        await coaching.post(
            f"/cases/{case_id}/sessions",
            {"kind": "coaching", "next_session_place": "visioconférence", "next_session_at": "2027-04-01T14:30:00"},
            expect=201,
        )
        await coaching.post(f"/cases/{case_id}/closing", {"outcome": "creation_entreprise"})

        # Each recipient, each message, once; the coach from coaching's VolunteerAssigned.
        found = await settled(client, stack, case_id, 13)
        by_recipient: dict[str, list[dict]] = {}
        for n in found:
            by_recipient.setdefault(n["recipient"], []).append(n)
        assert sorted(n["template"] for n in by_recipient["entrepreneur"]) == [
            "accuse_reception",
            "cloture",
            "decision_comite",
            "orientation",
            "suivi_seance",
        ]
        assert sorted(n["template"] for n in by_recipient["coordination"]) == ["cloture_dossier", "nouveau_dossier"]
        assert len(by_recipient["partenaire"]) == 4
        for n in found:
            assert copies(inbox, n["id"]) == (1 if n["status"] == "envoye" else 0), n
        assert {n["status"] for n in by_recipient["entrepreneur"] + by_recipient["coordination"]} == {"envoye"}
        partner = {n["template"]: n["status"] for n in by_recipient["partenaire"]}
        assert partner["accuse_reception_partenaire"] == "envoye"
        assert partner["decision_comite_partenaire"] == partner["cloture_partenaire"] == "desabonne"
        coach = {n["template"]: n["status"] for n in by_recipient["coach"]}
        assert coach["attribution_coach"] == coach["seance_coach"] == "envoye"
        [assignment] = [d.message() for d in inbox.to(COACH_EMAIL) if "accompagnez" in d.message()["Subject"]]
        assert assignment["Subject"] == "Vous accompagnez désormais Anaïs O'Connor-Bénard"
        assignment_text = assignment.get_body(("plain",)).get_content()
        assert f"- E-mail : {PERSON['email']}" in assignment_text and PERSON["phone"] in assignment_text
        assert COMPANY["name"] not in assignment_text and MESSAGE not in assignment_text
        entrepreneur_mails = [d.message() for d in inbox.to(PERSON["email"])]
        assert len(entrepreneur_mails) == 5
        follow_up = next(m for m in entrepreneur_mails if "prochaine séance" in m["Subject"])
        assert "jeudi 1er avril 2027 à 14 h 30, visioconférence." in follow_up.get_body(("plain",)).get_content()
        closing = next(m for m in entrepreneur_mails if "se termine" in m["Subject"])
        assert "Félicitations pour votre nouveau projet d'entreprise" in closing.get_body(("plain",)).get_content()
        assert "Bonjour Anaïs O&#39;Connor-Bénard," in closing.get_body(("html",)).get_content()

        # The refusing mailbox: retried, then dead-lettered with the reason.
        refused = await settled(client, stack, refused_case, 2)
        failed = next(n for n in refused if n["recipient"] == "partenaire")
        assert failed["status"] == "echec" and failed["reason"] == "SMTP 451 (SMTPDataError) after 3 attempt(s)"
        assert failed["failures"] == 3 and inbox.to(REFUSING_EMAIL) == []
        letters = await read_topic(stack.kafka.access(), dead_letter_topic(GROUP))
        letter = next(r for r in letters if dict(r.headers)["dlq-notification-id"] == failed["id"].encode())
        assert dict(r for r in letter.headers)["dlq-reason-kind"] == b"smtp"
        metrics = (await client.get(f"{stack.services['notifications'].url}/metrics")).text
        assert metric(metrics, "partenaire", "opted_out") >= 2  # accepted and closed; the routing raced the opt-out
        assert metric(metrics, "partenaire", "failed") >= 1 and metric(metrics, "partenaire", "retried") >= 2

    # The partner follows its referral on its own topic, as its own user, with the documented example consumer.
    statuses: list[dict] = []
    done = asyncio.Event()

    def on_status(status: dict) -> None:
        statuses.append(status)
        if status["status"] == "clos":
            done.set()

    await asyncio.wait_for(
        follow(stack.kafka.access(partner_principal(ACCOUNT)).client(), ACCOUNT, {REFERENCE}, on_status, done),
        timeout=60,
    )
    assert [(s["status"], s["association"], s["outcome_category"]) for s in statuses] == [
        ("recu", None, None),
        ("oriente", "60000_rebonds", None),
        ("accepte", "60000_rebonds", None),
        ("clos", "60000_rebonds", "rebond"),
    ]
    feed = await read_topic(stack.kafka.access(), partner_topic(ACCOUNT))
    blob = b"".join((r.key or b"") + r.value + b"".join(k.encode() + v for k, v in r.headers) for r in feed)
    for value in [*PERSON.values(), *COMPANY.values(), MESSAGE, PARTNER_EMAIL, "Greffe du TAE de Lyon", case_id]:
        assert value.encode() not in blob and json.dumps(value)[1:-1].encode() not in blob


async def _first(inbox: Inbox, address: str):
    found = inbox.to(address)
    return found[0] if found else None


async def _json(client: httpx.AsyncClient, url: str) -> dict | None:
    response = await client.get(url)
    return response.json() if response.status_code == 200 else None
