from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("intake"))

    service_name: str = "intake"
    mongo_db: str = "relais_intake"
    http_port: int = 8001
    # POST /cases per minute: per client address on the public route, per partner with a partner token
    # (0: no limit). A person submits once; a shared office address or a partner's batch needs more.
    submissions_per_minute: int = Field(10, ge=0)
    partner_submissions_per_minute: int = Field(120, ge=0)
