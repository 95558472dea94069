"""Travel time by road, estimated offline: great-circle distance × detour factor ÷ average road speed.

No routing engine or network call: the same formula serves one case (floats) and the coverage of a whole
region (numpy arrays), so that routing and `relais coverage` always agree. The parameters are settings
(RELAIS_ROUTING_DETOUR_FACTOR, ..._ROAD_SPEED_KMH, ..._TRAVEL_OVERHEAD_MINUTES); docs/routing.md shows
how the defaults compare with a few known trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_KM = 6371.0


def great_circle_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any, xp: Any = math) -> Any:
    """Haversine distance; `xp` is `math` for floats or `numpy` (≥ 2, which has `asin`) for arrays."""
    p1, p2 = xp.radians(lat1), xp.radians(lat2)
    dp, dl = p2 - p1, xp.radians(lon2) - xp.radians(lon1)
    a = xp.sin(dp / 2) ** 2 + xp.cos(p1) * xp.cos(p2) * xp.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * xp.asin(xp.sqrt(a))


@dataclass(frozen=True, slots=True)
class TravelModel:
    detour_factor: float = 1.25  # road distance / straight-line distance
    road_speed_kmh: float = 75.0  # door-to-door average, motorways and local roads together
    overhead_minutes: float = 0.0  # parking, walking to the room
    one_hour_minutes: float = 60.0  # the partnership's promise: a group within one hour

    def minutes(self, km: Any) -> Any:
        return self.overhead_minutes + km * self.detour_factor / self.road_speed_kmh * 60.0

    def minutes_between(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        return self.minutes(great_circle_km(lat1, lon1, lat2, lon2))

    def km_within(self, minutes: float) -> float:
        """Great-circle radius reachable in `minutes` (for quick pre-filters)."""
        return max(0.0, minutes - self.overhead_minutes) / 60.0 * self.road_speed_kmh / self.detour_factor
