"""dsl.parser: every construct of the language reference becomes the
expected syntax tree; positions; syntax errors pinned to the character;
recovery; the grammar itself (LALR, strict, built once)."""

from __future__ import annotations

from importlib import resources

import lark
import pytest

import dsl
from dsl import nodes as n
from dsl import parser as p
from dsl.diagnostics import PlaybookError


# ---- helpers --------------------------------------------------------------------

def parse(text: str) -> n.Playbook:
    return dsl.parse(text, "t.playbook")


def when(condition: str) -> n.Condition:
    """The condition of a one-rule playbook."""
    rule = parse(f'playbook "t"\nrule "r"\n  when {condition}\n  then hold order because "x"\n').rules[0]
    return rule.when


def then(actions: str) -> tuple[n.Action, ...]:
    rule = parse(f'playbook "t"\nrule "r"\n  when node.kind is store\n  then {actions}\n').rules[0]
    return rule.actions


def value(condition: str) -> n.Literal:
    """The single value of a one-test condition."""
    test = when(condition)
    assert isinstance(test, n.Test)
    (only,) = test.values
    return only


def t_(path: str, op: str, *values) -> n.Test:
    return n.Test(n.Path(tuple(path.split("."))), op, tuple(values))


def lit(kind: str, value, text: str, unit: str | None = None) -> n.Literal:
    return n.Literal(kind, value, text, unit)


def string(value: str) -> n.Literal:
    return lit("string", value, f'"{value}"')


def syntax_errors(text: str) -> list:
    with pytest.raises(PlaybookError) as caught:
        parse(text)
    return caught.value.diagnostics


def only_error(text: str):
    (diagnostic,) = syntax_errors(text)
    return diagnostic


# ---- the shape of a file ------------------------------------------------------------

SHAPE = '''\
playbook "Acme Outfitters"          # required, first statement
timezone "America/Denver"           # optional; default UTC

optimize balanced
a day saved is worth $3.00
split penalty $6.00
max shipments 3
currency "USD"

group "west hubs" is nodes "PDX-STORE", "RENO-3PL"
group "stores" is nodes where node.kind is store

rule "VIP members get the fastest node"
  priority 10
  when customer.tier is "VIP"
  then optimize speed
'''


def test_header_settings_groups_and_a_rule():
    playbook = parse(SHAPE)
    assert playbook.name == "Acme Outfitters"
    assert [(s.name, s.value.kind, s.value.value) for s in playbook.settings] == [
        ("timezone", "string", "America/Denver"),
        ("optimize", "word", "balanced"),
        ("day_value", "money", 3.0),
        ("split_penalty", "money", 6.0),
        ("max_shipments", "number", 3),
        ("currency", "string", "USD"),
    ]
    west, stores = playbook.groups
    assert west == n.Group("west hubs", (string("PDX-STORE"), string("RENO-3PL")))
    assert stores == n.Group("stores", None, t_("node.kind", "is", lit("word", "store", "store")))
    (rule,) = playbook.rules
    assert rule == n.Rule("VIP members get the fastest node", 10,
                          t_("customer.tier", "is", string("VIP")),
                          (n.Action("optimize", "speed"),), ("priority", "when", "then"))


def test_statement_order_is_kept():
    kinds = [type(s).__name__ for s in parse(SHAPE).statements]
    assert kinds == ["Header"] + ["Setting"] * 6 + ["Group", "Group", "Rule"]


def test_comments_are_ignored_and_kept_aside():
    with_comments = parse('# top\nplaybook "t"   # name\nrule "r" # the rule\n'
                          '  when order.total > $5 # big\n  then ship complete # done\n')
    without = parse('playbook "t"\nrule "r"\n  when order.total > $5\n  then ship complete\n')
    assert with_comments == without
    assert [c[2] for c in with_comments.comments] == ["# top", "# name", "# the rule", "# big", "# done"]
    assert with_comments.comments[1][:2] == (2, 16)


def test_a_hash_inside_a_string_is_not_a_comment():
    assert value('order.channel is "web#2"') == string("web#2")


def test_whitespace_and_line_breaks_are_free():
    spread = parse('playbook\n"t"\nrule\n"r"\n\n  when\n order.total\n >\n $5\n and\n\n'
                   ' customer.tier\n is\n "VIP"\n then\n ship complete\n')
    packed = parse('playbook "t" rule "r" when order.total > $5 and customer.tier is "VIP" then ship complete')
    assert spread == packed
    assert len(packed.rules) == 1


def test_tabs_and_windows_line_ends():
    crlf = parse('playbook "t"\r\nrule "r"\r\n\twhen order.total > $5\r\n\tthen ship complete\r\n')
    assert crlf == parse('playbook "t"\nrule "r"\n when order.total > $5\n then ship complete\n')


def test_keywords_are_case_insensitive():
    upper = parse('PLAYBOOK "t"\nOPTIMIZE Speed\nRULE "r"\n  PRIORITY 2\n  WHEN today IS Tuesday '
                  'AND order HAS TAG "gift"\n  Then Exclude Node "X" Because "y"\n')
    lower = parse('playbook "t"\noptimize speed\nrule "r"\n  priority 2\n  when today is Tuesday '
                  'and order has tag "gift"\n  then exclude node "X" because "y"\n')
    assert upper.settings[0].value.value == "speed"
    assert upper.rules == lower.rules
    # the word is normalised, what was written is kept for fmt
    assert value("today is TUESDAY") == lit("word", "tuesday", "TUESDAY")


def test_strings_are_case_sensitive():
    assert value('customer.tier is "VIP"') != value('customer.tier is "vip"')


def test_keywords_are_whole_words_only():
    # `iss` is not `is` followed by `s`: it is an unexpected word
    error = only_error('playbook "t"\nrule "r"\n  when order.channel iss "web"\n  then ship complete\n')
    assert (error.line, error.column) == (3, 22)
    assert error.message.startswith('unexpected "iss"')
    assert error.message.endswith('; did you mean "is"?')
    # names that begin with a keyword are names
    assert when('notify.x is "y"').path.parts == ("notify", "x")
    assert when('order.island is "y"').path.parts == ("order", "island")
    assert when('isolated.x is "y"').path.parts == ("isolated", "x")


def test_optimise_and_penalise_spellings():
    british = then("penalise node by $2")
    assert british == then("penalize node by $2")
    assert parse('playbook "t"\noptimise speed\n').settings[0].value.value == "speed"


# ---- values ------------------------------------------------------------------------

@pytest.mark.parametrize("written, kind, normal, unit", [
    ('"VIP"', "string", "VIP", None),
    ("3", "number", 3, None),
    ("4.5", "number", 4.5, None),
    ("-2", "number", -2, None),
    ("40%", "percent", 0.40, None),
    ("12.5%", "percent", 0.125, None),
    ("$4.50", "money", 4.5, "$"),
    ("$60", "money", 60.0, "$"),
    ("4.50 USD", "money", 4.5, "USD"),
    ("4.50 eur", "money", 4.5, "EUR"),
    ("1500 km", "distance", 1500.0, "km"),
    ("900 mi", "distance", 900 * 1.609344, "mi"),
    ("20 kg", "weight", 20.0, "kg"),
    ("5 lb", "weight", 5 * 0.45359237, "lb"),
    ("5 lbs", "weight", 5 * 0.45359237, "lbs"),
    ("2 days", "duration", 2.0, "days"),
    ("1 day", "duration", 1.0, "day"),
    ("36 hours", "duration", 1.5, "hours"),
    ("2026-11-27", "date", "2026-11-27", None),
    ("15:00", "time", 900, None),
    ("9:30", "time", 570, None),
    ("tuesday", "word", "tuesday", None),
    ("Weekend", "word", "weekend", None),
    ("store", "word", "store", None),
    ("3pl", "word", "3pl", None),
    ("3PL", "word", "3pl", None),
])
def test_values_are_normalised(written, kind, normal, unit):
    got = value(f"order.x is {written}")
    assert got.kind == kind
    assert got.value == pytest.approx(normal) if isinstance(normal, float) else got.value == normal
    assert type(got.value) is type(normal)
    assert got.unit == unit
    assert got.text == written


def test_a_reference_to_another_fact_is_a_path():
    test = when("node.state is order.ship_to.state")
    assert test == t_("node.state", "is", n.Path(("order", "ship_to", "state")))


def test_the_facts_without_a_field_are_references_too():
    # `cost > node.handling` names two facts; so does `node.handling < cost`
    assert when("node.handling < cost") == t_("node.handling", "<", n.Path(("cost",)))
    assert when("distance >= DISTANCE") == t_("distance", ">=", n.Path(("DISTANCE",)))
    # `transit` is also a node kind: a word there
    assert when("node.kind is transit") == t_("node.kind", "is", n.Literal("word", "transit", "transit"))


def test_lists():
    assert when('order.ship_to.state in "FL", "GA", "AL"') == t_(
        "order.ship_to.state", "in", string("FL"), string("GA"), string("AL"))
    assert when('order.ship_to.state is one of "FL", "GA"') == when('order.ship_to.state in "FL", "GA"')
    assert when('order.ship_to.state not in "FL"') == t_("order.ship_to.state", "not in", string("FL"))
    assert when('order.ship_to.state is not one of "FL"') == when('order.ship_to.state not in "FL"')


# ---- conditions (every line of the reference's condition list) ------------------------

TUESDAY = lit("word", "tuesday", "tuesday")


@pytest.mark.parametrize("condition, expected", [
    ('customer.tier is "VIP"', t_("customer.tier", "is", string("VIP"))),
    ('order.ship_to.state in "FL", "GA", "AL"',
     t_("order.ship_to.state", "in", string("FL"), string("GA"), string("AL"))),
    ('order.ship_to.state is one of "FL", "GA"', t_("order.ship_to.state", "in", string("FL"), string("GA"))),
    ("today is tuesday", t_("today", "is", TUESDAY)),
    ("today is not weekend", t_("today", "is not", lit("word", "weekend", "weekend"))),
    ("today between 2026-11-27 and 2026-12-01",
     t_("today", "between", lit("date", "2026-11-27", "2026-11-27"), lit("date", "2026-12-01", "2026-12-01"))),
    ("now after 15:00", t_("now", "after", lit("time", 900, "15:00"))),
    ("today after 2026-12-01", t_("today", "after", lit("date", "2026-12-01", "2026-12-01"))),
    ("today before 2026-12-24", t_("today", "before", lit("date", "2026-12-24", "2026-12-24"))),
    ('order has tag "gift"', t_("order", "has tag", string("gift"))),
    ('customer has tag "wholesale"', t_("customer", "has tag", string("wholesale"))),
    ('node has tag "outlet"', t_("node", "has tag", string("outlet"))),
    ('order has no tag "gift"', t_("order", "has no tag", string("gift"))),
    ("item.margin >= 40%", t_("item.margin", ">=", lit("percent", 0.4, "40%"))),
    ("distance > 1500 km", t_("distance", ">", lit("distance", 1500.0, "1500 km", "km"))),
    ("transit > 3 days", t_("transit", ">", lit("duration", 3.0, "3 days", "days"))),
    ("node.load > 80%", t_("node.load", ">", lit("percent", 0.8, "80%"))),
    ('node in group "west hubs"', t_("node", "in group", string("west hubs"))),
    ('node not in group "west hubs"', t_("node", "not in group", string("west hubs"))),
    ("stock.available = 0", t_("stock.available", "=", lit("number", 0, "0"))),
    ("stock.available != 0", t_("stock.available", "!=", lit("number", 0, "0"))),
    ("stock.available < 2", t_("stock.available", "<", lit("number", 2, "2"))),
    ("stock.available <= 2", t_("stock.available", "<=", lit("number", 2, "2"))),
    ("item.qty > 2", t_("item.qty", ">", lit("number", 2, "2"))),
    ("line.qty >= 2", t_("line.qty", ">=", lit("number", 2, "2"))),
    ("node.kind is not 3pl", t_("node.kind", "is not", lit("word", "3pl", "3pl"))),
])
def test_conditions(condition, expected):
    assert when(condition) == expected


def test_and_or_not_parentheses():
    got = when('order.total >= $150 and not (customer.tier is "VIP")')
    assert got == n.All((
        t_("order.total", ">=", lit("money", 150.0, "$150", "$")),
        n.Not(n.Paren(t_("customer.tier", "is", string("VIP")))),
    ))


def test_and_binds_tighter_than_or():
    a, b, c = 'order.channel is "a"', 'order.channel is "b"', 'order.channel is "c"'
    ta, tb, tc = (t_("order.channel", "is", string(x)) for x in "abc")
    assert when(f"{a} or {b} and {c}") == n.Any((ta, n.All((tb, tc))))
    assert when(f"{a} and {b} or {c}") == n.Any((n.All((ta, tb)), tc))
    assert when(f"({a} or {b}) and {c}") == n.All((n.Paren(n.Any((ta, tb))), tc))
    # not applies to the nearest test only
    assert when(f"not {a} and {b}") == n.All((n.Not(ta), tb))
    assert when(f"not not {a}") == n.Not(n.Not(ta))
    # a chain of the same operator is one flat node
    assert when(f"{a} or {b} or {c}") == n.Any((ta, tb, tc))


# ---- actions (every line of the reference's action table) -----------------------------

@pytest.mark.parametrize("written, expected", [
    ("exclude node", n.Action("exclude_node")),
    ('exclude node because "walk-ins"', n.Action("exclude_node", reason="walk-ins")),
    ('avoid node because "far"', n.Action("avoid_node", reason="far")),
    ("prefer node by $2", n.Action("prefer_node", amount=lit("money", 2.0, "$2", "$"))),
    ("penalize node by $15.00", n.Action("penalize_node", amount=lit("money", 15.0, "$15.00", "$"))),
    ('keep 2 units because "floor"', n.Action("keep", amount=lit("number", 2, "2"), reason="floor")),
    ("keep 1 unit", n.Action("keep", amount=lit("number", 1, "1"))),
    ('exclude node "OH-DC"', n.Action("exclude_named_node", "OH-DC")),
    ('exclude group "stores" because "busy"', n.Action("exclude_group", "stores", reason="busy")),
    ('avoid node "OH-DC"', n.Action("avoid_named_node", "OH-DC")),
    ('avoid group "stores"', n.Action("avoid_group", "stores")),
    ('prefer node "OH-DC" by $3', n.Action("prefer_named_node", "OH-DC", lit("money", 3.0, "$3", "$"))),
    ('penalize node "OH-DC" by $3', n.Action("penalize_named_node", "OH-DC", lit("money", 3.0, "$3", "$"))),
    ('route to node "OH-DC"', n.Action("route_to_node", "OH-DC")),
    ("route to pickup node", n.Action("route_to_pickup")),
    ("optimize cost", n.Action("optimize", "cost")),
    ("optimize speed", n.Action("optimize", "speed")),
    ("optimize BALANCED", n.Action("optimize", "balanced")),
    ("ship complete", n.Action("ship_complete")),
    ("max shipments 2", n.Action("max_shipments", amount=lit("number", 2, "2"))),
    ("split penalty $4", n.Action("split_penalty", amount=lit("money", 4.0, "$4", "$"))),
    ('use carrier "PARCELCO"', n.Action("use_carrier", "PARCELCO")),
    ('use carrier "PARCELCO" service "ground"', n.Action("use_carrier", "PARCELCO", service="ground")),
    ('avoid carrier "REGIONALX"', n.Action("avoid_carrier", "REGIONALX")),
    ('surcharge carrier "REGIONALX" by $6.00',
     n.Action("surcharge", "REGIONALX", lit("money", 6.0, "$6.00", "$"))),
    ("allow in-transit", n.Action("allow_transit")),
    ("allow in transit", n.Action("allow_transit")),
    ("allow vendors", n.Action("allow_vendors")),
    ('hold order because "fraud check"', n.Action("hold", reason="fraud check")),
    ('tag order "peak"', n.Action("tag_order", "peak")),
    ('tag customer "loyal"', n.Action("tag_customer", "loyal")),
    ('set order.lane to "fast"',
     n.Action("set_field", field=n.Path(("order", "lane")), value=string("fast"))),
    ("set customer.segment to customer.tier",
     n.Action("set_field", field=n.Path(("customer", "segment")), value=n.Path(("customer", "tier")))),
])
def test_actions(written, expected):
    assert then(written) == (expected,)


def test_several_actions_after_one_then():
    joined = then('tag order "a" and ship complete and optimize speed')
    lines = then('tag order "a"\n  ship complete\n  optimize speed')
    assert joined == lines
    assert [a.kind for a in joined] == ["tag_order", "ship_complete", "optimize"]


def test_a_rule_ends_where_the_next_statement_begins():
    playbook = parse('playbook "t"\nrule "a" when order.total > $5 then ship complete rule "b" then '
                     'optimize speed group "g" is nodes "X" rule "c" then allow vendors')
    assert [r.name for r in playbook.rules] == ["a", "b", "c"]
    assert [g.name for g in playbook.groups] == ["g"]


def test_settings_words_are_actions_inside_rules():
    rule = parse('playbook "t"\nrule "r"\n  then optimize speed\n  max shipments 2\n'
                 "  split penalty $1\n").rules[0]
    assert [a.kind for a in rule.actions] == ["optimize", "max_shipments", "split_penalty"]


def test_a_rule_without_conditions_or_actions_still_parses():
    rule = parse('playbook "t"\nrule "r"\n').rules[0]
    assert (rule.when, rule.actions, rule.clauses) == (None, (), ())


# ---- positions -------------------------------------------------------------------------

POSITIONS = '''\
playbook "t"
rule "r"
  when order.total >= $150 and not (customer.tier is "VIP")
  then optimize speed
'''


def where(span: n.Span) -> tuple[int, int]:
    return span.line, span.column


def test_spans():
    rule = parse(POSITIONS).rules[0]
    assert where(rule.span) == (2, 1)
    assert where(rule.name_span) == (2, 6)
    assert [where(s) for s in rule.clause_spans] == [(3, 3), (4, 3)]
    big, negation = rule.when.operands
    assert where(big.span) == (3, 8)
    assert where(big.path.span) == (3, 8)
    assert where(big.op_span) == (3, 20)
    assert (big.op_span.end_line, big.op_span.end_column) == (3, 22)
    assert where(big.values[0].span) == (3, 23)
    assert where(negation.span) == (3, 32)
    assert where(negation.operand.span) == (3, 36)
    assert where(negation.operand.operand.span) == (3, 37)
    (action,) = rule.actions
    assert where(action.span) == (4, 8)
    assert where(action.target_span) == (4, 17)
    assert rule.span.file == "t.playbook"


def test_equality_ignores_layout():
    moved = parse("\n\n" + POSITIONS.replace("  when", "      when"))
    assert moved == parse(POSITIONS)
    assert moved.rules[0].span.line == 4


# ---- syntax errors -----------------------------------------------------------------------

def test_action_without_then():
    error = only_error('playbook "t"\nrule "r"\n  when order.total > $5\n  exclude node "A"\n')
    assert (error.line, error.column, error.end_column) == (4, 3, 10)
    assert error.message == 'unexpected "exclude": an action needs `then` before it (when ... then ...)'
    assert error.format() == (
        't.playbook:4:3: error: unexpected "exclude": an action needs `then` before it (when ... then ...)\n'
        '      exclude node "A"\n'
        "      ^^^^^^^")


def test_setting_after_the_first_rule():
    error = only_error('playbook "t"\nrule "r"\n  then ship complete\ntimezone "UTC"\n')
    assert (error.line, error.column) == (4, 1)
    assert error.message == 'unexpected "timezone": the header and settings come before the first rule'
    assert error.format().splitlines()[1:] == ['    timezone "UTC"', "    ^^^^^^^^"]


def test_unquoted_rule_name():
    error = only_error('playbook "t"\nrule fast\n  then ship complete\n')
    assert (error.line, error.column) == (2, 6)
    assert error.message == 'unexpected "fast": names of playbooks, rules and groups are written in double quotes'
    assert error.format().splitlines()[1:] == ["    rule fast", "         ^^^^"]


def test_unterminated_string():
    error = only_error('playbook "t"\nrule "r\n  then ship complete\n')
    assert (error.line, error.column) == (2, 6)
    assert error.message == 'unterminated string: a string must end with " on the same line'
    assert error.format().splitlines()[1:] == ['    rule "r', "         ^"]


def test_misspelled_keyword_with_did_you_mean():
    error = only_error('playbook "t"\nrule "r"\n  whn order.total > $5\n  then ship complete\n')
    assert (error.line, error.column, error.end_column) == (3, 3, 6)
    assert error.message == ('unexpected "whn"; expected one of "group", "priority", "rule", "then", '
                             '"when"; did you mean "when"?')
    assert error.format().splitlines()[1:] == ["      whn order.total > $5", "      ^^^"]


def test_expected_lists_what_can_come_there_only():
    # LALR lookaheads after an amount also offer every action and setting
    # (an amount ends `split penalty $5` too); the message names only what fits
    error = only_error('playbook "t"\nrule "r"\n  when order.total between $5 $10\n  then ship complete\n')
    assert (error.line, error.column) == (3, 31)
    assert error.message == 'unexpected "$10"; expected "and"'
    error = only_error('playbook "t"\nrule "r"\n  when customer.tier iss "VIP"\n  then ship complete\n')
    assert error.message.startswith('unexpected "iss"; expected one of "!=", ".", "<", "<=", "=", ">", ">=", ')
    assert error.message.endswith('; did you mean "is"?')
    # a character no token starts with: the same list
    error = only_error('playbook "t"\nrule "r"\n  when order.total between $5 * $10\n  then ship complete\n')
    assert error.message == 'unexpected "*"; expected "and"'


def test_misspelled_action_with_did_you_mean():
    error = only_error('playbook "t"\nrule "r"\n  then hodl order because "x"\n')
    assert (error.line, error.column) == (3, 8)
    assert error.message.startswith('unexpected "hodl"; expected one of "allow", "avoid", ')
    assert error.message.endswith('; did you mean "hold"?')


def test_unexpected_end_of_file():
    error = only_error('playbook "t"\nrule "r"\n  when order.total >')
    # the caret goes just past the last thing written
    assert (error.line, error.column) == (3, 21)
    assert error.message == ("the playbook ends too early: a condition is `fact.field operator value`, "
                             "e.g. order.total > $100")
    assert error.format().splitlines()[1:] == ["      when order.total >", "                        ^"]


def test_end_of_file_after_then():
    error = only_error('playbook "t"\nrule "r"\n  then\n\n')
    assert (error.line, error.column) == (3, 7)
    assert error.message.startswith('the playbook ends too early; expected one of "allow", "avoid", ')


def test_missing_value_before_the_next_clause_is_reported_there():
    # `then` is a reserved word, never taken for a value
    error = only_error('playbook "t"\nrule "r"\n  when order.total >\n  then ship complete\n')
    assert (error.line, error.column) == (4, 3)
    assert error.message == ('unexpected "then": a condition is `fact.field operator value`, '
                             "e.g. order.total > $100")


def test_parse_raises_every_syntax_error_at_once():
    errors = syntax_errors('playbook "t"\nrule x\n  then ship complete\nrule "y"\n  whn order.total > $5\n')
    assert [(e.line, e.column) for e in errors] == [(2, 6), (5, 3)]


def test_parse_partial_keeps_the_good_statements():
    playbook, diagnostics = p.parse_partial(
        'playbook "t"\nrule "good"\n  then ship complete\nrule "bad"\n  when order.total > > $5\n'
        '  then ship complete\nrule "also good"\n  then allow vendors\n', "t.playbook")
    assert [r.name for r in playbook.rules] == ["good", "also good"]
    assert [(d.line, d.column) for d in diagnostics] == [(5, 22)]


BROKEN = '''\
playbook "Recovery"

rule "good one"
  when custmer.tier is "VIP"
  then optimize speed

rule "broken one"
  when order.total > > $5
  then ship complete

rule "good two"
  when today is tusday
  then allow vendors

rule "broken two"
  when order.total $5
  then ship complete

rule "broken three"
  then exclude nod "A"

rule "good three"
  when distance > $20
  then exclude node
'''


def test_recovery_reports_each_broken_rule_and_still_checks_the_good_ones():
    diagnostics = dsl.check(BROKEN, "r.playbook")
    assert [(d.line, d.column, d.severity) for d in diagnostics] == [
        (4, 8, "error"),     # good one: checked (unknown fact)
        (8, 22, "error"),    # broken one: syntax
        (12, 17, "error"),   # good two: checked (unknown weekday)
        (16, 20, "error"),   # broken two: syntax
        (20, 16, "error"),   # broken three: syntax
        (23, 19, "error"),   # good three: checked (wrong kinds)
    ]
    messages = [d.message for d in diagnostics]
    assert messages[0] == 'unknown fact "custmer"; did you mean "customer"?'
    assert messages[1].startswith('unexpected ">"; expected one of "3pl", a "quoted string", ')
    assert messages[2] == 'unknown weekday "tusday"; did you mean "tuesday"?'
    assert messages[3].startswith('unexpected "$5"; expected one of ')
    assert messages[4] == 'unexpected "nod"; expected one of "group", "node"; did you mean "node"?'
    assert messages[5] == ("cannot compare distance (a distance) with $20 (money); write a distance "
                           "such as 1500 km")


def test_recovery_goes_on_at_the_next_setting():
    # a broken setting no longer hides the settings after it
    text = ('playbook "X"\noptimize fastest\nsplit penalty $2.00\nsplit penalty $3.00\n'
            "max shipments 0\n")
    assert [(d.line, d.column, d.message) for d in dsl.check(text, "x.playbook")] == [
        (2, 10, 'unexpected "fastest"; expected one of "balanced", "cost", "speed"'),
        (4, 1, "`split penalty` is set twice: first at line 3, again here; keep one"),
        (5, 15, "max shipments must be a whole number of at least 1"),
    ]
    with pytest.raises(PlaybookError) as raised:
        dsl.compile(text, "x.playbook")
    assert [(d.line, d.column) for d in raised.value.errors] == [(2, 10)]


def test_an_unfinished_statement_before_the_next_one_is_one_error():
    # the word that begins the next statement shows the one before is unfinished:
    # that one is skipped, the next one is read (and checked)
    text = ('playbook "t"\nsplit penalty\nmax shipments 0\nrule "a"\n  when order.total >\n'
            'rule "b"\n  when custmer.tier is "VIP"\n  then ship complete\nrule "c"\n  then allow vendors\n')
    assert [(d.line, d.column, d.message) for d in dsl.check(text, "t.playbook")] == [
        (3, 1, 'unexpected "max"; expected one of a number, an amount like $4.50'),
        (3, 15, "max shipments must be a whole number of at least 1"),
        (6, 1, 'unexpected "rule": a condition is `fact.field operator value`, e.g. order.total > $100'),
        (7, 8, 'unknown fact "custmer"; did you mean "customer"?'),
    ]


def test_a_broken_rule_is_skipped_whole():
    # `optimize` at the start of a line inside a rule is an action: recovery
    # does not start again there, or it would become an action of rule "a"
    text = ('playbook "t"\nrule "a"\n  then ship complete\nrule "b"\n  when order.total > > $5\n'
            'optimize speed\nrule "c"\n  then allow vendors\ntimezone "UTC"\nrule "d"\n  then ship complete\n')
    playbook, diagnostics = p.parse_partial(text, "t.playbook")
    assert [(d.line, d.column) for d in diagnostics] == [(5, 22), (9, 1)]
    assert diagnostics[1].message == 'unexpected "timezone": the header and settings come before the first rule'
    assert [(r.name, [a.kind for a in r.actions]) for r in playbook.rules] == [
        ("a", ["ship_complete"]), ("c", ["allow_vendors"]), ("d", ["ship_complete"])]
    assert [d.line for d in dsl.check(text, "t.playbook")] == [5, 9]


SKIPPED = '''\
playbook x
group "west" is nodes "A" "B"
rule "r"
  when node in group "west"
  then exclude node
rule "s"
  when order.total > > $5
  then set order.lane to "x"
rule "t"
  when order.lane is "x" and order.lnae is "y"
  then ship complete
'''


def test_what_a_skipped_statement_defines_draws_no_more_errors():
    # the unquoted name, the group and the rule setting order.lane each have
    # one syntax error; the playbook's name, the group and the field are not
    # reported again where they are used (a misspelt field still is)
    assert [(d.line, d.column, d.message.split(";")[0]) for d in dsl.check(SKIPPED, "t.playbook")] == [
        (1, 10, 'unexpected "x": names of playbooks, rules and groups are written in double quotes'),
        (2, 27, 'unexpected ""B""'),
        (7, 22, 'unexpected ">"'),
        (10, 36, 'unknown field "lnae" of order'),
    ]
    playbook, _ = p.parse_partial(SKIPPED, "t.playbook")
    assert [(u.kind, u.name, u.fields_set, (u.span.line, u.span.column, u.span.end_line))
            for u in playbook.unreadable] == [
        ("header", None, (), (1, 1, 1)), ("group", "west", (), (2, 1, 2)),
        ("rule", "s", (("order", "lane"),), (6, 1, 8))]


def test_a_group_without_its_keyword_is_one_error():
    # `group` left out: the skipped line still defines "stores", so its use is not reported
    text = ('playbook "t"\n"stores" is nodes where node.kind is store\n'
            'rule "r"\n  when node in group "stores"\n  then exclude node\n')
    diagnostics = dsl.check(text, "t.playbook")
    assert [(d.line, d.column) for d in diagnostics] == [(2, 1)]
    playbook, _ = p.parse_partial(text, "t.playbook")
    assert [(u.kind, u.name) for u in playbook.unreadable] == [("header", "t"), ("group", "stores")]


def test_a_setting_word_taken_as_a_value_does_not_start_a_statement():
    # `timezone` on the next line is read as the value the group's condition
    # is missing; the group and that line are one mistake, and the group is
    # not reported again as unknown
    text = ('playbook "t"\ngroup "g" is nodes where node.kind is\ntimezone "UTC"\nrule "a"\n'
            '  when node in group "g"\n  then exclude node\n')
    assert [(d.line, d.column) for d in dsl.check(text, "t.playbook")] == [(3, 10)]


def test_syntax_errors_are_capped():
    text = 'playbook "t"\n' + "".join(f'rule "r{i}"\n  when order.total > > $5\n' for i in range(80))
    playbook, diagnostics = p.parse_partial(text)
    assert playbook is None
    assert len(diagnostics) == p.MAX_SYNTAX_ERRORS


# ---- the grammar --------------------------------------------------------------------------

def grammar_text() -> str:
    return resources.files("grammar").joinpath("playbook.lark").read_text(encoding="utf-8")


def test_grammar_is_lalr_without_conflicts_in_strict_mode():
    # strict mode refuses shift/reduce conflicts and, with interegular
    # installed, terminals whose patterns collide
    assert lark.lexer.has_interegular
    # (the contextual lexer Steve uses checks every state's terminals and all of them together)
    lark.Lark(grammar_text(), parser="lalr", lexer="contextual", strict=True)


def test_the_parser_is_built_once(monkeypatch):
    first = p._lark()
    parse(SHAPE)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the parser was built again")

    monkeypatch.setattr(p.lark, "Lark", no_rebuild)
    parse(SHAPE)
    parse(POSITIONS)
    assert p._lark() is first
    assert p._lark.cache_info().currsize == 1


def test_check_never_raises_on_syntax_errors():
    diagnostics = dsl.check('playbook "t"\nrule x', "t.playbook")
    assert diagnostics and all(d.severity == "error" for d in diagnostics)


@pytest.mark.parametrize("condition, column, hint", [
    ("distance > 1000 miles", 31, "write mi"),
    ("item.weight > 20 pounds", 32, "write lb"),
    ("transit > 2 weeks", 27, "write days (2 weeks = 14 days)"),
    ("now after 3pm", 26, "write a 24-hour time such as 15:00"),
])
def test_units_people_write_get_a_hint(condition, column, hint):
    text = f'playbook "units"\nrule "r" when {condition} then ship complete\n'
    [problem] = dsl.check(text, "units.playbook")
    word = condition.split()[-1].lstrip("0123456789")
    assert (problem.line, problem.column) == (2, column)
    assert problem.message == (f'unexpected "{word}": "{word}" is not a unit Steve knows; {hint} '
                               "(units: km, mi, kg, lb, days, hours, %, $)")
