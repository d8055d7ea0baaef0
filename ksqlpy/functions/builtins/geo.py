"""Built-in GEO_DISTANCE: great-circle distance between two latitude/longitude points by the haversine formula."""

from __future__ import annotations

import math

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import DOUBLE, STRING

CATEGORY = "OTHER"

# The effective earth radius ksqlDB uses, in each supported unit
_EARTH_RADIUS_KM = 6371.0
_EARTH_RADIUS_MILES = 3959.0
_MILE_NAMES = ("mi", "mile", "miles")
_KILOMETRE_NAMES = ("km", "kilometer", "kilometers", "kilometre", "kilometres")


def _earth_radius(unit: str | None) -> float:
    if unit is None or not unit.strip():
        return _EARTH_RADIUS_KM
    name = unit.strip().lower()
    if name in _MILE_NAMES:
        return _EARTH_RADIUS_MILES
    if name in _KILOMETRE_NAMES:
        return _EARTH_RADIUS_KM
    raise ValueError(
        f"GeoDistance function units parameter must be one of {', '.join(_MILE_NAMES + _KILOMETRE_NAMES)}. "
        "Values are case-insensitive."
    )


def _haversine(angle: float) -> float:
    return math.sin(angle / 2) ** 2


@scalar_function(
    "GEO_DISTANCE", params=[DOUBLE, DOUBLE, DOUBLE, DOUBLE, STRING], returns=DOUBLE, null_on_null=False,
    category=CATEGORY,
    description="Great-circle distance between (lat1, lon1) and (lat2, lon2) in decimal degrees, in 'KM' or 'MI'.",
)
def geo_distance(
    lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None, unit: str | None = None
) -> float | None:
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    if not all(-90 <= lat <= 90 for lat in (lat1, lat2)):
        raise ValueError("valid latitude values for GeoDistance function are in the range of -90 to 90 decimal degrees")
    if not all(-180 <= lon <= 180 for lon in (lon1, lon2)):
        raise ValueError(
            "valid longitude values for GeoDistance function are in the range of -180 to +180 decimal degrees"
        )
    radius = _earth_radius(unit)
    lat1_radians, lat2_radians = math.radians(lat1), math.radians(lat2)
    a = _haversine(math.radians(lat2 - lat1)) + _haversine(math.radians(lon2 - lon1)) * math.cos(
        lat1_radians
    ) * math.cos(lat2_radians)
    return 2 * math.asin(math.sqrt(a)) * radius


scalar_function(
    "GEO_DISTANCE", params=[DOUBLE, DOUBLE, DOUBLE, DOUBLE], returns=DOUBLE, null_on_null=False, category=CATEGORY,
    description="Great-circle distance in kilometres between (lat1, lon1) and (lat2, lon2) in decimal degrees.",
)(geo_distance)
