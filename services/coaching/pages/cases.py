"""Staff pages on case files: sign-in, the list by step with filters and overdue cases marked, the case file
with its routing reasons and whole timeline, every step of the journey, and collective checkpoints.

Each step posts a form that is read into the JSON API's own request model and run through the API's guard
and the same service method: the page decides nothing the API does not.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from services.coaching.api.cases import (
    AssignmentIn,
    CheckpointIn,
    ClosingIn,
    CommitteeDateIn,
    CommitteeDecisionIn,
    ConsentIn,
    FollowingRole,
    HandoverIn,
    ProfileIn,
    SessionIn,
)
from services.coaching.api.guard import check_antenna
from services.coaching.auth import Staff
from services.coaching.domain.case_file import CaseFile, CaseStep, Stage
from services.coaching.domain.figures import antenna_of, overdue
from services.coaching.pages import labels as fr
from services.coaching.pages.space import EXPIRED, Refusal, Space
from services.coaching.service import CoachingService, SessionReport
from shared.auth import client_of
from shared.http import StrictRequest
from shared.pages import FormData, FormState
from shared.schemas import Association, Outcome, SessionKind, VolunteerRole

Run = Callable[[CoachingService, Staff, uuid.UUID, Any], Awaitable[CaseFile]]


class ReleaseForm(StrictRequest):
    """The DELETE /cases/{id}/assignments/{role} of the API, as a form (a browser form only gets or posts)."""

    role: FollowingRole


def _drop_blank(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


@dataclass(frozen=True)
class Action:
    """One step of a case file as a form: how the form becomes the API's body, and the service call."""

    name: str
    audit: str
    model: type[BaseModel]
    read: Callable[[FormData], dict[str, Any]]
    run: Run
    labels: dict[str, str]
    done: str
    section: str
    defaults: dict[str, str] = field(default_factory=dict)


def _session(service: CoachingService, staff: Staff, case_id: uuid.UUID, body: Any) -> Awaitable[CaseFile]:
    return service.hold_session(case_id, SessionReport(**body.model_dump()), staff.user)


def _profile(service: CoachingService, staff: Staff, case_id: uuid.UUID, body: Any) -> Awaitable[CaseFile]:
    check_antenna(body.antenna_id, service.association)
    return service.set_profile(
        case_id, staff.user, antenna_id=body.antenna_id, sector=body.sector, sector_family=body.sector_family
    )


ACTIONS = {
    action.name: action
    for action in (
        Action(
            "profil",
            "case.profile",
            ProfileIn,
            lambda f: _drop_blank(
                {
                    "antenna_id": f.text("antenna_id"),
                    "sector": f.text("sector"),
                    "sector_family": f.text("sector_family"),
                }
            ),
            _profile,
            {"antenna_id": "Antenne", "sector": "Activité", "sector_family": "Secteur"},
            "Profil du dossier enregistré.",
            "profil",
        ),
        Action(
            "consentement",
            "case.consent",
            ConsentIn,
            lambda f: _drop_blank(
                {"given": {"oui": True, "non": False}.get(f.get("given")), "recorded_on": f.text("recorded_on")}
            ),
            lambda s, st, c, b: s.record_consent(c, b.given, st.user, b.recorded_on),
            {"given": "Consentement de la personne", "recorded_on": "Recueilli le"},
            "Consentement enregistré.",
            "consentement",
        ),
        Action(
            "comite-date",
            "case.committee_date",
            CommitteeDateIn,
            lambda f: _drop_blank({"scheduled_on": f.text("scheduled_on")}),
            lambda s, st, c, b: s.schedule_committee(c, b.scheduled_on, st.user),
            {"scheduled_on": "Date du comité"},
            "Date du comité enregistrée.",
            "comite",
        ),
        Action(
            "comite",
            "case.committee_decision",
            CommitteeDecisionIn,
            lambda f: _drop_blank(
                {
                    "decision": f.text("decision"),
                    "decided_on": f.text("decided_on"),
                    "reasons": f.lines("reasons"),
                    "orientation": f.text("orientation"),
                }
            ),
            lambda s, st, c, b: s.decide_committee(
                c, b.decision, b.reasons, st.user, orientation=b.orientation, decided_on=b.decided_on
            ),
            {
                "decision": "Décision",
                "decided_on": "Date de la décision",
                "reasons": "Motifs",
                "orientation": "Orientation",
            },
            "Décision du comité enregistrée.",
            "comite",
        ),
        Action(
            "attribution",
            "case.assign",
            AssignmentIn,
            lambda f: _drop_blank({"role": f.text("role"), "volunteer_id": f.text("volunteer_id")}),
            lambda s, st, c, b: s.assign(c, b.role, b.volunteer_id, st.user),
            {"role": "Rôle", "volunteer_id": "Bénévole"},
            "Bénévole attribué : il ou elle en est informé(e) par e-mail.",
            "benevoles",
        ),
        Action(
            "liberation",
            "case.release",
            ReleaseForm,
            lambda f: _drop_blank({"role": f.text("role")}),
            lambda s, st, c, b: s.release(c, b.role, st.user),
            {"role": "Rôle"},
            "Bénévole libéré.",
            "benevoles",
        ),
        Action(
            "seance",
            "case.session",
            SessionIn,
            lambda f: _drop_blank(
                {
                    "kind": f.text("kind"),
                    "held_on": f.text("held_on"),
                    "duration_minutes": f.text("duration_minutes"),
                    "attended": f.checked("attended"),
                    "volunteer_id": f.text("volunteer_id") if f.get("kind") == SessionKind.EXPERT.value else None,
                    "next_session_at": f.text("next_session_at"),
                    "next_session_place": f.text("next_session_place"),
                }
            ),
            _session,
            {
                "kind": "Type de séance",
                "held_on": "Date",
                "duration_minutes": "Durée (minutes)",
                "attended": "La personne était présente",
                "volunteer_id": "Expert (pour une consultation)",
                "next_session_at": "Prochain rendez-vous",
                "next_session_place": "Lieu du prochain rendez-vous",
                "": "Séance",
            },
            "Séance enregistrée.",
            "seances",
            {"kind": SessionKind.COACHING.value, "attended": "oui"},
        ),
        Action(
            "cloture",
            "case.closing",
            ClosingIn,
            lambda f: _drop_blank(
                {"outcome": f.text("outcome"), "closed_on": f.text("closed_on"), "reasons": f.lines("reasons")}
            ),
            lambda s, st, c, b: s.close(c, b.outcome, b.reasons, st.user, b.closed_on),
            {"outcome": "Issue", "closed_on": "Date de clôture", "reasons": "Précisions"},
            "Dossier clos.",
            "cloture",
        ),
        Action(
            "transmission",
            "case.handover",
            HandoverIn,
            lambda f: _drop_blank(
                {
                    "procedure": f.text("procedure"),
                    "court_decision_date": f.text("court_decision_date"),
                    "comment": f.text("comment"),
                }
            ),
            lambda s, st, c, b: s.request_handover(c, b.procedure, b.court_decision_date, b.comment, st.user),
            {
                "procedure": "Procédure",
                "court_decision_date": "Date du jugement",
                "comment": "Note pour 60 000 rebonds",
            },
            "Transmission demandée à 60 000 rebonds.",
            "transmission",
        ),
    )
}
CHECKPOINT_LABELS = {
    "antenna_id": "Antenne",
    "held_on": "Date du point d'étape",
    "duration_minutes": "Durée (minutes)",
    "present": "Présents",
    "absent": "Absents",
    "": "Point d'étape",
}


@dataclass(frozen=True)
class Row:
    """A case in the list: its file, the target it missed (and for how long), its step in words."""

    file: CaseFile
    late: tuple[str, int] | None
    step: str


@dataclass(frozen=True)
class Failed:
    action: str
    state: FormState
    refusal: Refusal


def case_routes(space: Space) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    service = space.service

    async def antennas() -> list[str]:
        """The association's antennas this instance knows of: with volunteers, or published to routing."""
        known = {v.volunteer.antenna_id for v in await service.list_volunteers()}
        known |= {c.antenna_id for c in await service.antenna_capacities()}
        return sorted(known)

    # --- landing, sign-in, sign-out -------------------------------------------------------------------------

    @router.get("/")
    async def home(request: Request) -> Response:
        """The staff sign-in (the space itself once signed in), with the way to volunteer."""
        if space.staff(request) is not None:
            return space.back(request, "/espace/dossiers")
        form = FormState(values={"suite": ""}, labels={"user": "Identifiant", "password": "Mot de passe"})
        return space.render(request, "connexion.html", None, form=form, left=False, notice=None, home=True)

    @router.get("/espace")
    @router.get("/espace/")
    async def space_home(request: Request) -> Response:
        return space.back(request, "/espace/dossiers")

    @router.get("/espace/connexion")
    async def sign_in_page(request: Request, suite: str = "", sortie: str = "") -> Response:
        if space.staff(request) is not None:
            return space.back(request, _safe(suite))
        form = FormState(values={"suite": suite}, labels={"user": "Identifiant", "password": "Mot de passe"})
        return space.render(request, "connexion.html", None, form=form, left=bool(sortie), notice=None)

    @router.post("/espace/connexion")
    async def sign_in(request: Request) -> Response:
        data, valid = await space.form(request)
        labels = {"user": "Identifiant", "password": "Mot de passe"}
        user, password = data.get("user").strip(), data.get("password")
        if not valid:
            form = FormState(values={"user": user, "suite": data.get("suite")}, labels=labels)
            return space.render(request, "connexion.html", None, 403, form=form, left=False, notice=EXPIRED)
        client = client_of(request)
        wait = space.passwords.retry_after(client)
        if wait is not None:
            form = FormState(values={"user": user, "suite": data.get("suite")}, labels=labels)
            notice = f"Trop de tentatives de connexion depuis votre poste : réessayez dans {wait} secondes."
            refused = space.render(request, "connexion.html", None, 429, form=form, left=False, notice=notice)
            refused.headers["Retry-After"] = str(wait)
            return refused
        staff = await space.sign_in(client, user, password) if user and password else None
        if staff is None:
            errors = {"password": "Identifiant ou mot de passe incorrect."}
            if not user:
                errors = {"user": "Indiquez votre identifiant."}
            elif not password:
                errors = {"password": "Indiquez votre mot de passe."}
            form = FormState(values={"user": user, "suite": data.get("suite")}, errors=errors, labels=labels)
            return space.render(request, "connexion.html", None, 401, form=form, left=False, notice=None)
        response = space.back(request, _safe(data.get("suite")))
        space.sessions.open(response, staff.user)
        return response

    @router.post("/espace/deconnexion")
    async def sign_out(request: Request) -> Response:
        staff = space.staff(request)
        _, valid = await space.form(request)
        response = space.back(request, "/espace/connexion", sortie="1")
        if staff is not None and valid:
            await space.audit.record(staff.user, "session.logout", "ok")
            space.sessions.close(response)
        return response

    # --- the list of cases ----------------------------------------------------------------------------------

    @router.get("/espace/dossiers")
    async def case_list(request: Request, antenne: str = "", etape: str = "", clos: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        closed = clos == "oui"
        found = await space.step(
            staff, "case.list", lambda: service.find_cases(not closed, None, antenne or None), count=len
        )
        files = found if isinstance(found, list) else []
        step = CaseStep(etape) if etape in CaseStep.__members__.values() else None
        if step is not None:
            files = [f for f in files if f.step() is step]
        today = service.today()
        rows = sorted(
            (
                Row(f, overdue(f, today, service.targets), fr.STEPS[s] if (s := f.step()) else fr.STAGES[f.stage])
                for f in files
            ),
            key=lambda row: (row.late is None, row.file.arrived_on, str(row.file.case_id)),
        )
        return space.render(
            request,
            "dossiers.html",
            staff,
            rows=rows,
            antennas=await antennas(),
            steps=fr.STEPS,
            chosen={"antenne": antenne, "etape": etape, "clos": closed},
            fr=fr,
            targets=service.targets,
        )

    # --- one case file --------------------------------------------------------------------------------------

    async def show_case(
        request: Request,
        staff: Staff,
        case_id: uuid.UUID,
        failed: Failed | None = None,
        status: int = 200,
        done: str | None = None,
    ) -> Response:
        found = await space.step(staff, "case.read", lambda: service.case(case_id), case_id=case_id)
        if isinstance(found, Refusal):
            return space.not_found(request, staff)
        file = found
        volunteers = await service.list_volunteers()
        names = {v.volunteer.volunteer_id: v.volunteer.display_name for v in volunteers}
        suggestions = {}
        if file.stage is Stage.ACCOMPANIED:
            for role in (VolunteerRole.COACH, VolunteerRole.SPONSOR):
                if file.assigned(role) is None:
                    suggested = await space.step(
                        staff, "case.suggestions", partial(service.suggestions, case_id, role), case_id=case_id
                    )
                    if not isinstance(suggested, Refusal):
                        suggestions[role.value] = suggested
        forms = {name: FormState(values=dict(a.defaults), labels=a.labels) for name, a in ACTIONS.items()}
        forms["profil"].values.update(
            (name, str(value)) for name in ("antenna_id", "sector", "sector_family") if (value := getattr(file, name))
        )
        if failed is not None:
            forms[failed.action] = failed.state
        routings = [e for e in file.timeline if e.get("kind") == "oriente"]
        return space.render(
            request,
            "dossier.html",
            staff,
            status,
            file=file,
            step=file.step(),
            late=overdue(file, service.today(), service.targets),
            names=names,
            experts=[
                (v.volunteer.volunteer_id, v.volunteer.display_name)
                for v in volunteers
                if v.volunteer.role is VolunteerRole.EXPERT
            ],
            suggestions=suggestions,
            forms=forms,
            failed=failed,
            done=done,
            routing=routings[-1] if routings else None,
            antennas=await antennas(),
            sessions_planned=service.sessions_planned,
            handover_possible=space.association is Association.SECOND_SOUFFLE,
            closing_outcomes=[o for o in fr.OUTCOMES if o is not Outcome.DECLINED]
            if file.stage is Stage.ACCOMPANIED
            else [Outcome.WITHDREW],
            fr=fr,
            Stage=Stage,
        )

    @router.get("/espace/dossiers/{case_id}")
    async def case_page(request: Request, case_id: str, fait: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        try:
            case_uuid = uuid.UUID(case_id)
        except ValueError:
            return space.not_found(request, staff)
        done = ACTIONS[fait].done if fait in ACTIONS else None
        return await show_case(request, staff, case_uuid, done=done)

    @router.post("/espace/dossiers/{case_id}/{action}")
    async def case_step(request: Request, case_id: uuid.UUID, action: str) -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        spec = ACTIONS.get(action)
        if spec is None:
            return space.not_found(request, staff, "Cette action n'existe pas.")
        data, valid = await space.form(request)
        if not valid:
            refusal = Refusal(403, EXPIRED, {})
            return await show_case(
                request, staff, case_id, Failed(action, space.state(data, spec.labels), refusal), 403
            )
        body = space.parse(spec.model, spec.read(data))
        if isinstance(body, Refusal):
            failed = Failed(action, space.state(data, spec.labels, body), body)
            return await show_case(request, staff, case_id, failed, 422)
        volunteer = getattr(body, "volunteer_id", None) if action == "attribution" else None
        outcome = await space.step(
            staff,
            spec.audit,
            lambda: spec.run(service, staff, case_id, body),
            case_id=case_id,
            **({"volunteer_id": volunteer} if volunteer else {}),
        )
        if isinstance(outcome, Refusal):
            if outcome.status == 404 and not outcome.errors and action != "attribution":
                return space.not_found(request, staff)
            failed = Failed(action, space.state(data, spec.labels, outcome), outcome)
            return await show_case(request, staff, case_id, failed, outcome.status)
        return space.pages.finish(
            request,
            _see_other(f"/espace/dossiers/{case_id}?fait={action}#{spec.section}"),
        )

    # --- collective checkpoints -----------------------------------------------------------------------------

    async def show_checkpoint(
        request: Request, staff: Staff, antenna: str, form: FormState, status: int = 200, notice: str | None = None
    ) -> Response:
        found = await space.step(staff, "case.list", lambda: service.find_cases(True, Stage.ACCOMPANIED), count=len)
        files = found if isinstance(found, list) else []
        here = [f for f in files if antenna_of(f) == antenna] if antenna else []
        return space.render(
            request,
            "point_etape.html",
            staff,
            status,
            antennas=sorted({antenna_of(f) for f in files} | set(await antennas())),
            antenna=antenna,
            files=here,
            form=form,
            notice=notice,
            done=request.query_params.get("fait"),
            fr=fr,
        )

    @router.get("/espace/points-etape")
    async def checkpoint_page(request: Request, antenne: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        return await show_checkpoint(request, staff, antenne, FormState(labels=CHECKPOINT_LABELS))

    @router.post("/espace/points-etape")
    async def checkpoint(request: Request) -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        data, valid = await space.form(request)
        antenna = data.get("antenna_id")
        if not valid:
            return await show_checkpoint(request, staff, antenna, space.state(data, CHECKPOINT_LABELS), 403, EXPIRED)
        presence = {name.removeprefix("presence."): value for name, value in data.flat().items()}
        present = [case for case, value in presence.items() if value == "present"]
        absent = [case for case, value in presence.items() if value == "absent"]
        raw = _drop_blank(
            {
                "antenna_id": data.text("antenna_id"),
                "held_on": data.text("held_on"),
                "duration_minutes": data.text("duration_minutes"),
                "present": present,
                "absent": absent,
            }
        )
        if not present:
            refusal = Refusal(422, "", {"present": "Indiquez au moins une personne présente."})
            return await show_checkpoint(request, staff, antenna, space.state(data, CHECKPOINT_LABELS, refusal), 422)
        body = space.parse(CheckpointIn, raw)
        if isinstance(body, Refusal):
            return await show_checkpoint(request, staff, antenna, space.state(data, CHECKPOINT_LABELS, body), 422)

        async def record() -> Any:
            check_antenna(body.antenna_id, service.association)
            return await service.record_checkpoint(
                body.antenna_id, body.held_on, body.duration_minutes, body.present, body.absent, staff.user
            )

        recorded = await space.step(staff, "checkpoint.record", record)
        if isinstance(recorded, Refusal):
            state = space.state(data, CHECKPOINT_LABELS, recorded)
            return await show_checkpoint(request, staff, antenna, state, recorded.status, recorded.message)
        for case_id in [*recorded.present, *recorded.absent]:
            await space.audit.record(staff.user, "case.checkpoint", "ok", case_id=str(case_id))
        return space.back(
            request, "/espace/points-etape", antenne=antenna, fait=f"{len(recorded.present)}-{len(recorded.absent)}"
        )

    return router


def _safe(target: str) -> str:
    """Only a page of this staff space, never another site ("//evil.example")."""
    return target if target.startswith("/espace/") and not target.startswith("//") else "/espace/dossiers"


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)
