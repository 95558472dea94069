from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("intake"))

    service_name: str = "intake"
    mongo_db: str = "relais_intake"
    http_port: int = 8001
