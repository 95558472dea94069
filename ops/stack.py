"""The whole system on this machine: Kafka, FerretDB and the services as separate processes, plus
Prometheus and Alertmanager watching them.

`make run` uses it with the default ports and `.local/run`; the end-to-end tests use it with their own
ports and a temporary folder, so that they never touch a running `make run`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops import observability
from ops.devstack import (
    LOCAL,
    AlertmanagerNode,
    FerretNode,
    KafkaCluster,
    KafkaNode,
    MailSinkNode,
    Node,
    PrometheusNode,
    ServiceNode,
)
from ops.kafka_security import Secrets
from shared.auth import DEVELOPMENT_STAFF_TOKENS

# Coaching runs once per association, each instance with its own database and staff (docs/coaching.md).
COACHING = {"coaching-second_souffle": "second_souffle", "coaching-60000_rebonds": "60000_rebonds"}
SERVICES = ("intake", "routing", *COACHING, "notifications")
DEFAULT_PORTS = {
    "intake": 8001,
    "routing": 8002,
    "coaching-second_souffle": 8003,
    "notifications": 8004,
    "coaching-60000_rebonds": 8005,
}
# Services with pages (docs/pages.md).
PAGES = ("intake", "coaching")
# Development-only staff passwords of the pages (scrypt hashes; the passwords are in docs/pages.md).
DEV_STAFF_PASSWORDS = {
    "second_souffle": {"claire": "scrypt$16384$8$1$QS2OEvLnKiEXEuC6PanaKg$ZLdFbIT2Yd88rh4eDc13LMmxqrDDCDOms_1nn3f9MUk"},
    "60000_rebonds": {"karim": "scrypt$16384$8$1$1Vp2qApoRemYU2IqRPbuyw$R68BqhKyXjVlUH1CnGBwJvpIetvVsgeHD0v-JVc64_Y"},
}
# Development-only staff tokens of `make run`, as hashes (shared/auth.py); the tokens are in docs/coaching.md.
DEV_STAFF_TOKENS = {association.value: users for association, users in DEVELOPMENT_STAFF_TOKENS.items()}
# The plain development token of each association's staff member (hashed above): each coaching instance calls
# routing's antenna routes with its own association's.
DEV_ROUTING_TOKENS = {"second_souffle": "dev-second-souffle-claire", "60000_rebonds": "dev-60000-rebonds-karim"}


@dataclass
class StackConfig:
    data_dir: Path = LOCAL / "run"
    kafka_port: int = 9092
    controller_port: int = 9093
    mongo_port: int = 27017
    smtp_port: int = 1025
    # Prometheus and Alertmanager (127.0.0.1:9093 is Kafka's controller).
    prometheus_port: int = 9090
    alertmanager_port: int = 9094
    scrape_interval_s: float = 15
    service_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    extra_env: dict[str, str] = field(default_factory=dict)
    # Kafka passwords (admin and one per service), created on first start; default: data_dir / "secrets".
    secrets_dir: Path | None = None
    # A Kafka cluster instead of one broker: the (client, controller) ports of each of its brokers.
    kafka_cluster_ports: tuple[tuple[int, int], ...] = ()


def module_of(name: str) -> str:
    """`coaching-60000_rebonds` is an instance of the coaching service."""
    return name.split("-", 1)[0]


def service_env(
    name: str, port: int, kafka: str, mongo: str, extra: dict[str, str] | None = None, *, secrets: Secrets
) -> dict[str, str]:
    """A service process's settings; its Kafka principal is the stack's name for it (shared/topology.py).

    Development mode: the public development secrets are accepted, and the API docs are served."""
    prefix = f"RELAIS_{module_of(name).upper()}_"
    env = {
        f"{prefix}KAFKA_BOOTSTRAP": kafka,
        f"{prefix}MONGO_URL": mongo,
        f"{prefix}HTTP_PORT": str(port),
        f"{prefix}DEVELOPMENT": "true",
        f"{prefix}EXPOSE_DOCS": "true",
        **secrets.env(prefix, name),
    }
    if name in COACHING:
        # Each instance knows only its own association's staff (the other's tokens are unknown there).
        env[f"{prefix}ASSOCIATION"] = COACHING[name]
        env[f"{prefix}STAFF_TOKENS"] = json.dumps(DEV_STAFF_TOKENS[COACHING[name]])
        env[f"{prefix}STAFF_PASSWORDS"] = json.dumps(DEV_STAFF_PASSWORDS[COACHING[name]])
    elif module_of(name) in ("routing", "notifications"):
        env[f"{prefix}STAFF_TOKENS"] = json.dumps(DEV_STAFF_TOKENS)
    if module_of(name) in PAGES:
        env[f"{prefix}COOKIE_SECURE"] = "false"  # the pages are served over plain http locally
    env.update(extra or {})
    return env


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = cfg = config or StackConfig()
        secrets_dir = cfg.secrets_dir or cfg.data_dir / "secrets"
        self.kafka: KafkaNode | KafkaCluster = (
            KafkaCluster("kafka", cfg.data_dir / "kafka", ports=cfg.kafka_cluster_ports, secrets_dir=secrets_dir)
            if cfg.kafka_cluster_ports
            else KafkaNode(
                "kafka",
                cfg.data_dir / "kafka",
                port=cfg.kafka_port,
                controller_port=cfg.controller_port,
                secrets_dir=secrets_dir,
            )
        )
        self.ferretdb = FerretNode("ferretdb", cfg.data_dir / "ferretdb", port=cfg.mongo_port)
        self.mailsink = MailSinkNode(
            "mailsink", cfg.data_dir / "mailsink", port=cfg.smtp_port, mail_dir=cfg.data_dir / "mail"
        )
        self.prometheus = PrometheusNode(
            "prometheus",
            cfg.data_dir / "prometheus",
            port=cfg.prometheus_port,
            config=cfg.data_dir / "prometheus" / "prometheus.yml",
        )
        self.alertmanager = AlertmanagerNode(
            "alertmanager",
            cfg.data_dir / "alertmanager",
            port=cfg.alertmanager_port,
            config=cfg.data_dir / "alertmanager" / "alertmanager.yml",
        )
        self.services = {
            name: ServiceNode(
                name,
                cfg.data_dir / "services",
                module=f"services.{module_of(name)}",
                port=cfg.service_ports[name],
                env=service_env(
                    name,
                    cfg.service_ports[name],
                    self.kafka.bootstrap,
                    self.ferretdb.url,
                    {**self._own_env(name), **self._replication_env(name), **cfg.extra_env},
                    secrets=self.kafka.secrets,
                ),
            )
            for name in SERVICES
        }

    def _own_env(self, name: str) -> dict[str, str]:
        """Settings one service needs beyond Kafka and the store: notifications sends to the mail sink, intake
        links to each association's volunteer form, each coaching instance edits its antennas on this stack's
        routing with its association's development token."""
        if name in COACHING:
            return {
                "RELAIS_COACHING_ROUTING_URL": f"http://127.0.0.1:{self.config.service_ports['routing']}",
                "RELAIS_COACHING_ROUTING_TOKEN": DEV_ROUTING_TOKENS[COACHING[name]],
            }
        if name == "intake":
            pages = {a: f"http://127.0.0.1:{self.config.service_ports[n]}/benevolat" for n, a in COACHING.items()}
            return {"RELAIS_INTAKE_VOLUNTEER_PAGES": json.dumps(pages)}
        if name != "notifications":
            return {}
        port = self.config.service_ports[name]
        return {
            "RELAIS_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "RELAIS_NOTIFICATIONS_SMTP_PORT": str(self.config.smtp_port),
            "RELAIS_NOTIFICATIONS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }

    def _replication_env(self, name: str) -> dict[str, str]:
        """On a cluster, the dead-letter topics a service creates are replicated like the contract's."""
        if not isinstance(self.kafka, KafkaCluster):
            return {}
        return {f"RELAIS_{module_of(name).upper()}_TOPIC_REPLICATION": str(self.kafka.replication)}

    @property
    def pid_dir(self) -> Path:
        return self.config.data_dir / "pids"

    def start_infra(self) -> None:
        self.ferretdb.start()
        self._write_pid(self.ferretdb)
        self.kafka.start()
        for broker in self.kafka.brokers:
            self._write_pid(broker)
        self.kafka.provision()
        self.mailsink.start()
        self._write_pid(self.mailsink)

    def start_services(self, names: tuple[str, ...] = SERVICES) -> None:
        """Start the services together, then wait for each to be ready."""
        for name in names:
            self.services[name].spawn()
            self._write_pid(self.services[name])
        for name in names:
            self.services[name].wait_ready(deadline_s=60)

    def start(self) -> None:
        self.start_infra()
        self.start_services()

    def start_monitoring(self, alerting: bool = True) -> None:
        """Prometheus scraping every service instance with the alert rules (and Alertmanager mailing the mail
        sink): configurations written from the services' ports, then both started."""
        targets = {name: f"127.0.0.1:{node.port}" for name, node in self.services.items()}
        assert self.alertmanager.config is not None and self.prometheus.config is not None  # set in __init__
        if alerting:
            observability.write(
                self.alertmanager.config, observability.alertmanager_config(f"127.0.0.1:{self.config.smtp_port}")
            )
            self.alertmanager.start()
            self._write_pid(self.alertmanager)
        observability.write(
            self.prometheus.config,
            observability.prometheus_config(
                targets,
                alertmanager=self.alertmanager.address if alerting else None,
                scrape_interval_s=self.config.scrape_interval_s,
            ),
        )
        self.prometheus.start()
        self._write_pid(self.prometheus)

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()
        for node in self.services.values():
            node.stop()
        self.mailsink.stop()
        self.kafka.stop()
        self.ferretdb.stop()
        for pid_file in self.pid_dir.glob("*.pid"):
            pid_file.unlink(missing_ok=True)

    def _write_pid(self, node: Node) -> None:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        (self.pid_dir / f"{node.name}.pid").write_text(str(node.pid))


def stop_recorded(data_dir: Path = LOCAL / "run") -> list[str]:
    """Stop the processes a `make run` left behind (after a crash of the launcher itself)."""
    stopped = []
    for pid_file in sorted((data_dir / "pids").glob("*.pid")):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            stopped.append(pid_file.stem)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
        pid_file.unlink(missing_ok=True)
    return stopped


class LogFollower:
    """Prints the services' JSON log lines as readable, prefixed console lines."""

    def __init__(self, nodes: list[ServiceNode]) -> None:
        self.nodes = nodes
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        width = max(len(n.name) for n in self.nodes)
        for node in self.nodes:
            thread = threading.Thread(target=self._follow, args=(node, width), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _follow(self, node: ServiceNode, width: int) -> None:
        with open(node.log_path, errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            while not self._stop.is_set():
                line = fh.readline()
                if not line:
                    time.sleep(0.2)
                    continue
                print(f"{node.name:<{width}} | {readable(line.rstrip())}", flush=True)


def readable(line: str) -> str:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(entry, dict):
        return line
    ts = str(entry.pop("ts", ""))[11:23]
    level = entry.pop("level", "")
    msg = entry.pop("msg", "")
    for key in ("service", "logger"):
        entry.pop(key, None)
    extras = " ".join(f"{k}={v}" for k, v in entry.items())
    return f"{ts} {level:<7} {msg} {extras}".rstrip()
