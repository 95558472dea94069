"""One trace per case: the spans of intake, routing, coaching and notifications for one case share the
trace id the caller of POST /cases started, carried through Kafka by the `traceparent` header of the
outbox items, and hold no personal data."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from ops.stack import Stack
from shared.schemas import Association
from tests.coaching_support import SR, StaffClient
from tests.conftest import a_case, wait_for
from tests.otlp import OtlpReceiver, ReceivedSpan

TODAY = datetime.now(UTC).date()
SERVICES = {"relais-intake", "relais-routing", "relais-coaching", "relais-notifications"}


async def test_a_case_is_one_trace_across_http_and_kafka(
    stack: Stack, otlp: OtlpReceiver, staff_of: dict[Association, StaffClient]
) -> None:
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    case = a_case(
        situation={
            "procedure": "liquidation_judiciaire",
            "postal_code": "69003",
            "commune": "Lyon",
            "court_decision_date": str(TODAY - timedelta(days=30)),
            "sector": "commerce",
        }
    )
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{stack.services['intake'].url}/cases",
            json=case,
            headers={"Idempotency-Key": str(uuid.uuid4()), "traceparent": f"00-{trace_id}-{parent}-01"},
        )
    assert response.status_code == 201, response.text
    await staff_of[SR].opened(response.json()["case_id"])

    async def whole_trace() -> list[ReceivedSpan] | None:
        spans = otlp.of_trace(trace_id)
        names = {(span.service, span.name) for span in spans}
        wanted = {
            ("relais-intake", "POST /cases"),
            ("relais-routing", "CaseReceived process"),
            ("relais-coaching", "CaseRouted process"),
            ("relais-notifications", "CaseReceived process"),
            ("relais-notifications", "CaseRouted process"),
        }
        return spans if wanted <= names else None

    spans = await wait_for(whole_trace, 60, f"spans of trace {trace_id} from {sorted(SERVICES)}", interval=0.5)
    assert {span.service for span in spans} >= SERVICES
    [request] = [s for s in spans if s.name == "POST /cases"]
    assert request.parent_span_id == parent  # the caller's span
    consumers = [s for s in spans if s.name.endswith(" process")]
    assert {s.attributes["relais.correlation_id"] for s in consumers} == {request.attributes["relais.correlation_id"]}
    by_id = {s.span_id: s for s in spans}
    routed = next(s for s in consumers if s.service == "relais-coaching")
    assert by_id[routed.parent_span_id].service == "relais-routing"  # routing's handler emitted CaseRouted

    exported = json.dumps([(s.name, s.attributes) for s in spans], ensure_ascii=False)
    for personal in (
        "Jeanne",
        "Martin",
        "jeanne.martin@example.fr",
        "06 12 34 56 78",
        "732829320",
        "Boulangerie",
        "LJ-2026-042",
        "Étude Dupont",
    ):
        assert personal not in exported, personal
