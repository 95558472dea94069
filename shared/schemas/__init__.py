"""The event contract between Relais services: envelope, payloads, topics, exported JSON Schema."""

from shared.schemas.envelope import Envelope, EnvelopeError, decode, new_envelope
from shared.schemas.events import (
    EVENTS,
    AntennaCapacityChanged,
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    EventSpec,
    Outcome,
    Procedure,
    ReferrerKind,
    SessionHeld,
    SessionKind,
    spec_for,
)

__all__ = [
    "EVENTS",
    "AntennaCapacityChanged",
    "Association",
    "CaseClosed",
    "CaseReceived",
    "CaseRouted",
    "CommitteeApproved",
    "Contract",
    "Envelope",
    "EnvelopeError",
    "EventSpec",
    "Outcome",
    "Procedure",
    "ReferrerKind",
    "SessionHeld",
    "SessionKind",
    "decode",
    "new_envelope",
    "spec_for",
]
