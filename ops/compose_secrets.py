"""The secrets docker-compose.yml reads, made once on the host by `relais compose-secrets`.

Into `.local/compose/secrets/` (never committed; the folder is private to its owner): one Kafka password per
principal, a private CA and the brokers' TLS certificate (for `kafka`, `kafka-2`, `kafka-3` and `localhost`),
the broker's `server.properties` (the same `kafka_properties` as `make run`, with a SASL_SSL listener), one per
broker of the `cluster` profile (`kafka-<n>-server.properties`), the admin's client properties for the
broker's health check, and notifications' signing key. Compose mounts each file into the containers that
need it under /run/secrets/; the files are world-readable inside that private folder because the containers run as
other users than the host's. Existing files are kept, so running it again changes nothing (but a certificate
made before the cluster's host names existed, which is made again).
"""

from __future__ import annotations

from pathlib import Path
from secrets import token_urlsafe

from ops.devstack import LOCAL, kafka_properties
from ops.kafka_security import BrokerTls, Secrets, make_tls
from shared.broker import SASL_MECHANISM
from shared.topology import ADMIN, PRINCIPALS

FOLDER = LOCAL / "compose" / "secrets"
IN_CONTAINER = Path("/run/secrets")
# The brokers of the compose file's `cluster` profile (ops/compose/cluster.env): `kafka` is the first.
CLUSTER = ("kafka", "kafka-2", "kafka-3")
CLUSTER_MIN_INSYNC = 2


# Notifications' signing key (unsubscribe links, the feed's opaque ids): refused if left to its default.
NOTIFICATIONS_KEY = "notifications-secret-key"


def write(folder: Path = FOLDER) -> list[Path]:
    secrets = Secrets(folder, file_mode=0o644)
    passwords = secrets.ensure([ADMIN, *PRINCIPALS])
    key = folder / NOTIFICATIONS_KEY
    if not key.exists():
        key.write_text(token_urlsafe(32) + "\n")
        key.chmod(0o644)
    tls = make_tls(folder, hostnames=(*CLUSTER, "localhost"), file_mode=0o644)
    inside = BrokerTls(IN_CONTAINER / tls.keystore.name, tls.keystore_password, IN_CONTAINER / tls.ca_pem.name)
    files = {
        "kafka-server.properties": kafka_properties(
            client_listener="CLIENT://:9092",
            advertised_listener="CLIENT://kafka:9092",
            controller_listener="CONTROLLER://:9093",
            controller_bootstrap="kafka:9093",
            log_dirs="/var/lib/kafka/data",
            admin_password=passwords[ADMIN],
            tls=inside,
        ),
        **{
            f"kafka-{node_id}-server.properties": kafka_properties(
                client_listener="CLIENT://:9092",
                advertised_listener=f"CLIENT://{host}:9092",
                controller_listener="CONTROLLER://:9093",
                controller_bootstrap=",".join(f"{h}:9093" for h in CLUSTER),
                log_dirs="/var/lib/kafka/data",
                admin_password=passwords[ADMIN],
                tls=inside,
                node_id=node_id,
                replication=len(CLUSTER),
                min_insync=CLUSTER_MIN_INSYNC,
            )
            for node_id, host in enumerate(CLUSTER, start=1)
        },
        "kafka-admin-client.properties": "\n".join(
            [
                "security.protocol=SASL_SSL",
                f"sasl.mechanism={SASL_MECHANISM}",
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN}" password="{passwords[ADMIN]}";',
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={inside.ca_pem}",
                "",
            ]
        ),
    }
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o644)
    return sorted(folder.iterdir())
