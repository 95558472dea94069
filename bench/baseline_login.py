"""How a baseline process logs in to Kafka: the bench hands it a principal through its environment."""

from __future__ import annotations

import os

from shared.broker import KafkaAccess

USERNAME, PASSWORD, PROTOCOL = "BENCH_KAFKA_USERNAME", "BENCH_KAFKA_PASSWORD", "BENCH_KAFKA_SECURITY_PROTOCOL"


def login_env(kafka: KafkaAccess) -> dict[str, str]:
    return {USERNAME: kafka.username, PASSWORD: kafka.password, PROTOCOL: kafka.security_protocol}


def login(bootstrap: str) -> KafkaAccess:
    return KafkaAccess(bootstrap, os.environ[USERNAME], os.environ[PASSWORD], os.environ[PROTOCOL])
