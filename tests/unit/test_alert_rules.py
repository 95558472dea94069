"""The alert and recording rules, checked and unit-tested the way Prometheus does it (promtool), and made
only of metrics the services really export."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ops.observability import RULE_FILES as RULES_LOADED
from tests.observability import PROMETHEUS_DIR, RULE_FILES, exported_names, metric_names, promtool

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def rules() -> list[dict]:
    return [
        rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def test_make_run_and_compose_load_every_rule_file() -> None:
    assert tuple(p.name for p in RULE_FILES) == RULES_LOADED


def test_promtool_checks_the_rule_files() -> None:
    result = promtool("check", "rules", *(p.name for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *(str(p.relative_to(PROMETHEUS_DIR)) for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_files: set[str] = set()
    for path in RULE_TESTS:
        document = yaml.safe_load(path.read_text())
        tested_files.update(Path(f).name for f in document["rule_files"])
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert tested_files == {p.name for p in RULE_FILES}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_is_complete() -> None:
    seen = set()
    for rule in alerts():
        assert rule["alert"].startswith("Relais") and rule["alert"] not in seen
        seen.add(rule["alert"])
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_rules_use_only_exported_metrics_or_recorded_series() -> None:
    exported = exported_names()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    assert all(name.startswith("relais:") for name in recorded)
    for rule in rules():
        for name in metric_names(rule["expr"]):
            assert name in exported | recorded, f"{rule.get('alert') or rule['record']}: {name} is not exported"


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (group) (max by (group, topic, partition) (relais_consumer_lag{job=~"relais-.*"}))'
        " / on(job) group_left rate(relais_x_total[5m] offset 1h) > (14.4 * 1e-2) and relais:a:b"
    )
    assert metric_names(expr) == {"relais_consumer_lag", "relais_x_total", "relais:a:b"}


def test_delivery_and_readiness_signals_are_covered() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "relais_consumer_lag",
        "relais_outbox_backlog",
        "relais_dead_letters_total",
        "relais_handler_retries_total",
        "relais_dependency_up",
        "relais_case_routing_seconds_bucket",
    ):
        assert metric in exprs
    assert "relais_http_rejections_total" not in exprs, "store outages come from readiness, not from 503s"
