"""The three-broker cluster's configuration, without starting it: one quorum, three copies, two in sync."""

from __future__ import annotations

from pathlib import Path

from ops.devstack import KafkaCluster, kafka_properties
from ops.stack import SERVICES, Stack, StackConfig, module_of
from shared.broker import KafkaAccess

PORTS = ((19092, 19093), (19095, 19096), (19097, 19098))


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_a_lone_broker_keeps_one_copy_of_everything() -> None:
    props = properties(
        kafka_properties(
            client_listener="CLIENT://127.0.0.1:9092",
            advertised_listener="CLIENT://127.0.0.1:9092",
            controller_listener="CONTROLLER://127.0.0.1:9093",
            controller_bootstrap="127.0.0.1:9093",
            log_dirs="/tmp/logs",
            admin_password="secret",
        )
    )
    assert props["node.id"] == "1"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor", "min.insync.replicas"):
        assert props[key] == "1", key


def test_every_member_is_a_voter_of_one_quorum_with_replicated_internal_topics(tmp_path: Path) -> None:
    cluster = KafkaCluster("kafka", tmp_path / "kafka", ports=PORTS)
    assert [node.node_id for node in cluster.nodes] == [1, 2, 3]
    assert len({node.cluster_id for node in cluster.nodes}) == 1
    assert len({node.initial_controllers for node in cluster.nodes}) == 1
    voters = cluster.nodes[0].initial_controllers.split(",")
    assert [v.split("@")[0] for v in voters] == ["1", "2", "3"]
    assert [int(v.split(":")[1]) for v in voters] == [controller for _, controller in PORTS]
    assert len({v.rsplit(":", 1)[1] for v in voters}) == 3, "each controller has its own directory id"
    for node in cluster.nodes:
        props = properties(node.server_properties())
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093,127.0.0.1:19096,127.0.0.1:19098"
        assert "controller.quorum.voters" not in props, "a dynamic quorum is bootstrapped, not listed"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["allow.everyone.if.no.acl.found"] == "false" and props["super.users"] == "User:admin"
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19095,127.0.0.1:19097"
    assert len({str(node.secrets.password_file("admin")) for node in cluster.nodes}) == 1, "one admin password"


def test_the_quorum_identity_is_kept_across_starts(tmp_path: Path) -> None:
    first = KafkaCluster("kafka", tmp_path / "kafka", ports=PORTS)
    again = KafkaCluster("kafka", tmp_path / "kafka", ports=PORTS)
    assert [n.initial_controllers for n in again.nodes] == [n.initial_controllers for n in first.nodes]
    assert again.nodes[0].cluster_id == first.nodes[0].cluster_id


def test_a_bootstrap_list_reaches_clients_as_one_server_each() -> None:
    access = KafkaAccess("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3")
    assert access.servers == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    assert access.client()["bootstrap_servers"] == access.servers
    assert KafkaAccess("kafka:9092").servers == ["kafka:9092"]


def test_services_on_a_cluster_list_every_broker_and_replicate_their_dead_letters(tmp_path: Path) -> None:
    stack = Stack(StackConfig(data_dir=tmp_path, kafka_cluster_ports=PORTS))
    for name in SERVICES:
        prefix = f"RELAIS_{module_of(name).upper()}_"
        env = stack.services[name].env
        assert env[f"{prefix}KAFKA_BOOTSTRAP"] == "127.0.0.1:19092,127.0.0.1:19095,127.0.0.1:19097"
        assert env[f"{prefix}TOPIC_REPLICATION"] == "3"
    single = Stack(StackConfig(data_dir=tmp_path / "single"))
    assert "RELAIS_INTAKE_TOPIC_REPLICATION" not in single.services["intake"].env
