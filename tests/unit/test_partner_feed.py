"""The partner status feed carries no personal data: proven over the model and over generated inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.notifications.referrals import (
    Partner,
    StatusChange,
    feed_record,
    partner_of,
    release,
    status_change,
)
from services.notifications.tokens import Tokens
from shared.schemas import (
    EVENTS,
    PARTNER_TOPIC_PATTERN,
    CaseReceived,
    Contract,
    Envelope,
    Outcome,
    PartnerStatusChanged,
    ReferralStatus,
    ReferrerKind,
)
from shared.schemas.asyncapi import asyncapi_document
from shared.schemas.events import PersonalDetails, Referral, Situation
from tests.mail import flow

TOKENS = Tokens("secret")
FEED_FIELDS = {
    "record_type",
    "schema_version",
    "record_id",
    "partner_reference",
    "referrer_kind",
    "referral_id",
    "status",
    "association",
    "outcome_category",
    "occurred_on",
}
CONFIDENTIAL = set(PersonalDetails.model_fields) | set(Situation.model_fields) | {"organisation", "contact_email"}


def test_the_feed_record_has_a_closed_list_of_non_personal_fields() -> None:
    assert set(PartnerStatusChanged.model_fields) == FEED_FIELDS
    assert PartnerStatusChanged.model_config["extra"] == "forbid"
    assert not FEED_FIELDS & CONFIDENTIAL
    assert set(PartnerStatusChanged.model_json_schema()["properties"]) == FEED_FIELDS
    # Every field but the partner's own reference is an enum, a date, a uuid, a constant or an opaque hex id.
    free_text = [
        name
        for name, spec in PartnerStatusChanged.model_json_schema()["properties"].items()
        if spec.get("type") == "string" and not {"format", "pattern", "const", "enum"} & set(spec)
    ]
    assert free_text == ["partner_reference"]


# Values from an alphabet without hex digits and at least 6 long: they cannot occur by chance in a record
# (uuids, hex ids, dates, enum values), so finding one there would be a leak.
NAME = st.text(alphabet="ghijklmnopqrstuvwxyzÉÈÀÇÔÎ", min_size=6, max_size=20)
PERSONAL = st.builds(
    lambda first, last, local, company, message: {
        "first_name": first,
        "last_name": last,
        "email": f"{local}@example.org",
        "phone": "06 98 76 54 32",
        "company_name": company,
        "siren": "732829320",
        "message": message,
    },
    NAME,
    NAME,
    NAME,
    NAME,
    NAME,
)
SITUATION = st.builds(
    lambda commune, sector: {
        "procedure": "liquidation_judiciaire",
        "postal_code": "42000",
        "commune": commune,
        "sector": sector,
    },
    NAME,
    NAME,
)
KIND = st.sampled_from([k for k in ReferrerKind if k is not ReferrerKind.SELF])
REFERENCE = st.from_regex(r"\A[A-Z]{2}-20[0-9]{2}-[0-9]{3,5}\Z")


def received_with(
    personal: dict, situation: dict, kind: ReferrerKind, reference: str, organisation: str, contact: str
) -> CaseReceived:
    return CaseReceived(
        situation=situation,
        personal=personal,
        received_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        referral=Referral(
            kind=kind, organisation=organisation, partner_reference=reference, contact_email=f"{contact}@example.org"
        ),
    )


def typed(envelope: Envelope) -> Contract:
    return envelope.payload_as(EVENTS[envelope.event_type].model)


def change_of(envelope: Envelope, **payload_update: object) -> StatusChange:
    change = status_change(envelope.event_id, typed(envelope).model_copy(update=payload_update))
    assert change is not None, f"{envelope.event_type} changes no referral status"
    return change


EVENTS_OF_A_CASE = flow()
CASE_ID = EVENTS_OF_A_CASE["received"].case_id


def published(received: CaseReceived) -> list[tuple[bytes, bytes, dict]]:
    """(key, value, headers) of every record the feed would carry for this case's five events."""
    partner = partner_of(received)
    records = []
    for envelope in EVENTS_OF_A_CASE.values():
        change = status_change(envelope.event_id, typed(envelope))
        record = feed_record(change, partner, TOKENS.referral_id(str(CASE_ID))) if change and partner else None
        if record is not None:
            records.append((record.key, record.encode(), record.headers()))
    return records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    one=PERSONAL,
    other=PERSONAL,
    where=SITUATION,
    elsewhere=SITUATION,
    kind=KIND,
    reference=REFERENCE,
    organisation=NAME,
    contact=NAME,
)
def test_no_personal_input_can_change_what_the_feed_publishes(
    one, other, where, elsewhere, kind, reference, organisation, contact
) -> None:
    """Non-interference: two referrals alike but for every confidential input publish identical records."""
    first = published(received_with(one, where, kind, reference, organisation, contact))
    second = published(received_with(other, elsewhere, kind, reference, contact, organisation))
    assert first == second
    assert [json.loads(value)["status"] for _, value, _ in first] == ["recu", "oriente", "accepte", "clos"]
    for key, value, headers in first:
        blob = key + value + json.dumps(headers).encode()
        for text in [*one.values(), *where.values(), organisation, contact]:
            assert text.encode() not in blob and json.dumps(text)[1:-1].encode() not in blob


def test_a_partner_account_s_records_are_the_same_and_name_its_account() -> None:
    received = received_with(
        {"first_name": "Jeanne", "last_name": "Martin"},
        {"procedure": "aucune", "postal_code": "69003"},
        ReferrerKind.COURT,
        "LJ-2026-0427",
        "o",
        "c",
    )
    with_account = received.model_copy(
        update={"referral": received.referral.model_copy(update={"partner": "etude-martin"})}
    )
    assert partner_of(with_account) == Partner(ReferrerKind.COURT, "LJ-2026-0427", "etude-martin")
    assert published(with_account) == published(received)  # the topic differs (service), never the record


def test_statuses_wait_for_those_that_must_precede_them_and_come_out_in_order() -> None:
    events = flow()
    received, routed, approved, closed = (change_of(events[k]) for k in ("received", "routed", "approved", "closed"))
    pending, released = release([], closed, set())
    assert (pending, released) == ([closed], [])
    pending, released = release(pending, routed, set())
    assert released == [] and len(pending) == 2
    pending, released = release(pending, received, set())
    assert [c.status for c in released] == [ReferralStatus.RECEIVED, ReferralStatus.ROUTED]
    assert pending == [closed], "a closing with an outcome waits for the committee's acceptance"
    pending, released = release(pending, approved, {ReferralStatus.RECEIVED, ReferralStatus.ROUTED})
    assert pending == [] and [c.status for c in released] == [ReferralStatus.ACCEPTED, ReferralStatus.CLOSED]


def test_a_withdrawal_needs_no_acceptance() -> None:
    events = flow()
    withdrew = change_of(events["closed"], outcome=Outcome.WITHDREW)
    done = {ReferralStatus.RECEIVED, ReferralStatus.ROUTED}
    assert release([], withdrew, done) == ([], [withdrew])


def test_a_declined_case_is_published_as_declined_without_an_outcome() -> None:
    events = flow()
    change = change_of(events["closed"], outcome=Outcome.DECLINED)
    assert (change.status, change.outcome_category) == (ReferralStatus.DECLINED, None)
    assert StatusChange.from_stored(change.stored()) == change


def test_a_self_referred_person_is_on_no_partner_feed() -> None:
    received = received_with(
        {"first_name": "Jeanne", "last_name": "Martin"},
        {"procedure": "aucune", "postal_code": "69003"},
        ReferrerKind.COURT,
        "X",
        "o",
        "c",
    )
    assert partner_of(received.model_copy(update={"referral": Referral(kind=ReferrerKind.SELF)})) is None


def test_the_asyncapi_document_lists_every_public_topic_with_resolvable_schemas() -> None:
    doc = asyncapi_document("kafka:9092")
    assert doc["asyncapi"] == "3.0.0" and doc["servers"]["kafka"]["host"] == "kafka:9092"
    addresses = {channel["address"]: channel for channel in doc["channels"].values()}
    assert set(addresses) == {spec.topic for spec in EVENTS.values()} | {PARTNER_TOPIC_PATTERN}
    # The partners' channel is each partner's own topic (a parameter), never one shared topic.
    partners = [address for address, channel in addresses.items() if channel["tags"] == [{"name": "partenaires"}]]
    assert partners == ["relais.partner-status.{partner}.v1"]
    assert set(addresses[PARTNER_TOPIC_PATTERN]["parameters"]) == {"partner"}
    assert "topic" not in addresses[PARTNER_TOPIC_PATTERN]["bindings"]["kafka"]
    feed = doc["components"]["messages"]["PartnerStatusChanged"]
    assert set(feed["payload"]["properties"]) == FEED_FIELDS
    assert "partner's own reference" in feed["bindings"]["kafka"]["key"]["description"]
    assert "$defs" not in json.dumps(doc) and "#/components/schemas/PersonalDetails" in json.dumps(doc)
