"""Notifications' use cases on in-memory stores and SMTP: the production wiring (`build_service`) with fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.notifications.app import SUBSCRIPTIONS, build_service
from services.notifications.domain import Recipient
from services.notifications.service import NotificationsService
from services.notifications.settings import NotificationsSettings
from services.notifications.smtp import SmtpFailure
from shared.schemas import SessionHeld, VolunteerAssigned, new_envelope
from shared.schemas.envelope import Envelope
from shared.store import VersionConflict
from tests.conftest import wait_for
from tests.fakes.notifications import FakeStores, FakeTransport
from tests.mail import ANTENNA_EMAIL, COACH, PARTNER, PARTNER_WITH_ACCOUNT, PERSON, body, flow

FINAL = {"envoye", "desabonne", "sans_adresse", "echec"}
EVERY_STEP = ("received", "routed", "approved", "assigned", "session", "closed")


def settings(**overrides: Any) -> NotificationsSettings:
    return NotificationsSettings(secret_key="secret", dispatch_scan_s=0.05, send_backoff_ms=10, **overrides)


def build(*, email: bool = False, **overrides: Any) -> tuple[NotificationsService, FakeStores, FakeTransport]:
    fakes, transport = FakeStores(), FakeTransport()
    service = build_service(settings(email_enabled=email, **overrides), stores=fakes.stores, transport=transport)
    return service, fakes, transport


async def handle(service: NotificationsService, *envelopes: Envelope) -> None:
    """Through the handler the consumer would call, as subscribed in app.py."""
    for envelope in envelopes:
        await SUBSCRIPTIONS[envelope.event_type](service)(envelope)


@asynccontextmanager
async def sending(service: NotificationsService) -> AsyncIterator[None]:
    assert service.dispatcher is not None
    await service.dispatcher.start()
    try:
        yield
    finally:
        await service.dispatcher.stop()


async def settled(service: NotificationsService, case_id: object, count: int) -> list[dict]:
    async def probe() -> list[dict] | None:
        found = await service.notifications_of(str(case_id))
        return found if len(found) >= count and all(n["status"] in FINAL for n in found) else None

    return await wait_for(probe, timeout=10, what=f"{count} notifications settled")


def summary(notifications: list[dict]) -> list[tuple[str, str, str]]:
    return sorted((n["event_type"], n["recipient"], n["template"]) for n in notifications)


def feed(fakes: FakeStores, case_id: object) -> list[str]:
    import json

    return [json.loads(item["value"])["status"] for item in fakes.referrals.outbox.get(str(case_id), [])]


async def test_each_event_plans_its_notifications_and_the_partners_statuses() -> None:
    service, fakes, _ = build()
    events = flow(referral=PARTNER_WITH_ACCOUNT)
    case_id = events["received"].case_id
    await handle(service, *(events[step] for step in EVERY_STEP))

    assert summary(await service.notifications_of(str(case_id))) == sorted(
        [
            ("CaseReceived", "entrepreneur", "accuse_reception"),
            ("CaseReceived", "partenaire", "accuse_reception_partenaire"),
            ("CaseRouted", "entrepreneur", "orientation"),
            ("CaseRouted", "coordination", "nouveau_dossier"),
            ("CaseRouted", "partenaire", "orientation_partenaire"),
            ("CommitteeApproved", "entrepreneur", "decision_comite"),
            ("CommitteeApproved", "partenaire", "decision_comite_partenaire"),
            ("VolunteerAssigned", "coach", "attribution_coach"),
            ("SessionHeld", "entrepreneur", "suivi_seance"),
            ("SessionHeld", "coach", "seance_coach"),
            ("CaseClosed", "entrepreneur", "cloture"),
            ("CaseClosed", "coordination", "cloture_dossier"),
            ("CaseClosed", "partenaire", "cloture_partenaire"),
            ("CaseClosed", "coach", "fin_accompagnement_coach"),
        ]
    )
    assert feed(fakes, case_id) == ["recu", "oriente", "accepte", "clos"]
    contact = await fakes.contacts.contact(str(case_id))
    assert contact is not None
    assert contact["volunteers"]["coach"] == {
        "volunteer_id": COACH["volunteer_id"],
        "name": COACH["display_name"],
        "email": COACH["email"],
    }
    assert contact["routings"]["1"]["antenna"]["email"] == ANTENNA_EMAIL


async def test_a_redelivered_event_changes_nothing() -> None:
    service, fakes, _ = build()
    events = flow(referral=PARTNER_WITH_ACCOUNT)
    await handle(service, *(events[step] for step in EVERY_STEP))
    before = [fakes.notifications.docs, fakes.contacts.docs, fakes.referrals.docs, fakes.referrals.outbox]
    snapshot = repr(before)
    await handle(service, *(events[step] for step in reversed(EVERY_STEP)))
    assert (
        repr([fakes.notifications.docs, fakes.contacts.docs, fakes.referrals.docs, fakes.referrals.outbox]) == snapshot
    )


async def test_an_assigned_coach_learns_who_they_follow_then_hears_of_each_session_with_the_person() -> None:
    service, _, transport = build(email=True)
    events = flow()
    case_id = events["received"].case_id
    async with sending(service):
        await handle(service, events["received"], events["routed"], events["assigned"])
        await settled(service, case_id, 6)
        [assignment] = transport.to(COACH["email"])
        assert assignment["Subject"] == f"Vous accompagnez désormais {PERSON['first_name']} {PERSON['last_name']}"
        assert str(assignment["To"]) == f"{COACH['display_name']} <{COACH['email']}>"
        text = body(assignment)
        assert f"- E-mail : {PERSON['email']}" in text and f"- Téléphone : {PERSON['phone']}" in text
        assert ANTENNA_EMAIL in text and "antenne de Saint-Étienne" in text
        assert PERSON["company_name"] not in text and PERSON["message"] not in text

        await handle(service, events["session"])
        found = await settled(service, case_id, 8)
        assert {(n["recipient"], n["template"]) for n in found if n["event_type"] == "SessionHeld"} == {
            ("entrepreneur", "suivi_seance"),
            ("coach", "seance_coach"),
        }
    coach_session = transport.to(COACH["email"])[1]
    assert coach_session["Subject"] == "Prochaine séance avec Éloïse Zébulon-D'Arcy <b>& : jeudi 2 avril 2026 à 14 h 30"
    follow_up = next(m for m in transport.to(PERSON["email"]) if "prochaine séance" in m["Subject"])
    assert "Votre prochaine séance aura lieu le jeudi 2 avril 2026 à 14 h 30, antenne de Saint-Étienne." in body(
        follow_up
    )


async def test_a_session_handled_before_its_leaders_assignment_waits_for_it() -> None:
    service, _, transport = build(email=True)
    events = flow()
    async with sending(service):
        await handle(service, events["received"], events["session"])
        await wait_for(lambda: _sent_to(transport, PERSON["email"], 2), timeout=10, what="the entrepreneur's mails")
        assert transport.to(COACH["email"]) == []
        await handle(service, events["assigned"])
        await settled(service, events["received"].case_id, 5)
    assert sorted(m["Subject"].split(" ")[0] for m in transport.to(COACH["email"])) == ["Prochaine", "Vous"]


async def test_a_released_volunteer_is_forgotten_and_gets_no_more_emails() -> None:
    service, fakes, transport = build(email=True)
    events = flow()
    case_id = events["received"].case_id
    released = new_envelope(
        VolunteerAssigned(**{**events["assigned"].payload, "released": True}), case_id=case_id, producer="coaching"
    )
    late_session = new_envelope(
        SessionHeld(**{**events["session"].payload, "session_id": "s-2", "number": 2}),
        case_id=case_id,
        producer="coaching",
    )
    async with sending(service):
        await handle(service, events["received"], events["routed"], events["approved"], events["assigned"])
        await settled(service, case_id, 8)
        await handle(service, released, late_session, events["closed"])
        found = await settled(service, case_id, 13)
    contact = await fakes.contacts.contact(str(case_id))
    assert contact is not None
    assert contact["volunteers"]["coach"] == {
        "volunteer_id": COACH["volunteer_id"],
        "released": True,
    }
    coach = {(n["event_type"], n["status"]) for n in found if n["recipient"] == "coach"}
    # The session was led before the release was known here: recorded, never sent; the closing tells nobody.
    assert coach == {("VolunteerAssigned", "envoye"), ("SessionHeld", "sans_adresse")}
    assert len(transport.to(COACH["email"])) == 1


async def test_a_referral_written_by_a_rival_first_is_decided_again_and_released_in_order() -> None:
    service, fakes, _ = build()
    events = flow(referral=PARTNER_WITH_ACCOUNT)
    case_id = events["received"].case_id
    # While the reception is being followed, the routing (another topic) is written first.
    fakes.referrals.rival_writes_first(lambda: handle(service, events["routed"]))
    await handle(service, events["received"])
    assert fakes.referrals.conflicts == 1
    assert feed(fakes, case_id) == ["recu", "oriente"]
    referral = fakes.referrals.docs[str(case_id)]
    assert [c["status"] for c in referral["history"]] == ["recu", "oriente"] and referral["pending"] == []
    partner = [n["template"] for n in await service.notifications_of(str(case_id)) if n["recipient"] == "partenaire"]
    assert sorted(partner) == ["accuse_reception_partenaire", "orientation_partenaire"]


async def test_a_referral_that_keeps_losing_is_refused_for_the_consumer_to_retry() -> None:
    service, fakes, _ = build()
    events = flow(referral=PARTNER_WITH_ACCOUNT)
    case_id = str(events["received"].case_id)

    async def rival() -> None:
        fakes.referrals.docs.setdefault(case_id, {"_id": case_id, "version": 0})["version"] += 1

    for _ in range(fakes.referrals.attempts):
        fakes.referrals.rival_writes_first(rival)
    with pytest.raises(VersionConflict):
        await handle(service, events["received"])
    await handle(service, events["received"])  # the redelivery goes through
    assert feed(fakes, events["received"].case_id)[0] == "recu"


async def test_opt_outs_by_role_and_by_link_are_honoured() -> None:
    service, _, transport = build(email=True)
    events = flow()
    case_id = str(events["received"].case_id)
    await service.set_preference(case_id, Recipient.PARTNER)
    token = service.tokens.unsubscribe(case_id, Recipient.COORDINATOR)
    preference = await service.set_preference_by_token(token)
    assert preference is not None and preference.via == "lien"
    assert await service.set_preference_by_token(token[:-4] + "AAAA") is None
    async with sending(service):
        await handle(service, events["received"], events["routed"])
        found = await settled(service, case_id, 5)
    status = {n["recipient"]: n["status"] for n in found}
    assert status == {"entrepreneur": "envoye", "partenaire": "desabonne", "coordination": "desabonne"}
    assert transport.to(PARTNER["contact_email"]) == [] and transport.to(ANTENNA_EMAIL) == []
    assert sorted((p.recipient, p.via) for p in await service.preferences_of(case_id)) == [
        (Recipient.COORDINATOR, "lien"),
        (Recipient.PARTNER, "api"),
    ]


async def test_a_refused_email_is_dead_lettered_and_sent_once_its_event_is_replayed() -> None:
    service, fakes, transport = build(email=True)
    email = f"{uuid.uuid4().hex[:6]}@example.fr"
    received = flow(person={**PERSON, "email": email})["received"]
    transport.refusals[email] = SmtpFailure("SMTP 550 (SMTPRecipientRefused)", code=550, permanent=True)
    async with sending(service):
        await handle(service, received)
        found = await settled(service, received.case_id, 2)
        assert {n["recipient"]: n["status"] for n in found}["entrepreneur"] == "echec"
        [letter] = fakes.notifications.dead_letters
        assert letter["headers"]["dlq-notification-id"] == f"{received.event_id}:entrepreneur"
        transport.refusals.clear()
        await handle(service, received)
        await wait_for(lambda: _sent_to(transport, email, 1), timeout=10, what="the replayed email")
    assert len(transport.to(PARTNER["contact_email"])) == 1


async def _sent_to(transport: FakeTransport, address: str, count: int) -> bool:
    return len(transport.to(address)) >= count


async def test_a_volunteer_applicant_is_answered_once_at_the_address_they_gave() -> None:
    import email
    import email.policy

    from tests.mail import APPLICATION

    service, fakes, transport = build(email=True)
    async with sending(service):
        await handle(service, APPLICATION, APPLICATION)  # redelivered: one answer
        [sent] = await settled(service, APPLICATION.case_id, 1)
    assert (sent["recipient"], sent["template"], sent["status"]) == ("candidat", "candidature_benevole", "envoye")
    [(recipient, message)] = transport.sent
    assert recipient == "berenice.aidante@example.org"
    subject = email.message_from_bytes(message, policy=email.policy.default)["Subject"]
    assert subject == "Bienvenue parmi les bénévoles de 60 000 rebonds"
    assert feed(fakes, APPLICATION.case_id) == []  # no partner, no feed: an application is nobody's referral
