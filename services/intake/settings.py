from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.pages import PageSettings
from shared.settings import env_prefix


class IntakeSettings(PageSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("intake"))

    service_name: str = "intake"
    mongo_db: str = "relais_intake"
    http_port: int = 8001
    # Where each association's "Devenir bénévole" form is (its coaching instance serves it publicly).
    volunteer_pages: dict[str, str] = Field(
        default_factory=lambda: {
            "second_souffle": "http://127.0.0.1:8003/benevolat",
            "60000_rebonds": "http://127.0.0.1:8005/benevolat",
        }
    )
    # What the confirmation page promises: a first call from the association within this many working days.
    contact_within_days: int = Field(10, ge=1, le=60)
    # POST /cases per minute: per client address on the public route, per partner with a partner token
    # (0: no limit). A person submits once; a shared office address or a partner's batch needs more.
    submissions_per_minute: int = Field(10, ge=0)
    partner_submissions_per_minute: int = Field(120, ge=0)
