from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix


class CoachingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("coaching"))

    service_name: str = "coaching"
    mongo_db: str = "relais_coaching"
    http_port: int = 8003
