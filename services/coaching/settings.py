"""Coaching runs once per association: the association setting picks its cases, database and consumer group.

`RELAIS_COACHING_ASSOCIATION=60000_rebonds` gives database `relais_coaching_60000_rebonds` and consumer
group `coaching-60000_rebonds` unless MONGO_DB / CONSUMER_GROUP say otherwise; docs/coaching.md.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.schemas import Association
from shared.settings import ServiceSettings, env_prefix


class CoachingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("coaching"))

    service_name: str = "coaching"
    association: Association = Association.SECOND_SOUFFLE
    mongo_db: str = ""
    http_port: int = 8003
    # `staff_tokens` (shared): the same JSON as every service's, by association; only this association's
    # staff are served (the other's get 403). A flat {user: hash} is this association's staff only (the
    # others' tokens are then unknown here: 401).

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
