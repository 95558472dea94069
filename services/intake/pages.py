"""Intake's public pages: the request for help (an entrepreneur's own, or a partner referring someone), the
consent text, the confirmation, and where to volunteer.

A form is validated by the API's own request model (`CaseSubmission`) and submitted through the same call
as `POST /cases` (`api.accept`), with its idempotency key carried in the form: a double click or a refresh
gives the same case. Errors come back next to their field, in French, with what the person typed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.intake.api import CaseSubmission, accept
from services.intake.service import CaseVanished, IdempotencyKeyReused, IntakeService
from services.intake.settings import IntakeSettings
from shared.auth import client_of
from shared.http import RateLimiter
from shared.pages import FormData, FormState, Pages, field_errors, idempotency_key, nest, read_form
from shared.schemas import Association, CompanySize, Procedure, ReferrerKind, SectorFamily

TEMPLATES = Path(__file__).parent / "templates"
FORM_PATHS = ("/demande", "/orienter")
KEY_FIELD = "cle"

PROCEDURES = {
    Procedure.NONE: "Aucune procédure pour l'instant : l'entreprise est en difficulté",
    Procedure.MANDAT_AD_HOC: "Mandat ad hoc",
    Procedure.CONCILIATION: "Conciliation",
    Procedure.SAUVEGARDE: "Sauvegarde",
    Procedure.REDRESSEMENT_JUDICIAIRE: "Redressement judiciaire",
    Procedure.LIQUIDATION_JUDICIAIRE: "Liquidation judiciaire",
    Procedure.CESSION_A_LA_BARRE: "Cession à la barre (vente ordonnée par le tribunal)",
    Procedure.RETABLISSEMENT_PROFESSIONNEL: "Rétablissement professionnel",
}
REFERRERS = {
    ReferrerKind.COURT: "Tribunal (greffe, juge)",
    ReferrerKind.MANDATAIRE: "Administrateur ou mandataire judiciaire",
    ReferrerKind.CCI: "Chambre de commerce et d'industrie (CCI)",
    ReferrerKind.CMA: "Chambre de métiers et de l'artisanat (CMA)",
    ReferrerKind.ACCOUNTANT: "Expert-comptable",
    ReferrerKind.LAWYER: "Avocat",
    ReferrerKind.BANK: "Banque",
    ReferrerKind.URSSAF: "URSSAF",
    ReferrerKind.EMPLOYER_BODY: "Organisation patronale (MEDEF, CPME…)",
    ReferrerKind.APESA: "APESA",
    ReferrerKind.OTHER: "Autre organisme",
}
SIZES = {
    CompanySize.NONE: "Aucun salarié",
    CompanySize.MICRO: "1 à 9 salariés",
    CompanySize.SMALL: "10 à 49 salariés",
    CompanySize.MEDIUM: "50 à 249 salariés",
    CompanySize.LARGE: "250 salariés ou plus",
}
SECTOR_FAMILIES = {
    SectorFamily.COMMERCE: "Commerce",
    SectorFamily.CONSTRUCTION: "Bâtiment et travaux publics",
    SectorFamily.SERVICES: "Services",
    SectorFamily.HOSPITALITY: "Hôtellerie, restauration",
    SectorFamily.TRANSPORT: "Transport",
    SectorFamily.INDUSTRY: "Industrie",
    SectorFamily.AGRICULTURE: "Agriculture",
}

PARTNER_LABELS = {
    "referral.kind": "Type d'organisme",
    "referral.organisation": "Nom de l'organisme",
    "referral.partner_reference": "Votre référence de dossier",
    "referral.contact_email": "Votre adresse e-mail professionnelle",
    "referral": "Votre organisme",
}
# Labels in the order of the form (the error summary follows it); `{}` marks where a partner reads "la
# personne" and an entrepreneur "vous".
_PERSON_LABELS = {
    "entrepreneur.first_name": "Prénom",
    "entrepreneur.last_name": "Nom",
    "entrepreneur.email": "Adresse e-mail",
    "entrepreneur.phone": "Téléphone",
    "entrepreneur": "Moyen de contact",
    "company.name": "Nom de l'entreprise",
    "company.siren": "Numéro SIREN",
    "company": "Entreprise",
    "situation.procedure": "Situation de l'entreprise",
    "situation.court_decision_date": "Date de la décision du tribunal",
    "situation.sector": "Activité de l'entreprise",
    "situation.naf_code": "Code NAF (APE)",
    "situation.sector_family": "Secteur",
    "situation.company_size": "Nombre de salariés",
    "situation.postal_code": "Code postal",
    "situation.commune": "Commune",
    "situation.acute_distress": "",
    "situation.apesa_consent": "",
    "situation": "Situation",
    "message": "",
    "consent": "",
}
SELF_WORDS = {
    "situation.postal_code": "Code postal de votre domicile",
    "situation.commune": "Commune de votre domicile",
    "situation.acute_distress": "Je traverse une détresse psychologique aiguë (idées noires, épuisement)",
    "situation.apesa_consent": "J'accepte qu'un psychologue d'APESA me rappelle, gratuitement et en toute "
    "confidentialité",
    "message": "Votre message (facultatif)",
    "consent": "J'accepte que ces informations soient traitées pour organiser mon accompagnement",
}
PARTNER_WORDS = {
    "situation.postal_code": "Code postal du domicile de la personne",
    "situation.commune": "Commune du domicile de la personne",
    "situation.acute_distress": "La personne traverse une détresse psychologique aiguë (idées noires, épuisement)",
    "situation.apesa_consent": "Elle accepte qu'un psychologue d'APESA la rappelle, gratuitement et en toute "
    "confidentialité",
    "message": "Message pour l'association (facultatif)",
    "consent": "La personne a donné son accord pour être orientée et pour que ces informations soient transmises",
}
BOOL_FIELDS = ("situation.acute_distress", "situation.apesa_consent", "consent")
TEXT_FIELDS = (*(n for n in (*PARTNER_LABELS, *_PERSON_LABELS) if "." in n and n not in BOOL_FIELDS), "message")


def labels(partner: bool) -> dict[str, str]:
    words = PARTNER_WORDS if partner else SELF_WORDS
    person = {name: words.get(name, label) for name, label in _PERSON_LABELS.items()}
    return {**PARTNER_LABELS, **person} if partner else person


def submission_data(form: FormData, partner: bool) -> dict[str, Any]:
    """The form as the API's request body: blanks left out (None), boxes as booleans, dotted names nested."""
    flat: dict[str, Any] = {name: value for name in TEXT_FIELDS if (value := form.text(name)) is not None}
    if not partner:
        flat = {name: value for name, value in flat.items() if not name.startswith("referral.")}
    flat.update({name: form.checked(name) for name in BOOL_FIELDS})
    data = nest(flat)
    data.setdefault("situation", {})
    data.setdefault("entrepreneur", {})
    if partner:
        data.setdefault("referral", {})  # a partner must say who they are: "kind" missing is an error
    return data


def partner_errors(form: FormData, errors: dict[str, str]) -> dict[str, str]:
    """A partner says who they are: the API defaults the kind to `self`, the partner's form may not."""
    found = {}
    kind = form.text("referral.kind")
    if kind is None:
        found["referral.kind"] = "Ce champ est obligatoire."
    elif kind == ReferrerKind.SELF.value:
        found["referral.kind"] = "Choisissez le type de votre organisme."
    if "referral" in errors and form.text("referral.organisation") is None:
        found["referral.organisation"] = errors.pop("referral")
    return found


def page_routes(service: IntakeService, settings: IntakeSettings, limit: RateLimiter) -> APIRouter:
    pages = Pages(
        settings,
        [TEMPLATES],
        scope="intake",
        site={
            "name": "Relais",
            "home": "/",
            "nav": [
                ("/demande", "Demander un accompagnement"),
                ("/orienter", "Orienter une personne"),
                ("/benevolat", "Devenir bénévole"),
            ],
        },
    )
    router = APIRouter(include_in_schema=False)
    common = {"procedures": PROCEDURES, "referrers": REFERRERS, "sizes": SIZES, "families": SECTOR_FAMILIES}

    def show_form(
        request: Request,
        partner: bool,
        form: FormState,
        key: str,
        status: int = 200,
        notice: str | None = None,
        home: bool = False,
    ) -> HTMLResponse:
        return pages.render(
            request, "demande.html", status, form=form, partner=partner, key=key, notice=notice, home=home, **common
        )

    async def submit(request: Request, partner: bool) -> Response:
        raw = await read_form(request)
        key = raw.get(KEY_FIELD).strip()[:200] or idempotency_key()
        if not pages.csrf_valid(request, raw):
            notice = (
                "Pour votre sécurité, ce formulaire a expiré : rien n'a été envoyé. Vérifiez les informations "
                "ci-dessous et envoyez-le à nouveau."
            )
            return show_form(request, partner, FormState.of(raw, labels(partner)), key, 403, notice)
        errors: dict[str, str] = {}
        submission = None
        try:
            submission = CaseSubmission.model_validate(submission_data(raw, partner))
        except ValidationError as exc:
            errors = field_errors(exc)
        if partner:
            errors.update(partner_errors(raw, errors))
        if errors or submission is None:
            return show_form(request, partner, FormState.of(raw, labels(partner), errors), key, 422)
        wait = limit.hit(client_of(request))  # the JSON route's limiter: one limit per client for both
        if wait is not None:
            notice = (
                f"Trop de demandes envoyées en peu de temps depuis votre connexion : rien n'a été envoyé. "
                f"Réessayez dans {wait} secondes ; ce que vous avez écrit est conservé ci-dessous."
            )
            refused = show_form(request, partner, FormState.of(raw, labels(partner)), key, 429, notice)
            refused.headers["Retry-After"] = str(wait)
            return refused
        try:
            submitted = await accept(service, submission, key)
        except IdempotencyKeyReused:
            notice = (
                "Une demande a déjà été envoyée depuis ce formulaire avec d'autres informations. Pour envoyer une "
                "nouvelle demande, vérifiez les informations ci-dessous et envoyez à nouveau."
            )
            return show_form(request, partner, FormState.of(raw, labels(partner)), idempotency_key(), 422, notice)
        except CaseVanished:
            notice = "Le service est momentanément indisponible : réessayez dans quelques instants."
            return show_form(request, partner, FormState.of(raw, labels(partner)), key, 503, notice)
        return pages.redirect(request, f"/demande/recue/{submitted.case.case_id}")

    @router.get("/")
    async def home(request: Request) -> HTMLResponse:
        """The entrance is the request form itself, under a word on the two associations."""
        return show_form(request, False, FormState(labels=labels(False)), idempotency_key(), home=True)

    @router.get("/demande")
    async def request_form(request: Request) -> HTMLResponse:
        return show_form(request, False, FormState(labels=labels(False)), idempotency_key())

    @router.post("/demande")
    async def request_sent(request: Request) -> Response:
        return await submit(request, partner=False)

    @router.get("/orienter")
    async def referral_form(request: Request) -> HTMLResponse:
        return show_form(request, True, FormState(labels=labels(True)), idempotency_key())

    @router.post("/orienter")
    async def referral_sent(request: Request) -> Response:
        return await submit(request, partner=True)

    @router.get("/demande/recue/{case_id}")
    async def received(request: Request, case_id: uuid.UUID) -> HTMLResponse:
        case = await service.case(case_id)
        if case is None:
            return pages.render(request, "introuvable.html", 404)
        return pages.render(
            request,
            "recue.html",
            case=case,
            reference=str(case.case_id)[:8].upper(),
            partner=case.referral_kind is not ReferrerKind.SELF,
            contact_days=settings.contact_within_days,
        )

    @router.get("/consentement")
    async def consent(request: Request) -> HTMLResponse:
        return pages.render(request, "consentement.html")

    @router.get("/benevolat")
    async def volunteer(request: Request) -> HTMLResponse:
        links = [(a.display_name, url) for a in Association if (url := settings.volunteer_pages.get(a.value))]
        return pages.render(request, "benevolat.html", links=links)

    return router
