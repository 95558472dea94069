from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix

DEVELOPMENT_SECRET_KEY = "relais-local-secret-change-me"


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("notifications"))

    service_name: str = "notifications"
    mongo_db: str = "relais_notifications"
    http_port: int = 8004

    # Email over SMTP. Locally a mail catcher: `make run` starts ops.mailsink on 1025, compose runs Mailpit.
    email_enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_tls: bool = False  # implicit TLS from the first byte (port 465)
    smtp_starttls: bool = False  # upgrade with STARTTLS (port 587); both off for a local catcher
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: float = 20.0
    sender: str = "Relais <ne-pas-repondre@relais.example>"
    message_id_domain: str = "relais.example"
    # Base of the links in emails (unsubscribe): the address people reach this service at.
    public_url: str = "http://127.0.0.1:8004"
    # Signs unsubscribe links and derives the partner feed's opaque referral ids: set a real secret in production
    # (SECRET_KEY, or better SECRET_KEY_FILE naming a file that holds it); the default is refused outside
    # development mode.
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    secret_key_file: str = ""
    # The catalogue of the public topics (/asyncapi, /asyncapi.json), for partners.
    expose_asyncapi: bool = True

    # An SMTP server's 4xx reply is retried with exponential backoff, up to `send_max_attempts` replies in all;
    # a 5xx reply or the last 4xx fails the notification and dead-letters it. An unreachable server is an
    # outage, not the message's fault: retried (capped backoff) until it answers.
    send_max_attempts: int = 5
    send_backoff_ms: int = 2000
    send_backoff_max_ms: int = 300_000
    send_concurrency: int = 4
    # An attempt unfinished after this long belongs to a dead process and is taken over; it must exceed a
    # whole SMTP transaction (a few `smtp_timeout_s`).
    send_lease_s: float = 120.0
    # Taking over an attempt that died after DATA was sent: the server may have the message. "resend" sends
    # it again with the same Message-ID (receivers deduplicate); "assume_sent" records it as sent.
    in_doubt: Literal["resend", "assume_sent"] = "resend"
    # Safety net behind the in-process hand-over: how often the dispatcher looks for work in the store.
    dispatch_scan_s: float = 15.0
    # A message waits this long for the event that gives its address (the CaseReceived, or the CaseRouted for
    # the coordinator) before it is sent with what is known (the association's coordination) or not at all.
    contact_wait_s: float = 300.0

    # Fallback address of each association's coordination when CaseRouted names no antenna contact.
    coordinators: dict[str, str] = Field(
        default_factory=lambda: {
            "second_souffle": "coordination@second-souffle.example",
            "60000_rebonds": "coordination@60000-rebonds.example",
        }
    )

    def signing_key(self) -> str:
        """The secret that signs links: from SECRET_KEY_FILE when set (read at start), else SECRET_KEY."""
        if self.secret_key_file:
            return Path(self.secret_key_file).read_text().strip()
        return self.secret_key.get_secret_value()

    def insecure_defaults(self) -> list[str]:
        problems = super().insecure_defaults()
        key = self.signing_key()
        if key == DEVELOPMENT_SECRET_KEY or len(key) < 16:
            problems.append("secret_key: the development key, or shorter than 16 characters")
        return problems
