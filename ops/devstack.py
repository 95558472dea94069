"""Local infrastructure for `make run` and the tests: real Kafka (KRaft) and FerretDB processes.

The binaries are provisioned by the Makefile (`make provision`) under `.local/`; this module only
writes their configuration, starts them, waits until they answer, and stops them. Every node takes its
ports and data folder as parameters so that the tests run their own instances beside a `make run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ops.kafka_security import BrokerTls, Secrets, admin_client, provision
from shared.broker import SASL_MECHANISM, KafkaAccess
from shared.topology import ADMIN

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
KAFKA_LIB = LOCAL / "kafka" / "lib"
FERRETDB_BIN = LOCAL / "bin" / "ferretdb"
KAFKA_LOG4J = ROOT / "infra" / "kafka" / "log4j2.properties"
T = TypeVar("T")


class StartupError(RuntimeError):
    """A process exited or did not become ready before its deadline."""


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    predicate: Callable[[], bool],
    deadline_s: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll `predicate` until it holds; fail early if `proc` dies, late if the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StartupError(f"{what} exited with code {proc.returncode}{_tail(log)}")
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not ready yet is any failure
            pass
        time.sleep(0.1)
    raise StartupError(f"{what} not ready after {deadline_s:.0f}s{_tail(log)}")


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(text)


@dataclass
class Node:
    """A child process with a log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise StartupError(f"{self.name} was not started")
        return self.proc.pid

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None, user: str | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir,
            start_new_session=True,
            **_as_user(user),
        )
        log.close()

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by the fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def kafka_properties(
    *,
    client_listener: str,
    advertised_listener: str,
    controller_listener: str,
    controller_bootstrap: str,
    log_dirs: str,
    admin_password: str,
    tls: BrokerTls | None = None,
    node_id: int = 1,
    replication: int = 1,
    min_insync: int = 1,
) -> str:
    """A KRaft node (broker and controller in one process) that authenticates and authorises every client (the
    same under `make run`, in the tests, and in docker-compose.yml, which writes its file with this function too).

    Alone by default; a member of a cluster when `controller_bootstrap` lists every controller, with
    `replication` copies of the internal topics (and the default for new topics) of which `min_insync` must
    acknowledge a write (`acks=all`), so that one broker may be lost or restarted without losing a write.

    - Clients: SCRAM-SHA-512 on the CLIENT listener, over TLS when `tls` is given (SASL_SSL), else
      SASL_PLAINTEXT. SCRAM credentials live in the metadata log; the admin's is added at format time.
    - The controller listener uses SASL/PLAIN with the admin's password from this file: SCRAM is not
      possible there, as the controllers must authenticate before the metadata log (and its credentials)
      can be read. The broker talks to the controller, and to itself as a broker, as the admin.
    - StandardAuthorizer with no access without an ACL; the admin is the only super user.
    """
    protocol = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    scram = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{admin_password}";'
    )
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="admin" password="{admin_password}" user_admin="{admin_password}";'
    )
    lines = [
        "process.roles=broker,controller",
        f"node.id={node_id}",
        f"controller.quorum.bootstrap.servers={controller_bootstrap}",
        f"listeners={client_listener},{controller_listener}",
        f"advertised.listeners={advertised_listener}",
        "controller.listener.names=CONTROLLER",
        f"listener.security.protocol.map=CONTROLLER:{protocol},CLIENT:{protocol}",
        "inter.broker.listener.name=CLIENT",
        f"sasl.enabled.mechanisms={SASL_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SASL_MECHANISM}",
        f"listener.name.client.{SASL_MECHANISM.lower()}.sasl.jaas.config={scram}",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={plain}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{ADMIN}",
        "allow.everyone.if.no.acl.found=false",
    ]
    if tls:
        lines += [
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={tls.keystore}",
            f"ssl.keystore.password={tls.keystore_password}",
            f"ssl.key.password={tls.keystore_password}",
            # The broker is also a client of itself (inter-broker, controller): it trusts the same CA.
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_pem}",
        ]
    lines += [
        f"log.dirs={log_dirs}",
        "num.partitions=3",
        "auto.create.topics.enable=false",
        f"default.replication.factor={replication}",
        f"min.insync.replicas={min_insync}",
        f"offsets.topic.replication.factor={replication}",
        "offsets.topic.num.partitions=10",
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min_insync}",
        f"share.coordinator.state.topic.replication.factor={replication}",
        f"share.coordinator.state.topic.min.isr={min_insync}",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
        "",
    ]
    return "\n".join(lines)


@dataclass
class KafkaNode(Node):
    """Apache Kafka in KRaft mode (broker and controller in one JVM), with SCRAM and ACLs: alone by default, or
    one member of a `KafkaCluster`.

    Its admin password is read from (or created in) `secrets_dir`; `tls` turns the client listener into
    SASL_SSL as in docker-compose.yml.
    """

    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    secrets_dir: Path | None = None
    tls: BrokerTls | None = None
    # A cluster member: its id, every controller (host:port), the initial voters (`id@host:port:directory-id`,
    # the same on every member), the cluster's id, and the replication of the internal topics.
    node_id: int = 1
    controller_bootstrap: str = ""
    initial_controllers: str = ""
    cluster_id: str = ""
    replication: int = 1
    min_insync: int = 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def brokers(self) -> list[KafkaNode]:
        return [self]

    @property
    def secrets(self) -> Secrets:
        return Secrets(self.secrets_dir or self.data_dir.parent / "secrets")

    @property
    def security_protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    def access(self, principal: str = ADMIN) -> KafkaAccess:
        """A client of this broker as `principal` (the admin by default)."""
        return self.secrets.access(
            principal, self.bootstrap, self.security_protocol, str(self.tls.ca_pem) if self.tls else ""
        )

    def server_properties(self) -> str:
        """The `server.properties` this node starts with."""
        return kafka_properties(
            client_listener=f"CLIENT://127.0.0.1:{self.port}",
            advertised_listener=f"CLIENT://127.0.0.1:{self.port}",
            controller_listener=f"CONTROLLER://127.0.0.1:{self.controller_port}",
            controller_bootstrap=self.controller_bootstrap or f"127.0.0.1:{self.controller_port}",
            log_dirs=str(self.data_dir / "kraft-logs"),
            admin_password=self.secrets.password(ADMIN),
            tls=self.tls,
            node_id=self.node_id,
            replication=self.replication,
            min_insync=self.min_insync,
        )

    def _java(self, *args: str, heap: str | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        argv = [java]
        if heap:
            argv += [f"-Xmx{heap}", f"-Xms{heap}"]
        argv += [
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp",
            f"{KAFKA_LIB}/*",
            *args,
        ]
        return argv

    def start(self, deadline_s: float = 90) -> None:
        self.spawn()
        self.wait_ready(deadline_s)

    def spawn(self) -> None:
        """Format the storage on first use, then start the JVM without waiting for it (a cluster's members
        must all be starting before any can elect a controller)."""
        if not KAFKA_LIB.is_dir():
            raise StartupError(f"Kafka is not provisioned ({KAFKA_LIB} missing): run `make provision`")
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another Kafka running?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        formatted = (self.data_dir / "kraft-logs" / "meta.properties").exists()
        with_admin = self.data_dir / "admin-scram.added"
        if formatted and not with_admin.exists():
            raise StartupError(
                f"the Kafka data in {self.data_dir} predates authentication (no admin credential in it): "
                f"remove that folder (its events are lost) and start again"
            )
        props = self.data_dir / "server.properties"
        props.touch(mode=0o600)
        props.chmod(0o600)  # holds the admin password
        props.write_text(self.server_properties())
        cluster_id_file = self.data_dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(self.cluster_id or kafka_uuid())
        if not formatted:  # a JVM less at every restart
            self._format(props, cluster_id_file.read_text().strip())
            with_admin.touch()
        self._spawn(self._java("kafka.Kafka", str(props), heap=self.heap))

    def _format(self, props: Path, cluster_id: str) -> None:
        # A lone node is a quorum of one; a cluster member starts with the same initial voters as the others.
        quorum = ["--initial-controllers", self.initial_controllers] if self.initial_controllers else ["--standalone"]
        # The admin's SCRAM credential goes into the metadata log when it is created.
        admin = f"{SASL_MECHANISM}=[name={ADMIN},password={self.secrets.password(ADMIN)}]"
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                *quorum,
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--add-scram",
                admin,
                "--ignore-formatted",
                heap="256m",
            ),
            check=True,
            capture_output=True,
        )

    def wait_ready(self, deadline_s: float = 90) -> None:
        wait_until(self.ready, deadline_s, self.name, self.proc, self.log_path)

    def ready(self) -> bool:
        return port_open("127.0.0.1", self.port) and _kafka_answers(self.access())

    def provision(self, partitions: int = 3) -> None:
        """The services' users, the contract's topics and the ACLs (idempotent; see ops/kafka_security.py)."""
        provision(self.access(), self.secrets.ensure(), partitions=partitions)


@dataclass
class KafkaCluster:
    """Kafka brokers on this machine, each also a controller of a quorum of them all (KRaft, dynamic quorum).

    Every topic of the contract has `replication` copies and a write needs `min_insync` of them (the services'
    producers use `acks=all`), so that one broker can die at any moment without losing an acknowledged write;
    the internal topics (consumer offsets, transactions) are replicated the same way. SCRAM and ACLs are those of
    a single node: one admin password, one provisioning for the whole cluster.
    """

    name: str
    data_dir: Path
    # (client, controller) port of each broker.
    ports: tuple[tuple[int, int], ...] = ((9092, 9093), (9095, 9096), (9097, 9098))
    heap: str = "384m"
    secrets_dir: Path | None = None
    min_insync: int = 2
    nodes: list[KafkaNode] = field(init=False)

    def __post_init__(self) -> None:
        quorum = self._quorum()
        voters = ",".join(
            f"{node_id}@127.0.0.1:{controller}:{quorum['directories'][str(node_id)]}"
            for node_id, (_, controller) in enumerate(self.ports, start=1)
        )
        self.nodes = [
            KafkaNode(
                f"{self.name}-{node_id}",
                self.data_dir / f"{self.name}-{node_id}",
                port=port,
                controller_port=controller,
                heap=self.heap,
                secrets_dir=self.secrets_dir or self.data_dir / "secrets",
                node_id=node_id,
                controller_bootstrap=",".join(f"127.0.0.1:{c}" for _, c in self.ports),
                initial_controllers=voters,
                cluster_id=quorum["cluster_id"],
                replication=self.replication,
                min_insync=self.min_insync,
            )
            for node_id, (port, controller) in enumerate(self.ports, start=1)
        ]

    def _quorum(self) -> dict[str, Any]:
        """The cluster id and each controller's directory id, made once and kept: a member formatted again
        must join the same quorum under the same identity."""
        path = self.data_dir / "quorum.json"
        if path.exists():
            kept: dict[str, Any] = json.loads(path.read_text())
            if len(kept["directories"]) == len(self.ports):
                return kept
        made = {
            "cluster_id": kafka_uuid(),
            "directories": {str(node_id): kafka_uuid() for node_id in range(1, len(self.ports) + 1)},
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made, indent=2) + "\n")
        return made

    @property
    def replication(self) -> int:
        return len(self.ports)

    @property
    def brokers(self) -> list[KafkaNode]:
        return self.nodes

    @property
    def bootstrap(self) -> str:
        """Every broker: a client reaches the cluster while any one of them answers."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def secrets(self) -> Secrets:
        return self.nodes[0].secrets

    @property
    def security_protocol(self) -> str:
        return self.nodes[0].security_protocol

    def access(self, principal: str = ADMIN) -> KafkaAccess:
        return self.secrets.access(principal, self.bootstrap, self.security_protocol)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def start(self, deadline_s: float = 180) -> None:
        """All members at once (a controller is elected once a majority runs), then until every broker has
        registered with it."""
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready(deadline_s)
        self.wait_brokers(deadline_s)

    def restart(self, node_id: int, deadline_s: float = 180) -> None:
        """Start one member again (after `kill` or `stop`) and wait until it is a broker of the cluster again."""
        node = self.node(node_id)
        node.start(deadline_s)
        self.wait_brokers(deadline_s)

    def stop(self) -> None:
        """All at once: stopped one by one, the last broker would wait for a quorum that has already left."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def provision(self, partitions: int = 3) -> None:
        """Users, topics (replicated on every broker, `min_insync` copies per write) and ACLs, once for all."""
        provision(
            self.access(),
            self.secrets.ensure(),
            partitions=partitions,
            replication=self.replication,
            min_insync=self.min_insync,
        )

    def wait_brokers(self, deadline_s: float = 60) -> None:
        wait_until(
            lambda: self.live_brokers() == {node.node_id for node in self.nodes},
            deadline_s,
            f"{len(self.nodes)} brokers in the cluster",
        )

    def live_brokers(self) -> set[int]:
        """The brokers the cluster's metadata lists: registered and not fenced."""
        return self._ask(
            lambda admin: {b["broker_id"] for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")}
        )

    def metadata_leader(self) -> int:
        """The active controller: the leader of the metadata quorum."""
        return self._ask(lambda admin: int(admin.describe_metadata_quorum()["topics"][0]["partitions"][0]["leader_id"]))

    def replicas(self) -> dict[str, tuple[int, int, int]]:
        """Each partition (`topic/index`, internal topics included) as (leader, replicas, in-sync replicas)."""
        return self._ask(
            lambda admin: {
                f"{topic['name']}/{p['partition_index']}": (
                    p["leader_id"],
                    len(p["replica_nodes"]),
                    len(p["isr_nodes"]),
                )
                for topic in admin.describe_topics()
                for p in topic["partitions"]
            }
        )

    def _ask(self, question: Callable[[Any], T], deadline_s: float = 30) -> T:
        """An admin request, asked again of a new client when it went to a broker that has just died."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + deadline_s
        while True:
            try:
                with _admin(self.access()) as admin:
                    return question(admin)
            except (KafkaError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def fully_replicated(self) -> bool:
        """Every partition has every replica in sync (what a rolling restart waits for between two brokers)."""
        partitions = self.replicas()
        return bool(partitions) and all(isr == replicas for _, replicas, isr in partitions.values())


@contextmanager
def _admin(access: KafkaAccess) -> Iterator[Any]:
    client = admin_client(access, client_id="relais-devstack", timeout_s=10)
    try:
        yield client
    finally:
        client.close()


def kafka_uuid() -> str:
    """A Kafka Uuid (a cluster or directory id): 16 random bytes in URL-safe base64 without padding."""
    import base64

    while True:  # like Kafka's own Uuid: never start with "-", which the CLI would read as an option
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _kafka_answers(access: KafkaAccess) -> bool:
    """True when the broker serves metadata to the admin (the port alone opens before the broker is ready)."""

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**access.client(), request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        finally:
            await admin.close()

    return asyncio.run(probe())


@dataclass
class FerretNode(Node):
    """FerretDB 1.24 speaking the MongoDB wire protocol on an SQLite directory."""

    port: int = 27017
    binary: Path = FERRETDB_BIN

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, deadline_s: float = 30) -> None:
        if not self.binary.exists():
            raise StartupError(f"FerretDB is not provisioned ({self.binary} missing): run `make provision`")
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another FerretDB running?")
        self._spawn([str(self.binary), f"--listen-addr=127.0.0.1:{self.port}", *self.backend_args()])
        wait_until(self.ready, deadline_s, "FerretDB", self.proc, self.log_path)

    def backend_args(self) -> list[str]:
        sqlite_dir = self.data_dir / "sqlite"
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        # WAL (FerretDB's default) with synchronous=NORMAL: a commit no longer waits for an fsync, which
        # tripled the writes per second (bench). A killed FerretDB loses nothing; only an OS crash or power
        # loss may drop the last commits, acceptable for this local store (production runs MongoDB).
        return [f"--sqlite-url=file:{sqlite_dir}/?_pragma=synchronous(normal)"]

    def ready(self) -> bool:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(self.url, serverSelectionTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()


@dataclass
class MailSinkNode(Node):
    """The local SMTP sink (`ops.mailsink`) that receives the notifications' emails as .eml files."""

    port: int = 1025
    mail_dir: Path | None = None

    def start(self, deadline_s: float = 15) -> None:
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another mail sink running?")
        mail_dir = self.mail_dir or self.data_dir / "mail"
        self._spawn([_python(), "-m", "ops.mailsink", "--port", str(self.port), "--dir", str(mail_dir)])
        wait_until(lambda: port_open("127.0.0.1", self.port), deadline_s, "mail sink", self.proc, self.log_path)


@dataclass
class PrometheusNode(Node):
    """Prometheus from Debian's package (`make provision` installs it), on a configuration we write."""

    port: int = 9090
    config: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None

    def start(self, deadline_s: float = 30) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise StartupError("Prometheus is not installed: run `make provision` (Debian's prometheus package)")
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another Prometheus running?")
        self._spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--storage.tsdb.retention.time=7d",
            ]
        )
        wait_until(self.ready, deadline_s, "Prometheus", self.proc, self.log_path)

    def ready(self) -> bool:
        import httpx

        return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200


@dataclass
class AlertmanagerNode(Node):
    """Alertmanager from Debian's package, without its cluster listener (a single local instance)."""

    port: int = 9094
    config: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus-alertmanager") is not None

    def start(self, deadline_s: float = 30) -> None:
        binary = shutil.which("prometheus-alertmanager")
        if binary is None:
            raise StartupError(
                "Alertmanager is not installed: run `make provision` (Debian's prometheus-alertmanager package)"
            )
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another Alertmanager running?")
        # An empty cluster address turns gossip off; it would otherwise listen on 0.0.0.0:9094.
        self._spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.data_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",
            ]
        )
        wait_until(self.ready, deadline_s, "Alertmanager", self.proc, self.log_path)

    def ready(self) -> bool:
        import httpx

        return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200


@dataclass
class ServiceNode(Node):
    """One Relais service as its own Python process (`python -m services.<name>`)."""

    module: str = ""
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, deadline_s: float = 30) -> None:
        self.spawn()
        self.wait_ready(deadline_s)

    def spawn(self) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._spawn([_python(), "-m", self.module], env=env)

    def wait_ready(self, deadline_s: float = 30) -> None:
        wait_until(self.ready, deadline_s, self.name, self.proc, self.log_path)

    def ready(self) -> bool:
        import httpx

        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200


def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else shutil.which("python3") or "python3"


@dataclass
class FerretPostgresNode(FerretNode):
    """FerretDB 1.24 on its PostgreSQL backend (the store comparison of `bench.store_probe`)."""

    postgresql_url: str = ""

    def backend_args(self) -> list[str]:
        return ["--handler=postgresql", f"--postgresql-url={self.postgresql_url}"]


@dataclass
class PostgresNode(Node):
    """A private PostgreSQL cluster from Debian's packages (`scripts/ensure-postgres.sh`), in a folder of its
    own, on 127.0.0.1 only, without a Unix socket; a random password for its one role.

    PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user the Debian
    package creates, and the data folder's parents must let that user through.
    """

    port: int = 5432
    synchronous_commit: bool = False
    role: str = "relais"
    password: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def url(self) -> str:
        return f"postgres://{self.role}:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self, deadline_s: float = 60) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise StartupError(
                "PostgreSQL is not installed: `make bench-stores` installs it from Debian's "
                "packages (scripts/ensure-postgres.sh)"
            )
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use")
        owner = "postgres" if os.geteuid() == 0 else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster, password_file = self.data_dir / "cluster", self.data_dir / "password"
        password_file.write_text(self.password + "\n")
        if owner is not None:
            shutil.chown(self.data_dir, owner, owner)
            shutil.chown(password_file, owner, owner)
        password_file.chmod(0o600)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster),
                "-U",
                self.role,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=False,
            capture_output=True,
            text=True,
            cwd=self.data_dir,
            **_as_user(owner),
        )
        password_file.unlink()
        if initdb.returncode != 0:
            raise StartupError(f"initdb failed (exit {initdb.returncode}): {initdb.stderr.strip()[-2000:]}")
        # synchronous_commit=off: a commit does not wait for its WAL flush, like SQLite's synchronous=NORMAL
        # in FerretNode (an OS crash may drop the last commits, never corrupt the cluster).
        self._spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(cluster),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                f"synchronous_commit={'on' if self.synchronous_commit else 'off'}",
            ],
            user=owner,
        )
        wait_until(lambda: self.ready(bin_dir), deadline_s, "PostgreSQL", self.proc, self.log_path)

    def ready(self, bin_dir: Path) -> bool:
        """Accepting connections (the port opens earlier, while the cluster is still starting)."""
        answer = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
            capture_output=True,
            timeout=5,
        )
        return answer.returncode == 0


def postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL server of Debian's packages, else one on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_user(user: str | None) -> dict:
    """Popen arguments that run the child as `user` (with its own group only), or nothing."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
