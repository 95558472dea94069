"""The alert rules file is well-formed and only uses metrics the services really export."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from shared.metrics import Metrics

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "delta", "max", "min_over_time", "histogram_quantile", "and",
                "le", "job", "group", "topic", "reason", "event_type", "status", "up"}


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics("test", registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # Counters and histograms expose suffixed series even before their first observation.
    for name in list(names):
        names.update({f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"})
    return names


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete() -> None:
    seen = set()
    for rule in rules():
        assert rule["alert"].startswith("Relais") and rule["alert"] not in seen
        seen.add(rule["alert"])
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_rules_use_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", rule["expr"])
        for word in re.findall(r"[a-z_][a-z0-9_]*", expr):
            if word in PROMQL_WORDS:
                continue
            assert word in exported, f"{rule['alert']}: {word} is not a Relais metric"


def test_delivery_signals_are_covered() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    for metric in ("relais_consumer_lag", "relais_outbox_backlog", "relais_dead_letters_total",
                   "relais_handler_retries_total"):
        assert metric in exprs
