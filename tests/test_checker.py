"""dsl.check: every problem at its exact line:column with its exact message,
the warnings, the order of the report, and the seed contract's playbooks."""

from __future__ import annotations

import pytest

import dsl
from conftest import SEED

NETWORK = dsl.KnownIds(nodes=frozenset({"OH-DC", "TX-DC", "NJ-DC"}),
                       carriers=frozenset({"PARCELCO", "REGIONALX", "FASTSHIP"}))


def problems(text: str, known: dsl.KnownIds | None = None, file: str = "t.playbook"):
    return [(d.line, d.column, d.severity, d.message) for d in dsl.check(text, file, known)]


def one_rule(condition: str, action: str = 'hold order because "x"') -> str:
    return f'playbook "t"\nrule "r"\n  when {condition}\n  then {action}\n'


def rule_problems(condition: str, action: str = 'hold order because "x"'):
    """Problems of a one-rule playbook whose condition is on line 3."""
    return problems(one_rule(condition, action))


# ---- a playbook with one mistake per statement ------------------------------------------

MISTAKES = '''\
# Each statement below the header carries exactly one mistake.
playbook "Mistakes"
timezone "Europe/Berln"
split penalty $2
split penalty $3

group "hubs" is nodes "OH-DC", "TX-DX"

rule "Fact name typo"
  when custmor.tier is "VIP"
  then optimize speed

rule "Field name typo"
  when order.totl > $100
  then ship complete

rule "Weekday typo"
  when today is fridya
  then allow vendors

rule "Money compared with a weight"
  when item.weight > $3
  then allow vendors

rule "Distance without a unit"
  when distance > 800
  then avoid node

rule "Node action on the order"
  when order.total > $500
  then prefer node by $2

rule "Unknown group"
  when node in group "hub"
  then exclude node

rule "Unknown node"
  when order.channel is "web"
  then route to node "NJ-DX"

rule "Unknown carrier"
  when order.channel is "phone"
  then use carrier "FASTSHP"

rule "Changing the order id"
  when order.channel is "kiosk"
  then set order.id to "K1"

rule "Fact name typo"
  when customer.orders > 10
  then tag customer "regular"

rule "Two currencies"
  when order.total > 50 EUR
  then hold order because "foreign"

rule "Forgot then"
  when order.total > $1000
'''

MISTAKES_FOUND = [
    (3, 10, "error", 'unknown timezone "Europe/Berln"; did you mean "Europe/Berlin"?'),
    (5, 1, "error", "`split penalty` is set twice: first at line 4, again here; keep one"),
    (7, 32, "error", 'unknown node "TX-DX"; did you mean "TX-DC"?'),
    (10, 8, "error", 'unknown fact "custmor"; did you mean "customer"?'),
    (14, 14, "error", 'unknown field "totl" of order; did you mean "total"?'),
    (18, 17, "error", 'unknown weekday "fridya"; did you mean "friday"?'),
    (22, 22, "error", "cannot compare item.weight (a weight) with $3 (money); write a weight such as 20 kg"),
    (26, 19, "error", "distance is a distance: give a unit, e.g. 800 km (km or mi)"),
    (31, 8, "error", "`prefer` needs a node and an item, but this rule looks only at the order; add a "
                     "condition on node or stock (e.g. when node.kind is store), or name the node: "
                     'prefer node "ID"'),
    (34, 22, "error", 'unknown group "hub"; did you mean "hubs"?'),
    (39, 22, "error", 'unknown node "NJ-DX"; did you mean "NJ-DC"?'),
    (43, 20, "error", 'unknown carrier "FASTSHP"; did you mean "FASTSHIP"?'),
    (47, 12, "error", "order.id cannot be changed"),
    (49, 6, "error", 'rule "Fact name typo" is defined twice (first on line 9); rule names must be unique'),
    (54, 22, "error", "one currency per playbook: this is EUR, but line 4 uses $ (dollars)"),
    (57, 6, "error", 'rule "Forgot then" has no `then`: say what it does, e.g. then avoid node because "..."'),
]


def test_every_mistake_at_its_place_with_its_message():
    assert problems(MISTAKES, NETWORK, "m.playbook") == MISTAKES_FOUND


def test_mistakes_are_reported_with_file_caret_and_source_line():
    diagnostics = dsl.check(MISTAKES, "m.playbook", NETWORK)
    assert diagnostics[3].format() == (
        'm.playbook:10:8: error: unknown fact "custmor"; did you mean "customer"?\n'
        '      when custmor.tier is "VIP"\n'
        "           ^^^^^^^")
    assert diagnostics[4].format().splitlines()[2] == "                 ^^^^"


def test_without_a_network_ids_are_not_checked():
    found = problems(MISTAKES, None, "m.playbook")
    assert found == [p for p in MISTAKES_FOUND if "unknown node" not in p[3] and "unknown carrier" not in p[3]]


def test_diagnostics_are_sorted_by_position():
    diagnostics = dsl.check(MISTAKES, "m.playbook", NETWORK)
    assert [(d.line, d.column) for d in diagnostics] == sorted((d.line, d.column) for d in diagnostics)


def test_warnings_and_errors_are_sorted_together():
    text = one_rule("distance < 0 km and distance > 5", "exclude node")
    assert problems(text) == [
        (3, 8, "warning", 'rule "r" can never fire: no value of distance satisfies "distance < 0 km" '
                          "together with the rest of the condition"),
        (3, 39, "error", "distance is a distance: give a unit, e.g. 5 km (km or mi)"),
    ]


# ---- duplicates point at both places ---------------------------------------------------------

def test_duplicate_setting_points_at_both():
    (dup,) = [d for d in dsl.check(MISTAKES, "m.playbook", NETWORK) if "set twice" in d.message]
    assert (dup.line, dup.column) == (5, 1)
    assert [(s.line, s.column) for s in dup.related] == [(4, 1)]
    assert dup.to_json()["related"] == [{"file": "m.playbook", "line": 4, "column": 1}]


def test_duplicate_rule_points_at_both():
    (dup,) = [d for d in dsl.check(MISTAKES, "m.playbook", NETWORK) if "defined twice" in d.message]
    assert [(s.line, s.column) for s in dup.related] == [(9, 1)]


def test_duplicate_group():
    text = 'playbook "t"\ngroup "g" is nodes "A"\ngroup "g" is nodes "B"\n'
    assert problems(text) == [(3, 7, "error", 'group "g" is defined twice (first on line 2)')]


@pytest.mark.parametrize("setting, again", [
    ('timezone "UTC"', 'timezone "America/Chicago"'),
    ("optimize cost", "optimize speed"),
    ("a day saved is worth $1", "a day saved is worth $2"),
    ("max shipments 2", "max shipments 3"),
])
def test_every_setting_only_once(setting, again):
    found = problems(f'playbook "t"\n{setting}\n{again}\n')
    assert len(found) == 1
    assert found[0][:3] == (3, 1, "error")
    assert found[0][3].endswith("is set twice: first at line 2, again here; keep one")


# ---- the header -------------------------------------------------------------------------------

def test_missing_header():
    assert problems('optimize cost\n') == [
        (1, 1, "error", 'a playbook starts with its name, e.g. playbook "Acme Outfitters"')]


def test_header_not_first_and_twice():
    assert problems('optimize cost\nplaybook "a"\n') == [
        (2, 1, "error", "the playbook header must be the first statement")]
    assert problems('playbook "a"\nplaybook "b"\n') == [
        (2, 1, "error", "the playbook is already named on line 1")]


# ---- conditions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("condition, column, message", [
    ('custmer.tier is "VIP"', 8, 'unknown fact "custmer"; did you mean "customer"?'),
    ('customer.teir is "VIP"', 17, 'unknown field "teir" of customer; did you mean "tier"?'),
    ('order.shipto.state is "FL"', 14, 'unknown field "shipto.state" of order; did you mean "ship_to.state"?'),
    ("today is tusday", 17, 'unknown weekday "tusday"; did you mean "tuesday"?'),
    ("today after tuesday", 20, "`after` needs a date here, e.g. 2026-11-27"),
    ("today is 2026-02-30", 17, "2026-02-30 is not a date on the calendar (the day is out of range for month)"),
    ("now after 25:00", 18, "25:00 is not a time of day (00:00 to 23:59)"),
    ("distance > $20", 19, "cannot compare distance (a distance) with $20 (money); write a distance such as 1500 km"),
    ('order.total > "100"', 22,
     'cannot compare order.total (money) with "100" (text); write money such as $4.50'),
    ("order.weight > 5", 23, "order.weight is a weight: give a unit, e.g. 5 kg (kg or lb)"),
    ("order.channel is web", 25, 'write text in double quotes: "web"'),
    ('order.ship_to.state > "A"', 28, '"order.ship_to.state" is text; it cannot be compared with >'),
    ("order.total after $5", 20, "`after` compares days and times (today, now), not money"),
    ('order.tags is "gift"', 19, 'tags are tested with `has tag`, e.g. order has tag "gift"'),
    ('order.total has tag "x"', 20, '"order.total" has no tags; `has tag` works on order, customer, item and node'),
    ('stock has tag "x"', 14, '"stock" has no tags; `has tag` works on order, customer, item and node'),
    ("node.kind is shop", 21, 'unknown node kind "shop"; kinds are: warehouse, store, 3pl, vendor, transit'),
    ("node.kind is stor", 21, 'unknown node kind "stor"; did you mean "store"?'),
    ("order.delivery is pikup", 26, 'order.delivery is one of ship, pickup, not pikup; did you mean "pickup"?'),
    ('distance.km > 5 km', 8, '"distance" has no fields; compare it directly, e.g. distance > 1500 km'),
    ("stock > 2", 8, '"stock" needs a field, e.g. stock.on_hand'),
    ("node.state is order.total", 22, "cannot compare node.state (text) with order.total (money)"),
])
def test_condition_errors(condition, column, message):
    assert rule_problems(condition) == [(3, column, "error", message)]


def test_weekday_words_and_units_that_are_fine():
    for condition in ("today is weekend", "today is not weekday", "today is SUNDAY",
                      "today between 2026-11-27 and 2026-12-01", "now after 15:00",
                      "distance > 900 mi", "transit > 36 hours", "transit > 2",
                      "item.weight <= 5 lb", "node.load > 0.8", "node.load > 80%",
                      'node.kind is "store"', "node.kind is 3pl", "node.state is order.ship_to.state",
                      'node.state in order.ship_to.state, "CA"', "order.service is express",
                      'customer has tag "vip" or order has no tag "gift"'):
        assert rule_problems(condition) == [], condition


# ---- actions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, message", [
    ("keep 2 units", "`keep` needs a node and an item, but this rule looks only at the order; add a "
                     "condition on node or stock (e.g. when node.kind is store)"),
    ("exclude node", "`exclude` needs a node and an item, but this rule looks only at the order; add a "
                     "condition on node or stock (e.g. when node.kind is store), or name the node: "
                     'exclude node "ID"'),
    ("avoid node", "`avoid` needs a node and an item, but this rule looks only at the order; add a "
                   "condition on node or stock (e.g. when node.kind is store), or name the node: "
                   'avoid node "ID"'),
])
def test_candidate_action_in_order_scope(action, message):
    assert rule_problems('customer.tier is "VIP"', action) == [(4, 8, "error", message)]


def test_a_misspelt_fact_is_one_error_not_two():
    # the rule's scope is unknown once a fact is: no knock-on "looks only at the order"
    assert rule_problems("nod.kind is store", "exclude node") == [
        (3, 8, "error", 'unknown fact "nod"; did you mean "node"?')]


def test_in_group_tests_a_node():
    text = 'playbook "t"\ngroup "g" is nodes "A"\n' + one_rule('order.total in group "g"').split("\n", 1)[1]
    assert problems(text) == [(4, 20, "error", '`in group` tests a node: write node in group "..."')]


def test_candidate_action_in_line_scope():
    found = rule_problems('item.category is "boots"', "keep 1 unit")
    assert found == [(4, 8, "error", "`keep` needs a node and an item, but this rule looks only at "
                      "order lines but no node; add a condition on node or stock (e.g. when node.kind is store)")]


def test_candidate_actions_with_a_node_in_the_condition_are_fine():
    for action in ("keep 2 units", "exclude node", "avoid node", "prefer node by $1", "penalize node by $1"):
        assert rule_problems("stock.available <= 2", action) == [], action


def test_named_node_actions_are_fine_in_order_scope():
    for action in ('exclude node "OH-DC"', 'avoid node "OH-DC"', 'prefer node "OH-DC" by $1',
                   'penalize node "OH-DC" by $2', 'route to node "OH-DC"'):
        assert problems(one_rule('customer.tier is "VIP"', action), NETWORK) == [], action


@pytest.mark.parametrize("action, column, message", [
    ("set order.id to \"K1\"", 12, "order.id cannot be changed"),
    ('set order.tags to "x"', 12, "order.tags cannot be changed; use tag order/customer"),
    ('set node.kind to store', 12, "`set` changes a field of the order or the customer "
                                   "(e.g. set order.priority to 1), not node.kind"),
    ("set customer.tier to 5", 29, 'cannot set customer.tier (text) to 5 (a number); '
                                   'write text such as "text"'),
    ("set customer.tier to order.total", 29, "cannot set customer.tier (text) to order.total (money)"),
    ("set order.lane to fast", 26, 'write text in double quotes: "fast"'),
    ("max shipments 0", 22, "max shipments takes a whole number of at least 1"),
    ("keep 1.5 units", 13, "keep takes a whole number of at least 0"),
    ("penalize node by -$2", 25, "the amount cannot be negative (use prefer instead of a negative penalty)"),
    ("prefer node by -$2", 23, "the amount cannot be negative (use penalize instead of a negative preference)"),
    ('penalize node "OH-DC" by -$2', 33, "the amount cannot be negative (use prefer instead of a negative penalty)"),
    ('surcharge carrier "PARCELCO" by -$2', 40, "the amount cannot be negative"),
    ("split penalty -$1", 22, "the amount cannot be negative"),
    ('hold order because ""', 8, "the reason after `because` is empty"),
    ('tag order ""', 18, "a tag cannot be empty"),
])
def test_action_errors(action, column, message):
    assert rule_problems("stock.available <= 2", action) == [(4, column, "error", message)]


def test_unknown_ids_with_did_you_mean():
    text = ('playbook "t"\ngroup "g" is nodes "OH-DX"\nrule "r"\n  when order.total > $5\n'
            '  then exclude node "TX-DX"\n   and use carrier "PARCELC"\n   and avoid carrier "XYZ"\n'
            '   and surcharge carrier "REGIONAL" by $1\n')
    assert problems(text, NETWORK) == [
        (2, 20, "error", 'unknown node "OH-DX"; did you mean "OH-DC"?'),
        (5, 21, "error", 'unknown node "TX-DX"; did you mean "TX-DC"?'),
        (6, 20, "error", 'unknown carrier "PARCELC"; did you mean "PARCELCO"?'),
        (7, 22, "error", 'unknown carrier "XYZ"'),
        (8, 26, "error", 'unknown carrier "REGIONAL"; did you mean "REGIONALX"?'),
    ]


def test_unknown_node_ids_in_conditions_and_groups():
    # text compared with node.id or order.pickup_node names a node, as
    # `exclude node "ID"` does: checked against the network the same way
    text = '''playbook "t"
group "g" is nodes where node.id is "TX-DX" or node.kind is store
rule "r"
  when node.id in "OH-DX", "NJ-DC" or node.id = "BER-WX" or node.id is not one of "TX-DC", "XX"
  then exclude node
rule "s"
  when order.pickup_node != "NJ-DX" and node.id is order.pickup_node
  then set order.pickup_node to "OH-DCC"
'''
    assert problems(text, NETWORK) == [
        (2, 37, "error", 'unknown node "TX-DX"; did you mean "TX-DC"?'),
        (4, 19, "error", 'unknown node "OH-DX"; did you mean "OH-DC"?'),
        (4, 49, "error", 'unknown node "BER-WX"'),
        (4, 92, "error", 'unknown node "XX"'),
        (7, 29, "error", 'unknown node "NJ-DX"; did you mean "NJ-DC"?'),
        (8, 33, "error", 'unknown node "OH-DCC"; did you mean "OH-DC"?'),
    ]
    assert problems(text) == []


@pytest.mark.parametrize("settings, network, found", [
    ('currency "EUR"\nsplit penalty 4 EUR\n', "USD",
     [(2, 10, "warning", "the playbook's currency is EUR, but the network's currency is USD: Steve does not "
                       "convert amounts, so write them in USD")]),
    # without the setting, the first amount written fixes the playbook's currency
    ("split penalty 4 GBP\nmax shipments 2\n", "usd",
     [(2, 15, "warning", "this amount is in GBP and fixes the playbook's currency, but the network's currency "
                       "is USD: Steve does not convert amounts, so write them in USD")]),
    ("split penalty $4\n", "EUR",
     [(2, 15, "warning", "this amount is in $ (dollars) and fixes the playbook's currency, but the network's "
                       "currency is EUR: Steve does not convert amounts, so write them in EUR")]),
    ("split penalty $4\n", "CAD", []),                  # $ is a dollar: it goes with a CAD network
    ('currency "EUR"\nsplit penalty 4 EUR\n', "EUR", []),
    ('currency "EUR"\nsplit penalty 4 EUR\n', None, []),  # a network that does not say: not checked
    ("max shipments 2\n", "EUR", []),                   # no money at all
])
def test_the_playbook_currency_is_the_networks(settings, network, found):
    known = dsl.KnownIds(NETWORK.nodes, NETWORK.carriers, network)
    assert problems(f'playbook "t"\n{settings}', known) == found
    assert problems(f'playbook "t"\n{settings}') == []


def test_unknown_group_without_any_groups():
    assert rule_problems("order.total > $5", 'exclude group "west"') == [
        (4, 22, "error", 'unknown group "west"; define it first: group "name" is nodes "ID", ...')]


def test_groups_may_only_use_groups_above_them():
    text = ('playbook "t"\ngroup "a" is nodes where node in group "b"\ngroup "b" is nodes "X"\n'
            'group "c" is nodes where node in group "c"\n'
            'group "d" is nodes where node.kind is store and node not in group "b"\n')
    found = dsl.check(text)
    assert [(d.line, d.column, d.message) for d in found] == [
        (2, 40, 'group "b" is defined below, on line 3; a group can only use the groups defined above it'),
        (4, 40, 'group "c" cannot be defined in terms of itself'),
    ]
    assert [(s.line, s.column) for s in found[0].related] == [(3, 1)]


def test_a_group_condition_looks_at_nodes_only():
    assert problems('playbook "t"\ngroup "g" is nodes where order.total > $5\n') == [
        (2, 26, "error", 'a group is a set of nodes: its condition can only look at node fields, '
                         'not "order.total"')]
    # nor name another fact as a value: `exclude group` would test it on the node alone
    assert problems('playbook "t"\ngroup "g" is nodes where node.state is order.ship_to.state\n') == [
        (2, 40, "error", 'a group is a set of nodes: its condition can only look at node fields, '
                         'not "order.ship_to.state"')]
    assert problems('playbook "t"\ngroup "g" is nodes where node.handling < cost\n') == [
        (2, 42, "error", 'a group is a set of nodes: its condition can only look at node fields, not "cost"')]
    assert problems('playbook "t"\ngroup "g" is nodes where node.state is node.region\n') == []


# ---- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, column, message", [
    ('timezone "America/Chicgo"', 10, 'unknown timezone "America/Chicgo"; did you mean "America/Chicago"?'),
    ('timezone "Mars"', 10, 'unknown timezone "Mars"; use a name like "America/Chicago" or "UTC"'),
    ("max shipments 0", 15, "max shipments must be a whole number of at least 1"),
    ("max shipments 2.5", 15, "max shipments must be a whole number of at least 1"),
    ("split penalty -$1", 15, "split penalty cannot be negative"),
    ('currency "dollars"', 10, 'currency is a three-letter code such as "USD"'),
])
def test_setting_errors(setting, column, message):
    assert problems(f'playbook "t"\n{setting}\n') == [(2, column, "error", message)]


def test_two_currencies():
    text = ('playbook "t"\nsplit penalty 4 EUR\nrule "r"\n  when order.total > 50 GBP\n'
            "  then ship complete\n")
    (error,) = dsl.check(text)
    assert (error.line, error.column, error.message) == (
        4, 22, "one currency per playbook: this is GBP, but line 2 uses EUR")
    assert [(s.line, s.column) for s in error.related] == [(2, 15)]


def test_dollar_amounts_are_dollars():
    euro = 'playbook "t"\ncurrency "EUR"\nrule "r"\n  when order.total > $50\n  then ship complete\n'
    assert problems(euro) == [
        (4, 22, "error", "one currency per playbook: this is $ (dollars), but line 2 uses EUR")]
    canadian = 'playbook "t"\ncurrency "CAD"\nsplit penalty $2\nrule "r"\n  when order.total > 50 CAD\n' \
               "  then ship complete\n"
    assert problems(canadian) == []
    # $ first, then USD and CAD: the first code written decides between them
    mixed = 'playbook "t"\nsplit penalty $2\nrule "r"\n  when order.total > 5 USD and order.total < 9 CAD\n' \
            "  then ship complete\n"
    assert problems(mixed) == [(4, 46, "error", "one currency per playbook: this is CAD, but line 4 uses USD")]


def test_priority_must_be_whole():
    text = 'playbook "t"\nrule "r"\n  priority 1.5\n  then ship complete\n'
    assert problems(text) == [(3, 3, "error", "priority is a whole number, e.g. priority 10 (not 1.5)")]
    assert problems(text.replace("1.5", "-3")) == []


# ---- fields made by `set` ---------------------------------------------------------------------------

def test_set_fields_become_known():
    text = ('playbook "t"\nrule "lane"\n  when order.total > $5\n  then set order.lane to "fast"\n'
            'rule "use lane"\n  when order.lane is "fast" and order.lnae is "slow"\n  then ship complete\n'
            'rule "wrong kind"\n  when order.lane > 3\n  then ship complete\n')
    assert problems(text) == [
        (6, 39, "error", 'unknown field "lnae" of order; did you mean "lane"?'),
        (9, 19, "error", '"order.lane" is text; it cannot be compared with >'),
    ]


def test_a_set_field_takes_the_kind_of_its_value():
    text = ('playbook "t"\nrule "a"\n  then set customer.budget to order.total\n'
            'rule "b"\n  when customer.budget > $100\n  then optimize speed\n'
            'rule "c"\n  when customer.budget > 5 km\n  then optimize speed\n')
    assert problems(text) == [
        (8, 26, "error", "cannot compare customer.budget (money) with 5 km (a distance); "
                         "write money such as $4.50")]


# ---- warnings ------------------------------------------------------------------------------------------

def test_two_rules_deciding_the_objective_at_the_same_priority():
    text = ('playbook "t"\nrule "VIPs"\n  when customer.tier is "VIP"\n  then optimize speed\n'
            'rule "Big orders"\n  when order.total > $500\n  then optimize cost\n')
    (warning,) = dsl.check(text)
    assert (warning.line, warning.column, warning.severity) == (7, 8, "warning")
    assert warning.message == (
        'rules "VIPs" (line 2) and "Big orders" (line 5) both decide the objective with priority 0; '
        "when both fire, the later one in the file wins (give one a higher priority to make the "
        "choice explicit)")
    assert [(s.line, s.column) for s in warning.related] == [(4, 8)]


def test_no_conflict_warning_for_different_priorities_or_the_same_choice():
    different = ('playbook "t"\nrule "VIPs"\n  priority 10\n  when customer.tier is "VIP"\n'
                 '  then optimize speed\nrule "Big orders"\n  when order.total > $500\n  then optimize cost\n')
    same = ('playbook "t"\nrule "VIPs"\n  when customer.tier is "VIP"\n  then optimize speed\n'
            'rule "Big orders"\n  when order.total > $500\n  then optimize speed\n')
    assert problems(different) == []
    assert problems(same) == []


def test_conflicting_carrier_choice():
    text = ('playbook "t"\nrule "a"\n  when order.channel is "web"\n  then use carrier "A"\n'
            'rule "b"\n  when order.channel is "app"\n  then use carrier "B"\n')
    assert [p[:3] for p in problems(text)] == [(7, 8, "warning")]
    assert "both decide the carrier with priority 0" in problems(text)[0][3]


@pytest.mark.parametrize("condition, message", [
    ("distance < 0 km", 'rule "r" can never fire: distance is never < 0 km'),
    ("stock.available < 0", 'rule "r" can never fire: stock.available is never < 0'),
    # a rule only ever sees nodes that hold some of the item
    ("stock.available <= 0", 'rule "r" can never fire: stock.available is never <= 0'),
    ("item.qty < 1", 'rule "r" can never fire: item.qty is never < 1'),
    ("order.total > $100 and order.total < $50",
     'rule "r" can never fire: no value of order.total satisfies "order.total < $50" together with '
     "the rest of the condition"),
    ('customer.tier is "A" and customer.tier is "B"', 'rule "r" can never fire: customer.tier cannot be '
                                                      'both "A" and "B"'),
])
def test_rules_that_can_never_fire(condition, message):
    assert rule_problems(condition) == [(3, 8, "warning", message)]


@pytest.mark.parametrize("condition, column, message", [
    ("today between 2026-12-01 and 2026-11-01", 14,
     "this range is empty: 2026-12-01 is after 2026-11-01; the smaller bound comes first: "
     "today between 2026-11-01 and 2026-12-01"),
    # a range of times does not wrap past midnight (the engine compares minutes after midnight)
    ("now between 22:00 and 06:00", 12,
     "this range is empty: 22:00 is after 06:00; times of day do not wrap past midnight: for a range "
     "across midnight write (now >= 22:00 or now <= 06:00)"),
    ("order.total between $100 and $50", 20,
     "this range is empty: $100 is more than $50; the smaller bound comes first: "
     "order.total between $50 and $100"),
    # compared in one unit: 900 mi is 1448 km
    ("distance between 900 mi and 1000 km", 17,
     "this range is empty: 900 mi is more than 1000 km; the smaller bound comes first: "
     "distance between 1000 km and 900 mi"),
    # wherever the test is: under `or` and `not` too
    ('customer.tier is "VIP" or not (item.margin between 40% and 0.3)', 51,
     "this range is empty: 40% is more than 0.3; the smaller bound comes first: "
     "item.margin between 0.3 and 40%"),
])
def test_a_range_with_its_bounds_the_wrong_way_round_is_empty(condition, column, message):
    assert rule_problems(condition) == [(3, column, "warning", message)]


def test_an_empty_range_in_a_group():
    text = 'playbook "t"\ngroup "busy" is nodes where node.load between 90% and 80%\n'
    assert problems(text) == [(2, 39, "warning", "this range is empty: 90% is more than 80%; the smaller bound "
                                                 "comes first: node.load between 80% and 90%")]


def test_ranges_that_are_not_empty_get_no_warning():
    for condition in ("today between 2026-11-01 and 2026-12-01", "now between 06:00 and 06:00",
                      "order.total between $5 and order.total", "distance between 1000 km and 900 mi",
                      "transit between 36 hours and 2"):
        assert rule_problems(condition) == [], condition
    # a bound that is already an error gets no warning besides
    assert rule_problems("today between 2026-02-30 and 2026-01-01") == [
        (3, 22, "error", "2026-02-30 is not a date on the calendar (the day is out of range for month)")]


def test_rules_that_can_fire_get_no_warning():
    for condition in ("order.total > $50 and order.total < $100", "order.total >= $50 and order.total <= $50",
                      'customer.tier is "A" or customer.tier is "B"', "distance <= 0 km", "stock.available <= 1",
                      'customer.tier is "A" and customer.tier is "A"', "order.total < $0 or order.total > $1"):
        assert [p for p in rule_problems(condition) if p[2] == "warning"] == [], condition


def test_warnings_do_not_stop_compiling():
    rulebook = dsl.compile(one_rule("distance < 0 km", "exclude node"))
    assert [d.severity for d in rulebook.warnings] == ["warning"]


# ---- the seed contract --------------------------------------------------------------------------------------

def test_seed_playbook_checks_clean():
    assert dsl.check((SEED / "seed.playbook").read_text(), "seed.playbook") == []


def test_seed_errors_playbook_one_error_per_broken_rule():
    found = dsl.check((SEED / "errors.playbook").read_text(), "errors.playbook")
    assert [(d.line, d.severity) for d in found] == [
        (6, "error"), (10, "error"), (14, "error"), (19, "error"), (21, "error")]
    assert [d.message for d in found] == [
        'unknown fact "custmer"; did you mean "customer"?',
        'unknown weekday "tusday"; did you mean "tuesday"?',
        "cannot compare distance (a distance) with $20 (money); write a distance such as 1500 km",
        "`keep` needs a node and an item, but this rule looks only at the order; add a condition on node "
        "or stock (e.g. when node.kind is store)",
        'rule "Missing then" has no `then`: say what it does, e.g. then avoid node because "..."',
    ]
    assert [d.column for d in found] == [8, 17, 19, 8, 6]


def test_check_accepts_bytes_and_a_byte_order_mark():
    text = (SEED / "seed.playbook").read_text()
    assert dsl.check(("\ufeff" + text).encode("utf-8"), "seed.playbook") == []
    (error,) = dsl.check(b'playbook "t"\n\xff\n', "t.playbook")
    assert (error.line, error.column, error.message) == (
        2, 1, "not UTF-8 text (byte 0xff); save the playbook as UTF-8")


def test_a_bare_number_above_1_for_a_percentage_is_suspicious():
    assert rule_problems("node.load > 80", "exclude node") == [
        (3, 20, "warning", "node.load is a percentage and a bare number is a share of 1, so 80 means "
                           "8000%: write 80% (or 8000%) to say which")]
    assert rule_problems("node.load > 0.8 and item.margin >= 1", "exclude node") == []


BALANCED_WITHOUT_A_DAY = ("`optimize balanced` weighs each day of transit at `a day saved is worth`, which this "
                          "playbook does not set ($0), so balanced plans the same as `optimize cost`; set it "
                          "before the first rule, e.g. a day saved is worth $3.00")


def test_balanced_without_a_value_for_a_day_is_warned_about():
    assert problems('playbook "t"\noptimize balanced\n') == [(2, 10, "warning", BALANCED_WITHOUT_A_DAY)]
    # once, at the first place that asks for it
    assert problems(one_rule("order.total > $5", "optimize balanced") + 'rule "s"\n  then optimize balanced\n') \
        == [(4, 8, "warning", BALANCED_WITHOUT_A_DAY)]
    assert problems('playbook "t"\na day saved is worth $2\noptimize balanced\n') == []
    assert problems(one_rule("order.total > $5", "optimize speed")) == []


def test_the_orders_state_and_country_in_lower_case_are_warned_about():
    """order.ship_to.state and .country are read in capitals whatever the
    order sent ("us", "ma"): a lower-case string matches no order."""
    assert rule_problems('order.ship_to.country is "us"') == [
        (3, 33, "warning", 'order.ship_to.country is read in capitals: "us" matches no order; write "US"')]
    assert rule_problems('order.ship_to.state in "MA", "ny"') == [
        (3, 37, "warning", 'order.ship_to.state is read in capitals: "ny" matches no order; write "NY"')]
    assert rule_problems('order.ship_to.state in "MA", "NY" and order.ship_to.country is not "US"') == []
    assert rule_problems('order.ship_to.zip is "k1a"') == []
    assert rule_problems("order.ship_to.state is node.state", "avoid node") == []
