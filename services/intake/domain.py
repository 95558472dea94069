"""Intake rules: what makes a request acceptable, and how a request becomes a case. No I/O here."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from shared.schemas import CaseReceived, Envelope, new_envelope

PRODUCER = "intake"
# Case ids derived from an Idempotency-Key live in their own namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9a52-3b7e-4f0a-9a0e-2f8e5b1d7c44")


def siren_is_valid(siren: str) -> bool:
    """A SIREN is 9 digits with a Luhn check digit."""
    if len(siren) != 9 or not siren.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(siren)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def case_id_for(idempotency_key: str | None) -> uuid.UUID:
    """The same key always names the same case, so a resubmission finds the first one."""
    if idempotency_key:
        return uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)
    return uuid.uuid4()


def request_fingerprint(request: dict[str, Any]) -> str:
    """Detects a key reused for a different request (the body itself is not kept twice)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def receive(case_id: uuid.UUID, request: dict[str, Any], now: datetime) -> tuple[CaseReceived, Envelope]:
    """Turn a validated request into the CaseReceived event that starts the flow."""
    payload = CaseReceived(
        situation=request["situation"],
        referral=request["referral"],
        personal=request["personal"],
        received_at=now,
    )
    return payload, new_envelope(payload, case_id=case_id, producer=PRODUCER)
