"""Prometheus and Alertmanager configurations for a running stack, generated from its services.

`make run` writes them under its data folder and starts both from Debian's packages (scripts/ensure-tools.sh);
the dashboards test does the same with free ports. The files are JSON, which both programs read as YAML.
One job per service (`relais-<service>`), one target per instance, labelled with the instance's name
(`service="coaching-60000_rebonds"`), so that both coaching instances are scraped and told apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
RULE_FILES = ("alerts.yml", "slo.yml")


def job_of(instance: str) -> str:
    """`coaching-60000_rebonds` is an instance of the coaching service: job `relais-coaching`."""
    return "relais-" + instance.split("-", 1)[0]


def scrape_configs(targets: Mapping[str, str]) -> list[dict[str, Any]]:
    """`targets`: instance name -> host:port of its /metrics."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for instance, address in targets.items():
        jobs.setdefault(job_of(instance), []).append({"targets": [address], "labels": {"service": instance}})
    return [{"job_name": job, "metrics_path": "/metrics", "static_configs": static} for job, static in jobs.items()]


def prometheus_config(
    targets: Mapping[str, str],
    *,
    alertmanager: str | None,
    scrape_interval_s: float = 15,
    rules_dir: Path | str = PROMETHEUS_DIR,
) -> dict[str, Any]:
    interval = _duration(scrape_interval_s)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [f"{rules_dir}/{name}" for name in RULE_FILES],
        "scrape_configs": scrape_configs(targets),
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def alertmanager_config(
    smtp: str, *, to: str = "exploitation@relais.invalid", sender: str = "alertmanager@relais.invalid"
) -> dict[str, Any]:
    """Every alert by email to the local mail sink (`ops/mailsink.py`), grouped per alert and service."""
    return {
        "route": {
            "receiver": "mail",
            "group_by": ["alertname", "job"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": "mail",
                "email_configs": [
                    {"to": to, "from": sender, "smarthost": smtp, "require_tls": False, "send_resolved": True}
                ],
            }
        ],
    }


def write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds < 1 or seconds != int(seconds) else f"{int(seconds)}s"
