"""Coaching rules: which step may follow which in a case file, and the events the steps cause."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime

import pytest

from services.coaching.domain.case_file import (
    CaseFile,
    CaseStep,
    Decision,
    Orientation,
    Stage,
    TransitionRefused,
)
from services.coaching.domain.volunteers import Volunteer
from shared.schemas import (
    Association,
    CaseClosed,
    CaseRouted,
    CommitteeApproved,
    Outcome,
    PreviousDecision,
    Procedure,
    RerouteCause,
    RerouteReason,
    RerouteRequested,
    RoutingStatus,
    SectorFamily,
    SessionHeld,
    SessionKind,
    VolunteerAssigned,
    VolunteerRole,
)

RECEIVED = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)
APPROVED_ON = date(2025, 2, 3)
LYON = "60000_rebonds-lyon"


def a_file(
    stage: Stage = Stage.AWAITING_COMMITTEE,
    received_at: datetime | None = RECEIVED,
    association: Association = Association.SOIXANTE_MILLE_REBONDS,
) -> CaseFile:
    return CaseFile(
        case_id=uuid.uuid4(),
        association=association,
        stage=stage,
        opened_at=datetime(2025, 1, 12, tzinfo=UTC),
        received_at=received_at,
    )


def a_coach(**overrides) -> Volunteer:
    values = {
        "volunteer_id": "coach-1",
        "display_name": "Coach",
        "role": VolunteerRole.COACH,
        "antenna_id": LYON,
        "sectors": ["commerce"],
        "max_people": 2,
        "certified_until": date(2026, 12, 31),
    }
    return Volunteer(**{**values, **overrides})


def a_sponsor(**overrides) -> Volunteer:
    return a_coach(**{"volunteer_id": "sponsor-1", "role": VolunteerRole.SPONSOR, "certified_until": None, **overrides})


def approved(association: Association = Association.SOIXANTE_MILLE_REBONDS) -> CaseFile:
    file = a_file(association=association)
    file.decide(Decision.APPROVED, APPROVED_ON, [])
    return file


def coached() -> CaseFile:
    file = approved()
    file.assign(VolunteerRole.COACH, a_coach(), 0, date(2025, 2, 10))
    return file


def fresh(file: CaseFile) -> CaseFile:
    """`file` itself, for reading its state again after a step changed it: mypy would otherwise keep the
    attribute types an earlier assertion narrowed (it does not see that a method call changed them)."""
    return file


def refused(step, message: str) -> None:
    with pytest.raises(TransitionRefused) as info:
        step()
    assert str(info.value) == message


def routed(sequence: int = 1, association: Association = Association.SOIXANTE_MILLE_REBONDS, **extra) -> CaseRouted:
    return CaseRouted(
        association=association,
        rule="procedure:liquidation_judiciaire",
        reasons=["Liquidation"],
        routed_at=datetime(2025, 1, 11, tzinfo=UTC),
        received_at=RECEIVED,
        sequence=sequence,
        **extra,
    )


# --- committee -----------------------------------------------------------------------------------------------


def test_approval_starts_the_accompaniment() -> None:
    file = a_file()
    events = file.decide(Decision.APPROVED, APPROVED_ON, ["Démarche sincère"])
    # The committee's reasons stay in the case file: no topic carries the staff's words.
    assert events == [CommitteeApproved(association=Association.SOIXANTE_MILLE_REBONDS, decided_on=APPROVED_ON)]
    assert file.timeline[-1]["reasons"] == ["Démarche sincère"]
    assert file.stage is Stage.ACCOMPANIED and file.approved_on == APPROVED_ON
    assert file.step() is CaseStep.AWAITING_COACH


def test_decline_closes_the_case_as_refused_by_the_committee() -> None:
    file = a_file()
    [event] = file.decide(Decision.DECLINED, date(2025, 2, 3), ["Hors périmètre"])
    assert isinstance(event, CaseClosed)
    assert event.outcome is Outcome.DECLINED and event.reasons == []
    assert file.timeline[-1]["reasons"] == ["Hors périmètre"]
    assert event.journey_days == 24  # from reception (10 January), not from opening
    assert event.days_to_committee == 24 and event.oriented_to is None
    assert file.stage is Stage.CLOSED and file.closed_on == date(2025, 2, 3)
    assert [e["kind"] for e in file.new_entries] == ["comite", "cloture"]


def test_decline_can_orient_to_the_other_association() -> None:
    file = a_file(association=Association.SECOND_SOUFFLE)
    closed, reroute = file.decide(
        Decision.DECLINED, APPROVED_ON, ["Entreprise déjà liquidée"], Orientation.OTHER_ASSOCIATION
    )
    assert isinstance(closed, CaseClosed) and closed.oriented_to == "60000_rebonds"
    assert reroute == RerouteRequested(requested_by=Association.SECOND_SOUFFLE, reason=RerouteReason.OUT_OF_SCOPE)


def test_decline_can_orient_to_apesa() -> None:
    [closed] = a_file().decide(Decision.DECLINED, APPROVED_ON, ["Détresse aiguë"], Orientation.APESA)
    assert isinstance(closed, CaseClosed)
    assert closed.oriented_to == "apesa"


def test_only_a_decline_orients() -> None:
    file = a_file()
    refused(
        lambda: file.decide(Decision.APPROVED, APPROVED_ON, [], Orientation.APESA),
        "Seul un refus du comité oriente le dossier ailleurs.",
    )
    assert file.stage is Stage.AWAITING_COMMITTEE and file.new_entries == []


def test_deferral_changes_nothing_and_emits_nothing() -> None:
    file = a_file()
    file.schedule_committee(date(2025, 1, 20))
    assert file.step() is CaseStep.COMMITTEE_SCHEDULED
    assert file.decide(Decision.DEFERRED, APPROVED_ON, ["Pièces manquantes"]) == []
    assert file.stage is Stage.AWAITING_COMMITTEE and file.approved_on is None and file.decided_on is None
    assert file.deferrals == 1 and file.committee_on is None  # to be scheduled again
    assert file.decide(Decision.APPROVED, APPROVED_ON, []) != []  # the committee may still decide


def test_committee_cannot_be_scheduled_before_reception() -> None:
    refused(
        lambda: a_file().schedule_committee(date(2025, 1, 9)),
        "Le comité ne peut pas se tenir avant la réception du dossier.",
    )


@pytest.mark.parametrize("stage", [Stage.ACCOMPANIED, Stage.CLOSED])
def test_the_committee_decides_only_once(stage: Stage) -> None:
    refused(
        lambda: a_file(stage).decide(Decision.APPROVED, APPROVED_ON, []),
        "Le comité d'engagement a déjà statué sur ce dossier.",
    )
    refused(
        lambda: a_file(stage).schedule_committee(APPROVED_ON), "Le comité d'engagement a déjà statué sur ce dossier."
    )


# --- volunteers ----------------------------------------------------------------------------------------------


def test_assigning_a_coach_and_a_sponsor() -> None:
    file = coached()
    assert (file.coach_id, file.coach_assigned_on, file.step()) == ("coach-1", date(2025, 2, 10), CaseStep.WITH_COACH)
    assert file.assign(VolunteerRole.SPONSOR, a_sponsor(email="paul@example.org"), 1, date(2025, 5, 1)) == [
        VolunteerAssigned(
            association=Association.SOIXANTE_MILLE_REBONDS,
            role=VolunteerRole.SPONSOR,
            volunteer_id="sponsor-1",
            display_name="Coach",
            email="paul@example.org",
            assigned_on=date(2025, 5, 1),
        )
    ]
    assert file.step() is CaseStep.WITH_SPONSOR
    assert [e["kind"] for e in file.new_entries] == ["comite", "attribution", "attribution"]


def test_no_coach_before_approval() -> None:
    file = a_file()
    refused(
        lambda: file.assign(VolunteerRole.COACH, a_coach(), 0, APPROVED_ON),
        "Un coach ne peut être attribué qu'après l'accord du comité d'engagement.",
    )
    assert file.coach_id is None


@pytest.mark.parametrize(
    ("coach", "load", "message"),
    [
        (a_coach(certified_until=date(2025, 1, 31)), 0, "La certification de ce coach a expiré le 31/01/2025."),
        (a_coach(certified_until=None), 0, "Ce coach n'est pas certifié : il ne peut pas suivre d'entrepreneur."),
        (a_coach(), 2, "Ce bénévole suit déjà 2 personne(s) pour 2 au plus : il est complet."),
        (a_coach(available=False), 0, "Ce bénévole est indiqué comme indisponible."),
        (a_coach(unavailable_until=date(2025, 2, 20)), 0, "Ce bénévole est indisponible jusqu'au 20/02/2025."),
        (a_sponsor(), 0, "Ce bénévole n'est pas coach."),
    ],
)
def test_a_coach_who_cannot_take_one_more_person_is_refused(coach: Volunteer, load: int, message: str) -> None:
    file = approved()
    before = copy.deepcopy(file)
    refused(lambda: file.assign(VolunteerRole.COACH, coach, load, date(2025, 2, 10)), message)
    assert file == before and file.new_entries == before.new_entries


def test_one_coach_at_a_time() -> None:
    file = coached()
    refused(lambda: file.assign(VolunteerRole.COACH, a_coach(), 1, APPROVED_ON), "Ce coach suit déjà ce dossier.")
    refused(
        lambda: file.assign(VolunteerRole.COACH, a_coach(volunteer_id="coach-2"), 0, APPROVED_ON),
        "Ce dossier a déjà un coach : libérez-le d'abord.",
    )
    refused(
        lambda: file.release(VolunteerRole.COACH, a_coach(volunteer_id="coach-2"), date(2025, 3, 1)),
        "Ce bénévole n'est pas le coach de ce dossier.",
    )
    [released] = file.release(VolunteerRole.COACH, a_coach(), date(2025, 3, 1))
    assert isinstance(released, VolunteerAssigned)
    assert (released.volunteer_id, released.released, released.assigned_on) == ("coach-1", True, date(2025, 3, 1))
    assert file.coach_id is None and file.step() is CaseStep.AWAITING_COACH
    refused(
        lambda: file.release(VolunteerRole.COACH, None, date(2025, 3, 1)), "Aucun coach n'est attribué à ce dossier."
    )
    file.assign(VolunteerRole.COACH, a_coach(volunteer_id="coach-2"), 0, date(2025, 3, 2))
    assert file.coach_id == "coach-2"


def test_experts_are_consulted_not_assigned() -> None:
    refused(
        lambda: approved().assign(VolunteerRole.EXPERT, a_coach(role=VolunteerRole.EXPERT), 0, APPROVED_ON),
        "Un expert ne s'attribue pas : il intervient lors d'une consultation.",
    )


# --- sessions ------------------------------------------------------------------------------------------------


def test_no_session_before_approval() -> None:
    file = a_file()
    refused(
        lambda: file.hold_session(SessionKind.COACHING, APPROVED_ON, 60),
        "Aucune séance avant l'accord du comité d'engagement.",
    )
    assert file.sessions == 0


def test_no_session_dated_before_the_approval() -> None:
    file = coached()
    refused(
        lambda: file.hold_session(SessionKind.COACHING, date(2025, 2, 2), 60),
        "Une séance ne peut pas précéder l'accord du comité.",
    )
    assert file.sessions == 0


def test_coaching_needs_a_coach_and_sponsor_meetings_a_sponsor() -> None:
    file = approved()
    refused(
        lambda: file.hold_session(SessionKind.COACHING, APPROVED_ON, 60),
        "Aucun coach n'est attribué à ce dossier : attribuez-en un avant la séance.",
    )
    refused(
        lambda: file.hold_session(SessionKind.SPONSOR, APPROVED_ON, 60),
        "Aucun parrain ni marraine n'est attribué à ce dossier : attribuez-en un avant la rencontre.",
    )
    assert file.hold_session(SessionKind.CHECKPOINT, APPROVED_ON, 90) != []  # collective: no one assigned needed
    assert file.hold_session(SessionKind.EXPERT, APPROVED_ON, 30, volunteer_id="expert-1") != []


def test_sessions_are_numbered() -> None:
    file = coached()
    file.assign(VolunteerRole.SPONSOR, a_sponsor(), 0, APPROVED_ON)
    [first] = file.hold_session(SessionKind.COACHING, APPROVED_ON, 60)
    [second] = file.hold_session(SessionKind.SPONSOR, date(2025, 3, 1), None)
    assert isinstance(first, SessionHeld) and isinstance(second, SessionHeld)
    assert (first.number, second.number) == (1, 2)
    assert second.kind is SessionKind.SPONSOR and first.session_id != second.session_id
    assert (first.volunteer_id, second.volunteer_id) == ("coach-1", "sponsor-1")  # who led each
    assert file.sessions == 2
    assert file.timeline[-1]["volunteer_id"] == "sponsor-1"
    assert file.sessions_by_kind() == {"coaching": 1, "parrainage": 1, "point_etape_collectif": 0, "expertise": 0}


def test_the_next_meeting_agreed_travels_with_the_session() -> None:
    file = coached()
    at = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)
    [held] = file.hold_session(
        SessionKind.COACHING, date(2025, 2, 25), 60, next_session_at=at, next_session_place="Visioconférence"
    )
    assert isinstance(held, SessionHeld)
    assert (held.next_session_at, held.next_session_place, held.volunteer_id) == (at, "Visioconférence", "coach-1")
    assert file.next_session() == {"at": at, "place": "Visioconférence", "session_kind": "coaching"}
    refused(
        lambda: file.hold_session(SessionKind.COACHING, date(2025, 3, 5), 60, next_session_at=at),
        "Le prochain rendez-vous ne peut pas précéder la séance.",
    )
    assert file.sessions == 1


def test_an_absence_is_noted_but_neither_counted_nor_published() -> None:
    file = coached()
    assert file.hold_session(SessionKind.COACHING, APPROVED_ON, 60, attended=False) == []
    assert file.sessions == 0 and file.timeline[-1]["kind"] == "absence"


def test_a_checkpoint_is_recorded_once_per_case() -> None:
    file = approved()
    [held] = file.hold_session(SessionKind.CHECKPOINT, APPROVED_ON, 120, session_id="checkpoint-1")
    assert isinstance(held, SessionHeld)
    assert held.session_id == "checkpoint-1"
    assert file.hold_session(SessionKind.CHECKPOINT, APPROVED_ON, 120, session_id="checkpoint-1") == []
    assert file.sessions == 1


def test_no_session_after_closing() -> None:
    file = coached()
    file.close(Outcome.SALARIED_JOB, date(2025, 12, 1), [])
    refused(
        lambda: file.hold_session(SessionKind.COACHING, date(2025, 12, 2), 60),
        "Ce dossier est clos : aucune nouvelle séance.",
    )


# --- closing -------------------------------------------------------------------------------------------------


def test_closing_gives_the_journey_and_its_durations() -> None:
    file = coached()
    [event] = file.close(Outcome.NEW_BUSINESS, date(2026, 1, 10), ["Reprise d'un commerce"])
    assert isinstance(event, CaseClosed)
    assert event.outcome is Outcome.NEW_BUSINESS and event.journey_days == 365
    assert (event.days_to_committee, event.days_to_coach, event.accompaniment_days) == (24, 7, 341)
    assert file.stage is Stage.CLOSED and file.closed_on == date(2026, 1, 10) and file.outcome is Outcome.NEW_BUSINESS


def test_journey_counts_from_opening_without_reception_date() -> None:
    file = a_file(received_at=None)
    file.decide(Decision.APPROVED, APPROVED_ON, [])
    [event] = file.close(Outcome.OTHER, date(2025, 1, 22), [])
    assert isinstance(event, CaseClosed)
    assert event.journey_days == 10 and event.days_to_coach is None


def test_journey_is_never_negative() -> None:
    [event] = approved().close(Outcome.OTHER, date(2024, 12, 1), [])
    assert isinstance(event, CaseClosed)
    assert event.journey_days == 0


def test_closing_twice_is_refused() -> None:
    file = approved()
    file.close(Outcome.SALARIED_JOB, date(2025, 12, 1), [])
    refused(lambda: file.close(Outcome.SALARIED_JOB, date(2025, 12, 2), []), "Ce dossier est déjà clos.")
    assert file.closed_on == date(2025, 12, 1)


def test_before_the_committee_only_a_withdrawal_closes() -> None:
    file = a_file()
    refused(
        lambda: file.close(Outcome.SALARIED_JOB, APPROVED_ON, []),
        "Avant le comité, un dossier ne peut être clos que par un abandon.",
    )
    assert file.stage is Stage.AWAITING_COMMITTEE
    closed = file.close(Outcome.WITHDREW, APPROVED_ON, [])[0]
    assert isinstance(closed, CaseClosed) and closed.outcome is Outcome.WITHDREW


def test_refusal_is_only_the_committee_s() -> None:
    refused(
        lambda: approved().close(Outcome.DECLINED, date(2025, 6, 1), []),
        "Un refus se prononce par la décision du comité d'engagement.",
    )


# --- routing and handover ------------------------------------------------------------------------------------


def test_a_first_routing_opens_a_file_awaiting_the_committee() -> None:
    file = CaseFile.opened(
        uuid.uuid4(), routed(antenna_id=LYON, sector="Boulangerie", sector_family=SectorFamily.COMMERCE), RECEIVED
    )
    assert file.stage is Stage.AWAITING_COMMITTEE and file.previous_association is None
    assert (file.antenna_id, file.routing_sequence) == (LYON, 1)
    assert (file.sector, file.sector_family) == ("Boulangerie", SectorFamily.COMMERCE)  # as intake collected it
    assert file.new_entries[0]["kind"] == "oriente"


def test_a_place_found_for_a_waitlisted_case_sets_its_antenna() -> None:
    file = CaseFile.opened(uuid.uuid4(), routed(status=RoutingStatus.WAITLISTED), RECEIVED)
    assert file.stage is Stage.AWAITING_COMMITTEE and file.antenna_id is None
    promoted = routed(
        sequence=2,
        antenna_id=LYON,
        reroute_reason=RerouteCause.PLACE_FREED,
        previous=PreviousDecision(sequence=1, association=Association.SOIXANTE_MILLE_REBONDS, rule="r"),
    )
    assert CaseFile.opened(uuid.uuid4(), promoted, RECEIVED).stage is Stage.AWAITING_COMMITTEE  # same association
    file.set_profile(None, "boulangerie")
    file.routed_here_again(promoted.model_copy(update={"sector": "commerce", "sector_family": SectorFamily.COMMERCE}))
    assert (fresh(file).stage, fresh(file).antenna_id, file.routing_sequence) == (Stage.AWAITING_COMMITTEE, LYON, 2)
    assert (file.sector, file.sector_family) == ("boulangerie", SectorFamily.COMMERCE)  # staff's sector stays


def test_an_antenna_of_the_other_association_is_not_taken() -> None:
    file = CaseFile.opened(uuid.uuid4(), routed(antenna_id="second_souffle-lyon"), RECEIVED)
    assert file.antenna_id is None


def test_a_case_routed_again_from_elsewhere_asks_consent_before_the_committee() -> None:
    previous = PreviousDecision(sequence=1, association=Association.SECOND_SOUFFLE, rule="procedure:redressement")
    file = CaseFile.opened(uuid.uuid4(), routed(sequence=2, previous=previous), datetime(2025, 6, 1, tzinfo=UTC))
    assert file.stage is Stage.AWAITING_CONSENT and file.previous_association is Association.SECOND_SOUFFLE
    assert file.arrived_on == date(2025, 6, 1)  # waiting times count from the handover, not the first reception
    refused(
        lambda: file.decide(Decision.APPROVED, APPROVED_ON, []),
        "Le consentement de l'entrepreneur doit être recueilli à nouveau avant le comité.",
    )
    refused(
        lambda: file.hold_session(SessionKind.CHECKPOINT, APPROVED_ON, 60),
        "Aucune séance avant l'accord du comité d'engagement.",
    )
    assert file.record_consent(True, date(2025, 6, 2)) == []
    assert fresh(file).stage is Stage.AWAITING_COMMITTEE and file.consent_on == date(2025, 6, 2)
    refused(lambda: file.record_consent(True, date(2025, 6, 2)), "Aucun consentement n'est attendu pour ce dossier.")


def test_a_refused_consent_closes_as_a_withdrawal() -> None:
    file = CaseFile.opened(uuid.uuid4(), routed(sequence=2, reroute_reason=RerouteCause.HANDOVER), RECEIVED)
    assert file.previous_association is Association.SECOND_SOUFFLE
    [closed] = file.record_consent(False, date(2025, 6, 2))
    assert isinstance(closed, CaseClosed)
    assert closed.outcome is Outcome.WITHDREW and file.stage is Stage.CLOSED


def test_a_second_souffle_case_is_handed_over_after_a_liquidation() -> None:
    file = approved(Association.SECOND_SOUFFLE)
    [event] = file.request_handover(Procedure.LIQUIDATION_JUDICIAIRE, date(2025, 5, 2), None, date(2025, 5, 5))
    assert event == RerouteRequested(
        requested_by=Association.SECOND_SOUFFLE,
        reason=RerouteReason.HANDOVER,
        procedure=Procedure.LIQUIDATION_JUDICIAIRE,
        court_decision_date=date(2025, 5, 2),
    )
    assert file.stage is Stage.HANDOVER_REQUESTED and file.is_open
    refused(
        lambda: file.request_handover(Procedure.LIQUIDATION_JUDICIAIRE, None, None, APPROVED_ON),
        "La transmission de ce dossier est déjà demandée.",
    )
    refused(
        lambda: file.hold_session(SessionKind.CHECKPOINT, date(2025, 5, 6), 60),
        "Ce dossier est transmis à l'autre association : aucune nouvelle séance.",
    )
    refused(
        lambda: file.close(Outcome.OTHER, date(2025, 5, 6), []),
        "Une transmission est en cours : attendez la réponse du routage.",
    )

    file.routed_elsewhere(routed(sequence=2))
    assert fresh(file).stage is Stage.HANDED_OVER and not file.is_open and file.timeline[-1]["kind"] == "transmis"
    file.routed_elsewhere(routed(sequence=2))  # the same decision again changes nothing
    assert file.timeline[-1]["kind"] == "transmis" and len(file.new_entries) == 3


def test_handover_rules() -> None:
    refused(
        lambda: approved().request_handover(Procedure.LIQUIDATION_JUDICIAIRE, None, None, APPROVED_ON),
        "Seuls les dossiers de Second Souffle se transmettent à 60 000 rebonds.",
    )
    refused(
        lambda: approved(Association.SECOND_SOUFFLE).request_handover(
            Procedure.REDRESSEMENT_JUDICIAIRE, None, None, APPROVED_ON
        ),
        "Une transmission suit une liquidation judiciaire ou une cession à la barre.",
    )


def test_routing_may_keep_a_case_whose_handover_was_asked() -> None:
    file = approved(Association.SECOND_SOUFFLE)
    file.request_handover(Procedure.CESSION_A_LA_BARRE, None, None, APPROVED_ON)
    file.routed_here_again(routed(sequence=2, association=Association.SECOND_SOUFFLE))
    assert file.stage is Stage.ACCOMPANIED and file.routing_sequence == 2


def test_a_case_routed_back_after_leaving_asks_consent_and_committee_again() -> None:
    file = approved(Association.SECOND_SOUFFLE)
    file.assign(VolunteerRole.SPONSOR, a_sponsor(antenna_id="second_souffle-lyon"), 0, APPROVED_ON)
    file.request_handover(Procedure.LIQUIDATION_JUDICIAIRE, None, None, APPROVED_ON)
    file.routed_elsewhere(routed(sequence=2))
    assert file.sponsor_id is None and file.timeline[-1]["released"] == {"parrain": "sponsor-1"}
    file.routed_here_again(routed(sequence=3, association=Association.SECOND_SOUFFLE))
    assert file.stage is Stage.AWAITING_CONSENT and file.previous_association is Association.SOIXANTE_MILLE_REBONDS
    assert (file.approved_on, file.decided_on, file.routing_sequence) == (None, None, 3)


def test_a_closed_case_routed_elsewhere_keeps_its_outcome() -> None:
    file = a_file(association=Association.SECOND_SOUFFLE)
    file.decide(Decision.DECLINED, APPROVED_ON, ["Hors champ"], Orientation.OTHER_ASSOCIATION)
    file.routed_elsewhere(routed(sequence=2))
    assert file.stage is Stage.CLOSED and file.timeline[-1]["kind"] == "reoriente"


def test_case_file_round_trips_through_its_stored_document() -> None:
    file = coached()
    file.set_profile(LYON, "commerce")
    again = CaseFile.from_doc({"_id": str(file.case_id), **file.state(), "version": 0, "timeline": file.timeline})
    assert again == file


def test_case_file_reads_its_stored_document() -> None:
    case_id = uuid.uuid4()
    file = CaseFile.from_doc(
        {
            "_id": str(case_id),
            "association": "second_souffle",
            "stage": "accompagnement",
            "opened_at": RECEIVED,
            "received_at": RECEIVED,
            "approved_on": "2025-02-03",
            "sessions": 2,
            "closed_on": None,
            "version": 4,
            "timeline": [{"kind": "oriente"}],
        }
    )
    assert file.case_id == case_id and file.association is Association.SECOND_SOUFFLE
    assert file.stage is Stage.ACCOMPANIED and file.approved_on == APPROVED_ON
    assert (file.sessions, file.version, file.closed_on) == (2, 4, None)
