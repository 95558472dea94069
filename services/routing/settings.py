from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.routing.directory import ANTENNAS_FILE
from services.routing.geodata import DEFAULT_PATH as GEODATA_PATH
from services.routing.travel import TravelModel
from shared.settings import ServiceSettings, env_prefix

RULES_FILE = Path(__file__).with_name("association_rules.toml")


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("routing"))

    service_name: str = "routing"
    mongo_db: str = "relais_routing"
    http_port: int = 8002
    # Travel-time model (docs/routing.md): great-circle km × detour factor ÷ road speed + overhead.
    detour_factor: float = 1.25
    road_speed_kmh: float = 75.0
    travel_overhead_minutes: float = 0.0
    one_hour_minutes: float = 60.0
    # Data: communes (built by `make provision`), association rules, antennas seeded on first start.
    geodata_file: Path = GEODATA_PATH
    rules_file: Path = RULES_FILE
    antennas_file: Path = ANTENNAS_FILE

    def travel_model(self) -> TravelModel:
        return TravelModel(self.detour_factor, self.road_speed_kmh, self.travel_overhead_minutes, self.one_hour_minutes)
