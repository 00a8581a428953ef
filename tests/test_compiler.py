"""dsl.compile: the Rulebook the engines run — firing order, scopes,
groups inlined, day tests, normalised values, settings, version, errors."""

from __future__ import annotations

import hashlib

import pytest

import dsl
from conftest import SEED
from dsl.compiler import TRUE, AllOf, AnyOf, Check, Effect, NotOf, Settings


def compile_rules(body: str, head: str = ""):
    return dsl.compile(f'playbook "t"\n{head}{body}', "t.playbook")


def condition(when: str, head: str = ""):
    rulebook = compile_rules(f'rule "r"\n  when {when}\n  then hold order because "x"\n', head)
    return rulebook.rules[0].condition


# ---- firing order ---------------------------------------------------------------------

ORDERING = '''\
rule "first, default priority"
  then tag order "a"
rule "second, priority 5"
  priority 5
  then tag order "b"
rule "third, default priority"
  then tag order "c"
rule "fourth, priority 100"
  priority 100
  then tag order "d"
rule "fifth, priority 5"
  priority 5
  then tag order "e"
rule "sixth, negative"
  priority -1
  then tag order "f"
'''


def test_firing_order_is_priority_then_file_order():
    rules = compile_rules(ORDERING).rules
    assert [r.name for r in rules] == [
        "fourth, priority 100", "second, priority 5", "fifth, priority 5",
        "first, default priority", "third, default priority", "sixth, negative"]
    assert [r.index for r in rules] == [3, 1, 4, 0, 2, 5]
    assert [r.priority for r in rules] == [100, 5, 5, 0, 0, -1]


def test_rules_know_where_they_were_written():
    rules = {r.name: r for r in compile_rules(ORDERING).rules}
    assert rules["first, default priority"].line == 2
    assert rules["fourth, priority 100"].line == 9
    assert {r.file for r in rules.values()} == {"t.playbook"}


# ---- scopes ------------------------------------------------------------------------------

@pytest.mark.parametrize("when, action, scope", [
    ('customer.tier is "VIP"', "optimize speed", "order"),
    ("today is tuesday and now after 15:00", "ship complete", "order"),
    ('item.category is "boots"', "allow vendors", "line"),
    ("line.qty > 2", "allow vendors", "line"),
    ('item.category is "boots" and order.total > $5', "allow vendors", "line"),
    ("node.kind is store", "exclude node", "candidate"),
    ("stock.available <= 2", "keep 1 unit", "candidate"),
    ("distance > 100 km", "avoid node", "candidate"),
    ("transit > 2 days", "avoid node", "candidate"),
    ("cost > $20", "avoid node", "candidate"),
    ('node in group "g"', "exclude node", "candidate"),
    ('order.total > $5 and (item.qty > 1 or node.kind is store)', "exclude node", "candidate"),
    # a fact named as a value counts too
    ('order.ship_to.state is node.state', "exclude node", "candidate"),
])
def test_scope_is_the_widest_fact_mentioned(when, action, scope):
    rulebook = compile_rules(f'rule "r"\n  when {when}\n  then {action}\n',
                             head='group "g" is nodes "A"\n')
    assert rulebook.rules[0].scope == scope


def test_a_rule_without_conditions_is_about_the_order_and_always_holds():
    (rule,) = compile_rules('rule "r"\n  then optimize speed\n').rules
    assert (rule.scope, rule.condition) == ("order", TRUE)


def test_a_set_from_a_node_fact_makes_a_candidate_rule():
    (rule,) = compile_rules('rule "r"\n  then set order.origin to node.state\n').rules
    assert rule.scope == "candidate"
    assert rule.effects[0] == Effect("set_field", field="order.origin", ref="node.state",
                                     text="set order.origin to node.state")


# ---- conditions ---------------------------------------------------------------------------

def test_values_are_normalised_for_the_engine():
    assert condition("order.total >= $150") == Check("order.total", "ge", (150.0,))
    assert condition("item.margin >= 40%") == Check("item.margin", "ge", (0.4,))
    assert condition("distance > 900 mi").values[0] == pytest.approx(1448.41, abs=0.01)
    assert condition("order.weight > 10 lb").values[0] == pytest.approx(4.5359, abs=0.0001)
    assert condition("transit > 36 hours") == Check("transit", "gt", (1.5,))
    assert condition("now after 15:30") == Check("now", "gt", (930,))
    assert condition("node.kind is Store") == Check("node.kind", "eq", ("store",))
    assert condition("order.delivery is PICKUP") == Check("order.delivery", "eq", ("pickup",))
    assert condition('order.ship_to.state in "FL", "GA"') == Check("order.ship_to.state", "in", ("FL", "GA"))
    assert condition('order.ship_to.state is not one of "FL"') == \
        Check("order.ship_to.state", "not_in", ("FL",))
    assert condition("order.total between $5 and $10") == Check("order.total", "between", (5.0, 10.0))


def test_operators():
    ops = {"is": "eq", "=": "eq", "is not": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
    for written, op in ops.items():
        assert condition(f"item.qty {written} 2") == Check("item.qty", op, (2,)), written


def test_line_means_item_and_names_are_lower_cased():
    assert condition("LINE.Qty > 2") == Check("item.qty", "gt", (2,))
    assert condition('Order.Ship_To.State is "FL"') == Check("order.ship_to.state", "eq", ("FL",))


def test_tags():
    assert condition('order has tag "gift"') == Check("order.tags", "has_tag", ("gift",))
    assert condition('line has tag "fragile"') == Check("item.tags", "has_tag", ("fragile",))
    assert condition('customer has no tag "vip"') == Check("customer.tags", "has_no_tag", ("vip",))


def test_and_or_not():
    got = condition('order.total >= $150 and not (customer.tier is "VIP" or order has tag "x")')
    assert got == AllOf((
        Check("order.total", "ge", (150.0,)),
        NotOf(AnyOf((Check("customer.tier", "eq", ("VIP",)), Check("order.tags", "has_tag", ("x",))))),
    ))


def test_references_to_other_facts():
    assert condition("node.state is order.ship_to.state") == \
        Check("node.state", "eq", (), "order.ship_to.state")
    assert condition("node.state is not order.ship_to.state") == \
        Check("node.state", "ne", (), "order.ship_to.state")


def test_references_inside_lists_and_between_keep_every_value():
    assert condition('node.state in "CA", order.ship_to.state') == AnyOf((
        Check("node.state", "eq", (), "order.ship_to.state"), Check("node.state", "in", ("CA",))))
    assert condition('node.state not in order.ship_to.state, "CA", "NV"') == AllOf((
        Check("node.state", "ne", (), "order.ship_to.state"), Check("node.state", "not_in", ("CA", "NV"))))
    assert condition("node.handling between $1 and order.total") == AllOf((
        Check("node.handling", "ge", (1.0,)), Check("node.handling", "le", (), "order.total")))


def test_references_to_the_facts_without_a_field():
    assert condition("node.handling < cost") == Check("node.handling", "lt", (), "cost")
    assert condition("order.total between cost and $1000") == AllOf((
        Check("order.total", "ge", (), "cost"), Check("order.total", "le", (1000.0,))))


def test_keys_read_by_each_rule():
    rulebook = compile_rules('rule "r"\n  when node.state is order.ship_to.state and item.qty > 1\n'
                             "  then exclude node\n")
    assert rulebook.rules[0].keys == {"node.state", "order.ship_to.state", "item.qty"}


# ---- today --------------------------------------------------------------------------------

WORKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


@pytest.mark.parametrize("when, expected", [
    ("today is tuesday", Check("today.weekday", "in", ("tuesday",))),
    ("today is Tuesday", Check("today.weekday", "in", ("tuesday",))),
    ("today is not tuesday", Check("today.weekday", "not_in", ("tuesday",))),
    ("today is weekend", Check("today.weekday", "in", ("saturday", "sunday"))),
    ("today is not weekend", Check("today.weekday", "not_in", ("saturday", "sunday"))),
    ("today is weekday", Check("today.weekday", "in", WORKDAYS)),
    ("today in monday, weekend", Check("today.weekday", "in", ("monday", "saturday", "sunday"))),
    ("today is 2026-11-27", Check("today.date", "in", ("2026-11-27",))),
    ("today is not 2026-12-25", Check("today.date", "not_in", ("2026-12-25",))),
    ("today between 2026-11-27 and 2026-11-30", Check("today.date", "between", ("2026-11-27", "2026-11-30"))),
    ("today after 2026-12-01", Check("today.date", "gt", ("2026-12-01",))),
    ("today before 2026-12-24", Check("today.date", "lt", ("2026-12-24",))),
    ("today in friday, 2026-11-27", AnyOf((Check("today.weekday", "in", ("friday",)),
                                           Check("today.date", "in", ("2026-11-27",))))),
    ("today not in weekend, 2026-11-27", AllOf((Check("today.weekday", "not_in", ("saturday", "sunday")),
                                                Check("today.date", "not_in", ("2026-11-27",))))),
])
def test_today(when, expected):
    assert condition(when) == expected


# ---- groups -----------------------------------------------------------------------------------

GROUPS = '''\
group "west coast" is nodes "PDX-STORE", "SEA-STORE"
group "busy stores" is nodes where node.kind is store and node.load > 70%
group "busy west" is nodes where node in group "busy stores" and node in group "west coast"
'''


def test_groups_are_inlined():
    rulebook = compile_rules('rule "r"\n  when node in group "west coast" or node not in group "busy stores"\n'
                             "  then exclude node\n", GROUPS)
    west = Check("node.id", "in", ("PDX-STORE", "SEA-STORE"))
    busy = AllOf((Check("node.kind", "eq", ("store",)), Check("node.load", "gt", (0.7,))))
    assert rulebook.groups["west coast"] == west
    assert rulebook.groups["busy stores"] == busy
    assert rulebook.groups["busy west"] == AllOf((busy, west))
    assert rulebook.rules[0].condition == AnyOf((west, NotOf(busy)))
    assert rulebook.rules[0].keys == {"node.id", "node.kind", "node.load"}


def test_group_actions_name_the_group():
    rulebook = compile_rules('rule "r"\n  when order.total > $5\n  then avoid group "west coast"\n', GROUPS)
    assert rulebook.rules[0].effects == (Effect("avoid_group", "west coast", text='avoid group "west coast"'),)


# ---- effects ----------------------------------------------------------------------------------

def test_effects_carry_plain_numbers_and_their_text():
    (rule,) = compile_rules('rule "r"\n  when node.kind is store\n'
                            '  then penalize node by $15.00 and keep 2 units because "floor"\n'
                            '   and use carrier "PARCELCO" service "ground" and set order.lane to "fast"\n').rules
    assert rule.effects == (
        Effect("penalize_node", amount=15.0, text="penalize node by $15.00"),
        Effect("keep", amount=2.0, reason="floor", text='keep 2 units because "floor"'),
        Effect("use_carrier", "PARCELCO", service="ground", text='use carrier "PARCELCO" service "ground"'),
        Effect("set_field", field="order.lane", value="fast", text='set order.lane to "fast"'),
    )


# ---- settings -----------------------------------------------------------------------------------

def test_settings_defaults():
    assert compile_rules("").settings == Settings(
        objective="cost", day_value=0.0, split_penalty=0.0, max_shipments=None, timezone="UTC", currency=None)


def test_settings_as_written():
    rulebook = compile_rules("", 'timezone "America/Chicago"\noptimize balanced\na day saved is worth $2.50\n'
                                 "split penalty $6\nmax shipments 3\n")
    assert rulebook.settings == Settings("balanced", 2.5, 6.0, 3, "America/Chicago", None)


def test_currency_from_the_setting_or_the_amounts():
    assert compile_rules("", 'currency "eur"\n').settings.currency == "EUR"
    assert compile_rules("", "split penalty 4 CAD\n").settings.currency == "CAD"
    assert compile_rules("", "split penalty $4\n").settings.currency is None


def test_seed_settings():
    rulebook = dsl.compile((SEED / "seed.playbook").read_text(), "seed.playbook")
    assert rulebook.name == "Acme Outfitters"
    assert rulebook.settings == Settings("cost", 2.0, 6.0, 3, "America/Chicago", None)
    assert [r.name for r in rulebook.rules][:2] == ["Buy online, pick up in store",
                                                    "VIP members get the fastest node"]
    assert len(rulebook.rules) == 11


# ---- version ----------------------------------------------------------------------------------------

def test_version_is_the_sha256_of_the_text():
    text = (SEED / "seed.playbook").read_text()
    rulebook = dsl.compile(text, "seed.playbook")
    assert rulebook.version == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert rulebook.source == text


def test_version_is_stable_and_changes_with_the_text():
    text = (SEED / "seed.playbook").read_text()
    assert dsl.compile(text).version == dsl.compile(text, "other-name.playbook").version
    assert dsl.compile(text.encode("utf-8")).version == dsl.compile(text).version
    assert dsl.compile(text + "\n# a comment\n").version != dsl.compile(text).version
    assert dsl.version_of("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ---- errors -----------------------------------------------------------------------------------------

def test_compile_raises_on_errors_with_every_diagnostic():
    with pytest.raises(dsl.PlaybookError) as caught:
        dsl.compile((SEED / "errors.playbook").read_text(), "errors.playbook")
    error = caught.value
    assert [d.line for d in error.errors] == [6, 10, 14, 19, 21]
    assert str(error) == 'errors.playbook:6:8: error: unknown fact "custmer"; did you mean "customer"? (and 4 more)'


def test_compile_raises_on_syntax_errors():
    with pytest.raises(dsl.PlaybookError) as caught:
        dsl.compile('playbook "t"\nrule x\n', "t.playbook")
    assert [(d.line, d.column) for d in caught.value.errors] == [(2, 6)]


def test_warnings_travel_with_the_rulebook():
    rulebook = compile_rules('rule "r"\n  when distance < 0 km\n  then exclude node\n')
    assert [(w.line, w.severity) for w in rulebook.warnings] == [(3, "warning")]
