"""A partner with an account reads the statuses of its own referrals, on its own topic, and nobody else's;
a referral made without an account is on no topic at all (its referrer is told by email)."""

from __future__ import annotations

import json

from services.notifications.app import SUBSCRIPTIONS, build_service
from services.notifications.settings import NotificationsSettings
from shared.topology import acl_rules, partner_rules, partner_topic
from tests.fakes.notifications import FakeStores, FakeTransport
from tests.mail import PARTNER, flow


async def feed_of(referral: dict, emails: list[str] | None = None) -> list[tuple[str, str]]:
    fakes = FakeStores()
    service = build_service(
        NotificationsSettings(secret_key="secret-for-the-tests", email_enabled=False),
        stores=fakes.stores,
        transport=FakeTransport(),
    )
    events = flow(referral=referral)
    for step in ("received", "routed", "approved", "closed"):
        await SUBSCRIPTIONS[events[step].event_type](service)(events[step])
    case_id = str(events["received"].case_id)
    if emails is not None:
        emails += [n["template"] for n in await service.notifications_of(case_id) if n["recipient"] == "partenaire"]
    items = fakes.referrals.outbox.get(case_id, [])
    return [(item["topic"], json.loads(item["value"])["status"]) for item in items]


async def test_a_referral_made_with_a_partner_s_account_goes_to_its_own_topic_only() -> None:
    own = partner_topic("etude-martin")
    assert await feed_of({**PARTNER, "partner": "etude-martin"}) == [
        (own, "recu"),
        (own, "oriente"),
        (own, "accepte"),
        (own, "clos"),
    ]


async def test_a_referral_made_without_an_account_is_on_no_topic_and_its_referrer_is_told_by_email() -> None:
    emails: list[str] = []
    assert await feed_of(PARTNER, emails) == []
    assert sorted(emails) == [
        "accuse_reception_partenaire",
        "cloture_partenaire",
        "decision_comite_partenaire",
        "orientation_partenaire",
    ]


async def test_two_partners_referrals_go_each_to_its_own_topic() -> None:
    mine = await feed_of({**PARTNER, "partner": "etude-martin"})
    theirs = await feed_of({**PARTNER, "partner": "cci-lyon"})
    assert {topic for topic, _ in mine} == {partner_topic("etude-martin")}
    assert {topic for topic, _ in theirs} == {partner_topic("cci-lyon")}


def test_notifications_may_write_every_partner_s_topic_and_each_partner_read_its_own() -> None:
    rules = {(r.name, r.pattern.value, r.operation.value) for r in acl_rules("notifications")}
    assert ("relais.partner-status.", "prefixed", "write") in rules
    assert not any(op == "create" and name.startswith("relais.partner-status.") for name, _, op in rules)
    readable = {r.name for r in partner_rules("etude-martin") if r.operation.value == "read"}
    assert partner_topic("etude-martin") in readable and partner_topic("cci-lyon") not in readable
