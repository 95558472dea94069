"""Readers declare what they read: services see events only through their payload models.

A service that read `envelope.payload` (a dict) could act on a field no producer declares, which is how
notifications once waited for `coach_email` that nobody published. Through `payload_as(Model)` every field
read exists in the schema (an undeclared attribute raises, and the type checker sees it).
"""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.schemas import EVENTS, new_envelope
from shared.schemas.events import CommitteeApproved

SERVICES = Path(__file__).resolve().parents[2] / "services"


def _payload_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "payload" and isinstance(node.ctx, ast.Load)
    ]


@pytest.mark.parametrize("service", sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists()))
def test_services_read_events_through_their_models_only(service: str) -> None:
    offenders = {
        str(path.relative_to(SERVICES.parent)): lines
        for path in sorted((SERVICES / service).rglob("*.py"))
        if (lines := _payload_reads(path))
    }
    assert offenders == {}, "read events with envelope.payload_as(Model), not the raw payload dict"


def test_a_field_the_schema_does_not_declare_cannot_be_read() -> None:
    envelope = new_envelope(
        CommitteeApproved(association="60000_rebonds", decided_on="2026-05-01"), case_id=uuid.uuid4(), producer="test"
    )
    approved = envelope.payload_as(CommitteeApproved)
    with pytest.raises(AttributeError):
        approved.coach_email  # type: ignore[attr-defined]  # noqa: B018 - reading the undeclared field is the test


def test_payload_as_refuses_the_wrong_model() -> None:
    envelope = new_envelope(
        CommitteeApproved(association="60000_rebonds", decided_on="2026-05-01"), case_id=uuid.uuid4(), producer="test"
    )
    with pytest.raises(TypeError):
        envelope.payload_as(EVENTS["SessionHeld"].model)


@pytest.mark.parametrize("spec", list(EVENTS.values()), ids=lambda spec: spec.name)
def test_every_payload_model_forbids_undeclared_fields(spec) -> None:
    def closed(model: type[BaseModel]) -> bool:
        return model.model_config.get("extra") == "forbid"

    assert closed(spec.model)
    for field in spec.model.model_fields.values():
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                assert closed(arg), f"{spec.name}.{arg.__name__} accepts undeclared fields"
