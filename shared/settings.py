"""Settings common to every service; each service subclasses with its own environment prefix.

`RELAIS_INTAKE_HTTP_PORT=9001` sets intake's port and nothing else's; the compose file and the local
launcher set only fields declared here or in a service's subclass (a test checks it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import check_staff_tokens, development_tokens_in
from shared.schemas import Association


class InsecureSettings(RuntimeError):
    """A service outside development mode was given a secret everyone knows (or none where one is needed)."""


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

    # Development mode (`make run` and the tests set it): the public development secrets are accepted.
    # Outside it, a service refuses to start with a default secret (`insecure_defaults`).
    development: bool = False
    # Staff bearer tokens, as hashes, per association (the same JSON for every service):
    # {"second_souffle": {"claire": "sha256:<hex>"}, "60000_rebonds": {...}}. `python -m shared.auth` makes
    # them. Empty: no one can use the staff routes.
    staff_tokens: dict[Association, dict[str, str]] = Field(default_factory=dict)
    # Clients whose presented tokens fail this many times in the window are refused (429) until it ends.
    auth_max_failures: int = Field(10, ge=0)
    auth_failure_window_s: float = Field(300.0, gt=0)
    # What a service serves besides its API: /docs, /redoc and /openapi.json; Prometheus' /metrics.
    expose_docs: bool = False
    expose_metrics: bool = True

    @field_validator("staff_tokens")
    @classmethod
    def hashed_tokens_only(cls, tokens: dict[Association, dict[str, str]]) -> dict[Association, dict[str, str]]:
        return check_staff_tokens(tokens)

    def insecure_defaults(self) -> list[str]:
        """Why this service must not start outside development mode (empty: it may)."""
        found = development_tokens_in(self.staff_tokens)
        return [f"staff_tokens: development tokens ({', '.join(found)})"] if found else []

    def refuse_insecure_defaults(self) -> None:
        if self.development:
            return
        problems = self.insecure_defaults()
        if problems:
            raise InsecureSettings(
                f"{self.service_name} refuses to start with default secrets: {'; '.join(problems)}. Set real "
                "secrets, or development=true (RELAIS_<SERVICE>_DEVELOPMENT) for a local run."
            )


def env_prefix(service: str) -> str:
    return f"RELAIS_{service.upper()}_"
