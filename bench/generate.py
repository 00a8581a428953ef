"""A Black Friday sized data set for Steve's benchmarks, generated from a seed.

    python bench/generate.py [--out bench/data] [--seed 2026] [--orders 10000]

Writes to the folder (git-ignored by default):

* network.json  - 100 nodes at real US city coordinates: 10 warehouses, 5 3PLs,
                  75 stores, 5 drop-ship vendors, 5 in-transit containers; the
                  demo's 3 carriers (SOUTHX is regional, with a Friday surcharge
                  in the playbook)
* catalog.json  - 2,000 items in 10 categories, each with channel aliases
* stock.csv     - warehouses carry most items, 3PLs half, stores a few (some
                  at their last 1-2 units), vendors their own lines, in-transit
                  containers bulk of a few
* orders.jsonl  - orders over Black Friday week (2026-11-23 .. 2026-11-29) in
                  time order: 1-5 lines, ship-to ZIPs weighted toward the big
                  metros, 5% VIP, 5% store pickup, gift tags, some express
* bench.playbook - the demo playbook's rules plus generated ones (regional
                  preferences, category rules, store protection, day surcharges,
                  chained tags and set fields): at least 25 rules

The same seed always writes the same bytes. `steve simulate`, `steve route`
and `steve serve` (through PUT /network, /catalog, /stock) read these files.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.geo import _zip_table, km_between  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "data"
WEEK_START = dt.date(2026, 11, 23)           # Monday of Black Friday week

# (city, state, lat, lon, metro population in thousands) - real coordinates.
CITIES = [
    ("New York", "NY", 40.7128, -74.0060, 19500), ("Los Angeles", "CA", 34.0522, -118.2437, 12800),
    ("Chicago", "IL", 41.8781, -87.6298, 9300), ("Dallas", "TX", 32.7767, -96.7970, 8100),
    ("Houston", "TX", 29.7604, -95.3698, 7300), ("Washington", "DC", 38.9072, -77.0369, 6300),
    ("Philadelphia", "PA", 39.9526, -75.1652, 6200), ("Atlanta", "GA", 33.7490, -84.3880, 6200),
    ("Miami", "FL", 25.7617, -80.1918, 6100), ("Phoenix", "AZ", 33.4484, -112.0740, 5000),
    ("Boston", "MA", 42.3601, -71.0589, 4900), ("Riverside", "CA", 33.9806, -117.3755, 4600),
    ("San Francisco", "CA", 37.7749, -122.4194, 4600), ("Detroit", "MI", 42.3314, -83.0458, 4300),
    ("Seattle", "WA", 47.6062, -122.3321, 4000), ("Minneapolis", "MN", 44.9778, -93.2650, 3700),
    ("San Diego", "CA", 32.7157, -117.1611, 3300), ("Tampa", "FL", 27.9506, -82.4572, 3300),
    ("Denver", "CO", 39.7392, -104.9903, 3000), ("Baltimore", "MD", 39.2904, -76.6122, 2800),
    ("St. Louis", "MO", 38.6270, -90.1994, 2800), ("Orlando", "FL", 28.5383, -81.3792, 2700),
    ("Charlotte", "NC", 35.2271, -80.8431, 2700), ("San Antonio", "TX", 29.4241, -98.4936, 2600),
    ("Portland", "OR", 45.5152, -122.6784, 2500), ("Sacramento", "CA", 38.5816, -121.4944, 2400),
    ("Pittsburgh", "PA", 40.4406, -79.9959, 2400), ("Austin", "TX", 30.2672, -97.7431, 2400),
    ("Las Vegas", "NV", 36.1699, -115.1398, 2300), ("Cincinnati", "OH", 39.1031, -84.5120, 2300),
    ("Kansas City", "MO", 39.0997, -94.5786, 2200), ("Columbus", "OH", 39.9612, -82.9988, 2100),
    ("Indianapolis", "IN", 39.7684, -86.1581, 2100), ("Cleveland", "OH", 41.4993, -81.6944, 2100),
    ("San Jose", "CA", 37.3382, -121.8863, 2000), ("Nashville", "TN", 36.1627, -86.7816, 2000),
    ("Virginia Beach", "VA", 36.8529, -75.9780, 1800), ("Providence", "RI", 41.8240, -71.4128, 1700),
    ("Jacksonville", "FL", 30.3322, -81.6557, 1600), ("Milwaukee", "WI", 43.0389, -87.9065, 1600),
    ("Raleigh", "NC", 35.7796, -78.6382, 1400), ("Oklahoma City", "OK", 35.4676, -97.5164, 1400),
    ("Memphis", "TN", 35.1495, -90.0490, 1300), ("Richmond", "VA", 37.5407, -77.4360, 1300),
    ("Louisville", "KY", 38.2527, -85.7585, 1300), ("New Orleans", "LA", 29.9511, -90.0715, 1300),
    ("Salt Lake City", "UT", 40.7608, -111.8910, 1300), ("Hartford", "CT", 41.7658, -72.6734, 1200),
    ("Buffalo", "NY", 42.8864, -78.8784, 1200), ("Birmingham", "AL", 33.5186, -86.8104, 1100),
    ("Rochester", "NY", 43.1566, -77.6088, 1100), ("Grand Rapids", "MI", 42.9634, -85.6681, 1100),
    ("Tucson", "AZ", 32.2226, -110.9747, 1000), ("Tulsa", "OK", 36.1540, -95.9928, 1000),
    ("Fresno", "CA", 36.7378, -119.7871, 1000), ("Omaha", "NE", 41.2565, -95.9345, 970),
    ("Worcester", "MA", 42.2626, -71.8023, 980), ("Greenville", "SC", 34.8526, -82.3940, 930),
    ("Albuquerque", "NM", 35.0844, -106.6504, 920), ("Bakersfield", "CA", 35.3733, -119.0187, 900),
    ("Albany", "NY", 42.6526, -73.7562, 900), ("Knoxville", "TN", 35.9606, -83.9207, 880),
    ("El Paso", "TX", 31.7619, -106.4850, 870), ("Baton Rouge", "LA", 30.4515, -91.1871, 870),
    ("Columbia", "SC", 34.0007, -81.0348, 830), ("Charleston", "SC", 32.7765, -79.9311, 800),
    ("Boise", "ID", 43.6150, -116.2023, 760), ("Little Rock", "AR", 34.7465, -92.2896, 750),
    ("Colorado Springs", "CO", 38.8339, -104.8214, 750), ("Des Moines", "IA", 41.5868, -93.6250, 700),
    ("Madison", "WI", 43.0731, -89.4012, 680), ("Syracuse", "NY", 43.0481, -76.1474, 660),
    ("Wichita", "KS", 37.6872, -97.3301, 650), ("Spokane", "WA", 47.6588, -117.4260, 590),
    ("Jackson", "MS", 32.2988, -90.1848, 590), ("Portland", "ME", 43.6591, -70.2568, 550),
    ("Reno", "NV", 39.5296, -119.8138, 490), ("Manchester", "NH", 42.9956, -71.4548, 420),
    ("Anchorage", "AK", 61.2181, -149.9003, 400), ("Honolulu", "HI", 21.3069, -157.8583, 1000),
]

REGIONS = {
    "northeast": {"ME", "NH", "VT", "MA", "RI", "CT", "NY", "NJ", "PA", "DE", "MD", "DC"},
    "south": {"VA", "WV", "NC", "SC", "GA", "FL", "AL", "MS", "TN", "KY", "LA", "AR", "TX", "OK"},
    "midwest": {"OH", "MI", "IN", "IL", "WI", "MN", "IA", "MO", "KS", "NE", "SD", "ND"},
    "west": {"CO", "WY", "MT", "ID", "UT", "NV", "AZ", "NM", "CA", "OR", "WA", "AK", "HI"},
}


def region_of(state: str) -> str:
    return next((name for name, states in REGIONS.items() if state in states), "west")


# (id, name, kind, city, state, lat, lon, handling, capacity, extra)
WAREHOUSES = [
    ("NJ-DC", "Edison distribution centre", "NJ", 40.5187, -74.4121, 1.1, 9000, {}),
    ("PA-DC", "Allentown distribution centre", "PA", 40.6084, -75.4902, 1.2, 8000, {}),
    ("GA-DC", "Atlanta distribution centre", "GA", 33.7490, -84.3880, 1.4, 8000, {}),
    ("TX-DC", "Fort Worth distribution centre", "TX", 32.7555, -97.3308, 1.3, 8000, {}),
    ("IL-DC", "Joliet distribution centre", "IL", 41.5250, -88.0817, 1.2, 9000, {}),
    ("OH-DC", "Columbus distribution centre", "OH", 39.9612, -82.9988, 1.2, 7000, {}),
    ("CA-DC", "Ontario distribution centre", "CA", 34.0633, -117.6509, 1.5, 9000, {}),
    ("NOR-CA-DC", "Stockton distribution centre", "CA", 37.9577, -121.2908, 1.5, 6000, {}),
    ("TN-DC", "Memphis distribution centre", "TN", 35.1495, -90.0490, 1.3, 7000, {}),
    ("KC-OVERFLOW", "Kansas City overflow back room", "MO", 39.0997, -94.5786, 2.5, 400,
     {"tags": ["reserve"]}),
]
THIRD_PARTY = [
    ("SLC-3PL", "Salt Lake City 3PL", "UT", 40.7608, -111.8910, 2.2, 3000),
    ("LOU-3PL", "Louisville 3PL", "KY", 38.2527, -85.7585, 2.0, 3000),
    ("RENO-3PL", "Reno 3PL", "NV", 39.5296, -119.8138, 2.3, 2500),
    ("LAK-3PL", "Lakeland 3PL", "FL", 28.0395, -81.9498, 2.1, 2500),
    ("IND-3PL", "Indianapolis 3PL", "IN", 39.7684, -86.1581, 2.0, 3000),
]
VENDORS = [
    ("KAYAK-MAKER", "Kayak maker (drop-ship)", "OR", 45.5152, -122.6784, "paddling"),
    ("BOOT-MAKER", "Boot maker (drop-ship)", "ME", 43.6591, -70.2568, "footwear"),
    ("TENT-MAKER", "Tent maker (drop-ship)", "ID", 43.6150, -116.2023, "camping"),
    ("BIKE-MAKER", "Bike maker (drop-ship)", "WI", 43.0389, -87.9065, "cycling"),
    ("CLIMB-MAKER", "Climbing gear maker (drop-ship)", "TN", 35.0456, -85.3097, "climbing"),
]
TRANSIT = [
    ("LGB-INBOUND", "Long Beach inbound containers", "CA", 33.7701, -118.1937, 2),
    ("SAV-INBOUND", "Savannah inbound containers", "GA", 32.0809, -81.0912, 1),
    ("EWR-INBOUND", "Newark inbound containers", "NJ", 40.7357, -74.1724, 3),
    ("TAC-INBOUND", "Tacoma inbound containers", "WA", 47.2529, -122.4443, 4),
    ("HOU-INBOUND", "Houston inbound containers", "TX", 29.7604, -95.3698, 2),
]
CARRIERS = [
    {"id": "GROUNDLINE", "name": "Groundline Parcel", "base": 5.5, "per_kg": 0.6, "per_1000km": 2.2,
     "km_per_day": 750, "min_days": 1},
    {"id": "SOUTHX", "name": "Southern Express (regional)", "base": 2.8, "per_kg": 0.45,
     "per_1000km": 1.1, "km_per_day": 650, "min_days": 1,
     "states": ["GA", "FL", "AL", "SC", "NC", "TN", "MS", "LA", "TX", "VA", "KY", "AR"]},
    {"id": "AIRJET", "name": "AirJet Next Day", "base": 17.5, "per_kg": 1.4, "per_1000km": 1.2,
     "km_per_day": 3500, "min_days": 1},
]

# category -> (weight range kg, price range $, margin range, tags that may appear)
CATEGORIES = {
    "outerwear": ((0.4, 1.6), (49, 349), (0.35, 0.65), ("waterproof",)),
    "footwear": ((0.6, 2.0), (39, 229), (0.30, 0.55), ()),
    "apparel": ((0.1, 0.6), (9, 89), (0.40, 0.70), ()),
    "camping": ((0.5, 12.0), (15, 699), (0.25, 0.50), ("oversize", "fragile")),
    "paddling": ((1.0, 30.0), (25, 1499), (0.20, 0.45), ("oversize",)),
    "climbing": ((0.1, 3.0), (8, 399), (0.30, 0.55), ()),
    "cycling": ((0.2, 14.0), (12, 2499), (0.20, 0.45), ("oversize", "fragile")),
    "fuel": ((0.2, 1.2), (5, 25), (0.25, 0.40), ("hazmat",)),
    "accessories": ((0.05, 0.8), (5, 79), (0.45, 0.75), ("gift",)),
    "nutrition": ((0.1, 1.5), (3, 49), (0.20, 0.40), ("perishable",)),
}
CATEGORY_SHARE = (("apparel", 5), ("outerwear", 3), ("footwear", 3), ("accessories", 3),
                  ("camping", 2), ("climbing", 1), ("cycling", 1), ("paddling", 1), ("fuel", 1),
                  ("nutrition", 1))


def _pick(rng: random.Random, weighted) -> object:
    total = sum(w for _, w in weighted)
    x = rng.random() * total
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


# ---- network -------------------------------------------------------------------------------

def make_network(rng: random.Random) -> dict:
    nodes = []

    def node(id_, name, kind, state, lat, lon, handling, capacity, **extra):
        entry = {"id": id_, "name": name, "kind": kind, "lat": lat, "lon": lon, "state": state,
                 "country": "US", "region": region_of(state), "handling": handling,
                 "capacity": capacity, "ships": True, "pickup": kind == "store", "status": "live"}
        entry.update(extra)
        nodes.append(entry)

    for id_, name, state, lat, lon, handling, capacity, extra in WAREHOUSES:
        node(id_, name, "warehouse", state, lat, lon, handling, capacity, **extra)
    for id_, name, state, lat, lon, handling, capacity in THIRD_PARTY:
        node(id_, name, "3pl", state, lat, lon, handling, capacity)
    # 75 stores in the 75 biggest metros of the list; Boston keeps the demo's id.
    metros = sorted(CITIES, key=lambda c: -c[4])[:75]
    used = set()
    for city, state, lat, lon, _ in metros:
        base = "BOS" if city == "Boston" else "".join(w[0] for w in city.replace(".", "").split())[:3].upper()
        if len(base) < 3:
            base = (city.replace(" ", "").replace(".", "")[:3]).upper()
        ident = f"{base}-STORE"
        if ident in used:
            ident = f"{base}-{state}-STORE"
        suffix = 2
        while ident in used:
            ident, suffix = f"{base}{suffix}-STORE", suffix + 1
        used.add(ident)
        tags = ["flagship"] if city in ("New York", "Chicago", "Los Angeles", "Boston") else []
        if rng.random() < 0.15:
            tags.append("outlet")
        node(ident, f"{city} store", "store", state, lat, lon, round(rng.uniform(2.0, 3.5), 2),
             rng.choice((60, 80, 120, 150)), tags=tags,
             load=round(rng.uniform(0.0, 0.6), 2))
    for id_, name, state, lat, lon, category in VENDORS:
        node(id_, name, "vendor", state, lat, lon, 3.0, 500, pickup=False, lead_days=2,
             tags=[f"makes-{category}"])
    for id_, name, state, lat, lon, eta_days in TRANSIT:
        node(id_, name, "transit", state, lat, lon, 1.8, 2000, pickup=False,
             eta=(WEEK_START + dt.timedelta(days=eta_days)).isoformat())
    for entry in nodes:
        if entry["kind"] != "store":
            entry["pickup"] = False
    return {"currency": "USD", "nodes": nodes, "carriers": CARRIERS}


# ---- catalog -------------------------------------------------------------------------------

ADJECTIVES = ("Trail", "Summit", "Ridge", "Alpine", "Canyon", "Harbor", "Glacier", "Prairie",
              "Cedar", "Granite", "Coastal", "Desert", "Timber", "Aurora", "Basecamp", "Switchback")
NOUNS = {
    "outerwear": ("rain jacket", "down jacket", "fleece", "softshell", "parka", "vest"),
    "footwear": ("hiking boot", "trail runner", "sandal", "winter boot", "approach shoe"),
    "apparel": ("tee", "base layer", "hiking pant", "sock", "beanie", "glove", "short"),
    "camping": ("tent", "sleeping bag", "stove", "lantern", "camp chair", "cooler", "pad"),
    "paddling": ("kayak", "paddle", "dry bag", "PFD", "spray skirt", "canoe"),
    "climbing": ("harness", "carabiner", "rope", "chalk bag", "belay device", "helmet"),
    "cycling": ("bike", "helmet", "tube", "pump", "light set", "pannier"),
    "fuel": ("isobutane canister", "white gas", "fire starter"),
    "accessories": ("water bottle", "headlamp", "trekking pole", "sunglasses", "map case", "mug"),
    "nutrition": ("energy bar box", "freeze-dried meal", "electrolyte mix", "trail mix"),
}
SIZES = ("XS", "S", "M", "L", "XL")


def make_catalog(rng: random.Random, count: int = 2000) -> dict:
    items = []
    for number in range(count):
        category = _pick(rng, CATEGORY_SHARE)
        (wlo, whi), (plo, phi), (mlo, mhi), tags = CATEGORIES[category]
        noun = rng.choice(NOUNS[category])
        name = f"{rng.choice(ADJECTIVES)} {noun}"
        if category in ("outerwear", "apparel", "footwear"):
            name += f", {rng.choice(SIZES) if category != 'footwear' else rng.randint(6, 13)}"
        # log-uniform weight and price: many light, cheap things and a few big ones
        weight = round(math.exp(rng.uniform(math.log(wlo), math.log(whi))), 2)
        price = round(math.exp(rng.uniform(math.log(plo), math.log(phi))), 2)
        item = {"sku": f"{category[:3].upper()}-{number:05d}", "name": name, "weight": weight,
                "price": price, "margin": round(rng.uniform(mlo, mhi), 2), "category": category,
                "aliases": [f"WEB-{100000 + number}"]}
        if rng.random() < 0.5:
            item["aliases"].append(f"MKT-{category[:2].upper()}{number:05d}")
        item_tags = [t for t in tags if rng.random() < 0.4]
        if category == "fuel":
            item_tags = ["hazmat"]
        if item_tags:
            item["tags"] = sorted(set(item_tags))
        items.append(item)
    return {"items": items}


# ---- stock ---------------------------------------------------------------------------------

def popularity(rng: random.Random, count: int) -> list[float]:
    """A Zipf-like demand weight per item (a shuffled rank)."""
    ranks = list(range(1, count + 1))
    rng.shuffle(ranks)
    return [1.0 / (r ** 0.9) for r in ranks]


def make_stock(rng: random.Random, network: dict, catalog: dict, demand: list[float]) -> list[tuple]:
    rows = []
    items = catalog["items"]
    top = max(demand)
    for entry in network["nodes"]:
        kind = entry["kind"]
        for index, item in enumerate(items):
            hot = demand[index] / top                      # 1.0 for the bestseller
            if kind == "warehouse":
                if "reserve" in entry.get("tags", ()):
                    if rng.random() < 0.25:
                        rows.append((entry["id"], item["sku"], rng.randint(1, 6)))
                elif rng.random() < 0.85:
                    rows.append((entry["id"], item["sku"], rng.randint(8, 40) + int(900 * hot)))
            elif kind == "3pl":
                if rng.random() < 0.5:
                    rows.append((entry["id"], item["sku"], rng.randint(5, 30) + int(300 * hot)))
            elif kind == "store":
                if item["category"] in ("paddling", "fuel"):
                    continue
                if rng.random() < 0.04 + 0.3 * hot:
                    units = rng.choice((1, 2, 2, 3, 4, 6, 8, 12, 20))
                    rows.append((entry["id"], item["sku"], units))
            elif kind == "vendor":
                if f"makes-{item['category']}" in entry.get("tags", ()):
                    rows.append((entry["id"], item["sku"], rng.randint(50, 500)))
            elif kind == "transit":
                if rng.random() < 0.08:
                    rows.append((entry["id"], item["sku"], rng.randint(100, 1000)))
    return rows


# ---- orders --------------------------------------------------------------------------------

def _zips_near_metros() -> tuple[list, list]:
    """The packaged ZIP table split into ZIPs within 60 km of a listed metro
    (weighted by that metro's population) and all the others."""
    table = sorted(_zip_table().items())
    near: dict[int, list] = {}
    for zip_code, (lat, lon, state) in table:
        if state is None:
            continue
        for index, (_, _, clat, clon, _) in enumerate(CITIES):
            if abs(lat - clat) < 0.6 and abs(lon - clon) < 0.8 and km_between(lat, lon, clat, clon) < 60:
                near.setdefault(index, []).append((zip_code, state))
                break
    metros = [(near[i], CITIES[i][4]) for i in sorted(near)]
    rest = [(z, s) for z, (_, _, s) in table if s]
    return metros, rest


def make_orders(rng: random.Random, count: int, network: dict, catalog: dict,
                demand: list[float]) -> list[dict]:
    metros, rest = _zips_near_metros()
    items = catalog["items"]
    cumulative, total = [], 0.0
    for weight in demand:
        total += weight
        cumulative.append(total)
    import bisect

    def draw_item() -> dict:
        return items[min(bisect.bisect(cumulative, rng.random() * total), len(items) - 1)]

    stores = [n for n in network["nodes"] if n["kind"] == "store"]
    # arrival times over the week: busier evenings, Black Friday and Cyber-weekend peaks
    day_weight = (0.8, 0.9, 1.0, 0.9, 2.6, 1.6, 1.4)       # Mon..Sun; Friday is Black Friday
    hour_weight = [0.3, 0.2, 0.15, 0.4, 0.2, 0.2, 0.4, 0.7, 1.0, 1.1, 1.2, 1.3, 1.4, 1.3, 1.2, 1.2,
                   1.3, 1.5, 1.7, 1.9, 2.0, 1.8, 1.2, 0.6]   # 3 AM on Black Friday gets doorbusters
    moments = []
    for _ in range(count):
        day = _pick(rng, list(enumerate(day_weight)))
        hour = _pick(rng, list(enumerate(hour_weight)))
        if day == 4 and rng.random() < 0.05:
            hour = 3
        moments.append(dt.datetime(2026, 11, 23 + day, hour, rng.randrange(60), rng.randrange(60)))
    moments.sort()
    orders = []
    for number, moment in enumerate(moments):
        if rng.random() < 0.85:
            zips, _ = _pick(rng, [((z, p), p) for z, p in metros])
            zip_code, state = rng.choice(zips)
        else:
            zip_code, state = rng.choice(rest)
        n_lines = _pick(rng, ((1, 50), (2, 25), (3, 13), (4, 8), (5, 4)))
        chosen, lines = set(), []
        channel = _pick(rng, (("web", 60), ("app", 30), ("marketplace", 10)))
        while len(lines) < n_lines:
            item = draw_item()
            if item["sku"] in chosen:
                continue
            chosen.add(item["sku"])
            name = item["sku"]
            if channel == "marketplace" and len(item["aliases"]) > 1:
                name = item["aliases"][1]
            elif channel == "web" and rng.random() < 0.3:
                name = item["aliases"][0]
            lines.append({"sku": name, "qty": _pick(rng, ((1, 80), (2, 15), (3, 4), (6, 1)))})
        tier = _pick(rng, (("VIP", 5), ("member", 15), ("regular", 80)))
        pickup = rng.random() < 0.05
        order = {
            "id": f"BF-{number:06d}", "channel": channel,
            "created_at": moment.isoformat() + "-05:00",
            "customer": {"id": f"C-{rng.randrange(60000):05d}", "tier": tier,
                         "orders": int(rng.expovariate(1 / 6))},
            "ship_to": {"country": "US", "state": state, "zip": zip_code},
            "delivery": "ship", "service": "express" if rng.random() < 0.03 else "standard",
            "lines": lines, "tags": ["gift"] if rng.random() < 0.08 else [],
        }
        if pickup:
            order["delivery"] = "pickup"
            order["pickup_node"] = min(stores, key=lambda s: _rough_km(s, zip_code))["id"]
        orders.append(order)
    return orders


_ZIP_POINTS: dict = {}


def _rough_km(store: dict, zip_code: str) -> float:
    point = _ZIP_POINTS.get(zip_code) or _ZIP_POINTS.setdefault(zip_code, _zip_table()[zip_code])
    return km_between(store["lat"], store["lon"], point[0], point[1])


# ---- playbook ------------------------------------------------------------------------------

def make_playbook(network: dict) -> str:
    demo = (ROOT / "rulebooks" / "demo.playbook").read_text(encoding="utf-8")
    header, _, body = demo.partition('group "northeast"')
    header = header.replace('playbook "Trailhead Outfitters"', 'playbook "Trailhead Outfitters, Black Friday"')
    parts = [header.rstrip() + "\n", 'group "northeast"' + body.rstrip() + "\n"]
    hubs = {region: [n["id"] for n in network["nodes"] if n["kind"] in ("warehouse", "3pl")
                     and n.get("region") == region and "reserve" not in n.get("tags", ())]
            for region in REGIONS}
    parts.append("\n# ---- generated by bench/generate.py ------------------------------------\n")
    for region, states in REGIONS.items():
        if not hubs[region]:
            continue
        listed = ", ".join(f'"{s}"' for s in sorted(states))
        parts.append(f'''
group "{region} hubs" is nodes {", ".join(f'"{h}"' for h in hubs[region])}

rule "{region.title()} orders prefer {region} hubs"
  when order.ship_to.state in {listed} and node in group "{region} hubs"
  then prefer node by $1.25
''')
    parts.append('''
rule "Ship in-state when we can"
  when node.state is order.ship_to.state and node.kind is not vendor
  then prefer node by $0.75

rule "Fuel never ships from stores"
  when item has tag "hazmat" and node.kind is store
  then exclude node because "hazmat: warehouses only"

rule "Fuel goes by ground"
  when item has tag "hazmat"
  then avoid carrier "AIRJET"

rule "Oversize items stay off the shop floor"
  when item has tag "oversize" and node.kind in store, 3pl
  then penalize node by $6.00

rule "Fragile items from the big warehouses"
  when item has tag "fragile" and node.kind is not warehouse
  then penalize node by $2.50

rule "Busy stores are spared"
  when node.kind is store and node.load > 85%
  then avoid node because "store is busy serving walk-in customers"

rule "Outlet stores only for cheap lines"
  when node has tag "outlet" and item.price > $150
  then exclude node because "outlets do not hold full-price stock"

rule "Flagships keep display units"
  when node has tag "flagship"
  then keep 1 unit because "display unit"

rule "Weekend fee on AirJet"
  when today is weekend
  then surcharge carrier "AIRJET" by $3.50

rule "Black Friday doorbusters"
  priority 20
  when today between 2026-11-27 and 2026-11-30
  then tag order "peak"

rule "Peak orders keep stores for walk-ins"
  when order has tag "peak" and node.kind is store and stock.available <= 5
  then exclude node because "peak weekend: low store stock stays for walk-ins"

rule "Peak big baskets go in at most two boxes"
  when order has tag "peak" and order.units >= 6
  then max shipments 2

rule "VIP customers get the quickest delivery"
  priority 10
  when customer.tier is "VIP"
  then optimize speed and tag customer "vip"

rule "VIP gifts are white glove"
  when customer has tag "vip" and order has tag "gift"
  then tag order "white glove"

rule "White glove orders ship complete"
  when order has tag "white glove"
  then ship complete

rule "Loyal customers"
  when customer.orders >= 20
  then tag customer "loyal"

rule "Loyal customers split less"
  when customer has tag "loyal"
  then split penalty $8.00

rule "Marketplace orders get their own lane"
  when order.channel is "marketplace"
  then set order.lane to "marketplace"

rule "The marketplace lane avoids air"
  when order.lane is "marketplace"
  then avoid carrier "AIRJET"

rule "Alaska and Hawaii fly"
  when order.ship_to.state in "AK", "HI"
  then use carrier "AIRJET"

rule "Late-night orders leave from warehouses"
  when now after 22:00 and node.kind is store
  then penalize node by $1.50

rule "In-transit stock for bulk buys"
  when item.qty >= 6
  then allow in-transit

rule "Heavy items avoid far nodes"
  when item.weight > 10 kg and distance > 1500 km
  then penalize node by $9.00
''')
    return "".join(parts)


def write(out: Path, seed: int, orders: int) -> dict:
    rng = random.Random(seed)
    network = make_network(rng)
    catalog = make_catalog(rng)
    demand = popularity(rng, len(catalog["items"]))
    stock = make_stock(rng, network, catalog, demand)
    order_list = make_orders(rng, orders, network, catalog, demand)
    playbook = make_playbook(network)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(json.dumps(network, indent=1) + "\n", encoding="utf-8")
    (out / "catalog.json").write_text(json.dumps(catalog, indent=1) + "\n", encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("node", "sku", "on_hand"))
    writer.writerows(stock)
    (out / "stock.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (out / "orders.jsonl").write_text("".join(json.dumps(o) + "\n" for o in order_list), encoding="utf-8")
    (out / "bench.playbook").write_text(playbook, encoding="utf-8")
    return {"nodes": len(network["nodes"]), "items": len(catalog["items"]), "stock_rows": len(stock),
            "orders": len(order_list), "rules": playbook.count("\nrule ")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    summary = write(args.out, args.seed, args.orders)
    print(f"{args.out}: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
