"""Where an order goes: ship-to resolution and great-circle distance.

A ship-to point comes from lat/lon, else a US ZIP looked up offline in the
ZIP table packaged with `zipcodes`, else the centre of its US state (the mean
of that state's ZIP points). The table is read once per process, lazily.
A US point given by lat/lon alone takes the state of the nearest ZIP point
within STATE_REACH_KM (state-limited carriers and rules on the ship-to
state need one); farther from every ZIP point it has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

EARTH_RADIUS_KM = 6371.0088
STATE_REACH_KM = 80.0     # a lat/lon this close to a US ZIP point takes its state


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
        if state is None and (country or "US").upper() in ("US", "USA"):
            state = state_near(lat, lon)
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


CELL_DEG = 0.2           # the ZIP points are kept by cells of this many degrees


def state_near(lat: float, lon: float) -> str | None:
    """The state of the ZIP point nearest to (lat, lon), if one is within
    STATE_REACH_KM; else None. Searches rings of cells outwards and stops
    once no point of a farther ring can be nearer."""
    cells = _zip_cells()
    row, column = math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG)
    # a ring k cells out is at least (k - 1) cells away; a cell is narrowest
    # at the latitude farthest from the equator it may reach
    narrow = CELL_DEG * 111.19 * math.cos(math.radians(min(89.0, abs(lat) + STATE_REACH_KM / 111.0)))
    best, best_km, ring = None, STATE_REACH_KM, 0
    while (ring - 1) * narrow <= best_km:
        for r in range(row - ring, row + ring + 1):
            edge = r in (row - ring, row + ring)
            for c in (range(column - ring, column + ring + 1) if edge else (column - ring, column + ring)):
                for zlat, zlon, zstate in cells.get((r, c), ()):
                    km = km_between(lat, lon, zlat, zlon)
                    if km <= best_km:
                        best, best_km = zstate, km
        ring += 1
    return best


@cache
def _zip_cells() -> dict[tuple[int, int], list[tuple[float, float, str]]]:
    """The ZIP points by cell of CELL_DEG degrees."""
    cells: dict[tuple[int, int], list] = {}
    for point in sorted(_zip_table().values()):
        cells.setdefault((math.floor(point[0] / CELL_DEG), math.floor(point[1] / CELL_DEG)), []).append(point)
    return cells


def warm(cells: bool = False) -> None:
    """Load the ZIP table now rather than on the first lookup; with `cells`,
    also the index of its points by cell (~0.2 s, needed only by a ship-to
    given by lat/lon alone: a long-running service builds it at start)."""
    _zip_table()
    _state_centres()
    if cells:
        _zip_cells()


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
