"""Notifications on real Kafka, FerretDB and SMTP: once per event and recipient, opt-outs, failures, the feed.

Topics are shared by the whole test session, so each test's service also sees earlier tests' events:
assertions look only at this test's events (their ids are in the Message-IDs) and unique addresses.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from ops.kafka_security import Secrets
from ops.partners import add
from services.notifications.app import create_app
from services.notifications.domain import Recipient
from services.notifications.settings import NotificationsSettings
from services.notifications.tokens import Tokens
from shared.broker import dead_letter_topic
from shared.schemas import Association, Envelope
from shared.topology import partner_topic
from tests.conftest import Infra, free_port, running, staff_headers, wait_for
from tests.mail import (
    ANTENNA_EMAIL,
    COACH,
    PARTNER,
    PERSON,
    Inbox,
    flow,
    metric,
    publish,
    publish_raw,
    read_topic,
    skip_backlog,
    smtp_server,
)
from tests.mail import antenna as antenna_fields

FINAL = {"envoye", "desabonne", "sans_adresse", "echec"}
# tests.mail.flow routes its cases to 60 000 rebonds: its staff read their notifications.
STAFF = staff_headers(Association.SOIXANTE_MILLE_REBONDS)


async def fresh(infra: Infra, **overrides: Any) -> NotificationsSettings:
    """Settings of a service that starts after every earlier test's events (see tests.mail.skip_backlog)."""
    settings = infra.settings(NotificationsSettings, **overrides)
    await skip_backlog(infra.admin, settings.consumer_group)
    return settings


def unique(address: str) -> str:
    local, domain = address.split("@")
    return f"{local}+{uuid.uuid4().hex[:8]}@{domain}"


async def settled(client: httpx.AsyncClient, case_id: object, count: int, timeout: float = 60) -> list[dict]:  # noqa: ASYNC109 - passed on to wait_for, whose failure names what was awaited (asyncio.timeout would not)
    async def probe() -> list[dict] | None:
        body = (await client.get(f"/cases/{case_id}/notifications")).json()["notifications"]
        return body if len(body) >= count and all(n["status"] in FINAL for n in body) else None

    return await wait_for(probe, timeout=timeout, what=f"{count} notifications of case {case_id} settled")


def mails_of(inbox: Inbox, events: dict[str, Envelope]) -> dict[str, list[Any]]:
    ids = {str(e.event_id) for e in events.values()}
    return {mid: d for mid, d in inbox.by_message_id().items() if mid[1:37] in ids}


async def assigned(client: httpx.AsyncClient, events: dict[str, Envelope]) -> None:
    """Wait until the coach's assignment is handled: a closing tells the volunteers known when it is handled
    (the two come on different topics; in life the assignment comes months before)."""

    async def recorded() -> bool:
        body = (await client.get(f"/cases/{events['assigned'].case_id}/notifications")).json()["notifications"]
        return any(n["event_id"] == str(events["assigned"].event_id) for n in body)

    await wait_for(recorded, timeout=30, what="the coach's assignment handled")


async def test_each_recipient_gets_each_message_once_through_redeliveries_and_out_of_order_events(infra: Infra) -> None:
    events = flow()
    case_id = events["received"].case_id
    with smtp_server() as (inbox, port):
        async with running(create_app(await fresh(infra, smtp_port=port)), STAFF) as client:
            await publish(infra.admin, events["assigned"])
            await assigned(client, events)
            # The coach's assignment and routing's CaseRouted before the reception, then everything again:
            # Kafka may redeliver any event.
            order = [events[k] for k in ("assigned", "routed", "received", "approved", "session", "closed")]
            await publish(infra.admin, *order[1:])
            await publish(infra.admin, *order)
            notifications = await settled(client, case_id, 14)

            assert sorted((n["recipient"], n["template"]) for n in notifications) == sorted(
                [
                    ("entrepreneur", "accuse_reception"),
                    ("partenaire", "accuse_reception_partenaire"),
                    ("entrepreneur", "orientation"),
                    ("coordination", "nouveau_dossier"),
                    ("partenaire", "orientation_partenaire"),
                    ("entrepreneur", "decision_comite"),
                    ("partenaire", "decision_comite_partenaire"),
                    ("coach", "attribution_coach"),
                    ("entrepreneur", "suivi_seance"),
                    ("coach", "seance_coach"),
                    ("entrepreneur", "cloture"),
                    ("coordination", "cloture_dossier"),
                    ("partenaire", "cloture_partenaire"),
                    ("coach", "fin_accompagnement_coach"),
                ]
            )
            assert {n["status"] for n in notifications} == {"envoye"}
            assert all("source_event" not in n and "facts" not in n for n in notifications)

            mails = mails_of(inbox, events)
            assert len(mails) == 14 and all(len(copies) == 1 for copies in mails.values())
            recipients = sorted(d.rcpt_tos[0] for copies in mails.values() for d in copies)
            assert recipients.count(PERSON["email"]) == 5
            assert recipients.count(PARTNER["contact_email"]) == 4
            assert recipients.count(ANTENNA_EMAIL) == 2
            assert recipients.count(COACH["email"]) == 3

            attribution = mails[f"<{events['assigned'].event_id}.coach@relais.example>"][0].message()
            attribution_text = attribution.get_body(("plain",)).get_content()
            assert attribution["Subject"] == "Vous accompagnez désormais Éloïse Zébulon-D'Arcy <b>&"
            assert f"- E-mail : {PERSON['email']}" in attribution_text
            assert f"- Téléphone : {PERSON['phone']}" in attribution_text
            follow_up = mails[f"<{events['session'].event_id}.entrepreneur@relais.example>"][0].message()
            assert (
                "Votre prochaine séance aura lieu le jeudi 2 avril 2026 à 14 h 30"
                in follow_up.get_body(("plain",)).get_content()
            )

            orientation = mails[f"<{events['routed'].event_id}.entrepreneur@relais.example>"][0].message()
            assert orientation["Subject"] == "Votre accompagnement par 60 000 rebonds"
            assert str(orientation["To"]) == f'"Éloïse Zébulon-D\'Arcy <b>&" <{PERSON["email"]}>'
            text = orientation.get_body(("plain",)).get_content()
            assert "Bonjour Éloïse Zébulon-D'Arcy <b>&," in text and "antenne de Saint-Étienne" in text
            assert "04 77 00 00 00" in text and "/desabonnement/" in text
            html = orientation.get_body(("html",)).get_content()
            assert "Zébulon-D&#39;Arcy &lt;b&gt;&amp;," in html and "<b>&" not in html
            partner_mail = mails[f"<{events['closed'].event_id}.partenaire@relais.example>"][0].message()
            partner_text = partner_mail.get_body(("plain",)).get_content()
            assert "LJ-2026-0427" in partner_text and "s'est terminé le 29 janvier 2027" in partner_text
            for value in ("Éloïse", "Zébulon", PERSON["email"]):
                assert value not in partner_text

            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "entrepreneur", "sent") >= 5 and metric(metrics, "coach", "sent") >= 1


async def test_the_partner_reads_its_referrals_statuses_on_its_own_topic_without_personal_data(infra: Infra) -> None:
    reference = f"LJ-2026-{uuid.uuid4().int % 100000:05d}"
    account = f"etude-{uuid.uuid4().hex[:6]}"
    add(infra.admin, Secrets(infra.kafka.secrets.folder), account)  # `relais partners add`: its topic, among others
    events = flow(referral={**PARTNER, "partner_reference": reference, "partner": account})
    with smtp_server() as (_, port):
        async with running(create_app(await fresh(infra, smtp_port=port)), STAFF) as client:
            await publish(infra.admin, events["assigned"])
            await assigned(client, events)
            await publish(
                infra.admin,
                events["received"],
                events["routed"],
                events["approved"],
                events["session"],
                events["closed"],
            )
            await settled(client, events["received"].case_id, 14)

            async def ours() -> list | None:
                records = [
                    r for r in await read_topic(infra.admin, partner_topic(account)) if r.key == reference.encode()
                ]
                return records if len({json.loads(r.value)["record_id"] for r in records}) >= 4 else None

            records = await wait_for(ours, timeout=30, what="the referral's four statuses on the partner's topic")
    statuses = list({s["record_id"]: s for s in map(json.loads, (r.value for r in records))}.values())  # dedupe
    assert [(s["status"], s["association"], s["outcome_category"], s["occurred_on"]) for s in statuses] == [
        ("recu", None, None, "2026-03-01"),
        ("oriente", "60000_rebonds", None, "2026-03-02"),
        ("accepte", "60000_rebonds", None, "2026-03-12"),
        ("clos", "60000_rebonds", "rebond", "2027-01-29"),
    ]
    assert len({s["referral_id"] for s in statuses}) == 1
    assert str(events["received"].case_id) not in json.dumps(statuses)
    # Nothing personal anywhere on the partner's topic: keys, values and headers of every record.
    everything = await read_topic(infra.admin, partner_topic(account))
    blob = b"".join((r.key or b"") + r.value + b"".join(k.encode() + v for k, v in r.headers) for r in everything)
    for value in [*PERSON.values(), PARTNER["organisation"], PARTNER["contact_email"], "Saint-Étienne", "42000"]:
        assert value.encode() not in blob and json.dumps(value)[1:-1].encode() not in blob


async def test_opt_outs_by_link_and_by_case_and_role_are_honoured_and_counted(infra: Infra) -> None:
    partner_email, antenna_email = unique(PARTNER["contact_email"]), unique(ANTENNA_EMAIL)
    events = flow(referral={**PARTNER, "contact_email": partner_email}, routed_extra=antenna_fields(antenna_email))
    case_id = events["received"].case_id
    with smtp_server() as (inbox, port):
        settings = await fresh(infra, smtp_port=port)
        async with running(create_app(settings), STAFF) as client:
            await publish(infra.admin, events["received"])
            await settled(client, case_id, 2)
            receipt = inbox.to(partner_email)[0].message()
            link = receipt["List-Unsubscribe"].strip().strip("<>")
            token = link.rsplit("/", 1)[1]
            assert link.startswith("http://127.0.0.1:8004/desabonnement/")
            assert f"/desabonnement/{token}" in receipt.get_body(("plain",)).get_content()

            page = await client.get(f"/desabonnement/{token}")
            assert page.status_code == 200 and f"/desabonnement/{token}/confirmer" in page.text
            assert (await client.get(f"/cases/{case_id}/preferences")).json()[
                "preferences"
            ] == []  # a look is no opt-out
            confirmed = await client.get(f"/desabonnement/{token}/confirmer")
            assert confirmed.status_code == 200 and "ne recevrez plus" in confirmed.text
            # The coordination's own link (in the emails it gets): opting out takes a signed token, nothing else.
            coordination = Tokens(settings.signing_key()).unsubscribe(str(case_id), Recipient.COORDINATOR)
            by_role = await client.post("/preferences", json={"token": coordination})
            assert by_role.status_code == 200 and by_role.json()["opted_out"] is True
            named = await client.post("/preferences", json={"case_id": str(case_id), "recipient": "coordination"})
            assert named.status_code == 422  # no opting out by naming a case and a recipient

            await publish(infra.admin, events["routed"], events["approved"], events["closed"])
            notifications = await settled(client, case_id, 10)
            status = {(n["event_type"], n["recipient"]): n["status"] for n in notifications}
            assert status[("CaseReceived", "partenaire")] == "envoye"
            assert [s for (_, r), s in status.items() if r == "partenaire"].count("desabonne") == 3
            assert [s for (_, r), s in status.items() if r == "coordination"] == ["desabonne", "desabonne"]
            assert {s for (_, r), s in status.items() if r == "entrepreneur"} == {"envoye"}
            assert len(inbox.to(partner_email)) == 1 and inbox.to(antenna_email) == []

            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "partenaire", "opted_out") == 3 and metric(metrics, "coordination", "opted_out") == 2
            preferences = (await client.get(f"/cases/{case_id}/preferences")).json()["preferences"]
            assert sorted((p["recipient"], p["via"]) for p in preferences) == [
                ("coordination", "lien"),
                ("partenaire", "lien"),
            ]
            forged = await client.post("/preferences", json={"token": token[:-4] + "AAAA"})
            assert forged.status_code == 404 and "inconnu" in forged.json()["detail"]
            unnamed = await client.post("/preferences", json={"opted_out": True})
            assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "token"
            other = await client.get(f"/cases/{case_id}/preferences", headers=staff_headers(Association.SECOND_SOUFFLE))
            assert other.status_code == 404  # held by 60 000 rebonds
            assert (
                await client.get(f"/cases/{case_id}/notifications", headers={"Authorization": ""})
            ).status_code == 401


async def test_a_refusing_server_is_retried_then_dead_lettered_and_a_replay_sends_it(infra: Infra) -> None:
    partner_email = unique(PARTNER["contact_email"])
    events = flow(referral={**PARTNER, "contact_email": partner_email})
    received = events["received"]
    nid = f"{received.event_id}:partenaire"
    settings = await fresh(infra, smtp_port=0, send_backoff_ms=50, send_max_attempts=3)
    with smtp_server() as (inbox, port):
        inbox.refusals[partner_email] = "451 4.3.0 Mailbox temporarily unavailable"
        settings = settings.model_copy(update={"smtp_port": port})
        async with running(create_app(settings), STAFF) as client:
            await publish(infra.admin, received)
            notifications = await settled(client, received.case_id, 2)
            failed = next(n for n in notifications if n["id"] == nid)
            assert failed["status"] == "echec" and failed["failures"] == 3
            assert failed["reason"] == "SMTP 451 (SMTPDataError) after 3 attempt(s)"
            assert inbox.refused.count(partner_email) == 3 and inbox.to(partner_email) == []

            async def dead_letter() -> Any:
                records = await read_topic(infra.admin, dead_letter_topic(settings.consumer_group))
                return next((r for r in records if dict(r.headers).get("dlq-notification-id") == nid.encode()), None)

            letter = await wait_for(dead_letter, timeout=30, what="the failed email's dead letter")
            headers = {k: v.decode() for k, v in letter.headers}
            assert headers["dlq-reason"] == failed["reason"] and headers["dlq-reason-kind"] == "smtp"
            assert headers["dlq-source-topic"] == "relais.case-received.v1"
            assert headers["dlq-consumer-group"] == settings.consumer_group
            assert headers["event-id"] == str(received.event_id) and letter.key == received.key
            assert Envelope.model_validate_json(letter.value).event_id == received.event_id
            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "partenaire", "retried") == 2 and metric(metrics, "partenaire", "failed") == 1

            # After the fix, replaying the dead letter into its topic sends the email, once.
            inbox.refusals.clear()
            original = [(k, v) for k, v in letter.headers if not k.startswith("dlq-")]
            await publish_raw(infra.admin, headers["dlq-source-topic"], letter.value, letter.key, original)

            async def sent() -> bool:
                body = (await client.get(f"/cases/{received.case_id}/notifications")).json()["notifications"]
                return any(n["id"] == nid and n["status"] == "envoye" for n in body)

            await wait_for(sent, timeout=30, what="the replayed notification sent")
            assert len(inbox.to(partner_email)) == 1
            assert len(mails_of(inbox, events)) == 2  # the entrepreneur's receipt was not sent again


async def test_a_permanent_refusal_is_dead_lettered_at_once(infra: Infra) -> None:
    email = unique(PERSON["email"])
    events = flow(person={**PERSON, "email": email})
    with smtp_server() as (inbox, port):
        inbox.refusals[email] = "550 5.1.1 Mailbox unknown"
        async with running(create_app(await fresh(infra, smtp_port=port)), STAFF) as client:
            await publish(infra.admin, events["received"])
            notifications = await settled(client, events["received"].case_id, 2)
    entrepreneur = next(n for n in notifications if n["recipient"] == "entrepreneur")
    assert entrepreneur["status"] == "echec" and entrepreneur["failures"] == 1
    assert entrepreneur["reason"].startswith("SMTP 550") and inbox.refused == [email]


async def test_an_unreachable_server_is_an_outage_waited_out_not_a_failure(infra: Infra) -> None:
    port = free_port()
    events = flow()
    settings = await fresh(infra, smtp_port=port, send_backoff_ms=50, send_backoff_max_ms=500, send_max_attempts=2)
    async with running(create_app(settings), STAFF) as client:
        await publish(infra.admin, events["received"])

        async def retried() -> bool:
            body = (await client.get(f"/cases/{events['received'].case_id}/notifications")).json()["notifications"]
            return len(body) == 2 and all(
                (n.get("last_error") or "").startswith("SMTP server unreachable") for n in body
            )

        await wait_for(retried, timeout=30, what="sending retried while the server is down")
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            notifications = await settled(client, events["received"].case_id, 2)
        finally:
            controller.stop()
    assert {n["status"] for n in notifications} == {"envoye"}
    assert all(n["failures"] == 0 for n in notifications), "an outage does not use up the attempts"
    assert len(mails_of(inbox, events)) == 2


async def test_the_asyncapi_document_and_its_page_are_served(infra: Infra) -> None:
    async with running(create_app(await fresh(infra, email_enabled=False)), STAFF) as client:
        doc = (await client.get("/asyncapi.json")).json()
        page = await client.get("/asyncapi")
    assert doc["servers"]["kafka"]["host"] == infra.bootstrap
    assert doc["channels"]["relais-partner-status-partner-v1"]["address"] == "relais.partner-status.{partner}.v1"
    assert page.status_code == 200 and "relais.partner-status.{partner}.v1" in page.text
    assert "partner_reference" in page.text
