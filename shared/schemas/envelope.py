"""The versioned envelope every event travels in, and its strict decoding.

The case id is the Kafka message key so that one case's events stay in order on one partition. The few
events about an antenna rather than a case (volunteer capacity) carry `antenna_id` instead, as their key.
Headers carry only routing metadata (type, version, ids): never personal data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.schemas.events import EVENTS, Contract, EventSpec, spec_for

MAX_EVENT_BYTES = 256 * 1024
C = TypeVar("C", bound=Contract)


class EnvelopeError(ValueError):
    """A message that can never be processed as it is: it goes to the dead-letter topic."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    event_type: str
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    case_id: uuid.UUID | None = None
    antenna_id: str | None = None
    producer: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: dict[str, Any]

    @model_validator(mode="after")
    def one_subject(self) -> Envelope:
        if (self.case_id is None) == (self.antenna_id is None):
            raise ValueError("exactly one of case_id and antenna_id identifies the subject")
        return self

    @property
    def spec(self) -> EventSpec:
        return EVENTS[self.event_type]

    @property
    def key(self) -> bytes:
        return (str(self.case_id) if self.case_id is not None else str(self.antenna_id)).encode()

    def typed(self) -> Contract:
        """The payload as its model (validated when decoded)."""
        return self.spec.model.model_validate(self.payload)

    def payload_as(self, model: type[C]) -> C:
        """The payload as `model`, the one way a consumer reads an event: only declared fields exist."""
        if self.spec.model is not model:
            raise TypeError(f"{self.event_type} is not a {model.__name__}")
        return model.model_validate(self.payload)

    def headers(self) -> dict[str, str]:
        return {
            "event-type": self.event_type,
            "schema-version": str(self.schema_version),
            "event-id": str(self.event_id),
            "correlation-id": str(self.correlation_id),
            "content-type": "application/json",
        }

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def new_envelope(
    payload: Contract,
    *,
    case_id: uuid.UUID | None = None,
    antenna_id: str | None = None,
    producer: str,
    cause: Envelope | None = None,
    correlation_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Wrap a payload; an event caused by another inherits its correlation id."""
    spec = spec_for(payload)
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        event_type=spec.name,
        schema_version=spec.version,
        occurred_at=datetime.now(UTC),
        case_id=case_id,
        antenna_id=antenna_id,
        producer=producer,
        correlation_id=cause.correlation_id if cause else (correlation_id or uuid.uuid4()),
        causation_id=cause.event_id if cause else None,
        payload=payload.model_dump(mode="json"),
    )


def decode(raw: bytes, *, key: bytes | None = None, expected_type: str | None = None) -> Envelope:
    """Parse and validate a message, or raise EnvelopeError with a reason fit for the dead-letter topic."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EnvelopeError(f"oversize payload: {len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid envelope: {_summary(exc)}") from None
    spec = EVENTS.get(envelope.event_type)
    if spec is None:
        raise EnvelopeError(f"unknown event type: {envelope.event_type!r}")
    if expected_type is not None and envelope.event_type != expected_type:
        raise EnvelopeError(f"unexpected event type {envelope.event_type!r} on the topic of {expected_type}")
    if (envelope.case_id is not None) != (spec.subject == "case"):
        raise EnvelopeError(f"{spec.name} must be identified by its {spec.subject} id")
    if envelope.schema_version > spec.version:
        raise EnvelopeError(
            f"unsupported schema version {envelope.schema_version} of {spec.name} (reader knows {spec.version})"
        )
    if key is None:
        raise EnvelopeError(f"missing message key (the {spec.subject} id)")
    if key != envelope.key:
        raise EnvelopeError(f"message key does not match the envelope's {spec.subject} id")
    try:
        spec.model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid {spec.name} payload: {_summary(exc)}") from None
    return envelope


def _summary(exc: ValidationError) -> str:
    """Field paths and error types only: the input values may hold personal data."""
    parts = [".".join(str(p) for p in err["loc"]) + f" ({err['type']})" for err in exc.errors()[:5]]
    return "; ".join(parts)
