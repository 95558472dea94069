"""Coaching rules: which step may follow which in a case file, and the events the steps cause."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.coaching.domain import CaseFile, Decision, Stage, TransitionRefused
from shared.schemas import Association, CaseClosed, CommitteeApproved, Outcome, SessionHeld, SessionKind

RECEIVED = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)
APPROVED_ON = date(2025, 2, 3)


def a_file(stage: Stage = Stage.AWAITING_COMMITTEE, received_at: datetime | None = RECEIVED) -> CaseFile:
    return CaseFile(case_id=uuid.uuid4(), association=Association.SOIXANTE_MILLE_REBONDS, stage=stage,
                    opened_at=datetime(2025, 1, 12, tzinfo=UTC), received_at=received_at)


def approved() -> CaseFile:
    file = a_file()
    file.decide(Decision.APPROVED, APPROVED_ON, [])
    return file


def test_approval_starts_the_accompaniment() -> None:
    file = a_file()
    event = file.decide(Decision.APPROVED, APPROVED_ON, ["Démarche sincère"])
    assert event == CommitteeApproved(association=Association.SOIXANTE_MILLE_REBONDS, decided_on=APPROVED_ON,
                                      reasons=["Démarche sincère"])
    assert file.stage is Stage.ACCOMPANIED and file.approved_on == APPROVED_ON


def test_decline_closes_the_case_as_refused_by_the_committee() -> None:
    file = a_file()
    event = file.decide(Decision.DECLINED, date(2025, 2, 3), ["Hors périmètre"])
    assert isinstance(event, CaseClosed)
    assert event.outcome is Outcome.DECLINED and event.reasons == ["Hors périmètre"]
    assert event.journey_days == 24  # from reception (10 January), not from opening
    assert file.stage is Stage.CLOSED and file.closed_on == date(2025, 2, 3)


def test_deferral_changes_nothing_and_emits_nothing() -> None:
    file = a_file()
    assert file.decide(Decision.DEFERRED, APPROVED_ON, []) is None
    assert file.stage is Stage.AWAITING_COMMITTEE and file.approved_on is None
    assert file.decide(Decision.APPROVED, APPROVED_ON, []) is not None  # the committee may still decide


@pytest.mark.parametrize("stage", [Stage.ACCOMPANIED, Stage.CLOSED])
def test_the_committee_decides_only_once(stage: Stage) -> None:
    with pytest.raises(TransitionRefused, match="Le comité d'engagement a déjà statué sur ce dossier."):
        a_file(stage).decide(Decision.APPROVED, APPROVED_ON, [])


def test_no_session_before_approval() -> None:
    file = a_file()
    with pytest.raises(TransitionRefused, match="Aucune séance avant l'accord du comité d'engagement."):
        file.hold_session(SessionKind.COACHING, APPROVED_ON, 60)
    assert file.sessions == 0


def test_no_session_dated_before_the_approval() -> None:
    file = approved()
    with pytest.raises(TransitionRefused, match="Une séance ne peut pas précéder l'accord du comité."):
        file.hold_session(SessionKind.COACHING, date(2025, 2, 2), 60)
    assert file.sessions == 0


def test_sessions_are_numbered() -> None:
    file = approved()
    first = file.hold_session(SessionKind.COACHING, APPROVED_ON, 60)
    second = file.hold_session(SessionKind.SPONSOR, date(2025, 3, 1), None)
    assert isinstance(first, SessionHeld) and (first.number, second.number) == (1, 2)
    assert second.kind is SessionKind.SPONSOR and first.session_id != second.session_id
    assert file.sessions == 2


def test_no_session_after_closing() -> None:
    file = approved()
    file.close(Outcome.SALARIED_JOB, date(2025, 12, 1), [])
    with pytest.raises(TransitionRefused, match="Ce dossier est clos : aucune nouvelle séance."):
        file.hold_session(SessionKind.COACHING, date(2025, 12, 2), 60)


def test_closing_gives_the_journey_length() -> None:
    file = approved()
    event = file.close(Outcome.NEW_BUSINESS, date(2026, 1, 10), ["Reprise d'un commerce"])
    assert event.outcome is Outcome.NEW_BUSINESS and event.journey_days == 365
    assert file.stage is Stage.CLOSED and file.closed_on == date(2026, 1, 10)


def test_journey_counts_from_opening_without_reception_date() -> None:
    file = a_file(received_at=None)
    file.decide(Decision.APPROVED, APPROVED_ON, [])
    assert file.close(Outcome.OTHER, date(2025, 1, 22), []).journey_days == 10


def test_journey_is_never_negative() -> None:
    file = approved()
    assert file.close(Outcome.OTHER, date(2024, 12, 1), []).journey_days == 0


def test_closing_twice_is_refused() -> None:
    file = approved()
    file.close(Outcome.SALARIED_JOB, date(2025, 12, 1), [])
    with pytest.raises(TransitionRefused, match="Ce dossier est déjà clos."):
        file.close(Outcome.SALARIED_JOB, date(2025, 12, 2), [])
    assert file.closed_on == date(2025, 12, 1)


def test_before_the_committee_only_a_withdrawal_closes() -> None:
    file = a_file()
    with pytest.raises(TransitionRefused, match="Avant le comité, un dossier ne peut être clos que par un abandon."):
        file.close(Outcome.SALARIED_JOB, APPROVED_ON, [])
    assert file.stage is Stage.AWAITING_COMMITTEE
    assert file.close(Outcome.WITHDREW, APPROVED_ON, []).outcome is Outcome.WITHDREW


def test_refusal_is_only_the_committee_s() -> None:
    with pytest.raises(TransitionRefused, match="Un refus se prononce par la décision du comité d'engagement."):
        approved().close(Outcome.DECLINED, date(2025, 6, 1), [])


def test_case_file_reads_its_stored_document() -> None:
    case_id = uuid.uuid4()
    file = CaseFile.from_doc({
        "_id": str(case_id), "association": "second_souffle", "stage": "accompagnement",
        "opened_at": RECEIVED, "received_at": RECEIVED, "approved_on": "2025-02-03", "sessions": 2,
        "closed_on": None, "version": 4, "timeline": [{"kind": "oriente"}],
    })
    assert file.case_id == case_id and file.association is Association.SECOND_SOUFFLE
    assert file.stage is Stage.ACCOMPANIED and file.approved_on == APPROVED_ON
    assert (file.sessions, file.version, file.closed_on) == (2, 4, None)
