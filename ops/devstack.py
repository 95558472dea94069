"""Local infrastructure for `make run` and the tests: real Kafka (KRaft) and FerretDB processes.

The binaries are provisioned by the Makefile (`make provision`) under `.local/`; this module only
writes their configuration, starts them, waits until they answer, and stops them. Every node takes its
ports and data folder as parameters so that the tests run their own instances beside a `make run`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ops.kafka_security import BrokerTls, Secrets, provision
from shared.broker import SASL_MECHANISM, KafkaAccess
from shared.topology import ADMIN

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
KAFKA_LIB = LOCAL / "kafka" / "lib"
FERRETDB_BIN = LOCAL / "bin" / "ferretdb"
KAFKA_LOG4J = ROOT / "infra" / "kafka" / "log4j2.properties"


class StartupError(RuntimeError):
    """A process exited or did not become ready before its deadline."""


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(predicate, deadline_s: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
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
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir,
            start_new_session=True,
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


def kafka_properties(*, client_listener: str, advertised_listener: str, controller_listener: str,
                     controller_bootstrap: str, log_dirs: str, admin_password: str,
                     tls: BrokerTls | None = None) -> str:
    """A single-node KRaft broker that authenticates and authorises every client (the same under `make run`,
    in the tests, and in docker-compose.yml, which writes its file with this function too).

    - Clients: SCRAM-SHA-512 on the CLIENT listener, over TLS when `tls` is given (SASL_SSL), else
      SASL_PLAINTEXT. SCRAM credentials live in the metadata log; the admin's is added at format time.
    - The controller listener uses SASL/PLAIN with the admin's password from this file: SCRAM is not
      possible there, as the controllers must authenticate before the metadata log (and its credentials)
      can be read. The broker talks to the controller, and to itself as a broker, as the admin.
    - StandardAuthorizer with no access without an ACL; the admin is the only super user.
    """
    protocol = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    scram = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
             f'username="admin" password="{admin_password}";')
    plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             f'username="admin" password="{admin_password}" user_admin="{admin_password}";')
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
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
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
        "",
    ]
    return "\n".join(lines)


@dataclass
class KafkaNode(Node):
    """Single-node Apache Kafka in KRaft mode (broker and controller in one JVM), with SCRAM and ACLs.

    Its admin password is read from (or created in) `secrets_dir`; `tls` turns the client listener into
    SASL_SSL as in docker-compose.yml.
    """

    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    secrets_dir: Path | None = None
    tls: BrokerTls | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secrets(self) -> Secrets:
        return Secrets(self.secrets_dir or self.data_dir.parent / "secrets")

    @property
    def security_protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    def access(self, principal: str = ADMIN) -> KafkaAccess:
        """A client of this broker as `principal` (the admin by default)."""
        return self.secrets.access(principal, self.bootstrap, self.security_protocol,
                                   str(self.tls.ca_pem) if self.tls else "")

    def _properties(self) -> str:
        return kafka_properties(
            client_listener=f"CLIENT://127.0.0.1:{self.port}",
            advertised_listener=f"CLIENT://127.0.0.1:{self.port}",
            controller_listener=f"CONTROLLER://127.0.0.1:{self.controller_port}",
            controller_bootstrap=f"127.0.0.1:{self.controller_port}",
            log_dirs=str(self.data_dir / "kraft-logs"),
            admin_password=self.secrets.password(ADMIN),
            tls=self.tls,
        )

    def _java(self, *args: str, heap: str | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        argv = [java]
        if heap:
            argv += [f"-Xmx{heap}", f"-Xms{heap}"]
        argv += [
            "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp", f"{KAFKA_LIB}/*", *args,
        ]
        return argv

    def start(self, deadline_s: float = 90) -> None:
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
                f"remove that folder (its events are lost) and start again")
        props = self.data_dir / "server.properties"
        props.touch(mode=0o600)
        props.chmod(0o600)  # holds the admin password
        props.write_text(self._properties())
        cluster_id_file = self.data_dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(_kafka_cluster_id())
        # The admin's SCRAM credential goes into the metadata log when it is created (ignored once formatted).
        admin = f"{SASL_MECHANISM}=[name={ADMIN},password={self.secrets.password(ADMIN)}]"
        subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--standalone",
                       "-t", cluster_id_file.read_text().strip(), "-c", str(props),
                       "--add-scram", admin, "--ignore-formatted", heap="256m"),
            check=True, capture_output=True,
        )
        with_admin.touch()
        self._spawn(self._java("kafka.Kafka", str(props), heap=self.heap))
        wait_until(self.ready, deadline_s, "Kafka", self.proc, self.log_path)

    def ready(self) -> bool:
        return port_open("127.0.0.1", self.port) and _kafka_answers(self.access())

    def provision(self, partitions: int = 3) -> None:
        """The services' users, the contract's topics and the ACLs (idempotent; see ops/kafka_security.py)."""
        provision(self.access(), self.secrets.ensure(), partitions=partitions)


def _kafka_cluster_id() -> str:
    """A KRaft cluster id is 16 random bytes in URL-safe base64 without padding."""
    import base64

    while True:  # like Kafka's own Uuid: never start with "-", which the CLI would read as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


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

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, deadline_s: float = 30) -> None:
        if not FERRETDB_BIN.exists():
            raise StartupError(f"FerretDB is not provisioned ({FERRETDB_BIN} missing): run `make provision`")
        if port_open("127.0.0.1", self.port):
            raise StartupError(f"port {self.port} is already in use: is another FerretDB running?")
        sqlite_dir = self.data_dir / "sqlite"
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        # WAL (FerretDB's default) with synchronous=NORMAL: a commit no longer waits for an fsync, which
        # tripled the writes per second (bench). A killed FerretDB loses nothing; only an OS crash or power
        # loss may drop the last commits, acceptable for this local store (production runs MongoDB).
        self._spawn([str(FERRETDB_BIN), f"--listen-addr=127.0.0.1:{self.port}",
                     f"--sqlite-url=file:{sqlite_dir}/?_pragma=synchronous(normal)"])
        wait_until(self.ready, deadline_s, "FerretDB", self.proc, self.log_path)

    def ready(self) -> bool:
        from pymongo import MongoClient

        client = MongoClient(self.url, serverSelectionTimeoutMS=500)
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
