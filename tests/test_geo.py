"""engine.geo: placing a ship-to on the map, and the state of a point given
by coordinates alone (the nearest ZIP point's, within STATE_REACH_KM),
checked against a search of every ZIP point."""

from __future__ import annotations

import random

import pytest

from engine.geo import STATE_REACH_KM, AddressError, _zip_table, km_between, locate, state_near


@pytest.mark.parametrize("lat, lon, state", [
    (25.7743, -80.1937, "FL"), (39.7508, -104.9966, "CO"), (61.2181, -149.9003, "AK"),
    (21.3069, -157.8583, "HI"), (42.3601, -71.0589, "MA"),
    (30.0, -60.0, None),            # the Atlantic, far from every ZIP point
    (19.4326, -99.1332, None),      # Mexico City
])
def test_the_state_of_a_point_is_the_nearest_zip_points(lat, lon, state):
    assert state_near(lat, lon) == state


def test_the_nearest_state_matches_a_search_of_every_zip_point():
    points = list(_zip_table().values())
    rng = random.Random(7)
    for _ in range(40):
        lat, lon = rng.uniform(24.0, 50.0), rng.uniform(-125.0, -66.0)
        best, best_km = None, STATE_REACH_KM
        for zlat, zlon, zstate in points:
            km = km_between(lat, lon, zlat, zlon)
            if km < best_km:
                best, best_km = zstate, km
        assert state_near(lat, lon) == best, (lat, lon)


def test_a_lat_lon_ship_to_takes_a_state_only_in_the_us():
    assert locate(None, None, None, 25.7743, -80.1937).state == "FL"
    assert locate("US", None, None, 25.7743, -80.1937).state == "FL"
    assert locate("CA", None, None, 43.6532, -79.3832).state is None      # Toronto, Canada
    assert locate("US", "ga", None, 25.7743, -80.1937).state == "GA"      # a state given wins
    assert locate("US", None, "30301", 25.7743, -80.1937).state == "GA"   # so does a ZIP's


def test_an_address_with_nothing_to_place_it_is_an_error():
    with pytest.raises(AddressError, match="needs lat/lon, a US zip or a US state"):
        locate("US", None, None, None, None)
