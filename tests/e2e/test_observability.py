"""A real Prometheus scrapes the real services (the stack of `make run`): every instance is up, the rules
load and evaluate, and every query of every Grafana board returns series once a few cases have gone
through intake, routing, both coaching instances and notifications."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from ops.devstack import PrometheusNode
from ops.stack import SERVICES, Stack
from shared.schemas import Association
from tests.coaching_support import SR, SS, StaffClient, unique_antenna
from tests.conftest import a_case, wait_for
from tests.e2e.conftest import dev_staff
from tests.observability import RULE_FILES, metric_names, queries

# What Grafana would substitute; the windows cover the whole test, so every rate has data.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "15m"}
PROCEDURE = {SS: "redressement_judiciaire", SR: "liquidation_judiciaire"}
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[PrometheusNode]:
    stack.start_monitoring(alerting=True)
    yield stack.prometheus
    stack.prometheus.stop()
    stack.alertmanager.stop()


@pytest.fixture
async def api(prometheus: PrometheusNode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{prometheus.url}/api/v1", timeout=10) as client:
        yield client


async def instant(api: httpx.AsyncClient, expr: str) -> list[dict]:
    response = await api.get("/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


async def test_every_service_instance_is_scraped_and_up(stack: Stack, api: httpx.AsyncClient) -> None:
    expected = {(name, f"127.0.0.1:{node.port}") for name, node in stack.services.items()}
    assert {name for name, _ in expected} == set(SERVICES)

    async def all_up() -> bool:
        targets = (await api.get("/targets")).json()["data"]["activeTargets"]
        return {(t["labels"]["service"], t["labels"]["instance"]) for t in targets if t["health"] == "up"} == expected

    await wait_for(all_up, 30, "every service instance up in Prometheus' targets")


async def test_the_rules_load_evaluate_and_reach_alertmanager(stack: Stack, api: httpx.AsyncClient) -> None:
    names = {
        rule.get("alert") or rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }

    async def evaluated() -> bool:
        groups = (await api.get("/rules")).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return {rule["name"] for rule in rules} == names and all(rule["health"] == "ok" for rule in rules)

    await wait_for(evaluated, 30, "every rule loaded and evaluated without error")

    async def alertmanager_known() -> bool:
        active = (await api.get("/alertmanagers")).json()["data"]["activeAlertmanagers"]
        return any(str(stack.alertmanager.port) in a["url"] for a in active)

    await wait_for(alertmanager_known, 30, "Alertmanager among Prometheus' alertmanagers")


async def submit(stack: Stack, association: Association) -> str:
    situation = {
        "procedure": PROCEDURE[association],
        "court_decision_date": str(TODAY - timedelta(days=60)),
        "postal_code": "69003",
        "commune": "Lyon",
        "sector": "commerce",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{stack.services['intake'].url}/cases",
            json=a_case(situation=situation),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def placed(stack: Stack, staff: StaffClient, antenna: str) -> str:
    case_id = await submit(stack, staff.association)
    await staff.opened(case_id)
    await staff.patch(f"/cases/{case_id}", {"antenna_id": antenna, "sector": "commerce"})
    return case_id


async def a_few_cases(stack: Stack, staff_of: dict[Association, StaffClient]) -> None:
    """Cases at every stage the coordination board shows, and refusals for the 4xx panel."""
    sr, tag = staff_of[SR], uuid.uuid4().hex[:6]
    antenna = unique_antenna(SR, "lyon")
    await sr.volunteer(f"coach-{tag}", "coach", antenna)
    await sr.volunteer(f"sponsor-{tag}", "parrain", antenna)
    followed = await placed(stack, sr, antenna)  # approved, a coach, a session; still waits for a sponsor
    await sr.post(f"/cases/{followed}/committee-decision", {"decision": "approuve"})
    await sr.post(f"/cases/{followed}/assignments", {"role": "coach", "volunteer_id": f"coach-{tag}"})
    await sr.post(f"/cases/{followed}/sessions", {"kind": "coaching", "duration_minutes": 60}, expect=201)
    declined = await placed(stack, sr, antenna)  # closed: the committee orients it to APESA
    await sr.post(
        f"/cases/{declined}/committee-decision",
        {"decision": "refuse", "reasons": ["Détresse aiguë"], "orientation": "apesa"},
    )
    await placed(stack, staff_of[SS], unique_antenna(SS, "lyon"))  # waits for Second Souffle's committee
    async with httpx.AsyncClient(timeout=10) as client:
        invalid = await client.post(f"{stack.services['intake'].url}/cases", json={"consent": True})
        assert invalid.status_code == 422
        unknown = await client.get(f"{stack.services['routing'].url}/cases/{uuid.uuid4()}", headers=dev_staff(SR))
        assert unknown.status_code == 404
    for staff in staff_of.values():  # the coordinators' figures, as their gauges show them
        assert (await staff.get("/coordination")).status_code == 200


async def test_every_board_query_returns_series(
    stack: Stack, api: httpx.AsyncClient, staff_of: dict[Association, StaffClient]
) -> None:
    await a_few_cases(stack, staff_of)
    pending = {}
    for board, title, expr in queries():
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        pending[expr] = f"{board} / {title}"
    last: dict[str, list[dict]] = {}

    async def all_answered() -> bool:
        for expr in list(pending):
            last[expr] = await instant(api, expr)  # a parse error fails here at once
            if finite(last[expr]):
                del pending[expr]
        return not pending

    try:
        await wait_for(all_answered, 90, "a value for every board query", interval=1)
    except AssertionError:
        missing = "\n".join(f"  {where}: {expr} -> {last.get(expr)}" for expr, where in pending.items())
        raise AssertionError(f"board queries without a value:\n{missing}") from None

    # Every name the rules and boards use is one the services export for real (read from /metrics here;
    # the unit tests read them from the code).
    used = {name for _, _, expr in queries() for name in metric_names(expr)}
    used |= {
        name
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        for name in metric_names(rule["expr"])
    }
    exported = set((await api.get("/label/__name__/values")).json()["data"])
    assert {name for name in used if ":" not in name} - exported == set()
