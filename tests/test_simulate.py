"""`steve simulate` and engine.simulation on the bundled demo: hand-checked
metrics, time order, reservations, --against, node what-ifs, malformed
lines, and the JSON, Markdown and HTML outputs."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from conftest import RULEBOOKS
from engine.models import Order
from engine.simulation import (OrderConflict, changes, distinct_orders, outcome, replay, simulate, time_ordered,
                               what_if_network, WhatIfError)
from steve.cli import main
from steve.simulate import read_orders

STEVE = Path(sys.executable).with_name("steve")

# Ship-to points as lat/lon (no ZIP look-up needed).
PHL = {"country": "US", "state": "PA", "lat": 39.9526, "lon": -75.1652}
ATL = {"country": "US", "state": "GA", "lat": 33.7537, "lon": -84.3863}
PHX = {"country": "US", "state": "AZ", "lat": 33.4484, "lon": -112.074}
BOS = {"country": "US", "state": "MA", "lat": 42.3601, "lon": -71.0589}


def order(order_id: str, time: str, ship_to: dict, *lines: tuple[str, int]) -> dict:
    """An order on Wednesday 25 November 2026 (no Friday fee, no holiday rush)."""
    return {"id": order_id, "created_at": f"2026-11-25T{time}:00-05:00",
            "customer": {"id": "C-S", "tier": "regular"}, "ship_to": ship_to,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}


# Listed out of time order on purpose: H-1 (09:00) comes second, H-2 and H-3
# share 10:00 and keep their file order.
ORDERS = [
    order("H-2", "10:00", PHL, ("HEADLAMP", 1)),
    order("H-1", "09:00", PHL, ("HEADLAMP", 120)),
    order("H-3", "10:00", PHL, ("HEADLAMP", 200)),
    order("B-1", "11:00", ATL, ("BOTTLE-1L", 2)),
    order("P-1", "12:00", PHX, ("BOTTLE-1L", 1)),
    order("J-1", "12:30", BOS, ("JKT-RAIN-M", 1)),
    order("X-1", "13:00", BOS, ("NO-SUCH-ITEM", 1)),
]
# The demo playbook with Allentown closed to headlamps.
NO_PA_HEADLAMPS = (RULEBOOKS / "demo.playbook").read_text() + (
    '\nrule "No headlamps from Allentown"\n'
    '  when node.id is "PA-DC" and item.sku is "HEADLAMP"\n'
    '  then exclude node because "headlamp recall at Allentown"\n')


# H-1 again, as a retry might spell it: other key order, 120.0, defaults sent, spaces around the id
H1_AGAIN = {"lines": [{"qty": 120.0, "sku": "HEADLAMP"}], "ship_to": PHL, "tags": [], "pickup_node": None,
            "customer": {"tier": "regular", "id": "C-S"}, "created_at": "2026-11-25T09:00:00-05:00", "id": " H-1 "}
H1_OTHER = order("H-1", "09:00", PHL, ("HEADLAMP", 12))           # the same id, another order
# B-1 without a time: Southern Express on a Wednesday, Groundline on a Friday (the Friday pickup fee)
UNTIMED = {k: v for k, v in ORDERS[3].items() if k != "created_at"}
WEDNESDAY, FRIDAY = "2026-11-25T10:00:00-05:00", "2026-11-27T10:00:00-05:00"


def jsonl(documents) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def nodes(decision: dict) -> list[str]:
    return sorted(s["node"] for s in decision["shipments"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    here = tmp_path_factory.mktemp("simulate")
    (here / "orders.jsonl").write_text(jsonl(ORDERS))
    (here / "malformed.jsonl").write_text(
        jsonl(ORDERS[:2]) + "{this is not json\n" + jsonl(ORDERS[2:4]) + "[1, 2]\n"
        + json.dumps({"id": "Q-0", "lines": [{"sku": "HEADLAMP", "qty": 0}]}) + "\n" + jsonl(ORDERS[4:]))
    (here / "candidate.playbook").write_text(NO_PA_HEADLAMPS)
    (here / "repeats.jsonl").write_text(jsonl([*ORDERS, H1_AGAIN, ORDERS[5]]))
    (here / "conflict.jsonl").write_text(jsonl([*ORDERS[:3], H1_AGAIN, ORDERS[5], H1_OTHER,
                                                dict(ORDERS[5], lines=[{"sku": "JKT-RAIN-M", "qty": 2}])]))
    (here / "untimed.jsonl").write_text(jsonl([UNTIMED]))
    (here / "typo-stock.csv").write_text("node,sku,on_hand\nPA-DC,HEADLAMPS,5\n")
    return here


def demo_files(orders: Path) -> list[str]:
    return ["--playbook", str(RULEBOOKS / "demo.playbook"), "--network", str(RULEBOOKS / "network.json"),
            "--catalog", str(RULEBOOKS / "catalog.json"), "--stock", str(RULEBOOKS / "stock.csv"),
            "--orders", str(orders)]


def simulate_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["simulate", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---- the library ---------------------------------------------------------------------------

def test_time_order_is_stable_for_ties_and_puts_untimed_orders_last():
    untimed = {"id": "U-1", "lines": [{"sku": "HEADLAMP", "qty": 1}]}
    naive = dict(order("N-1", "08:00", PHL, ("HEADLAMP", 1)), created_at="2026-11-25T08:00:00")
    batch = [Order.model_validate(o) for o in [untimed, *ORDERS, naive]]
    ordered = [o.id for o in time_ordered(batch, "America/New_York")]
    # a time without an offset is read in the playbook's timezone (08:00 New York is before 09:00 -05:00)
    assert ordered == ["N-1", "H-1", "H-2", "H-3", "B-1", "P-1", "J-1", "X-1", "U-1"]


def test_metrics_on_a_hand_checked_order_set(demo):
    result = simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(),
                      [Order.model_validate(o) for o in ORDERS])
    decisions = {d["order_id"]: d for d in result.candidate.documents}
    assert [d["order_id"] for d in result.candidate.documents] == ["H-1", "H-2", "H-3", "B-1", "P-1", "J-1", "X-1"]
    costs = {k: d["cost"] for k, d in decisions.items() if d["status"] == "routed"}
    assert costs == {"H-1": 14.07, "H-2": 10.52, "B-1": 4.56, "P-1": 9.73, "J-1": 7.98}
    assert {k: d["shipments"][0]["distance_km"] for k, d in decisions.items() if d["status"] == "routed"} == \
        {"H-1": 78, "H-2": 1664, "B-1": 1, "P-1": 813, "J-1": 417}
    assert result.baseline is None and result.delta is None and result.differences == []
    assert result.candidate.metrics == {
        "orders": 7, "routed": 5, "held": 1, "errors": 1,
        "split_rate": 0.0, "shipments_per_order": 1.0,
        "total_cost": 46.86,                              # 14.07 + 10.52 + 4.56 + 9.73 + 7.98
        "mean_cost": 9.37,                                # 46.86 / 5
        "mean_distance_km": 594.6,                        # (78 + 1664 + 1 + 813 + 417) / 5
        "mean_days": 1.6,                                 # (1 + 3 + 1 + 2 + 1) / 5
        "units_shipped": 125, "store_units": 0,
        "node_usage": {"GA-DC": 1, "KC-DC": 1, "PA-DC": 2, "SLC-3PL": 1},
        # live stock 2,722 units, Allentown (the biggest warehouse) 1,020: 1,702 / 2,722 are hidden
        "hidden_stock_share": 0.6253,
    }


def test_reservations_make_later_orders_fall_back_or_hold(demo):
    result = simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(),
                      [Order.model_validate(o) for o in ORDERS[:3]])
    h1, h2, h3 = result.candidate.documents
    # H-1 (09:00) takes all 120 of Allentown's headlamps, so H-2 (listed first, 10:00) falls back to
    # Kansas City; H-3 wants 200 and only 89 + 10 + 10 are left
    assert (h1["order_id"], nodes(h1), h1["shipments"][0]["lines"]) == \
        ("H-1", ["PA-DC"], [{"sku": "HEADLAMP", "qty": 120}])
    assert (h2["order_id"], nodes(h2)) == ("H-2", ["KC-DC"])
    assert h3["status"] == "held"
    assert "200 wanted, 109 available" in h3["reason"]
    # on its own (fresh stock), H-2 ships from Allentown
    alone = simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), [Order.model_validate(ORDERS[0])])
    assert nodes(alone.candidate.documents[0]) == ["PA-DC"]


def test_simulate_leaves_the_stock_it_is_given_alone(demo):
    stock = demo.stock()
    before = {k: list(v) for k, v in stock.levels.items()}
    simulate(demo.rulebook, demo.network, demo.catalog, stock, [Order.model_validate(o) for o in ORDERS])
    assert stock.levels == before


def test_capacity_starts_afresh_each_local_day(demo):
    from engine.simulation import replay
    stock = demo.stock()
    orders = [Order.model_validate(order("D-1", "10:00", PHL, ("HEADLAMP", 1))),
              Order.model_validate(dict(order("D-2", "10:00", PHL, ("HEADLAMP", 1)),
                                        created_at="2026-11-26T10:00:00-05:00"))]
    stock.used_today["PA-DC"] = 500
    replay(demo.rulebook, demo.network, demo.catalog, stock, orders)
    assert stock.used_today == {"PA-DC": 1}          # the second day forgot the first day's units


def test_capacity_day_of_an_untimed_order_is_the_day_of_now(demo):
    stock = demo.stock()
    orders = [Order.model_validate(order("D-1", "10:00", PHL, ("HEADLAMP", 1))),
              Order.model_validate({k: v for k, v in order("D-2", "10:00", PHL, ("HEADLAMP", 1)).items()
                                    if k != "created_at"})]
    replay(demo.rulebook, demo.network, demo.catalog, stock, orders, now=dt.datetime.fromisoformat(FRIDAY))
    assert stock.used_today == {"PA-DC": 1}          # D-2 was placed on Friday: Wednesday's unit is forgotten


def test_an_untimed_order_read_on_an_earlier_day_finds_that_days_units(demo):
    from engine.simulation import replay
    stock = demo.stock()
    orders = [Order.model_validate(order("D-1", "10:00", PHL, ("HEADLAMP", 1))),          # Wednesday
              Order.model_validate(dict(order("D-2", "10:00", PHL, ("HEADLAMP", 1)),
                                        created_at="2026-11-26T10:00:00-05:00")),           # Thursday
              Order.model_validate({k: v for k, v in order("D-3", "10:00", PHL, ("HEADLAMP", 1)).items()
                                    if k != "created_at"})]                                # read on Wednesday
    replay(demo.rulebook, demo.network, demo.catalog, stock, orders,
           now=dt.datetime.fromisoformat("2026-11-25T15:00:00-05:00"))
    assert stock.used_today == {"PA-DC": 2}          # Wednesday: D-1 and D-3 (Thursday's D-2 not counted)


# ---- as the service takes orders: repeats skipped, one id one order, one time for the untimed ----------

def test_exact_repeats_are_left_out_and_counted(demo):
    batch = [Order.model_validate(o) for o in [*ORDERS, H1_AGAIN, ORDERS[5]]]
    kept, repeats = distinct_orders(batch)
    assert [o.id for o in kept] == [o["id"] for o in ORDERS] and repeats == [(7, 1), (8, 5)]
    result = simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), batch)
    assert [d["order_id"] for d in result.candidate.documents] == ["H-1", "H-2", "H-3", "B-1", "P-1", "J-1", "X-1"]
    body = result.to_json()
    assert (body["orders"], body["repeats"], body["now"]) == (7, 2, None)
    # H-1's 120 headlamps are taken once: the metrics of the hand-checked set
    assert body["candidate"]["metrics"]["units_shipped"] == 125
    assert body["candidate"]["metrics"]["total_cost"] == 46.86


def test_an_id_given_to_a_different_order_is_an_error_naming_both(demo):
    batch = [Order.model_validate(o) for o in [*ORDERS, H1_AGAIN, H1_OTHER, dict(ORDERS[0], id="J-1")]]
    with pytest.raises(OrderConflict) as raised:
        distinct_orders(batch)
    # compared with the first order that had the id (the one the service keeps), every conflict named
    assert raised.value.conflicts == [(8, 1, "H-1"), (9, 5, "J-1")]
    assert str(raised.value) == ("orders.8: order H-1 was already given as orders.1 with different content; "
                                 "orders.9: order J-1 was already given as orders.5 with different content")
    with pytest.raises(OrderConflict):
        simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), batch)


def test_untimed_orders_are_read_at_now_in_both_runs(demo):
    untimed = [Order.model_validate(UNTIMED)]

    def run(now: str):
        return simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), untimed,
                        with_nodes=["PHX-STORE"], now=dt.datetime.fromisoformat(now))

    wednesday, friday = run(WEDNESDAY), run(FRIDAY)
    for result, carrier in ((wednesday, "SOUTHX"), (friday, "GROUNDLINE")):
        # the candidate (with the Phoenix store) and the baseline read the order on the same day
        assert [s["carrier"] for s in result.candidate.documents[0]["shipments"]] == [carrier]
        assert [s["carrier"] for s in result.baseline.documents[0]["shipments"]] == [carrier]
        assert result.differences == []
    assert friday.to_json()["now"] == FRIDAY and friday.untimed == 1
    # without an offset: in the playbook's timezone
    assert run("2026-11-27T10:00:00").to_json()["now"] == FRIDAY
    timed = simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), [Order.model_validate(ORDERS[3])],
                     now=dt.datetime.fromisoformat(FRIDAY))
    assert timed.to_json()["now"] is None                            # no order was read at it
    with pytest.raises(ValueError, match="some orders have no created_at: give now, the moment to read them at"):
        simulate(demo.rulebook, demo.network, demo.catalog, demo.stock(), untimed)


def test_what_if_network_switches_nodes_and_refuses_unknown_ones(demo):
    changed, live = what_if_network(demo.network, ["PHX-STORE"], ["PA-DC"])
    assert changed.node("PA-DC").status == "off" and demo.network.node("PA-DC").status == "live"
    assert live == {"PHX-STORE"}
    assert what_if_network(demo.network) == (demo.network, frozenset())
    with pytest.raises(WhatIfError) as raised:
        what_if_network(demo.network, ["NOPE"], ["PA-DC", "PA-DC-2"])
    assert raised.value.problems == [
        ("with_nodes.0", "unknown node 'NOPE': the network has no such node"),
        ("without_nodes.1", "unknown node 'PA-DC-2': the network has no such node")]
    with pytest.raises(WhatIfError, match="both switched on and switched off"):
        what_if_network(demo.network, ["PA-DC"], ["PA-DC"])


def test_outcome_ignores_shipment_order_and_changes_say_what_moved():
    a = {"status": "routed", "shipments": [
        {"node": "KC-DC", "carrier": "GROUNDLINE", "lines": [{"sku": "X", "qty": 1}]},
        {"node": "PA-DC", "carrier": "GROUNDLINE", "lines": [{"sku": "Y", "qty": 2}]}]}
    b = dict(a, shipments=list(reversed(a["shipments"])))
    assert outcome(a) == outcome(b)
    c = dict(a, shipments=[dict(a["shipments"][0], carrier="AIRJET"), a["shipments"][1]])
    assert changes(a, c) == ["carriers: KC-DC:GROUNDLINE, PA-DC:GROUNDLINE -> KC-DC:AIRJET, PA-DC:GROUNDLINE"]
    d = dict(a, shipments=[a["shipments"][0], dict(a["shipments"][1], lines=[{"sku": "Y", "qty": 1}])])
    assert changes(a, d) == ["quantities: 1 x X @ KC-DC, 2 x Y @ PA-DC -> 1 x X @ KC-DC, 1 x Y @ PA-DC"]
    assert changes(a, {"status": "held", "shipments": []}) == ["status: routed -> held",
                                                               "nodes: KC-DC, PA-DC -> -"]


# ---- the command, in process ----------------------------------------------------------------------

def test_against_lists_exactly_the_orders_that_differ(folder):
    body = simulate_json(*demo_files(folder / "orders.jsonl"), "--playbook", str(folder / "candidate.playbook"),
                         "--against", str(RULEBOOKS / "demo.playbook"))
    assert body["orders"] == 7 and body["skipped"] == []
    assert body["candidate"]["file"] == "candidate.playbook" and body["baseline"]["file"] == "demo.playbook"
    # without Allentown's 120 headlamps H-1 cannot be served (110 left elsewhere); nothing else changes
    assert body["differing"] == 1
    [difference] = body["differences"]
    assert difference["order_id"] == "H-1"
    assert difference["changes"] == ["status: routed -> held", "nodes: PA-DC -> -"]
    assert nodes(difference["baseline"]) == ["PA-DC"] and difference["candidate"]["status"] == "held"
    assert body["delta"]["routed"] == -1 and body["delta"]["held"] == 1
    assert body["delta"]["total_cost"] == -14.07
    assert body["delta"]["units_shipped"] == -120


def test_with_and_without_nodes_change_outcomes(folder):
    body = simulate_json(*demo_files(folder / "orders.jsonl"), "--with-node", "PHX-STORE",
                         "--without-node", "PA-DC")
    # the baseline is the same playbook on the network as it is
    assert body["baseline"]["version"] == body["candidate"]["version"]
    assert body["candidate"]["with_nodes"] == ["PHX-STORE"] and body["candidate"]["without_nodes"] == ["PA-DC"]
    differing = {d["order_id"]: d for d in body["differences"]}
    assert sorted(differing) == ["H-1", "J-1", "P-1"]
    assert differing["P-1"]["changes"] == ["nodes: SLC-3PL -> PHX-STORE"]     # the Phoenix store, tried live
    assert differing["J-1"]["changes"] == ["nodes: PA-DC -> GA-DC"]           # Allentown switched off
    assert differing["H-1"]["candidate"]["status"] == "held"
    assert body["candidate"]["metrics"]["store_units"] == 1
    # Phoenix's 40 units count as network stock; Atlanta (560) is now the biggest warehouse
    assert body["candidate"]["metrics"]["hidden_stock_share"] == round((1742 - 560) / 1742, 4)
    assert body["delta"]["hidden_stock_share"] == round(0.6785 - 0.6253, 4)


def test_malformed_lines_are_skipped_and_counted(folder):
    result = CliRunner().invoke(main, ["simulate", *demo_files(folder / "malformed.jsonl"), "--json"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["orders"] == 7
    assert [s["line"] for s in body["skipped"]] == [3, 6, 7]
    assert body["skipped"][1] == {"line": 6, "error": "not an order: a JSON list instead of an object"}
    assert result.stderr.splitlines()[0] == (
        f"steve: {folder / 'malformed.jsonl'}:3: warning: not valid JSON: Expecting property name enclosed in "
        "double quotes (line skipped)")
    assert "malformed.jsonl:7: warning: not a valid order: lines.0.qty:" in result.stderr


def test_repeated_lines_are_skipped_and_counted(folder):
    body = simulate_json(*demo_files(folder / "repeats.jsonl"), "--playbook", str(folder / "candidate.playbook"),
                         "--against", str(RULEBOOKS / "demo.playbook"))
    assert (body["orders"], body["repeats"], body["now"]) == (7, 2, None)
    # the same comparison as without the repeats: H-1 once, its 120 headlamps once
    assert [d["order_id"] for d in body["differences"]] == ["H-1"] and body["differing"] == 1
    assert body["baseline"]["metrics"]["units_shipped"] == 125 and body["delta"]["units_shipped"] == -120
    text = CliRunner().invoke(main, ["simulate", *demo_files(folder / "repeats.jsonl")])
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[:2] == [
        '7 orders replayed with demo.playbook ("Trailhead Outfitters")',
        "2 repeated order(s) skipped (the same id and the same order as an earlier line)"]


def test_untimed_orders_are_read_at_now(folder):
    files = demo_files(folder / "untimed.jsonl")
    friday = simulate_json(*files, "--now", FRIDAY)
    assert friday["now"] == FRIDAY
    assert friday["candidate"]["metrics"]["total_cost"] == 7.38              # Groundline: the Friday fee
    assert simulate_json(*files, "--now", "2026-11-25T10:00")["candidate"]["metrics"]["total_cost"] == 4.56
    text = CliRunner().invoke(main, ["simulate", *files, "--now", FRIDAY, "--with-node", "PHX-STORE"])
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[1] == \
        "1 order(s) without created_at read as placed at 2026-11-27T10:00:00-05:00 in both runs (--now sets it)"
    markdown = CliRunner().invoke(main, ["simulate", *files, "--now", FRIDAY, "--markdown"]).stdout
    assert "1 order(s) without created_at read as placed at 2026-11-27T10:00:00-05:00 (--now sets it)." in markdown
    bad = CliRunner().invoke(main, ["simulate", *files, "--now", "friday"])
    assert bad.exit_code == 2
    assert "Invalid value for '--now': 'friday' is not an ISO-8601 time like 2026-11-25T10:15:00-05:00" \
        in bad.stderr


class Ticking(dt.datetime):
    """A clock that moves on two days each time it is read, from Wednesday."""
    readings = 0

    @classmethod
    def now(cls, tz=None):
        cls.readings += 1
        return dt.datetime(2026, 11, 23 + 2 * cls.readings, 15, 0, 0, 123456, tzinfo=dt.timezone.utc)


def test_without_now_one_clock_reading_serves_every_order_and_both_runs(folder, monkeypatch):
    clock = types.SimpleNamespace(**{**vars(dt), "datetime": Ticking})
    import engine.facts
    import steve.simulate
    monkeypatch.setattr(engine.facts, "dt", clock)
    monkeypatch.setattr(steve.simulate, "dt", clock)
    monkeypatch.setattr(Ticking, "readings", 0)
    # the same playbook twice: only the time could make them differ
    body = simulate_json(*demo_files(folder / "untimed.jsonl"), "--against", str(RULEBOOKS / "demo.playbook"))
    assert Ticking.readings == 1
    assert body["now"] == "2026-11-25T15:00:00+00:00"                  # read once, to the second
    assert body["differing"] == 0
    assert body["candidate"]["metrics"]["total_cost"] == body["baseline"]["metrics"]["total_cost"] == 4.56


MARKDOWN = """\
### Steve simulation

7 orders replayed with candidate.playbook ("Trailhead Outfitters"), compared with demo.playbook ("Trailhead Outfitters").

| metric | baseline | candidate | change |
| --- | ---: | ---: | ---: |
| Orders | 7 | 7 | = |
| Routed | 5 | 4 | -1 |
| Held | 1 | 2 | +1 |
| Errors (bad orders) | 1 | 1 | = |
| Split-shipment rate | 0.0% | 0.0% | = |
| Shipments per order | 1.000 | 1.000 | = |
| Total shipping cost | $46.86 | $32.79 | -$14.07 |
| Mean shipping cost | $9.37 | $8.20 | -$1.17 |
| Mean distance | 594.6 km | 723.8 km | +129.2 km |
| Mean days | 1.60 | 1.75 | +0.15 |
| Units shipped | 125 | 5 | -120 |
| Units shipped from stores | 0 | 0 | = |
| Stock a single-warehouse view hides | 62.5% | 62.5% | = |

**1 order(s) decided differently**:

| order | baseline | candidate |
| --- | --- | --- |
| H-1 | PA-DC by GROUNDLINE (120 HEADLAMP) | held |
"""


def test_markdown_summary(folder):
    result = CliRunner().invoke(main, ["simulate", *demo_files(folder / "orders.jsonl"), "--markdown",
                                       "--playbook", str(folder / "candidate.playbook"),
                                       "--against", str(RULEBOOKS / "demo.playbook")])
    assert result.exit_code == 0, result.output
    assert result.stdout == MARKDOWN


def test_text_output_has_the_metrics_and_both_explanations(folder):
    result = CliRunner().invoke(main, ["simulate", *demo_files(folder / "orders.jsonl"),
                                       "--playbook", str(folder / "candidate.playbook"),
                                       "--against", str(RULEBOOKS / "demo.playbook")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "7 orders replayed with candidate.playbook" in out
    assert re.search(r"Split-shipment rate\s+│\s+0\.0% │\s+0\.0% │\s+= │", out)
    assert re.search(r"Total shipping cost\s+│\s+\$46\.86 │\s+\$32\.79 │\s+-\$14\.07 │", out)
    assert "1 order(s) decided differently:" in out
    assert "H-1: status: routed -> held; nodes: PA-DC -> -" in out
    assert "Order H-1: ROUTED" in out and "Order H-1: HELD" in out          # side by side
    assert "No headlamps from Allentown" in out
    assert "\x1b[" not in out                                                # no colour codes in a pipe


def test_html_report_is_self_contained(folder, tmp_path):
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["simulate", *demo_files(folder / "orders.jsonl"),
                                       "--playbook", str(folder / "candidate.playbook"),
                                       "--against", str(RULEBOOKS / "demo.playbook"), "--json",
                                       "--report", str(report)])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") == 3
    for caption in ("Shipments per node", "Shipping cost per routed order", "Days to deliver per routed order"):
        assert f"<figcaption>{caption}</figcaption>" in page
    assert "<h2>Orders decided differently (1)</h2>" in page
    assert '<tr id="order-H-1">' in page and "J-1" not in page.split("Orders decided differently")[1]
    assert "headlamp recall at Allentown" in page                           # the candidate's explanation
    assert "<td>Total shipping cost</td>" in page and "-$14.07" in page


def test_report_escapes_what_orders_say(tmp_path, folder):
    sneaky = dict(ORDERS[1], id="<script>alert(1)</script>")
    (tmp_path / "o.jsonl").write_text(jsonl([sneaky]))
    report = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["simulate", *demo_files(tmp_path / "o.jsonl"),
                                       "--playbook", str(folder / "candidate.playbook"),
                                       "--against", str(RULEBOOKS / "demo.playbook"), "--report", str(report)])
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ---- the command as a subprocess: exit codes and clean streams -------------------------------------------

def steve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(STEVE)] if STEVE.exists() else [sys.executable, "-m", "steve.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def ran(folder) -> dict[str, subprocess.CompletedProcess]:
    commands = {
        "plain": ["simulate", *demo_files(folder / "orders.jsonl")],
        "skip": ["simulate", *demo_files(folder / "malformed.jsonl"), "--json", "--progress"],
        "strict": ["simulate", *demo_files(folder / "malformed.jsonl"), "--strict", "--json"],
        "unknown node": ["simulate", *demo_files(folder / "orders.jsonl"), "--without-node", "PA-DX"],
        "both formats": ["simulate", *demo_files(folder / "orders.jsonl"), "--json", "--markdown"],
        "no orders file": ["simulate", *demo_files(folder / "missing.jsonl")],
        "stock typo": ["simulate", *demo_files(folder / "orders.jsonl"), "--stock", "typo-stock.csv"],
        "conflict": ["simulate", *demo_files(Path("conflict.jsonl")), "--json"],
    }
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {name: pool.submit(steve, *args, cwd=folder) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def test_exit_0_and_a_table(ran):
    assert ran["plain"].returncode == 0, ran["plain"].stderr
    assert "Shipments per node" in ran["plain"].stdout
    assert ran["plain"].stderr == ""


def test_a_malformed_line_never_crashes_and_json_stays_clean_with_progress(ran):
    result = ran["skip"]
    assert result.returncode == 0
    assert json.loads(result.stdout)["orders"] == 7                   # the progress bar went to stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("(line skipped)") == 3


def test_strict_fails_on_a_malformed_line(ran):
    result = ran["strict"]
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].endswith("malformed.jsonl:3: error: not valid JSON: Expecting property name enclosed in "
                             "double quotes")
    assert lines[-1] == "steve: 3 malformed line(s) in " + str(Path(ran["strict"].args[-3])) + \
        "; nothing simulated (--strict)"


def test_bad_options_and_files_are_clean_errors(ran):
    assert ran["unknown node"].returncode == 1
    assert ran["unknown node"].stderr == \
        "steve: --without-node: unknown node 'PA-DX': the network has no such node\n"
    assert ran["both formats"].returncode == 2
    assert "--json and --markdown cannot be used together" in ran["both formats"].stderr
    assert ran["no orders file"].returncode == 1
    assert ran["no orders file"].stderr.endswith("missing.jsonl: no such file\n")
    assert ran["stock typo"].returncode == 1
    assert ran["stock typo"].stdout == ""
    assert ran["stock typo"].stderr == ("steve: typo-stock.csv:2: unknown item 'HEADLAMPS': no sku or channel alias "
                                        'in the catalog has that name; did you mean "HEADLAMP"?\n')


def test_an_order_id_given_to_a_different_order_names_both_lines(ran):
    # line 4 repeats line 2 (skipped); line 6 is another order with H-1's id, line 7 with J-1's (line 5)
    assert ran["conflict"].returncode == 1
    assert ran["conflict"].stdout == ""
    assert ran["conflict"].stderr == (
        "steve: conflict.jsonl:6: order H-1 was already given on conflict.jsonl:2 with different content; "
        "an order id names one order (an exact repeat is skipped) (and 1 more problem)\n")


# ---- malformed input never crashes ------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"      # what str.splitlines splits on
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=40)
LINES = st.one_of(TEXT, JSONISH.map(json.dumps),
                  st.builds(lambda lines: json.dumps(dict(ORDERS[0], lines=lines)), JSONISH))


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, max_size=6))
def test_any_orders_file_is_read_without_raising(tmp_path_factory, lines):
    path = tmp_path_factory.getbasetemp() / "fuzz-orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    orders, skipped = read_orders(str(path))
    assert len(orders) + len(skipped) == sum(1 for line in lines if line.strip())
    assert all(s.line >= 1 and s.problem for s in skipped)
