"""The event contract: committed JSON Schema files, the compatibility rule, and strict decoding."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum

import pytest
from pydantic import BaseModel

from shared.schemas import (
    EVENTS,
    AntennaCapacityChanged,
    Association,
    CaseReceived,
    EnvelopeError,
    decode,
    new_envelope,
)
from shared.schemas.envelope import MAX_EVENT_BYTES
from shared.schemas.export import SCHEMA_DIR, breaking_changes, generated_files, render, schema_of
from shared.schemas.partner_feed import PARTNER_FEED_SCHEMA_FILE

# Recognisable personal values: none of them may ever show up in a reason, a header or a key.
PERSONAL = {
    "first_name": "Zéphyrine",
    "last_name": "Confidentielle",
    "email": "zephyrine.confidentielle@example.fr",
    "phone": "06 98 76 54 32",
    "company_name": "Fromagerie Confidentielle",
    "siren": "732829320",
    "message": "Mon secret : les dettes de la fromagerie.",
}


def received(**personal: str) -> CaseReceived:
    return CaseReceived(
        situation={"procedure": "liquidation_judiciaire", "postal_code": "69003", "court_decision_date": "2025-01-15"},
        referral={"kind": "mandataire", "organisation": "Étude Dupont"},
        personal={**PERSONAL, **personal},
        received_at=datetime(2025, 9, 1, 10, 0, tzinfo=UTC),
    )


def assert_no_personal_value(text: str) -> None:
    for value in PERSONAL.values():
        assert value not in text, f"personal value {value!r} leaked into {text!r}"
    assert "Zéphyrine" not in text and "Confidentielle" not in text


# --- committed schema files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", EVENTS.values(), ids=EVENTS)
def test_committed_schema_matches_the_model(spec) -> None:
    path = SCHEMA_DIR / spec.schema_file
    assert path.exists(), f"{path.name} is missing: run `make schemas` and commit shared/schemas/json"
    assert path.read_text() == render(schema_of(spec)), (
        f"{path.name} no longer matches the {spec.name} model: run `make schemas` and commit the result"
    )


def test_no_stray_schema_file() -> None:
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert committed == set(generated_files()), "run `make schemas`"


@pytest.mark.parametrize("name", [PARTNER_FEED_SCHEMA_FILE, "asyncapi.json"])
def test_committed_feed_schema_and_asyncapi_are_current(name: str) -> None:
    assert (SCHEMA_DIR / name).read_text() == render(generated_files()[name]), "run `make schemas`"


@pytest.mark.parametrize("spec", EVENTS.values(), ids=EVENTS)
def test_current_model_is_compatible_with_the_committed_schema(spec) -> None:
    committed = json.loads((SCHEMA_DIR / spec.schema_file).read_text())
    assert breaking_changes(committed, schema_of(spec)) == []


# --- compatibility rule, on synthetic schemas ---------------------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class ColourWithBlue(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class ColourWithoutGreen(StrEnum):
    RED = "red"


class V1(BaseModel):
    name: str
    age: int | None = None
    colour: Colour


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(V1.model_json_schema(), V1.model_json_schema()) == []


def test_removed_property_is_breaking() -> None:
    class V2(BaseModel):
        name: str
        colour: Colour

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == ["/age: removed"]


def test_newly_required_property_is_breaking() -> None:
    class V2(V1):
        city: str

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == ["/city: newly required"]


def test_optional_property_becoming_required_is_breaking() -> None:
    class V2(BaseModel):
        name: str
        age: int
        colour: Colour

    problems = breaking_changes(V1.model_json_schema(), V2.model_json_schema())
    assert "/age: newly required" in problems


def test_type_change_is_breaking() -> None:
    class V2(BaseModel):
        name: int
        age: int | None = None
        colour: Colour

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == ["/name: type string -> integer"]


def test_type_change_inside_an_optional_is_breaking() -> None:
    class V2(BaseModel):
        name: str
        age: str | None = None
        colour: Colour

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == ["/age[0]: type integer -> string"]


def test_removed_enum_value_is_breaking() -> None:
    class V2(BaseModel):
        name: str
        age: int | None = None
        colour: ColourWithoutGreen

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == [
        "/colour: enum values removed ['green']"
    ]


def test_new_optional_property_and_new_enum_value_are_allowed() -> None:
    class V2(BaseModel):
        name: str
        age: int | None = None
        colour: ColourWithBlue
        nickname: str | None = None

    assert breaking_changes(V1.model_json_schema(), V2.model_json_schema()) == []


def test_nested_change_is_reported_with_its_path() -> None:
    class Inner(BaseModel):
        code: str

    class InnerChanged(BaseModel):
        code: int

    class Old(BaseModel):
        inner: Inner

    class New(BaseModel):
        inner: InnerChanged

    assert breaking_changes(Old.model_json_schema(), New.model_json_schema()) == ["/inner/code: type string -> integer"]


# --- decoding -----------------------------------------------------------------------------------------------


def a_message(**envelope_changes: object) -> tuple[bytes, bytes]:
    """A valid CaseReceived message (value, key), with envelope fields overridden."""
    envelope = new_envelope(received(), case_id=uuid.uuid4(), producer="test")
    body = json.loads(envelope.encode())
    body.update(envelope_changes)
    return json.dumps(body).encode(), envelope.key


def test_a_valid_message_decodes() -> None:
    envelope = new_envelope(received(), case_id=uuid.uuid4(), producer="test")
    decoded = decode(envelope.encode(), key=envelope.key, expected_type="CaseReceived")
    assert decoded == envelope
    assert decoded.typed() == received()


def test_an_antenna_event_is_keyed_by_its_antenna() -> None:
    payload = AntennaCapacityChanged(
        association=Association.SECOND_SOUFFLE,
        antenna_id="ss-lyon",
        coach_slots_free=2,
        sponsor_slots_free=1,
        as_of=datetime.now(UTC),
    )
    envelope = new_envelope(payload, antenna_id="ss-lyon", producer="test")
    assert envelope.key == b"ss-lyon"
    assert decode(envelope.encode(), key=b"ss-lyon").antenna_id == "ss-lyon"


def _payload_breaking_the_model() -> tuple[bytes, bytes]:
    envelope = new_envelope(received(), case_id=uuid.uuid4(), producer="test")
    body = json.loads(envelope.encode())
    body["payload"]["situation"]["postal_code"] = PERSONAL["last_name"]
    body["payload"]["personal"]["first_name"] = 42
    return json.dumps(body).encode(), envelope.key


def _oversize() -> tuple[bytes, bytes]:
    envelope = new_envelope(
        received(message=PERSONAL["message"] + "x" * MAX_EVENT_BYTES), case_id=uuid.uuid4(), producer="test"
    )
    return envelope.encode(), envelope.key


def _envelope_with_both_subjects() -> tuple[bytes, bytes]:
    return a_message(antenna_id="ss-lyon")


def _case_event_keyed_by_antenna() -> tuple[bytes, bytes]:
    raw, _ = a_message(case_id=None, antenna_id="ss-lyon")
    return raw, b"ss-lyon"


BAD_MESSAGES = {
    "not JSON": (
        lambda: (f"{PERSONAL['first_name']} {PERSONAL['email']}".encode(), str(uuid.uuid4()).encode()),
        ("invalid envelope:", "(json_invalid)"),
    ),
    "not UTF-8": (
        lambda: (b"\xff\xfe" + PERSONAL["last_name"].encode(), str(uuid.uuid4()).encode()),
        ("invalid envelope:", "(json_invalid)"),
    ),
    "JSON but not an object": (
        lambda: (json.dumps([PERSONAL["email"]]).encode(), str(uuid.uuid4()).encode()),
        ("invalid envelope:", "(model_type)"),
    ),
    "envelope without event id": (lambda: a_message(event_id=None), "invalid envelope: event_id (uuid_type)"),
    "envelope missing fields": (
        lambda: (json.dumps({"payload": {"personal": PERSONAL}}).encode(), b"k"),
        "invalid envelope: event_id (missing); event_type (missing)",
    ),
    "envelope with a bad id": (
        lambda: a_message(correlation_id=PERSONAL["first_name"]),
        "invalid envelope: correlation_id (uuid_parsing)",
    ),
    "envelope with two subjects": (_envelope_with_both_subjects, ("invalid envelope:", "(value_error)")),
    "case event keyed by an antenna": (_case_event_keyed_by_antenna, "CaseReceived must be identified by its case id"),
    "payload breaking the model": (
        _payload_breaking_the_model,
        "invalid CaseReceived payload: situation.postal_code (string_pattern_mismatch); "
        "personal.first_name (string_type)",
    ),
    "unknown event type": (lambda: a_message(event_type="CaseExploded"), "unknown event type: 'CaseExploded'"),
    "schema version from the future": (
        lambda: a_message(schema_version=2),
        "unsupported schema version 2 of CaseReceived (reader knows 1)",
    ),
    "oversize": (_oversize, "oversize payload: "),
}


@pytest.mark.parametrize("make, reason", BAD_MESSAGES.values(), ids=BAD_MESSAGES)
def test_a_bad_message_is_refused_with_a_precise_reason_and_no_personal_data(make, reason) -> None:
    raw, key = make()
    with pytest.raises(EnvelopeError) as refused:
        decode(raw, key=key, expected_type="CaseReceived")
    start, detail = reason if isinstance(reason, tuple) else (reason, "")
    assert str(refused.value).startswith(start) and detail in str(refused.value), str(refused.value)
    assert_no_personal_value(str(refused.value))


def test_oversize_reason_gives_size_and_limit() -> None:
    raw, key = _oversize()
    with pytest.raises(EnvelopeError, match=rf"^oversize payload: {len(raw)} bytes > {MAX_EVENT_BYTES}$"):
        decode(raw, key=key)


def test_missing_key_is_refused() -> None:
    raw, _ = a_message()
    with pytest.raises(EnvelopeError, match=r"^missing message key \(the case id\)$"):
        decode(raw, key=None)


def test_key_must_be_the_case_id() -> None:
    raw, _ = a_message()
    with pytest.raises(EnvelopeError, match=r"^message key does not match the envelope's case id$"):
        decode(raw, key=str(uuid.uuid4()).encode())


def test_event_on_the_wrong_topic_is_refused() -> None:
    raw, key = a_message()
    with pytest.raises(EnvelopeError, match=r"^unexpected event type 'CaseReceived' on the topic of CaseRouted$"):
        decode(raw, key=key, expected_type="CaseRouted")


def test_a_field_the_contract_does_not_declare_is_refused_with_its_path() -> None:
    """The contract is closed: readers are deployed before the writers that add a field."""
    raw, key = a_message()
    body = json.loads(raw)
    body["payload"]["situation"]["new_optional_field"] = "ignored"
    with pytest.raises(EnvelopeError, match=r"situation\.new_optional_field \(extra_forbidden\)"):
        decode(json.dumps(body).encode(), key=key)


# --- headers and key -----------------------------------------------------------------------------------------


def test_headers_and_key_hold_no_personal_data() -> None:
    case_id = uuid.uuid4()
    envelope = new_envelope(received(), case_id=case_id, producer="intake")
    headers = envelope.headers()
    assert set(headers) == {"event-type", "schema-version", "event-id", "correlation-id", "content-type"}
    assert headers["event-type"] == "CaseReceived"
    assert headers["schema-version"] == "1"
    assert_no_personal_value(json.dumps(headers, ensure_ascii=False))
    assert envelope.key == str(case_id).encode()


def test_a_caused_event_inherits_the_correlation_id() -> None:
    cause = new_envelope(received(), case_id=uuid.uuid4(), producer="intake")
    effect = new_envelope(received(), case_id=cause.case_id, producer="routing", cause=cause)
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.event_id
