"""Intake's HTTP API: the public door through which an entrepreneur or a partner submits a case.

`POST /cases` is public (a person, or a referrer without an account) and rate limited per client; a partner
with an account sends its own token, which is how its referral carries the partner's name (and its status
feed is its own). What became of a referral: the partner with its token, everyone else by email only.
"""
# No `from __future__ import annotations` here: FastAPI must see the routes' local dependencies itself.

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Self, TypeAlias

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from services.intake.domain import (
    UNSAFE_REFERENCE,
    Case,
    CaseRequest,
    normalise_naf,
    reference_is_safe,
    sector_family,
    siren_is_valid,
)
from services.intake.service import IdempotencyKeyReused, IntakeService, Submission
from shared.auth import Authenticator, Partner, client_of
from shared.http import MULTILINE, RateLimiter, StrictRequest, invalid_field
from shared.schemas import CompanySize, Procedure, ReferrerKind, SectorFamily
from shared.schemas import events as contract

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Entrepreneur(StrictRequest):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(None, max_length=254, pattern=EMAIL)
    phone: str | None = Field(None, pattern=r"^\+?[0-9][0-9 .\-]{8,18}[0-9]$")

    @model_validator(mode="after")
    def reachable(self) -> Self:
        if not self.email and not self.phone:
            raise ValueError("Indiquez au moins un moyen de contact : adresse e-mail ou téléphone.")
        return self


class Company(StrictRequest):
    name: str | None = Field(None, max_length=200)
    siren: str | None = None

    @field_validator("siren")
    @classmethod
    def valid_siren(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(" ", "")
        if not siren_is_valid(compact):
            raise ValueError("SIREN invalide : 9 chiffres avec une clé de contrôle correcte.")
        return compact


class Situation(StrictRequest):
    """Where the company stands and where the person lives: what routing needs, no personal data."""

    procedure: Procedure
    court_decision_date: date | None = None
    postal_code: str = Field(pattern=r"^\d{5}$")
    commune: str | None = Field(None, max_length=100)
    insee_code: str | None = Field(
        None, pattern=r"^(\d{5}|2[AB]\d{3})$", description="Code INSEE de la commune (code officiel géographique)"
    )
    sector: str | None = Field(None, max_length=100)
    naf_code: str | None = Field(None, description="Code NAF / APE de l'entreprise, par exemple 47.11B")
    sector_family: SectorFamily | None = Field(None, description="Déduite du code NAF quand il est donné")
    company_size: CompanySize | None = None
    acute_distress: bool = Field(False, description="La personne se dit en détresse psychologique aiguë")
    apesa_consent: bool = Field(False, description="Elle accepte d'être rappelée par APESA")

    @field_validator("court_decision_date")
    @classmethod
    def not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("La date de la décision du tribunal ne peut pas être dans le futur.")
        return value

    @field_validator("naf_code")
    @classmethod
    def known_naf(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = normalise_naf(value)
        if normalised is None:
            raise ValueError("Code NAF invalide : quatre chiffres et une lettre, par exemple 47.11B.")
        return normalised

    @model_validator(mode="after")
    def sector_family_of_naf(self) -> Self:
        if self.naf_code is not None:
            family = sector_family(self.naf_code)
            if self.sector_family is not None and self.sector_family is not family:
                raise ValueError(
                    f"La famille de secteur ne correspond pas au code NAF {self.naf_code} ({family.value})."
                )
            self.sector_family = family
        if self.apesa_consent and not self.acute_distress:
            raise ValueError("Le consentement à APESA ne vaut qu'en cas de détresse déclarée.")
        return self


class Referral(StrictRequest):
    kind: ReferrerKind = ReferrerKind.SELF
    organisation: str | None = Field(None, max_length=200)
    partner_reference: str | None = Field(None, max_length=100)
    contact_email: str | None = Field(
        None, max_length=254, pattern=EMAIL, description="Adresse du partenaire pour l'informer des suites"
    )

    @model_validator(mode="after")
    def partner_named(self) -> Self:
        if self.kind is not ReferrerKind.SELF and not self.organisation:
            raise ValueError("Indiquez l'organisme qui oriente la personne.")
        return self


class CaseSubmission(StrictRequest):
    """A request for help. Personal data: `entrepreneur`, `company`, `message`."""

    situation: Situation
    entrepreneur: Entrepreneur
    company: Company | None = None
    referral: Referral = Referral()
    message: Annotated[str, Field(max_length=4000), MULTILINE] | None = None
    consent: bool = Field(description="Consentement au traitement des données pour l'accompagnement")

    @field_validator("consent")
    @classmethod
    def consent_given(cls, value: bool) -> bool:
        if not value:
            raise ValueError("Le consentement est nécessaire pour traiter la demande.")
        return value

    @field_validator("referral")
    @classmethod
    def safe_reference(cls, referral: Referral, info: ValidationInfo) -> Referral:
        """Intake decides, once, that a partner's reference cannot identify the person (domain rule)."""
        entrepreneur, company = info.data.get("entrepreneur"), info.data.get("company") or Company()
        if referral.partner_reference and entrepreneur is not None:
            personal = contract.PersonalDetails(
                **entrepreneur.model_dump(mode="json"), company_name=company.name, siren=company.siren
            )
            if not reference_is_safe(referral.partner_reference, personal):
                raise ValueError(UNSAFE_REFERENCE)
        return referral

    def as_request(self, partner: Partner | None = None) -> CaseRequest:
        """The request in the contract's terms; a partner's name comes from its credential only."""
        company = self.company or Company()
        referral: dict[str, Any] = self.referral.model_dump(mode="json")
        if partner is not None:
            referral["partner"] = partner.name
        return CaseRequest(
            situation=contract.Situation.model_validate(self.situation.model_dump(mode="json")),
            referral=contract.Referral.model_validate(referral),
            personal=contract.PersonalDetails(
                **self.entrepreneur.model_dump(mode="json"),
                company_name=company.name,
                siren=company.siren,
                message=self.message,
            ),
        )


class CaseAccepted(BaseModel):
    case_id: uuid.UUID
    status: str
    received_at: datetime


class CaseView(BaseModel):
    """What intake tells the referring partner about a case: no personal data, and never the distress the
    person declared (`acute_distress`, `apesa_consent` are always null here)."""

    case_id: uuid.UUID
    status: str
    received_at: datetime
    situation: contract.Situation
    referral_kind: ReferrerKind

    @classmethod
    def of(cls, case: Case) -> Self:
        return cls(
            case_id=case.case_id,
            status=case.status,
            received_at=case.received_at,
            situation=case.situation.model_copy(update={"acute_distress": None, "apesa_consent": None}),
            referral_kind=case.referral_kind,
        )


async def accept(
    service: IntakeService, submission: CaseSubmission, idempotency_key: str | None, partner: Partner | None = None
) -> Submission:
    """THE door of a request for help, for the JSON API and for the form alike: the same idempotency and the
    same partner stamp (from the partner's token, never from the request). The per-client limit is checked
    before, with the one `RateLimiter` both share (`app.py`)."""
    return await service.submit(submission.as_request(partner), idempotency_key)


def routes(
    service: IntakeService, auth: Authenticator, public_limit: RateLimiter, partner_limit: RateLimiter
) -> APIRouter:
    api = APIRouter(tags=["cases"])
    AnyPartner: TypeAlias = Annotated[Partner | None, Depends(auth.partner(optional=True))]

    def submitter(request: Request, partner: AnyPartner) -> Partner | None:
        """The partner submitting (None: the public route), within its limit per minute (429 beyond)."""
        if partner is None:
            public_limit.check(client_of(request))
        else:
            partner_limit.check(f"partner:{partner.name}")
        return partner

    @api.post(
        "/cases",
        status_code=201,
        response_model=CaseAccepted,
        summary="Submit a request for help (public; a partner with an account adds its token)",
        responses={
            200: {"description": "Same Idempotency-Key: the case already created"},
            401: {"description": "A partner token nobody issued"},
            413: {},
            415: {},
            422: {},
            429: {"description": "Too many requests from this client: see Retry-After"},
        },
    )
    async def submit(
        submission: CaseSubmission,
        response: Response,
        partner: Annotated[Partner | None, Depends(submitter)],
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> CaseAccepted:
        if partner is not None and not submission.referral.partner_reference:
            raise invalid_field("referral.partner_reference", "Indiquez votre référence de dossier.")
        try:
            submitted = await accept(service, submission, idempotency_key, partner)
        except IdempotencyKeyReused:
            raise HTTPException(422, "Cette clé d'idempotence a déjà servi pour une demande différente.") from None
        if not submitted.created:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        case = submitted.case
        return CaseAccepted(case_id=case.case_id, status=case.status, received_at=case.received_at)

    @api.get(
        "/cases/{case_id}",
        response_model=CaseView,
        summary="What intake knows of a case, for the partner that referred it",
        responses={404: {}},
    )
    async def get_case(case_id: uuid.UUID, partner: Annotated[Partner, Depends(auth.partner())]) -> CaseView:
        case = await service.case(case_id)
        if case is None or case.partner != partner.name:
            raise HTTPException(404, "Dossier introuvable.")
        return CaseView.of(case)

    return api
