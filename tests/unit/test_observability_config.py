"""Prometheus and Alertmanager configurations (`make run` and docker-compose.yml), checked with the tools
of Debian's packages: promtool and amtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import observability
from ops.stack import DEFAULT_PORTS, SERVICES
from tests.observability import ROOT, promtool

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    assert binary, "amtool is missing: `make provision` installs Debian's prometheus-alertmanager package"
    return subprocess.run([binary, *args], check=False, capture_output=True, text=True, timeout=60)


def make_run_config() -> dict:
    targets = {name: f"127.0.0.1:{DEFAULT_PORTS[name]}" for name in SERVICES}
    return observability.prometheus_config(targets, alertmanager="127.0.0.1:9094")


def test_make_run_scrapes_every_instance_with_one_job_per_service(tmp_path: Path) -> None:
    config = make_run_config()
    scraped = {
        (job["job_name"], static["labels"]["service"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert scraped == {
        ("relais-intake", "intake", "127.0.0.1:8001"),
        ("relais-routing", "routing", "127.0.0.1:8002"),
        ("relais-coaching", "coaching-second_souffle", "127.0.0.1:8003"),
        ("relais-coaching", "coaching-60000_rebonds", "127.0.0.1:8005"),
        ("relais-notifications", "notifications", "127.0.0.1:8004"),
    }
    path = observability.write(tmp_path / "prometheus.yml", config)
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_run_alertmanager_mails_the_local_sink_and_is_valid(tmp_path: Path) -> None:
    config = observability.alertmanager_config("127.0.0.1:1025")
    assert config["receivers"][0]["email_configs"][0]["smarthost"] == "127.0.0.1:1025"
    result = amtool("check-config", str(observability.write(tmp_path / "alertmanager.yml", config)))
    assert result.returncode == 0, result.stdout + result.stderr


def relais_containers() -> dict[str, str]:
    """Compose service -> host:port of its /metrics, for every container of the Relais image."""
    found = {}
    for name, service in COMPOSE.items():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"] and command[2].startswith("services."):
            port = next(v for k, v in service["environment"].items() if k.endswith("_HTTP_PORT"))
            found[name] = f"{name}:{port}"
    return found


def test_compose_prometheus_scrapes_every_relais_container_and_is_valid(tmp_path: Path) -> None:
    committed = yaml.safe_load((ROOT / "ops" / "compose" / "prometheus.yml").read_text())
    assert len(relais_containers()) == 5
    assert committed == observability.prometheus_config(
        relais_containers(), alertmanager="alertmanager:9093", rules_dir="/etc/prometheus/rules"
    ), "ops/compose/prometheus.yml is not what ops/observability.py writes for docker-compose.yml's containers"
    # promtool resolves the rule files: point them at the repository's copies.
    committed["rule_files"] = [str(observability.PROMETHEUS_DIR / Path(f).name) for f in committed["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(committed))
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_alertmanager_mails_mailpit_and_is_valid() -> None:
    path = ROOT / "ops" / "compose" / "alertmanager.yml"
    assert yaml.safe_load(path.read_text()) == observability.alertmanager_config("mailpit:1025")
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "service,mounts",
    [
        (
            "prometheus",
            {
                "./ops/compose/prometheus.yml": "/etc/prometheus/prometheus.yml",
                "./ops/prometheus": "/etc/prometheus/rules",
            },
        ),
        ("alertmanager", {"./ops/compose/alertmanager.yml": "/etc/alertmanager/alertmanager.yml"}),
        (
            "grafana",
            {
                "./ops/grafana/provisioning": "/etc/grafana/provisioning",
                "./ops/grafana/dashboards": "/etc/grafana/dashboards",
            },
        ),
    ],
)
def test_compose_monitoring_mounts_the_repository_files(service: str, mounts: dict[str, str]) -> None:
    volumes = {}
    for entry in COMPOSE[service]["volumes"]:
        source, target = entry.split(":")[:2]
        volumes[source] = target
    for source, target in mounts.items():
        assert volumes.get(source) == target, f"{service}: {source} must be mounted at {target}"
        assert (ROOT / source).exists(), source


def test_grafana_provisioning_points_at_the_mounted_boards_and_the_compose_prometheus() -> None:
    provisioning = ROOT / "ops" / "grafana" / "provisioning"
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (datasource["uid"], datasource["url"]) == ("relais-prometheus", "http://prometheus:9090")
    [provider] = yaml.safe_load((provisioning / "dashboards" / "relais.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    assert "prometheus" in COMPOSE and "9090" in " ".join(COMPOSE["prometheus"]["ports"])
