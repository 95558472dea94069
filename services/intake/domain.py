"""Intake rules: what makes a request acceptable, and how a request becomes a case. No I/O here."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.schemas import CaseReceived, ReferrerKind, SectorFamily
from shared.schemas.events import PersonalDetails, Referral, Situation

# Court file numbers identify a procedure, hence its debtor: "RG 24/01234", "N° RG 2401234", "2024J00123",
# "PCL 2024 0123", Portalis numbers. A partner's own file number is what a reference is for.
_COURT_NUMBERS = (
    re.compile(r"\bR\.?\s?G\b", re.IGNORECASE),
    re.compile(r"\bPCL\b", re.IGNORECASE),
    re.compile(r"portalis", re.IGNORECASE),
    re.compile(r"\b\d{2}\s?/\s?\d{4,6}\b"),
    re.compile(r"\b(?:19|20)\d{2}\s?[A-Z]\s?\d{3,6}\b"),
)
UNSAFE_REFERENCE = (
    "La référence du partenaire ne doit contenir ni le nom, l'entreprise ou les coordonnées de la personne, "
    "ni un numéro de procédure du tribunal : indiquez votre propre numéro de dossier."
)

# Case ids derived from an Idempotency-Key live in their own namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9a52-3b7e-4f0a-9a0e-2f8e5b1d7c44")
RECEIVED = "received"


def siren_is_valid(siren: str) -> bool:
    """A SIREN is 9 digits with a Luhn check digit."""
    if len(siren) != 9 or not siren.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(siren)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# NAF rev. 2 divisions (the first two digits) grouped into the broad families the associations talk about.
_FAMILY_BY_DIVISION = (
    (range(1, 4), SectorFamily.AGRICULTURE),
    (range(5, 40), SectorFamily.INDUSTRY),  # extraction, manufacturing, energy, water and waste
    (range(41, 44), SectorFamily.CONSTRUCTION),
    (range(45, 48), SectorFamily.COMMERCE),
    (range(49, 54), SectorFamily.TRANSPORT),
    (range(55, 57), SectorFamily.HOSPITALITY),
    (range(58, 100), SectorFamily.SERVICES),
)
_NAF = re.compile(r"^(\d{2})\.?(\d{2})([A-Za-z])$")


def normalise_naf(code: str) -> str | None:
    """'4711b' or '47.11B' -> '47.11B'; None when it is not a NAF code of an existing division."""
    match = _NAF.match(code.strip())
    if match is None or not any(int(match[1]) in divisions for divisions, _ in _FAMILY_BY_DIVISION):
        return None
    return f"{match[1]}.{match[2]}{match[3].upper()}"


def sector_family(naf_code: str) -> SectorFamily:
    division = int(naf_code[:2])
    return next(family for divisions, family in _FAMILY_BY_DIVISION if division in divisions)


def reference_is_safe(reference: str, personal: PersonalDetails) -> bool:
    """False when a partner's reference could identify the person: their name, company, email, phone or
    SIREN, or a court file number. The reference is what the partner's status feed is keyed by and what
    the partner's emails quote; intake decides here, once, and refuses the request otherwise."""
    if any(pattern.search(reference) for pattern in _COURT_NUMBERS):
        return False
    ref = _plain(reference)
    ref_digits = "".join(ch for ch in reference if ch.isdigit())
    words = [personal.first_name, personal.last_name, personal.company_name, personal.email]
    if personal.email:
        words.append(personal.email.split("@", 1)[0])
    for word in words:
        if word and len(_plain(word)) >= 3 and _plain(word) in ref:
            return False
    for number in (personal.phone, personal.siren):
        digits = "".join(ch for ch in (number or "") if ch.isdigit())
        if len(digits) >= 6 and digits[-6:] in ref_digits:
            return False
    return True


def _plain(text: str) -> str:
    """Case- and accent-insensitive, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def case_id_for(idempotency_key: str | None) -> uuid.UUID:
    """The same key always names the same case, so a resubmission finds the first one."""
    if idempotency_key:
        return uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)
    return uuid.uuid4()


def request_fingerprint(request: dict[str, Any]) -> str:
    """Detects a key reused for a different request (the body itself is not kept twice)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CaseRequest:
    """A validated request for help, in the contract's terms. Personal data: `personal`."""

    situation: Situation
    referral: Referral
    personal: PersonalDetails

    def as_dict(self) -> dict[str, Any]:
        return {
            "situation": self.situation.model_dump(mode="json"),
            "referral": self.referral.model_dump(mode="json"),
            "personal": self.personal.model_dump(mode="json"),
        }

    @property
    def fingerprint(self) -> str:
        return request_fingerprint(self.as_dict())


@dataclass(frozen=True)
class Case:
    """What intake keeps of a case besides the personal data."""

    case_id: uuid.UUID
    status: str
    received_at: datetime
    situation: Situation
    referral_kind: ReferrerKind
    fingerprint: str
    partner: str | None = None  # the partner account that referred the person (`relais partners add`)


def case_received(request: CaseRequest, received_at: datetime) -> CaseReceived:
    """The CaseReceived payload that starts the flow. Of the personal details it carries only how to reach
    the person (notifications writes to them): the company's name and SIREN and the person's message stay in
    intake, no reader of the topic needs them."""
    reachable = request.personal.model_copy(update={"company_name": None, "siren": None, "message": None})
    return CaseReceived(
        situation=request.situation, referral=request.referral, personal=reachable, received_at=received_at
    )
