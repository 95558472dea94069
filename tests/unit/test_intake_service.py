"""Intake's use cases on the in-memory store, wired by the same `build_service` as production."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.intake.api import CaseSubmission
from services.intake.app import build_service
from services.intake.domain import case_id_for
from services.intake.service import PRODUCER, IdempotencyKeyReused, IntakeService
from services.intake.settings import IntakeSettings
from shared.schemas import CaseReceived, decode
from tests.conftest import a_case
from tests.fakes.intake import FakeCaseStore

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def store() -> FakeCaseStore:
    return FakeCaseStore()


@pytest.fixture
def service(store: FakeCaseStore) -> IntakeService:
    return build_service(IntakeSettings(), store=store, clock=lambda: NOW)


def request(**overrides):
    return CaseSubmission.model_validate(a_case(**overrides)).as_request()


async def test_a_submission_is_stored_with_its_case_received(service: IntakeService, store: FakeCaseStore) -> None:
    submitted = await service.submit(request(), "partner-42")
    assert submitted.created and submitted.case.case_id == case_id_for("partner-42")
    assert (submitted.case.status, submitted.case.received_at) == ("received", NOW)
    [event] = store.outbox
    assert event.event_type == "CaseReceived" and event.case_id == submitted.case.case_id
    assert event.producer == PRODUCER and event.causation_id is None
    received = event.payload_as(CaseReceived)
    assert received.received_at == NOW and received.personal.first_name == "Jeanne"
    assert received.situation.procedure.value == "liquidation_judiciaire"
    assert decode(event.encode(), key=event.key, expected_type="CaseReceived") == event


async def test_the_same_request_under_the_same_key_is_replayed(service: IntakeService, store: FakeCaseStore) -> None:
    first = await service.submit(request(), "partner-42")
    again = await service.submit(request(), "partner-42")
    assert not again.created and again.case == first.case
    assert len(store.outbox) == 1 and len(store.cases) == 1


async def test_a_key_reused_for_another_request_is_refused(service: IntakeService, store: FakeCaseStore) -> None:
    first = await service.submit(request(), "partner-42")
    with pytest.raises(IdempotencyKeyReused):
        await service.submit(request(message="Une autre demande."), "partner-42")
    assert store.cases == {first.case.case_id: first.case} and len(store.outbox) == 1


async def test_without_a_key_every_submission_is_a_new_case(service: IntakeService, store: FakeCaseStore) -> None:
    one, two = await service.submit(request()), await service.submit(request())
    assert one.created and two.created and one.case.case_id != two.case.case_id
    assert len(store.outbox) == 2


async def test_a_case_is_told_without_personal_data(service: IntakeService) -> None:
    submitted = await service.submit(request(), None)
    case = await service.case(submitted.case.case_id)
    assert case == submitted.case and case.referral_kind.value == "mandataire"
    assert "Jeanne" not in repr(case)
    assert await service.case(uuid.uuid4()) is None
