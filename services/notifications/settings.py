from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, env_prefix


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("notifications"))

    service_name: str = "notifications"
    mongo_db: str = "relais_notifications"
    http_port: int = 8004
