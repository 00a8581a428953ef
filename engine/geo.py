"""Where an order goes: ship-to resolution and great-circle distance.

A ship-to point comes from lat/lon, else a US ZIP looked up offline in the
ZIP table packaged with `zipcodes`, else the centre of its US state (the mean
of that state's ZIP points). The table is read once per process, lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    state: str | None
    how: str          # "lat/lon" | "zip 80202" | "state CO"


class AddressError(ValueError):
    """The ship-to cannot be placed on the map."""


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def locate(country: str | None, state: str | None, zip_code: str | None,
           lat: float | None, lon: float | None) -> Point:
    state = state.upper() if state else None
    if lat is not None and lon is not None:
        if state is None and zip_code:
            state = _zip_table().get(_zip5(zip_code), (None, None, None))[2]
        return Point(lat, lon, state, "lat/lon")
    if (lat is None) != (lon is None):
        raise AddressError("ship_to has only one of lat and lon; give both, a US zip or a state")
    us = (country or "US").upper() in ("US", "USA")
    if zip_code and us:
        entry = _zip_table().get(_zip5(zip_code))
        if entry is not None:
            return Point(entry[0], entry[1], state or entry[2], f"zip {_zip5(zip_code)}")
        if not state:
            raise AddressError(f"ship_to.zip {zip_code!r} is not a known US ZIP code; "
                               "give lat/lon or a state")
    if state and us:
        centre = _state_centres().get(state)
        if centre is None:
            raise AddressError(f"ship_to.state {state!r} is not a US state code")
        return Point(centre[0], centre[1], state, f"state {state}")
    raise AddressError("ship_to needs lat/lon, a US zip or a US state to be routed")


def warm() -> None:
    """Load the ZIP table now rather than on the first lookup."""
    _zip_table()
    _state_centres()


def _zip5(zip_code: str) -> str:
    return str(zip_code).strip()[:5].zfill(5)


@cache
def _zip_table() -> dict[str, tuple[float, float, str]]:
    import zipcodes  # imported lazily: loading the table takes ~0.3 s

    table = {}
    for entry in zipcodes.list_all():
        try:
            table[entry["zip_code"]] = (float(entry["lat"]), float(entry["long"]), entry["state"])
        except (TypeError, ValueError):
            continue
    return table


@cache
def _state_centres() -> dict[str, tuple[float, float]]:
    sums: dict[str, list[float]] = {}
    for lat, lon, state in _zip_table().values():
        total = sums.setdefault(state, [0.0, 0.0, 0])
        total[0] += lat
        total[1] += lon
        total[2] += 1
    return {state: (t[0] / t[2], t[1] / t[2]) for state, t in sums.items()}
