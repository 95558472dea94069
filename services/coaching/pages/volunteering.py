"""Volunteering: the public "Devenir bénévole" form of this association, and the staff page that answers
applications (accept with antenna, sectors, capacity and certification, or decline; the applicant is told
by email through `VolunteerApplicationDecided`).

The form is served by each coaching instance rather than by intake: an application goes straight to the
association the person chose, into its own database, and its personal data never travels on a shared
topic read by the other association; only the answer does, to be emailed.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.coaching.api.guard import check_antenna
from services.coaching.api.volunteers import AcceptanceIn, ApplicationIn
from services.coaching.domain.applications import Application, ApplicationStatus, application_id_for
from services.coaching.pages import labels as fr
from services.coaching.pages.space import EXPIRED, Refusal, Space
from services.coaching.service import ApplicationKeyReused
from shared.pages import FormData, FormState, idempotency_key
from shared.schemas import VolunteerRole

KEY_FIELD = "cle"
APPLICATION_LABELS = {
    "display_name": "Prénom et nom",
    "email": "Adresse e-mail",
    "phone": "Téléphone",
    "role": "Vous souhaitez être",
    "city": "Commune où vous pouvez agir",
    "sectors": "Secteurs que vous connaissez",
    "experience": "Votre parcours en quelques lignes",
    "consent": "J'accepte que l'association conserve ces informations pour étudier ma candidature",
}
ROLE_CHOICES = {
    VolunteerRole.COACH: "Coach (certifié ou en cours de certification) : environ sept séances avec une personne",
    VolunteerRole.SPONSOR: "Parrain ou marraine : accompagner une personne vers son nouveau projet",
    VolunteerRole.EXPERT: "Expert : répondre ponctuellement à des questions (droit, finances, emploi…)",
}
ACCEPTANCE_LABELS = {
    "antenna_id": "Antenne",
    "sectors": "Secteurs",
    "max_people": "Personnes suivies à la fois, au plus",
    "certified_until": "Certification de coach valable jusqu'au",
}


def application_data(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: value
        for name in ("display_name", "email", "phone", "role", "city", "experience")
        if (value := form.text(name)) is not None
    }
    data["sectors"] = _sectors(form.get("sectors"))
    data["consent"] = form.checked("consent")
    return data


def _sectors(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def volunteering_routes(space: Space) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    service = space.service

    def application_form(
        request: Request, form: FormState, key: str, status: int = 200, notice: str | None = None
    ) -> Response:
        return space.render(
            request,
            "candidature.html",
            space.staff(request),
            status,
            form=form,
            key=key,
            notice=notice,
            roles=fr.options(ROLE_CHOICES),
        )

    @router.get("/benevolat")
    async def apply_page(request: Request) -> Response:
        return application_form(request, FormState(labels=APPLICATION_LABELS), idempotency_key())

    @router.post("/benevolat")
    async def apply(request: Request) -> Response:
        data, valid = await space.form(request)
        key = data.get(KEY_FIELD).strip()[:200] or idempotency_key()
        if not valid:
            return application_form(request, space.state(data, APPLICATION_LABELS), key, 403, EXPIRED)
        body = space.parse(ApplicationIn, application_data(data))
        if isinstance(body, Refusal):
            return application_form(request, space.state(data, APPLICATION_LABELS, body), key, 422)
        application = Application(
            application_id=application_id_for(key),
            received_at=service.clock(),
            **body.model_dump(exclude={"consent"}),
        )
        try:
            await service.apply(application)
        except ApplicationKeyReused:
            notice = (
                "Une candidature a déjà été envoyée depuis ce formulaire avec d'autres informations. Pour en "
                "envoyer une nouvelle, vérifiez les informations ci-dessous et envoyez à nouveau."
            )
            return application_form(request, space.state(data, APPLICATION_LABELS), idempotency_key(), 422, notice)
        return space.back(request, "/benevolat/merci")

    @router.get("/benevolat/merci")
    async def thanks(request: Request) -> Response:
        return space.render(request, "candidature_recue.html", space.staff(request))

    # --- staff: answering applications ------------------------------------------------------------------

    async def show_applications(
        request: Request,
        failed: tuple[str, FormState, Refusal] | None = None,
        status: int = 200,
    ) -> Response:
        staff = space.staff(request)
        assert staff is not None
        found = await space.step(staff, "application.list", lambda: service.find_applications(), count=len)
        applications = found if isinstance(found, list) else []
        forms = {
            str(a.application_id): FormState(
                values={"sectors": ", ".join(a.sectors), "max_people": "2"}, labels=ACCEPTANCE_LABELS
            )
            for a in applications
        }
        if failed is not None:
            forms[failed[0]] = failed[1]
        antennas = sorted(
            {v.volunteer.antenna_id for v in await service.list_volunteers()}
            | {c.antenna_id for c in await service.antenna_capacities()}
        )
        pending = [a for a in applications if a.status is ApplicationStatus.PENDING]
        elsewhere = failed is not None and failed[0] not in {str(a.application_id) for a in pending}
        return space.render(
            request,
            "candidatures.html",
            staff,
            status,
            general=failed[2].message if failed is not None and elsewhere else None,
            pending=pending,
            answered=[a for a in applications if a.status is not ApplicationStatus.PENDING][-20:],
            forms=forms,
            failed=failed,
            antennas=antennas,
            done=request.query_params.get("fait"),
            fr=fr,
            roles=ROLE_CHOICES,
        )

    @router.get("/espace/candidatures")
    async def applications_page(request: Request) -> Response:
        if space.staff(request) is None:
            return space.to_sign_in(request)
        return await show_applications(request)

    @router.post("/espace/candidatures/{application_id}/{answer}")
    async def answer(request: Request, application_id: uuid.UUID, answer: str) -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        if answer not in ("accepter", "refuser"):
            return space.not_found(request, staff, "Cette action n'existe pas.")
        data, valid = await space.form(request)
        key = str(application_id)
        if not valid:
            return await show_applications(
                request, (key, space.state(data, ACCEPTANCE_LABELS), Refusal(403, EXPIRED, {})), 403
            )
        if answer == "refuser":
            outcome: Any = await space.step(
                staff, "application.decline", lambda: service.decline_application(application_id, staff.user)
            )
        else:
            body = space.parse(
                AcceptanceIn,
                {
                    "antenna_id": data.text("antenna_id"),
                    "sectors": _sectors(data.get("sectors")),
                    "max_people": data.text("max_people"),
                    **({"certified_until": c} if (c := data.text("certified_until")) else {}),
                },
            )
            if isinstance(body, Refusal):
                return await show_applications(request, (key, space.state(data, ACCEPTANCE_LABELS, body), body), 422)

            async def accept() -> Application:
                check_antenna(body.antenna_id, service.association)
                return await service.accept_application(
                    application_id,
                    staff.user,
                    antenna_id=body.antenna_id,
                    sectors=body.sectors,
                    max_people=body.max_people,
                    certified_until=body.certified_until,
                )

            outcome = await space.step(staff, "application.accept", accept)
        if isinstance(outcome, Refusal):
            state = space.state(data, ACCEPTANCE_LABELS, outcome)
            return await show_applications(request, (key, state, outcome), outcome.status)
        return space.back(request, "/espace/candidatures", fait=answer)

    return router
