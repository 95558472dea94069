"""Settings common to every service; each service subclasses with its own environment prefix.

`RELAIS_INTAKE_HTTP_PORT=9001` sets intake's port and nothing else's; the compose file and the local
launcher set only fields declared here or in a service's subclass (a test checks it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "relais"
    # Instances of one service share a consumer group (they split the partitions); empty = service name.
    consumer_group: str = ""
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Each service is a Kafka principal of its own (shared/topology.py): SCRAM-SHA-512 over SASL_PLAINTEXT
    # locally, SASL_SSL in docker-compose.yml (then KAFKA_SSL_CAFILE is the CA that signed the broker).
    # The password comes from KAFKA_PASSWORD or, better, from the file KAFKA_PASSWORD_FILE names.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"] = "SASL_PLAINTEXT"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    kafka_password_file: str = ""
    kafka_ssl_cafile: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = "relais"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    # Records fetched at once; records of different cases are handled concurrently, up to this many.
    consumer_batch_size: int = 200
    consumer_concurrency: int = 32
    # A handler error is retried this many times with exponential backoff, then dead-lettered.
    max_attempts: int = 4
    retry_backoff_ms: int = 200
    retry_backoff_max_ms: int = 5000
    # Safety net behind the in-process wake-ups: how often the relay rescans for unsent events.
    outbox_scan_interval_s: float = 30.0
    max_request_bytes: int = 64 * 1024
    # OpenTelemetry: base URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318); empty = no tracing.
    otlp_endpoint: str = ""


def env_prefix(service: str) -> str:
    return f"RELAIS_{service.upper()}_"
