"""The accompaniment of one case: which steps may follow which, and the events each step causes.

Pure rules: the service loads a CaseFile, a method checks the transition, changes the file, notes what
happened in the timeline and returns the events it causes; the store saves all of it in one write. A
refused transition raises TransitionRefused (HTTP 409) before anything is changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.coaching.domain.volunteers import ROLE_LABELS, Volunteer, antenna_belongs_to, as_date
from shared.schemas import (
    Association,
    CaseClosed,
    CaseRouted,
    CommitteeApproved,
    Contract,
    Outcome,
    Procedure,
    RerouteCause,
    RerouteReason,
    RerouteRequested,
    SectorFamily,
    SessionHeld,
    SessionKind,
    VolunteerAssigned,
    VolunteerRole,
)


class Stage(StrEnum):
    AWAITING_CONSENT = "attente_consentement"  # received from the other association: consent asked again
    AWAITING_COMMITTEE = "attente_comite"
    ACCOMPANIED = "accompagnement"
    HANDOVER_REQUESTED = "transmission_demandee"
    HANDED_OVER = "transmis"
    CLOSED = "clos"


OPEN_STAGES = frozenset({Stage.AWAITING_CONSENT, Stage.AWAITING_COMMITTEE, Stage.ACCOMPANIED, Stage.HANDOVER_REQUESTED})
# A volunteer's load counts the cases they follow in these stages.
FOLLOWED_STAGES = frozenset({Stage.ACCOMPANIED, Stage.HANDOVER_REQUESTED})


class CaseStep(StrEnum):
    """Where an open case stands, finer than its stage: what coordinators count (the API's `step`)."""

    AWAITING_CONSENT = "attente_consentement"
    AWAITING_COMMITTEE = "attente_comite"
    COMMITTEE_SCHEDULED = "comite_programme"
    AWAITING_COACH = "attente_coach"
    WITH_COACH = "coaching"
    WITH_SPONSOR = "parrainage"
    HANDOVER_REQUESTED = "transmission_demandee"


class Decision(StrEnum):
    APPROVED = "approuve"
    DECLINED = "refuse"
    DEFERRED = "ajourne"


class Orientation(StrEnum):
    """Where a declined case is sent on."""

    OTHER_ASSOCIATION = "autre_association"
    APESA = "apesa"


# A Second Souffle case moves to 60 000 rebonds once the company is gone.
HANDOVER_PROCEDURES = (Procedure.LIQUIDATION_JUDICIAIRE, Procedure.CESSION_A_LA_BARRE)
ASSIGNED_FIELD = {VolunteerRole.COACH: "coach_id", VolunteerRole.SPONSOR: "sponsor_id"}


class TransitionRefused(Exception):
    """The step is impossible in the case's current state; the message is shown to staff (French)."""


@dataclass
class CaseFile:
    case_id: uuid.UUID
    association: Association
    stage: Stage
    opened_at: datetime
    received_at: datetime | None = None
    approved_on: date | None = None
    sessions: int = 0
    closed_on: date | None = None
    version: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    routing_sequence: int = 1
    correlation_id: str | None = None
    previous_association: Association | None = None  # set when the case came from the other association
    antenna_id: str | None = None
    sector: str | None = None
    sector_family: SectorFamily | None = None
    consent_on: date | None = None
    committee_on: date | None = None
    decided_on: date | None = None
    deferrals: int = 0
    coach_id: str | None = None
    coach_assigned_on: date | None = None
    sponsor_id: str | None = None
    sponsor_assigned_on: date | None = None
    outcome: Outcome | None = None
    oriented_to: str | None = None
    # Timeline entries added since the file was loaded; the store stamps and appends them.
    new_entries: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    # --- persistence -------------------------------------------------------------------------------------

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> CaseFile:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("case_id", "new_entries") or f.name not in doc:
                continue
            values[f.name] = doc[f.name]
        for name in _DATES:
            values[name] = as_date(values.get(name))
        for name, enum in (
            ("association", Association),
            ("stage", Stage),
            ("outcome", Outcome),
            ("previous_association", Association),
            ("sector_family", SectorFamily),
        ):
            if values.get(name) is not None:
                values[name] = enum(values[name])
        return cls(case_id=uuid.UUID(doc["_id"]), **values)

    def state(self) -> dict[str, Any]:
        """Every stored field but the id, the version and the timeline (the store writes those)."""
        state: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("case_id", "version", "timeline", "new_entries"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, date) and not isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            state[f.name] = value
        return state

    # --- opening and routing -----------------------------------------------------------------------------

    @classmethod
    def opened(
        cls, case_id: uuid.UUID, routed: CaseRouted, now: datetime, correlation_id: str | None = None
    ) -> CaseFile:
        """A case routed here for the first time; one coming from the other association needs consent again."""
        previous = came_from(routed)
        file = cls(
            case_id=case_id,
            association=routed.association,
            stage=Stage.AWAITING_CONSENT if previous else Stage.AWAITING_COMMITTEE,
            opened_at=now,
            received_at=routed.received_at,
            routing_sequence=routed.sequence,
            correlation_id=correlation_id,
            previous_association=previous,
            antenna_id=_antenna(routed),
            sector=routed.sector,
            sector_family=routed.sector_family,
        )
        file._note(
            "oriente",
            at=routed.routed_at,
            association=routed.association.value,
            reasons=routed.reasons,
            sequence=routed.sequence,
            antenna_id=file.antenna_id,
            previous_association=previous.value if previous else None,
            **({"priority_callback": True} if routed.priority_callback else {}),
        )
        return file

    def routed_here_again(self, routed: CaseRouted) -> list[Contract]:
        """A newer routing decision for this association: e.g. a place found for a waitlisted case, a case
        whose handover was asked but kept, or a case back after leaving or closing (consent asked again)."""
        if routed.sequence <= self.routing_sequence:
            return []
        self.routing_sequence = routed.sequence
        if self.stage is Stage.HANDOVER_REQUESTED:
            self.stage = Stage.ACCOMPANIED
        elif not self.is_open:
            self.stage, self.previous_association = Stage.AWAITING_CONSENT, self.association.other
            self.committee_on = self.decided_on = self.approved_on = self.closed_on = None
            self.outcome = self.oriented_to = None
        self.antenna_id = _antenna(routed) or self.antenna_id
        # What intake collected fills a gap; what staff set stays.
        self.sector = self.sector or routed.sector
        self.sector_family = self.sector_family or routed.sector_family
        self._note(
            "oriente",
            at=routed.routed_at,
            association=routed.association.value,
            reasons=routed.reasons,
            sequence=routed.sequence,
            antenna_id=self.antenna_id,
            **({"priority_callback": True} if routed.priority_callback else {}),
        )
        return []

    def routed_elsewhere(self, routed: CaseRouted) -> list[Contract]:
        """Routing gave the case to the other association: it leaves this one, its history stays."""
        if routed.sequence <= self.routing_sequence:
            return []
        self.routing_sequence = routed.sequence
        if self.stage in OPEN_STAGES:
            self.stage = Stage.HANDED_OVER
            released = {role.value: self.assigned(role) for role in ASSIGNED_FIELD if self.assigned(role)}
            self.coach_id = self.sponsor_id = None  # their places are free again
            self._note("transmis", to=routed.association.value, sequence=routed.sequence, released=released)
        else:
            self._note("reoriente", to=routed.association.value, sequence=routed.sequence)
        return []

    def set_profile(
        self, antenna_id: str | None, sector: str | None, sector_family: SectorFamily | None = None
    ) -> list[Contract]:
        self._require_open()
        if antenna_id is not None and not antenna_belongs_to(antenna_id, self.association):
            raise TransitionRefused("Cette antenne n'appartient pas à l'association du dossier.")
        changes: dict[str, str] = {}
        if antenna_id is not None and antenna_id != self.antenna_id:
            self.antenna_id = changes["antenna_id"] = antenna_id
        if sector is not None and sector != self.sector:
            self.sector = changes["sector"] = sector
        if sector_family is not None and sector_family is not self.sector_family:
            self.sector_family = sector_family
            changes["sector_family"] = sector_family.value
        if changes:
            self._note("profil", **changes)
        return []

    # --- consent and committee ---------------------------------------------------------------------------

    def record_consent(self, given: bool, on: date) -> list[Contract]:
        if self.stage is not Stage.AWAITING_CONSENT:
            raise TransitionRefused("Aucun consentement n'est attendu pour ce dossier.")
        self._note("consentement", given=given, on=on.isoformat())
        if given:
            self.stage, self.consent_on = Stage.AWAITING_COMMITTEE, on
            return []
        return [self._close(Outcome.WITHDREW, on, ["Consentement non renouvelé après la transmission."])]

    def _before_committee(self) -> None:
        if self.stage is Stage.AWAITING_CONSENT:
            raise TransitionRefused("Le consentement de l'entrepreneur doit être recueilli à nouveau avant le comité.")
        if self.stage is not Stage.AWAITING_COMMITTEE:
            raise TransitionRefused("Le comité d'engagement a déjà statué sur ce dossier.")

    def schedule_committee(self, on: date) -> list[Contract]:
        self._before_committee()
        if self.received_at is not None and on < self.received_at.date():
            raise TransitionRefused("Le comité ne peut pas se tenir avant la réception du dossier.")
        self.committee_on = on
        self._note("comite_programme", scheduled_on=on.isoformat())
        return []

    def decide(
        self, decision: Decision, decided_on: date, reasons: list[str], orientation: Orientation | None = None
    ) -> list[Contract]:
        self._before_committee()
        if orientation is not None and decision is not Decision.DECLINED:
            raise TransitionRefused("Seul un refus du comité oriente le dossier ailleurs.")
        self._note(
            "comite",
            decision=decision.value,
            decided_on=decided_on.isoformat(),
            reasons=reasons,
            orientation=orientation.value if orientation else None,
        )
        if decision is Decision.DEFERRED:
            self.deferrals += 1
            self.committee_on = None  # to be scheduled again
            return []
        self.decided_on = decided_on
        if decision is Decision.APPROVED:
            self.stage, self.approved_on = Stage.ACCOMPANIED, decided_on
            # The committee's reasons stay in this file's timeline: notifications, the one reader, needs none.
            return [CommitteeApproved(association=self.association, decided_on=decided_on)]
        if orientation is Orientation.OTHER_ASSOCIATION:
            closed = self._close(Outcome.DECLINED, decided_on, reasons, oriented_to=self.association.other.value)
            return [closed, RerouteRequested(requested_by=self.association, reason=RerouteReason.OUT_OF_SCOPE)]
        oriented_to = Orientation.APESA.value if orientation is Orientation.APESA else None
        return [self._close(Outcome.DECLINED, decided_on, reasons, oriented_to=oriented_to)]

    # --- volunteers --------------------------------------------------------------------------------------

    def assigned(self, role: VolunteerRole) -> str | None:
        return getattr(self, ASSIGNED_FIELD[role]) if role in ASSIGNED_FIELD else None

    def assigned_on(self, role: VolunteerRole) -> date | None:
        return {VolunteerRole.COACH: self.coach_assigned_on, VolunteerRole.SPONSOR: self.sponsor_assigned_on}.get(role)

    def assign(self, role: VolunteerRole, volunteer: Volunteer, load: int, on: date) -> list[Contract]:
        """Name the volunteer who follows this person; `load` is how many people they follow already."""
        label = ROLE_LABELS[role]
        if role not in ASSIGNED_FIELD:
            raise TransitionRefused("Un expert ne s'attribue pas : il intervient lors d'une consultation.")
        self._require_followed(f"Un {label} ne peut être attribué qu'après l'accord du comité d'engagement.")
        if volunteer.role is not role:
            raise TransitionRefused(f"Ce bénévole n'est pas {label}.")
        current = self.assigned(role)
        if current == volunteer.volunteer_id:
            raise TransitionRefused(f"Ce {label} suit déjà ce dossier.")
        if current is not None:
            raise TransitionRefused(f"Ce dossier a déjà un {label} : libérez-le d'abord.")
        refusal = volunteer.refusal(on, load)
        if refusal is not None:
            raise TransitionRefused(refusal)
        setattr(self, ASSIGNED_FIELD[role], volunteer.volunteer_id)
        setattr(self, f"{ASSIGNED_FIELD[role].removesuffix('_id')}_assigned_on", on)
        self._note("attribution", role=role.value, volunteer_id=volunteer.volunteer_id, on=on.isoformat())
        return [_assignment(self.association, role, volunteer, on)]

    def release(self, role: VolunteerRole, volunteer: Volunteer | None, on: date) -> list[Contract]:
        """The volunteer assigned (`volunteer`, None when nobody is) stops following this person (they left,
        or another fits better)."""
        self._require_open()
        current = self.assigned(role)
        if current is None:
            raise TransitionRefused(f"Aucun {ROLE_LABELS[role]} n'est attribué à ce dossier.")
        if volunteer is None or current != volunteer.volunteer_id:
            raise TransitionRefused(f"Ce bénévole n'est pas le {ROLE_LABELS[role]} de ce dossier.")
        setattr(self, ASSIGNED_FIELD[role], None)
        self._note("liberation", role=role.value, volunteer_id=current, on=on.isoformat())
        return [_assignment(self.association, role, volunteer, on, released=True)]

    # --- sessions ----------------------------------------------------------------------------------------

    def hold_session(
        self,
        kind: SessionKind,
        held_on: date,
        duration_minutes: int | None,
        *,
        attended: bool = True,
        session_id: str | None = None,
        volunteer_id: str | None = None,
        next_session_at: datetime | None = None,
        next_session_place: str | None = None,
    ) -> list[Contract]:
        """Record a session; an absent entrepreneur is noted, not counted. A known session_id is a no-op.

        `volunteer_id` names the expert of a consultation; a coaching session is led by the case's coach,
        a sponsor meeting by its sponsor. The next meeting agreed, if any, travels with the event so that
        the people concerned can be reminded of it.
        """
        if self.stage in (Stage.AWAITING_COMMITTEE, Stage.AWAITING_CONSENT):
            raise TransitionRefused("Aucune séance avant l'accord du comité d'engagement.")
        if self.stage is Stage.CLOSED:
            raise TransitionRefused("Ce dossier est clos : aucune nouvelle séance.")
        if self.stage is not Stage.ACCOMPANIED:
            raise TransitionRefused("Ce dossier est transmis à l'autre association : aucune nouvelle séance.")
        if self.approved_on and held_on < self.approved_on:
            raise TransitionRefused("Une séance ne peut pas précéder l'accord du comité.")
        if kind is SessionKind.COACHING and self.coach_id is None:
            raise TransitionRefused("Aucun coach n'est attribué à ce dossier : attribuez-en un avant la séance.")
        if kind is SessionKind.SPONSOR and self.sponsor_id is None:
            raise TransitionRefused(
                "Aucun parrain ni marraine n'est attribué à ce dossier : attribuez-en un avant la rencontre."
            )
        if session_id is not None and self.has_session(session_id):
            return []
        if next_session_at is not None and next_session_at.date() < held_on:
            raise TransitionRefused("Le prochain rendez-vous ne peut pas précéder la séance.")
        session_id = session_id or str(uuid.uuid4())
        led_by = {SessionKind.COACHING: self.coach_id, SessionKind.SPONSOR: self.sponsor_id}.get(kind, volunteer_id)
        details: dict[str, object] = {
            "session_id": session_id,
            "session_kind": kind.value,
            "held_on": held_on.isoformat(),
            "duration_minutes": duration_minutes,
            "volunteer_id": led_by,
        }
        if next_session_at is not None or next_session_place is not None:
            details |= {"next_session_at": next_session_at, "next_session_place": next_session_place}
        if not attended:
            self._note("absence", **details)
            return []
        self.sessions += 1
        self._note("seance", number=self.sessions, **details)
        return [
            SessionHeld(
                association=self.association,
                session_id=session_id,
                kind=kind,
                held_on=held_on,
                duration_minutes=duration_minutes,
                number=self.sessions,
                volunteer_id=led_by,
                next_session_at=next_session_at,
                next_session_place=next_session_place,
            )
        ]

    def has_session(self, session_id: str) -> bool:
        return any(entry.get("session_id") == session_id for entry in self.timeline)

    def next_session(self) -> dict[str, Any] | None:
        """The next meeting agreed at the latest session that named one (`at`, `place`), or None."""
        for entry in reversed(self.timeline):
            if entry.get("kind") in ("seance", "absence") and entry.get("next_session_at") is not None:
                return {
                    "at": entry["next_session_at"],
                    "place": entry.get("next_session_place"),
                    "session_kind": entry["session_kind"],
                }
        return None

    def sessions_by_kind(self) -> dict[str, int]:
        counts = dict.fromkeys((k.value for k in SessionKind), 0)
        for entry in self.timeline:
            if entry.get("kind") == "seance":
                counts[entry["session_kind"]] += 1
        return counts

    # --- handover and closing ----------------------------------------------------------------------------

    def request_handover(
        self, procedure: Procedure, court_decision_date: date | None, comment: str | None, on: date
    ) -> list[Contract]:
        """The company went into liquidation: ask routing to hand the person over to 60 000 rebonds."""
        if self.association is not Association.SECOND_SOUFFLE:
            raise TransitionRefused("Seuls les dossiers de Second Souffle se transmettent à 60 000 rebonds.")
        if procedure not in HANDOVER_PROCEDURES:
            raise TransitionRefused("Une transmission suit une liquidation judiciaire ou une cession à la barre.")
        if self.stage is Stage.HANDOVER_REQUESTED:
            raise TransitionRefused("La transmission de ce dossier est déjà demandée.")
        self._require_open()
        if self.stage is Stage.AWAITING_CONSENT:
            raise TransitionRefused("Le consentement de l'entrepreneur est attendu : le dossier ne peut pas repartir.")
        self.stage = Stage.HANDOVER_REQUESTED
        self._note(
            "transmission_demandee",
            procedure=procedure.value,
            on=on.isoformat(),
            court_decision_date=court_decision_date.isoformat() if court_decision_date else None,
            to=self.association.other.value,
            comment=comment,
        )
        # The staff's note stays in this file: routing, the one reader of RerouteRequested, has no use for it.
        return [
            RerouteRequested(
                requested_by=self.association,
                reason=RerouteReason.HANDOVER,
                procedure=procedure,
                court_decision_date=court_decision_date,
            )
        ]

    def close(self, outcome: Outcome, closed_on: date, reasons: list[str]) -> list[Contract]:
        if self.stage is Stage.CLOSED:
            raise TransitionRefused("Ce dossier est déjà clos.")
        if self.stage is Stage.HANDED_OVER:
            raise TransitionRefused("Ce dossier a été transmis à l'autre association, qui le clôturera.")
        if self.stage is Stage.HANDOVER_REQUESTED:
            raise TransitionRefused("Une transmission est en cours : attendez la réponse du routage.")
        if self.stage in (Stage.AWAITING_COMMITTEE, Stage.AWAITING_CONSENT) and outcome is not Outcome.WITHDREW:
            raise TransitionRefused("Avant le comité, un dossier ne peut être clos que par un abandon.")
        if outcome is Outcome.DECLINED:
            raise TransitionRefused("Un refus se prononce par la décision du comité d'engagement.")
        return [self._close(outcome, closed_on, reasons)]

    def _close(
        self, outcome: Outcome, closed_on: date, reasons: list[str], oriented_to: str | None = None
    ) -> CaseClosed:
        start = (self.received_at or self.opened_at).date()

        def days(since: date | None, until: date | None) -> int | None:
            return max(0, (until - since).days) if since and until else None

        self.stage, self.closed_on, self.outcome, self.oriented_to = Stage.CLOSED, closed_on, outcome, oriented_to
        closed = CaseClosed(
            association=self.association,
            outcome=outcome,
            closed_on=closed_on,
            journey_days=days(start, closed_on),
            days_to_committee=days(self.arrived_on, self.decided_on),
            days_to_coach=days(self.approved_on, self.coach_assigned_on),
            accompaniment_days=days(self.approved_on, closed_on),
            oriented_to=oriented_to,
        )
        self._note(
            "cloture",
            outcome=outcome.value,
            closed_on=closed_on.isoformat(),
            journey_days=closed.journey_days,
            oriented_to=oriented_to,
            reasons=reasons,  # kept here only: the staff's words travel on no topic
        )
        return closed

    # --- reading -----------------------------------------------------------------------------------------

    @property
    def arrived_on(self) -> date:
        """When this association received the case: its reception, or its handover from the other one."""
        if self.previous_association is not None or self.received_at is None:
            return self.opened_at.date()
        return self.received_at.date()

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    def step(self) -> CaseStep | None:
        """The coordinators' view of an open case (None once it is closed or handed over)."""
        if self.stage is Stage.AWAITING_COMMITTEE:
            return CaseStep.COMMITTEE_SCHEDULED if self.committee_on else CaseStep.AWAITING_COMMITTEE
        if self.stage is Stage.ACCOMPANIED:
            if self.sponsor_id:
                return CaseStep.WITH_SPONSOR
            return CaseStep.WITH_COACH if self.coach_id else CaseStep.AWAITING_COACH
        return {
            Stage.AWAITING_CONSENT: CaseStep.AWAITING_CONSENT,
            Stage.HANDOVER_REQUESTED: CaseStep.HANDOVER_REQUESTED,
        }.get(self.stage)

    # --- helpers -----------------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self.stage is Stage.CLOSED:
            raise TransitionRefused("Ce dossier est clos.")
        if self.stage is Stage.HANDED_OVER:
            raise TransitionRefused("Ce dossier a été transmis à l'autre association.")

    def _require_followed(self, before_approval: str) -> None:
        self._require_open()
        if self.stage is Stage.HANDOVER_REQUESTED:
            raise TransitionRefused("Une transmission est en cours : aucune attribution possible.")
        if self.stage is not Stage.ACCOMPANIED:
            raise TransitionRefused(before_approval)

    def _note(self, kind: str, **details: Any) -> None:
        entry = {"kind": kind, **details}
        self.timeline.append(entry)
        self.new_entries.append(entry)


_DATES = (
    "approved_on",
    "closed_on",
    "consent_on",
    "committee_on",
    "decided_on",
    "coach_assigned_on",
    "sponsor_assigned_on",
)


def came_from(routed: CaseRouted) -> Association | None:
    """The other association a re-routed case comes from (handover, out of scope), or None."""
    if routed.previous is not None:
        return routed.previous.association if routed.previous.association is not routed.association else None
    if routed.reroute_reason in (RerouteCause.HANDOVER, RerouteCause.OUT_OF_SCOPE):
        return routed.association.other
    return None


def _assignment(
    association: Association, role: VolunteerRole, volunteer: Volunteer, on: date, released: bool = False
) -> VolunteerAssigned:
    return VolunteerAssigned(
        association=association,
        role=role,
        volunteer_id=volunteer.volunteer_id,
        display_name=volunteer.display_name,
        email=volunteer.email,
        assigned_on=on,
        released=released,
    )


def _antenna(routed: CaseRouted) -> str | None:
    """The antenna routing chose, if it is one of the association's."""
    antenna = routed.antenna_id
    return antenna if antenna and antenna_belongs_to(antenna, routed.association) else None
