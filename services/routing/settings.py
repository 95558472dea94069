from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("routing"))

    service_name: str = "routing"
    mongo_db: str = "relais_routing"
    http_port: int = 8002
