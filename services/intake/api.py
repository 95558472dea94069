"""Intake's HTTP API: the public door through which an entrepreneur or a partner submits a case."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from services.intake.domain import (
    Case,
    CaseRequest,
    normalise_naf,
    sector_family,
    siren_is_valid,
)
from services.intake.service import IdempotencyKeyReused, IntakeService
from shared.http import MULTILINE, StrictRequest
from shared.schemas import CompanySize, Procedure, ReferrerKind, SectorFamily
from shared.schemas import events as contract

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Entrepreneur(StrictRequest):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(None, max_length=254, pattern=EMAIL)
    phone: str | None = Field(None, pattern=r"^\+?[0-9][0-9 .\-]{8,18}[0-9]$")

    @model_validator(mode="after")
    def reachable(self) -> Entrepreneur:
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
    def sector_family_of_naf(self) -> Situation:
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
    def partner_named(self) -> Referral:
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

    def as_request(self) -> CaseRequest:
        company = self.company or Company()
        return CaseRequest(
            situation=contract.Situation.model_validate(self.situation.model_dump(mode="json")),
            referral=contract.Referral.model_validate(self.referral.model_dump(mode="json")),
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
    """What intake tells about a case: no personal data."""

    case_id: uuid.UUID
    status: str
    received_at: datetime
    situation: contract.Situation
    referral_kind: ReferrerKind

    @classmethod
    def of(cls, case: Case) -> CaseView:
        return cls(
            case_id=case.case_id,
            status=case.status,
            received_at=case.received_at,
            situation=case.situation,
            referral_kind=case.referral_kind,
        )


def routes(service: IntakeService) -> APIRouter:
    api = APIRouter(tags=["cases"])

    @api.post(
        "/cases",
        status_code=201,
        response_model=CaseAccepted,
        summary="Submit a request for help",
        responses={200: {"description": "Same Idempotency-Key: the case already created"}, 413: {}, 415: {}, 422: {}},
    )
    async def submit(
        submission: CaseSubmission,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> CaseAccepted:
        try:
            submitted = await service.submit(submission.as_request(), idempotency_key)
        except IdempotencyKeyReused:
            raise HTTPException(422, "Cette clé d'idempotence a déjà servi pour une demande différente.") from None
        if not submitted.created:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        case = submitted.case
        return CaseAccepted(case_id=case.case_id, status=case.status, received_at=case.received_at)

    @api.get("/cases/{case_id}", response_model=CaseView, summary="What intake knows of a case", responses={404: {}})
    async def get_case(case_id: uuid.UUID) -> CaseView:
        case = await service.case(case_id)
        if case is None:
            raise HTTPException(404, "Dossier introuvable.")
        return CaseView.of(case)

    return api
