"""Coaching runs once per association: the association setting picks its cases, database and consumer group.

`RELAIS_COACHING_ASSOCIATION=60000_rebonds` gives database `relais_coaching_60000_rebonds` and consumer
group `coaching-60000_rebonds` unless MONGO_DB / CONSUMER_GROUP say otherwise; docs/coaching.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.auth import DEVELOPMENT_STAFF_TOKENS, hash_token
from shared.pages import PageSettings
from shared.schemas import Association
from shared.settings import env_prefix

PASSWORD_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$")
ROOT = Path(__file__).resolve().parents[2]


class CoachingSettings(PageSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("coaching"))

    service_name: str = "coaching"
    association: Association = Association.SECOND_SOUFFLE
    mongo_db: str = ""
    http_port: int = 8003
    # `staff_tokens` (shared): the same JSON as every service's, by association; only this association's
    # staff are served (the other's get 403). A flat {user: hash} is this association's staff only (the
    # others' tokens are then unknown here: 401).
    # Staff user -> "scrypt$n$r$p$<salt>$<hash>" of their password, for the staff pages (JSON in the
    # environment). From `python -m services.coaching.auth --password <user>`.
    staff_passwords: dict[str, str] = Field(default_factory=dict)
    # A staff session ends this long after signing in.
    session_hours: float = Field(8.0, gt=0, le=24)
    # Routing's API: the staff pages show and edit the association's antennas in its directory, with a staff
    # bearer token of this association for routing (ROUTING_TOKEN or, better, the file ROUTING_TOKEN_FILE
    # names). Without one the antennas page says the directory is not configured.
    routing_url: str = "http://127.0.0.1:8002"
    routing_token: SecretStr = SecretStr("")
    routing_token_file: str = ""
    # The coverage map `relais coverage --map FILE.png` draws; the staff pages show it when the file exists.
    coverage_map: Path = ROOT / ".local" / "run" / "couverture.png"
    # Coordinators' targets: a case is overdue past them.
    target_committee_days: int = Field(15, ge=1)  # reception -> committee decision
    target_coach_days: int = Field(30, ge=1)  # committee approval -> coach assigned
    coaching_sessions_planned: int = Field(7, ge=1)
    # How often the coordinators' gauges and the antennas' free places are recomputed in the background.
    dashboard_refresh_s: float = Field(30.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def per_association_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        association = Association(data.get("association") or Association.SECOND_SOUFFLE)
        data = dict(data)
        if not data.get("mongo_db"):
            data["mongo_db"] = f"relais_coaching_{association.value}"
        if not data.get("consumer_group"):
            data["consumer_group"] = f"coaching-{association.value}"
        tokens = data.get("staff_tokens")
        if isinstance(tokens, str):
            tokens = json.loads(tokens)
        if isinstance(tokens, dict) and tokens and all(isinstance(v, str) for v in tokens.values()):
            data["staff_tokens"] = {association.value: tokens}  # {user: hash}: this association's staff
        return data

    def routing_bearer(self) -> str | None:
        """The token for routing's API (from ROUTING_TOKEN_FILE when set, read at start), or None."""
        if self.routing_token_file:
            try:
                token = Path(self.routing_token_file).read_text().strip()
            except OSError:
                return None  # the antennas page says the directory is not configured
        else:
            token = self.routing_token.get_secret_value().strip()
        return token or None

    def insecure_defaults(self) -> list[str]:
        problems = super().insecure_defaults()
        token = self.routing_bearer()
        public = {hashed for users in DEVELOPMENT_STAFF_TOKENS.values() for hashed in users.values()}
        if token is not None and hash_token(token) in public:
            problems.append("routing_token: a development token")
        return problems

    @field_validator("staff_passwords")
    @classmethod
    def hashed_passwords_only(cls, passwords: dict[str, str]) -> dict[str, str]:
        for user, hashed in passwords.items():
            if not user.strip() or not PASSWORD_HASH.match(hashed):
                raise ValueError(f"staff_passwords[{user!r}] must be 'scrypt$n$r$p$salt$hash', never a password")
        return passwords
