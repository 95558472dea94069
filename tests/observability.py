"""What the alert rules and the boards may query: the metric names the services really export.

Names come from the shared registry (`shared.metrics.Metrics`), FastStream's Kafka middleware and every
`Counter/Gauge/Histogram("relais_...")` declared under `services/` (read from the source, so that a
service's metric is found wherever issue-by-issue refactoring moves it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from ops.grafana.boards import DASHBOARDS_DIR
from shared.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
RULE_FILES = sorted(PROMETHEUS_DIR.glob("*.yml"))
# Series Prometheus itself adds to every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
_DECLARED = re.compile(r'\b(?:Counter|Gauge|Histogram|Summary|gauge)\(\s*(?:name=)?"(relais_[a-z0-9_]+)"')
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics("test", registry)
    KafkaPrometheusMiddleware(registry=registry, app_name="test")
    names = {family.name for family in registry.collect()}
    for source in (ROOT / "services").rglob("*.py"):
        names.update(_DECLARED.findall(source.read_text()))
    # Counters and histograms expose suffixed series (a counter's family name drops its `_total`).
    return names | {name + suffix for name in names for suffix in SUFFIXES} | SCRAPE_SERIES


def metric_names(expr: str) -> set[str]:
    """The metric (and recorded series) names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, format arguments)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def boards() -> dict[str, dict]:
    """File name -> the committed Grafana board."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(board: dict) -> list[dict]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def queries() -> list[tuple[str, str, str]]:
    """(board, panel title, expression) of every target of every board."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in boards().items()
        for panel in panels(board)
        for target in panel["targets"]
    ]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool (installed by `make provision`, scripts/ensure-tools.sh); fail, never skip, without it."""
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make provision` installs Debian's prometheus package"
    return subprocess.run([binary, *args], check=False, capture_output=True, text=True, cwd=PROMETHEUS_DIR, timeout=120)
