"""Kafka's principals, their passwords, the broker's TLS material, and the provisioning that applies them.

`provision` runs as the `admin` super user, at every start (`make run`, the test fixtures, the compose file's
`kafka-provision` container), and is idempotent: it upserts each principal's SCRAM-SHA-512 credential,
creates the contract's topics, and makes each principal's ACLs exactly `shared.topology.acl_rules` (missing
ones created, stale ones deleted).

The admin client is kafka-python's, not Kafka's own `kafka-tools` jar (AclCommand, ConfigCommand): aiokafka
0.14 has no ACL or SCRAM calls, and kafka-python (pure Python, no native library) has both `create_acls` and
`alter_user_scram_credentials` (KIP-554). Provisioning then needs no JVM of its own, the same code runs
locally and in the compose file's Python image, and one more Maven download is avoided.

Secrets live in one flat folder, never committed: `.local/run/secrets/` for `make run`, a temporary folder
for the tests, `.local/compose/secrets/` for docker-compose.yml (files named as compose secrets).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.broker import SASL_MECHANISM, KafkaAccess
from shared.topology import (
    ADMIN,
    PRINCIPALS,
    RETIRED_PRINCIPALS,
    Operation,
    Pattern,
    Resource,
    Rule,
    acl_rules,
    provisioned_topics,
)

log = logging.getLogger("relais.kafka_security")
# kafka-python warns on every SASL_PLAINTEXT login ("credentials in the clear"), which SCRAM never sends.
logging.getLogger("kafka").setLevel(logging.ERROR)


class Secrets:
    """One password file per principal, created on first use with a random password (`kafka-<name>.password`)."""

    def __init__(self, folder: Path, file_mode: int = 0o600) -> None:
        # Compose bind-mounts each secret file into containers that run as other users: they need 0644 there,
        # inside a folder only its owner can enter.
        self.folder = folder
        self.file_mode = file_mode

    def password_file(self, principal: str) -> Path:
        return self.folder / f"kafka-{principal}.password"

    def password(self, principal: str) -> str:
        path = self.password_file(principal)
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.folder.chmod(0o700)
            # URL-safe characters only: the password also goes into JAAS lines and `--add-scram [..]`.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def ensure(self, principals: list[str] | None = None) -> dict[str, str]:
        return {name: self.password(name) for name in (principals or [ADMIN, *PRINCIPALS])}

    def access(
        self, principal: str, bootstrap: str, security_protocol: str = "SASL_PLAINTEXT", ssl_cafile: str = ""
    ) -> KafkaAccess:
        return KafkaAccess(bootstrap, principal, self.password(principal), security_protocol, ssl_cafile)

    def env(self, prefix: str, principal: str) -> dict[str, str]:
        """A service's settings for `principal`: its user name and the file that holds its password."""
        self.password(principal)
        return {
            f"{prefix}KAFKA_USERNAME": principal,
            f"{prefix}KAFKA_PASSWORD_FILE": str(self.password_file(principal)),
        }


@dataclass(frozen=True)
class BrokerTls:
    """The broker's key and certificate (PKCS12) and the CA that clients trust (PEM)."""

    keystore: Path
    keystore_password: str
    ca_pem: Path


def make_tls(
    folder: Path, hostnames: tuple[str, ...] = ("kafka", "localhost"), days: int = 825, file_mode: int = 0o600
) -> BrokerTls:
    """A private CA and a broker certificate signed by it (Java's keytool; Java is needed for Kafka anyway).

    Made once for a set of host names (`kafka-broker.hosts` records them: a certificate made before the
    cluster's brokers existed is made again with their names); the CA's own key stays in `ca.p12` beside
    them and is never handed to a container.
    """
    keystore, ca_pem, hosts = folder / "kafka-broker.p12", folder / "kafka-ca.pem", folder / "kafka-broker.hosts"
    store_password = Secrets(folder, file_mode).password("broker-keystore")
    names = "\n".join(hostnames) + "\n"
    if keystore.exists() and ca_pem.exists() and hosts.exists() and hosts.read_text() == names:
        return BrokerTls(keystore, store_password, ca_pem)
    keytool = shutil.which("keytool") or "keytool"
    ca_store, ca_password = folder / "ca.p12", secrets.token_urlsafe(24)
    for stale in (ca_store, keystore, ca_pem):
        stale.unlink(missing_ok=True)
    san = "SAN=" + ",".join([*(f"dns:{h}" for h in hostnames), "ip:127.0.0.1"])

    def run(*args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run([keytool, *args], input=stdin, capture_output=True, check=True).stdout

    run(
        "-genkeypair",
        "-alias",
        "ca",
        "-dname",
        "CN=Relais Kafka CA",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        str(days),
        "-ext",
        "bc:c",
        "-storetype",
        "PKCS12",
        "-keystore",
        str(ca_store),
        "-storepass",
        ca_password,
    )
    run(
        "-exportcert",
        "-rfc",
        "-alias",
        "ca",
        "-keystore",
        str(ca_store),
        "-storepass",
        ca_password,
        "-file",
        str(ca_pem),
    )
    run(
        "-genkeypair",
        "-alias",
        "kafka",
        "-dname",
        f"CN={hostnames[0]}",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        str(days),
        "-ext",
        san,
        "-storetype",
        "PKCS12",
        "-keystore",
        str(keystore),
        "-storepass",
        store_password,
    )
    request = run("-certreq", "-alias", "kafka", "-keystore", str(keystore), "-storepass", store_password)
    signed = run(
        "-gencert",
        "-alias",
        "ca",
        "-keystore",
        str(ca_store),
        "-storepass",
        ca_password,
        "-rfc",
        "-validity",
        str(days),
        "-ext",
        san,
        "-ext",
        "ku:c=digitalSignature,keyEncipherment",
        "-ext",
        "eku=serverAuth,clientAuth",
        stdin=request,
    )
    run(
        "-importcert",
        "-noprompt",
        "-alias",
        "ca",
        "-file",
        str(ca_pem),
        "-keystore",
        str(keystore),
        "-storepass",
        store_password,
    )
    run("-importcert", "-alias", "kafka", "-keystore", str(keystore), "-storepass", store_password, stdin=signed)
    for path in (keystore, ca_pem):
        path.chmod(file_mode)
    ca_store.chmod(0o600)
    hosts.write_text(names)
    return BrokerTls(keystore, store_password, ca_pem)


def _kafka_python_options(access: KafkaAccess) -> dict[str, Any]:
    options: dict[str, Any] = {"bootstrap_servers": access.bootstrap, "security_protocol": access.security_protocol}
    if access.security_protocol != "PLAINTEXT":
        options.update(
            sasl_mechanism=SASL_MECHANISM, sasl_plain_username=access.username, sasl_plain_password=access.password
        )
    if access.security_protocol == "SASL_SSL":
        options.update(ssl_cafile=access.ssl_cafile or None, ssl_check_hostname=True)
    return options


def admin_client(access: KafkaAccess, client_id: str = "relais-provision", timeout_s: float = 60):  # noqa: ANN201
    """A kafka-python admin client logged in as `access` (retried until the broker answers)."""
    from kafka.admin import KafkaAdminClient

    return _connect(
        lambda: KafkaAdminClient(**_kafka_python_options(access), client_id=client_id, request_timeout_ms=15000),
        timeout_s,
    )


def _acl(rule: Rule):  # noqa: ANN202 - a kafka-python ACL
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return ACL(
        f"User:{rule.principal}",
        "*",
        ACLOperation[rule.operation.name],
        ACLPermissionType.ALLOW,
        ResourcePattern(ResourceType[rule.resource.name], rule.name, ACLResourcePatternType[rule.pattern.name]),
    )


def _rule(acl) -> Rule | None:  # noqa: ANN001 - a kafka-python ACL; None for what topology never grants
    try:
        return Rule(
            acl.principal.removeprefix("User:"),
            Resource[acl.resource_pattern.resource_type.name],
            acl.resource_pattern.resource_name,
            Pattern[acl.resource_pattern.pattern_type.name],
            Operation[acl.operation.name],
        )
    except KeyError:
        return None


@dataclass
class Provisioned:
    users: list[str]
    topics_created: list[str]
    acls_created: int
    acls_deleted: int
    # Topics that existed with fewer replicas than asked: provisioning warns, it never reassigns.
    short_replicated: dict[str, int] = field(default_factory=dict)


def _wait_acls_visible(client: Any, rules: list[Rule], timeout_s: float) -> None:
    """Until the broker answers DescribeAcls with every rule (its authorizer then enforces them), or fail."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    deadline = time.monotonic() + timeout_s
    missing = set(rules)
    while True:
        for principal in sorted({rule.principal for rule in missing}):
            acls, _ = client.describe_acls(
                ACLFilter(
                    f"User:{principal}",
                    None,
                    ACLOperation.ANY,
                    ACLPermissionType.ANY,
                    ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
                )
            )
            missing -= {_rule(acl) for acl in acls}
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"ACLs not applied by the broker after {timeout_s:.0f} s: {sorted(missing)[:3]}")
        time.sleep(0.1)


def provision(
    admin: KafkaAccess,
    passwords: dict[str, str],
    *,
    partitions: int = 3,
    replication: int = 1,
    min_insync: int | None = None,
    rules: dict[str, list[Rule]] | None = None,
    timeout_s: float = 60,
) -> Provisioned:
    """Users, topics and ACLs as declared (idempotent); returns what changed.

    `passwords` maps each principal to provision to its password; `rules` (default: the topology's) maps
    each principal to the whole of what it may do: any other ACL of that principal is deleted. Topics are
    created with `replication` copies, which needs that many brokers (waited for); `min_insync`, when given,
    is set on every topic of the contract, new or not (else the broker's `min.insync.replicas` applies). With the
    topology's rules, the retired principals lose their credential and ACLs too.
    """
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    if min_insync is not None and not 1 <= min_insync <= replication:
        raise ValueError(f"min.insync.replicas {min_insync} must be between 1 and the replication, {replication}")
    if rules is None:
        rules = {name: acl_rules(name) for name in passwords if name in PRINCIPALS}
        for retired in RETIRED_PRINCIPALS:
            remove_user(admin, retired)
    client = admin_client(admin, timeout_s=timeout_s)
    try:
        users = sorted(name for name in passwords if name != ADMIN)
        if users:
            failed = {
                user: error
                for user, error in client.alter_user_scram_credentials(
                    [
                        UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, passwords[user])
                        for user in users
                    ]
                ).items()
                if error
            }
            if failed:
                raise RuntimeError(f"SCRAM credentials refused: {failed}")

        existing = set(client.list_topics())
        missing = [t for t in provisioned_topics() if t not in existing]
        if missing:
            _wait_brokers(client, replication, timeout_s)
            topic_configs = {} if min_insync is None else {"min.insync.replicas": str(min_insync)}
            _create_topics(client, missing, partitions, replication, topic_configs)
        present_topics = [t for t in provisioned_topics() if t in existing]
        short = _short_replicated(client, present_topics, replication)
        # Never more than a topic's copies: its every write would be refused (NOT_ENOUGH_REPLICAS).
        settable = [t for t in present_topics if short.get(t, replication) >= (min_insync or 0)]
        if min_insync is not None and settable:
            _set_min_insync(client, settable, min_insync)

        wanted = {rule for principal_rules in rules.values() for rule in principal_rules}
        present: set[Rule] = set()
        stale = []
        for principal in rules:
            acls, _ = client.describe_acls(
                ACLFilter(
                    f"User:{principal}",
                    None,
                    ACLOperation.ANY,
                    ACLPermissionType.ANY,
                    ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
                )
            )
            for acl in acls:
                rule = _rule(acl)
                if rule in wanted and acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*":
                    present.add(rule)
                else:
                    stale.append(acl)
        to_create = sorted(wanted - present)
        if to_create:
            result = client.create_acls([_acl(rule) for rule in to_create])
            if result["failed"]:
                raise RuntimeError(f"ACLs refused: {result['failed']}")
            # The broker's authorizer applies new ACLs from the metadata log a moment after they are committed:
            # a client right behind would be refused (e.g. ClusterAuthorizationFailed on InitProducerId).
            _wait_acls_visible(client, to_create, timeout_s)
        if stale:
            client.delete_acls(
                [ACLFilter(a.principal, a.host, a.operation, a.permission_type, a.resource_pattern) for a in stale]
            )
    finally:
        client.close()
    for user in users:  # a new credential reaches the broker through the metadata log: wait until it works
        wait_authenticated(
            KafkaAccess(admin.bootstrap, user, passwords[user], admin.security_protocol, admin.ssl_cafile), timeout_s
        )
    provisioned = Provisioned(users, missing, len(to_create), len(stale), short)
    log.info(
        "kafka provisioned",
        extra={
            "users": len(users),
            "topics_created": len(missing),
            "acls_created": len(to_create),
            "acls_deleted": len(stale),
        },
    )
    if short:  # provisioning never moves data: a reassignment is an operator's decision
        log.warning(
            "kafka topics with fewer replicas than asked",
            extra={"topics": sorted(short), "replication": replication},
        )
    return provisioned


def _wait_brokers(client: Any, replication: int, timeout_s: float) -> None:
    """Until the cluster lists `replication` live brokers: a topic cannot be created with more copies than that."""
    deadline = time.monotonic() + timeout_s
    while True:
        brokers = sum(not b.get("is_fenced") for b in client.describe_cluster()["brokers"])
        if brokers >= replication:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"replication {replication} needs {replication} brokers; the cluster lists {brokers}")
        time.sleep(0.5)


def _create_topics(client: Any, topics: list[str], partitions: int, replication: int, configs: dict[str, str]) -> None:
    from kafka.errors import TopicAlreadyExistsError

    result = client.create_topics(
        {t: {"num_partitions": partitions, "replication_factor": replication, "configs": configs} for t in topics},
        raise_errors=False,
    )
    refused = {
        t["name"]: t.get("error_message") or t["error_code"]
        for t in result["topics"]
        if t["error_code"] not in (0, TopicAlreadyExistsError.errno)
    }
    if refused:
        raise RuntimeError(f"topics refused: {refused}")


def _short_replicated(client: Any, topics: list[str], replication: int) -> dict[str, int]:
    """Existing topics with fewer copies than asked, and their count (creation alone decides it)."""
    if not topics:
        return {}
    return {
        t["name"]: min(len(p["replica_nodes"]) for p in t["partitions"])
        for t in client.describe_topics(topics)
        if t["partitions"] and min(len(p["replica_nodes"]) for p in t["partitions"]) < replication
    }


def _set_min_insync(client: Any, topics: list[str], min_insync: int) -> None:
    """An incremental change of this one setting: the topics' other settings stay as they are."""
    from kafka.admin import ConfigResource, ConfigResourceType

    client.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t, {"min.insync.replicas": str(min_insync)}) for t in topics],
        incremental=True,
    )


def _connect(make, timeout_s: float):  # noqa: ANN001, ANN202
    """Kafka-python clients fail at construction when the broker is not there yet: retry until the deadline."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return make()
        except (KafkaError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_authenticated(access: KafkaAccess, timeout_s: float = 30) -> None:
    """Until `access` can log in (a metadata request of its own)."""
    from kafka import KafkaConsumer

    consumer = _connect(lambda: KafkaConsumer(**_kafka_python_options(access), request_timeout_ms=5000), timeout_s)
    consumer.close()


def remove_user(admin: KafkaAccess, principal: str) -> None:
    """Delete a principal's SCRAM credential and every ACL of it (`relais partners revoke`)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
        ScramMechanism,
        UserScramCredentialDeletion,
    )

    client = admin_client(admin, timeout_s=30)
    try:
        client.alter_user_scram_credentials([UserScramCredentialDeletion(principal, ScramMechanism.SCRAM_SHA_512)])
        client.delete_acls(
            [
                ACLFilter(
                    f"User:{principal}",
                    None,
                    ACLOperation.ANY,
                    ACLPermissionType.ANY,
                    ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
                )
            ]
        )
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m ops.kafka_security provision|secrets ...` (the compose file's provisioning container)."""
    parser = argparse.ArgumentParser(prog="python -m ops.kafka_security")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("provision", help="users, topics and ACLs, as the admin principal")
    run.add_argument("--bootstrap", required=True)
    run.add_argument("--secrets", type=Path, required=True, help="folder of the kafka-<principal>.password files")
    run.add_argument("--security-protocol", default="SASL_PLAINTEXT", choices=("SASL_PLAINTEXT", "SASL_SSL"))
    run.add_argument("--ssl-cafile", default="")
    run.add_argument("--partitions", type=int, default=3)
    run.add_argument("--replication", type=int, default=1, help="copies of each topic (3 on a three-broker cluster)")
    run.add_argument(
        "--min-insync-replicas", type=int, help="copies a write needs (2 with replication 3); default: the broker's"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store = Secrets(args.secrets)
    missing = [name for name in (ADMIN, *PRINCIPALS) if not store.password_file(name).exists()]
    if missing:
        print(f"kafka provisioning: no password file for {missing} in {args.secrets}", file=sys.stderr)
        return 2
    done = provision(
        store.access(ADMIN, args.bootstrap, args.security_protocol, args.ssl_cafile),
        store.ensure(),
        partitions=args.partitions,
        replication=args.replication,
        min_insync=args.min_insync_replicas,
    )
    print(report(done, args.replication))
    return 0


def report(done: Provisioned, replication: int) -> str:
    """What provisioning changed, in one line, plus the topics it could not give the replication asked for."""
    line = (
        f"kafka provisioned: {len(done.users)} users, topics created {done.topics_created or 'none'}, "
        f"ACLs created {done.acls_created}, deleted {done.acls_deleted}"
    )
    if done.short_replicated:
        line += (
            f"\nwarning: these topics have fewer than {replication} replicas (provisioning never moves data; "
            f"reassign them with kafka-reassign-partitions): "
            + ", ".join(f"{t} ({n})" for t, n in sorted(done.short_replicated.items()))
        )
    return line


if __name__ == "__main__":
    sys.exit(main())
