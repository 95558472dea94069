"""Intake rules: SIREN check digit, case ids from idempotency keys, the payload a request becomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.domain import (
    CaseRequest,
    case_id_for,
    case_received,
    request_fingerprint,
    siren_is_valid,
)
from shared.schemas.events import PersonalDetails, Referral, Situation

REQUEST = {
    "situation": {"procedure": "liquidation_judiciaire", "postal_code": "69003"},
    "referral": {"kind": "self"},
    "personal": {"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.fr"},
}


@pytest.mark.parametrize("siren", ["732829320", "552100554", "356000000", "000000000"])
def test_valid_siren(siren: str) -> None:
    assert siren_is_valid(siren)


@pytest.mark.parametrize("siren", ["732829321", "73282932", "7328293200", "73282932O", "732 829 320", "", "-73282932"])
def test_invalid_siren(siren: str) -> None:
    assert not siren_is_valid(siren)


def test_same_idempotency_key_names_the_same_case() -> None:
    assert case_id_for("partner-42") == case_id_for("partner-42")
    assert case_id_for("partner-42").version == 5


def test_different_keys_name_different_cases() -> None:
    assert case_id_for("partner-42") != case_id_for("partner-43")


@pytest.mark.parametrize("key", [None, ""])
def test_without_a_key_every_case_is_new(key: str | None) -> None:
    first, second = case_id_for(key), case_id_for(key)
    assert first != second and first.version == 4


def test_fingerprint_ignores_key_order_and_sees_any_change() -> None:
    reordered = dict(reversed(list(REQUEST.items())))
    assert request_fingerprint(reordered) == request_fingerprint(REQUEST)
    changed = {**REQUEST, "situation": {**REQUEST["situation"], "postal_code": "38000"}}
    assert request_fingerprint(changed) != request_fingerprint(REQUEST)


def test_a_request_becomes_a_case_received_payload() -> None:
    now = datetime.now(UTC)
    request = CaseRequest(
        situation=Situation.model_validate(REQUEST["situation"]),
        referral=Referral.model_validate(REQUEST["referral"]),
        personal=PersonalDetails.model_validate(REQUEST["personal"]),
    )
    payload = case_received(request, now)
    assert payload.received_at == now and payload.personal.first_name == "Jeanne"
    assert payload.situation.procedure.value == "liquidation_judiciaire" and payload.referral.kind.value == "self"
    assert request.fingerprint == request_fingerprint(request.as_dict())
