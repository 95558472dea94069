"""The Grafana boards: generated from ops/grafana/boards.py, every query valid PromQL made of exported
metrics, every alert they name a real one. (Whether each query returns series is checked against the real
services and Prometheus in tests/e2e/test_observability.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ops.grafana.boards import DASHBOARDS_DIR, DATASOURCE, render
from tests.observability import RULE_FILES, boards, exported_names, metric_names, panels, promtool, queries

# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h"}


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_committed_boards_are_the_generated_ones() -> None:
    assert {
        name: path.read_text() for name, path in ((p.name, p) for p in DASHBOARDS_DIR.glob("*.json"))
    } == render(), "run `python -m ops.grafana.boards` after changing ops/grafana/boards.py"


def test_boards_cover_operations_and_coordination() -> None:
    exprs = {name: " ".join(expr for board, _, expr in queries() if board == name) for name in boards()}
    for metric in (
        "up",
        "relais_dependency_up",
        "relais_consumer_lag",
        "relais_outbox_backlog",
        "relais_outbox_relay_seconds_bucket",
        "relais_dead_letters_total",
        "relais_handler_retries_total",
        "relais_handler_seconds_bucket",
        "relais_store_command_seconds_bucket",
        "relais_http_requests_total",
        "relais:case_routing_slow:ratio_rate1h",
    ):
        assert metric in exprs["relais-operations.json"], metric
    for metric in (
        'event_type="CaseReceived"',
        "relais_routing_decisions_total",
        "relais_coaching_open_cases",
        "relais_coaching_waiting_cases",
        "relais_coaching_wait_days_mean",
        "relais_coaching_volunteer_followed",
        'event_type="CaseClosed"',
        "antenna",
    ):
        assert metric in exprs["relais-coordination.json"], metric


def test_panels_are_complete_and_laid_out_on_the_grid() -> None:
    for name, board in boards().items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in panels(board):
            assert panel["title"] and panel["targets"], (name, panel)
            assert panel["datasource"] == DATASOURCE
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, (name, panel["title"])
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_every_query_is_promql_that_prometheus_accepts(tmp_path: Path) -> None:
    # promtool has no query parser of its own in 2.42: each query becomes a recording rule it checks.
    rules = [
        {"record": f"relais:board_query_{i}:check", "expr": substituted(expr)}
        for i, (_, _, expr) in enumerate(queries())
    ]
    path = tmp_path / "board-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "boards", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_use_only_exported_metrics_or_recorded_series() -> None:
    exported = exported_names()
    recorded = {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    for board, title, expr in queries():
        for name in metric_names(expr):
            assert name in exported | recorded, f"{board} / {title}: {name} is not exported"


def test_alerts_named_in_descriptions_exist() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    named = {
        word
        for board in boards().values()
        for panel in panels(board)
        for word in re.findall(r"\bRelais[A-Z]\w+", panel["description"])
    }
    assert named and named <= alerts, named - alerts
