"""Check a parsed playbook: every problem, sorted by position.

Errors make a playbook unusable; warnings point at things that are legal but
probably not meant (conflicting settings, rules that can never fire).
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
import zoneinfo
from dataclasses import dataclass
from functools import cache
from typing import Iterable

from . import facts as f
from . import nodes as n
from .diagnostics import Diagnostic, did_you_mean

MAX_RULES = 2000            # durable_rules allows 4096 rules per ruleset; stay well clear
MAX_TESTS_PER_RULE = 200
MAX_LIST_VALUES = 500
DOLLAR_CODES = frozenset({"USD", "CAD", "AUD", "NZD", "MXN"})   # currencies written with $


@dataclass(frozen=True)
class KnownIds:
    """What a playbook is checked against with `steve check --network`: the
    node and carrier ids of a network, and its currency (None: not checked)."""
    nodes: frozenset[str] = frozenset()
    carriers: frozenset[str] = frozenset()
    currency: str | None = None

    @classmethod
    def of(cls, network) -> "KnownIds":
        """Those of a network (anything with `nodes` and `carriers` that have
        an `id`, and a `currency`)."""
        return cls(frozenset(node.id for node in network.nodes),
                   frozenset(carrier.id for carrier in network.carriers),
                   getattr(network, "currency", None))


def check(playbook: n.Playbook, source: str = "", known: KnownIds | None = None) -> list[Diagnostic]:
    return sorted(_Checker(playbook, source, known).run(), key=lambda d: d.sort_key)


def tests_in(condition: n.Condition | None) -> Iterable[n.Test]:
    stack = [condition] if condition is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, n.Test):
            yield item
        elif isinstance(item, (n.Not, n.Paren)):
            stack.append(item.operand)
        elif isinstance(item, (n.All, n.Any)):
            stack.extend(reversed(item.operands))


def _paths(rule: n.Rule) -> list[n.Path]:
    """The facts a rule reads, in its conditions and its actions."""
    paths = [t.path for t in tests_in(rule.when)]
    paths += [v for t in tests_in(rule.when) for v in t.values if isinstance(v, n.Path)]
    paths += [a.value for a in rule.actions if isinstance(a.value, n.Path)]
    return paths


def rule_scope(rule: n.Rule) -> str:
    scope = f.ORDER
    for path in _paths(rule):
        candidate = f.scope_of(path.parts[0])
        if f.SCOPE_RANK.get(candidate, 0) > f.SCOPE_RANK[scope]:
            scope = candidate
    return scope


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


_IN_CAPITALS = ("order.ship_to.state", "order.ship_to.country")


class _Checker:
    def __init__(self, playbook: n.Playbook, source: str, known: KnownIds | None):
        self.playbook = playbook
        self.source = source
        self.known = known
        self.out: list[Diagnostic] = []
        self.groups = {g.name: g for g in playbook.groups}
        self.derived = self._derived_fields()
        # What statements skipped after a syntax error would have defined: that
        # one error is reported, not its consequences (an unknown group, ...).
        unreadable = playbook.unreadable
        self.unread_groups = {u.name for u in unreadable if u.kind == "group"}
        self.unread_fields = {f for u in unreadable for f in u.fields_set}
        self.currencies: list[tuple[str, n.Span, bool]] = []   # (code or "$", where, from the setting)

    def error(self, span: n.Span, message: str, related=()) -> None:
        self.out.append(Diagnostic.at(span, "error", message, self.source, related))

    def warning(self, span: n.Span, message: str, related=()) -> None:
        self.out.append(Diagnostic.at(span, "warning", message, self.source, related))

    def run(self) -> list[Diagnostic]:
        self.check_header()
        self.check_settings()
        self.check_groups()
        self.check_rules()
        self.check_balanced()
        self.check_currency()
        self.check_invisible()
        return self.out

    def check_balanced(self) -> None:
        """`optimize balanced` weighs the slowest shipment's days at `a day
        saved is worth`: without that setting ($0) it plans as `optimize cost`."""
        if any(s.name == "day_value" for s in self.playbook.settings) or \
                any(u.kind in ("setting", "text") for u in self.playbook.unreadable):
            return
        spans = [s.value.span for s in self.playbook.settings
                 if s.name == "optimize" and str(s.value.value).lower() == "balanced"]
        spans += [a.span for r in self.playbook.rules for a in r.actions
                  if a.kind == "optimize" and a.target == "balanced"]
        if spans:
            self.warning(min(spans, key=lambda span: (span.line, span.column)),
                         "`optimize balanced` weighs each day of transit at `a day saved is worth`, which "
                         "this playbook does not set ($0), so balanced plans the same as `optimize cost`; "
                         "set it before the first rule, e.g. a day saved is worth $3.00")

    def check_invisible(self) -> None:
        """Invisible characters make text look the same but compare different;
        bidirectional overrides can make code read differently than it runs."""
        for number, text in enumerate(self.source.split("\n"), start=1):
            for column, char in enumerate(text, start=1):
                if unicodedata.category(char) != "Cf":
                    continue
                name = unicodedata.name(char, "FORMAT CHARACTER")
                span = n.Span(self.playbook.file, number, column, number, column + 1)
                if 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069:
                    self.error(span, f"bidirectional control character U+{ord(char):04X} ({name}): "
                               "it can make the playbook read differently than it runs; remove it")
                else:
                    self.warning(span, f"invisible character U+{ord(char):04X} ({name}): text with it "
                                 "looks the same but compares different; remove it")

    # ---- header and settings ------------------------------------------------
    def check_header(self) -> None:
        statements = self.playbook.statements
        headers = [s for s in statements if isinstance(s, n.Header)]
        if not headers:
            if any(u.kind == "header" for u in self.playbook.unreadable):
                return
            span = statements[0].span if statements else n.Span(self.playbook.file, 1, 1, 1, 1)
            self.error(span, 'a playbook starts with its name, e.g. playbook "Acme Outfitters"')
            return
        if statements[0] is not headers[0]:
            self.error(headers[0].span, "the playbook header must be the first statement")
        for extra in headers[1:]:
            self.error(extra.span, f"the playbook is already named on line {headers[0].span.line}",
                       [headers[0].span])
        if not headers[0].name.strip():
            self.error(headers[0].span, "the playbook name is empty")

    def check_settings(self) -> None:
        seen: dict[str, n.Setting] = {}
        for setting in self.playbook.settings:
            first = seen.get(setting.name)
            if first is not None:
                self.error(setting.span, f"`{_setting_words(setting.name)}` is set twice: first at "
                           f"line {first.span.line}, again here; keep one", [first.span])
                continue
            seen[setting.name] = setting
            value = setting.value
            if setting.name == "timezone" and value.value not in _timezones():
                self.error(value.span, f'unknown timezone "{value.value}"'
                           + (did_you_mean(value.value, _timezones()) or
                              '; use a name like "America/Chicago" or "UTC"'))
            elif setting.name == "optimize" and value.value not in f.OBJECTIVES:
                self.error(value.span, f'unknown objective "{value.text}"'
                           + did_you_mean(value.text, f.OBJECTIVES))
            elif setting.name == "max_shipments":
                if not isinstance(value.value, int) or value.value < 1:
                    self.error(value.span, "max shipments must be a whole number of at least 1")
            elif setting.name in ("day_value", "split_penalty"):
                self.note_money(value)
                if value.value < 0:
                    self.error(value.span, f"{_setting_words(setting.name)} cannot be negative")
            elif setting.name == "currency":
                code = str(value.value).upper()
                if len(code) != 3 or not code.isalpha():
                    self.error(value.span, 'currency is a three-letter code such as "USD"')
                else:
                    self.currencies.append((code, value.span, True))

    def note_money(self, literal: n.Literal | None) -> None:
        if literal is not None and literal.kind == "money":
            self.currencies.append((literal.unit or "$", literal.span, False))

    def check_currency(self) -> None:
        """One currency per playbook: the `currency` setting, or else the
        first amount written. `$` is a dollar: it goes with USD, CAD, AUD, NZD
        or MXN (the first of those written then fixes which), never with EUR,
        GBP, ... Each amount that does not fit is reported."""
        if not self.currencies:
            return
        declared = [(c, s) for c, s, setting in self.currencies if setting]
        first_code, first_span = declared[0] if declared else self.currencies[0][:2]
        for code, span, setting in self.currencies:
            if span == first_span:
                continue
            if code == first_code:
                continue
            if first_code == "$" and code in DOLLAR_CODES:
                first_code, first_span = code, span
                continue
            if code == "$" and first_code in DOLLAR_CODES:
                continue
            shown = "$ (dollars)" if code == "$" else code
            self.error(span, f"one currency per playbook: this is {shown}, but line "
                       f"{first_span.line} uses {'$ (dollars)' if first_code == '$' else first_code}",
                       [first_span])
        self.check_network_currency(first_code, first_span, bool(declared))

    def check_network_currency(self, code: str, span: n.Span, declared: bool) -> None:
        """Steve does not convert amounts: the playbook's currency (its
        `currency` setting, or else the amount that fixed it) must be the
        network's, where costs and handling are (a warning)."""
        network = (self.known.currency or "").upper() if self.known is not None else ""
        if not network or code == network or (code == "$" and network in DOLLAR_CODES):
            return
        what = (f"the playbook's currency is {code}" if declared else
                f"this amount is in {'$ (dollars)' if code == '$' else code} and fixes the playbook's currency")
        # a warning, not an error: a network file that leaves `currency` out means USD, and an
        # order is still routed (every amount taken as written, in the network's currency)
        self.warning(span, f"{what}, but the network's currency is {network}: Steve does not convert "
                     f"amounts, so write them in {network}")

    # ---- groups -------------------------------------------------------------
    def check_groups(self) -> None:
        seen: dict[str, n.Group] = {}
        for group in self.playbook.groups:
            if group.name in seen:
                self.error(group.name_span, f'group "{group.name}" is defined twice (first on line '
                           f"{seen[group.name].span.line})", [seen[group.name].span])
            seen.setdefault(group.name, group)
            for member in group.nodes or ():
                self.check_node_id(str(member.value), member.span)
            if group.where is not None:
                for test in tests_in(group.where):
                    # the fact tested, and any fact named as a value (`node.state is
                    # order.ship_to.state`): a group is the same for every order
                    paths = [test.path, *(v for v in test.values if isinstance(v, n.Path))]
                    other = next((p for p in paths if p.parts[0].lower() in f.FACTS
                                  and p.parts[0].lower() != "node"), None)
                    if other is not None:
                        self.error(other.span, f'a group is a set of nodes: its condition can '
                                   f'only look at node fields, not "{other.text}"')
                        continue
                    if test.op in ("in group", "not in group") and self.group_used_too_early(
                            group, test.values[0], seen):
                        continue
                    self.check_test(test)

    def group_used_too_early(self, group: n.Group, value: n.Value, seen: dict[str, n.Group]) -> bool:
        """A group's condition may use only the groups defined above it (so
        groups cannot refer to each other in a circle)."""
        name = str(value.value)
        if name == group.name:
            self.error(value.span, f'group "{name}" cannot be defined in terms of itself')
            return True
        if name in self.groups and name not in seen:
            self.error(value.span, f'group "{name}" is defined below, on line '
                       f"{self.groups[name].span.line}; a group can only use the groups defined "
                       "above it", [self.groups[name].span])
            return True
        return False

    # ---- rules ------------------------------------------------------------------
    def check_rules(self) -> None:
        rules = self.playbook.rules
        if len(rules) > MAX_RULES:
            self.error(rules[MAX_RULES].span, f"too many rules ({len(rules)}); the limit is {MAX_RULES}")
        seen: dict[str, n.Rule] = {}
        for rule in rules:
            if rule.name in seen:
                self.error(rule.name_span, f'rule "{rule.name}" is defined twice (first on line '
                           f"{seen[rule.name].span.line}); rule names must be unique",
                           [seen[rule.name].span])
            seen.setdefault(rule.name, rule)
            self.check_rule(rule)
        self.check_conflicts(rules)

    def check_rule(self, rule: n.Rule) -> None:
        if not rule.name.strip():
            self.error(rule.name_span, "the rule name is empty")
        for word in ("when", "priority", "then"):
            spans = [s for c, s in zip(rule.clauses, rule.clause_spans) if c == word]
            if len(spans) > 1 and word != "then":
                self.error(spans[1], f'rule "{rule.name}" has two `{word}` clauses; '
                           + ("join the conditions with and/or" if word == "when" else "keep one"))
        if rule.priority is not None and not isinstance(rule.priority, int):
            span = next(s for c, s in zip(rule.clauses, rule.clause_spans) if c == "priority")
            self.error(span, f"priority is a whole number, e.g. priority 10 (not {rule.priority:g})")
        if "then" not in rule.clauses:
            self.error(rule.name_span, f'rule "{rule.name}" has no `then`: say what it does, '
                       'e.g. then avoid node because "..."')
        tests = list(tests_in(rule.when))
        if len(tests) > MAX_TESTS_PER_RULE:
            self.error(rule.span, f"too many conditions in one rule ({len(tests)}); the limit is "
                       f"{MAX_TESTS_PER_RULE}: use a group")
        for test in tests:
            self.check_test(test)
        self.check_satisfiable(rule)
        scope = rule_scope(rule)
        if any(path.parts[0].lower() not in f.FACTS for path in _paths(rule)):
            scope = None        # not known: said once, at the unknown fact
        for action in rule.actions:
            self.check_action(action, rule, scope)

    def check_conflicts(self, rules: tuple[n.Rule, ...]) -> None:
        setters: dict[tuple[str, int], list[tuple[n.Rule, n.Action]]] = {}
        for rule in rules:
            for action in rule.actions:
                setting = f.SETTING_ACTIONS.get(action.kind)
                if setting:
                    setters.setdefault((setting, rule.priority or 0), []).append((rule, action))
        for (setting, priority), entries in setters.items():
            for (rule_a, action_a), (rule_b, action_b) in zip(entries, entries[1:]):
                if rule_a is rule_b or _same_effect(action_a, action_b):
                    continue
                self.warning(action_b.span, f'rules "{rule_a.name}" (line {rule_a.span.line}) and '
                             f'"{rule_b.name}" (line {rule_b.span.line}) both decide the {setting} '
                             f"with priority {priority}; when both fire, the later one in the file "
                             "wins (give one a higher priority to make the choice explicit)",
                             [action_a.span])

    # ---- conditions -------------------------------------------------------------
    def check_path(self, path: n.Path) -> str | None:
        fact = path.parts[0].lower()
        if fact not in f.FACTS:
            self.error(_part_span(path, 0), f'unknown fact "{path.parts[0]}"' + (
                did_you_mean(path.parts[0], f.FACTS) or
                "; facts are: " + ", ".join(sorted(f.FACTS))))
            return None
        fields = f.FACTS[fact]
        name = ".".join(path.parts[1:])
        kind = f.field_kind(path.parts, self.derived)
        if kind is not None:
            return kind
        if "" in fields and not name:
            return fields[""]
        if "" in fields:
            self.error(path.span, f'"{fact}" has no fields; compare it directly, e.g. '
                       f"{fact} > {f.EXAMPLE.get(fields[''], '3')}")
            return None
        if not name:
            if "tags" in fields or fact == "node":
                return "fact"
            self.error(path.span, f'"{fact}" needs a field, e.g. {fact}.{next(iter(fields))}')
            return None
        if (fact, name.lower()) in self.unread_fields:
            return None      # set by a rule that has a syntax error: its kind is unknown
        choices = sorted({k for k in fields if k} | {k for (fa, k) in self.derived if fa == fact})
        self.error(_part_span(path, 1, len(path.parts)), f'unknown field "{name}" of {fact}'
                   + (did_you_mean(name, choices) or "; fields are: " + ", ".join(sorted(choices))))
        return None

    def check_test(self, test: n.Test) -> None:
        fact = test.path.parts[0].lower()
        if test.op in ("has tag", "has no tag") and fact in f.FACTS and fact not in f.TAGGED:
            self.error(test.op_span, f'"{test.path.text}" has no tags; `has tag` works on order, '
                       "customer, item and node")
            return
        kind = self.check_path(test.path)
        for value in test.values:
            if isinstance(value, n.Path):
                self.check_path(value)
            else:
                self.note_money(value)
        if kind is None:
            return
        op, path = test.op, test.path
        if op in ("has tag", "has no tag"):
            if path.parts[0].lower() not in f.TAGGED or (kind not in ("fact", "tags")):
                self.error(test.op_span, f'"{path.text}" has no tags; `has tag` works on order, '
                           "customer, item and node")
            return
        if op in ("in group", "not in group"):
            if path.parts[0].lower() != "node" or kind not in ("fact", "string"):
                self.error(test.op_span, "`in group` tests a node: write node in group \"...\"")
            self.check_group_name(test.values[0])
            return
        if kind == "fact":
            self.error(path.span, f'"{path.text}" needs a field here, e.g. '
                       f"{path.text}.{next(k for k in f.FACTS[path.parts[0].lower()] if k)}")
            return
        if kind == "tags":
            self.error(test.op_span, f'tags are tested with `has tag`, e.g. '
                       f'{path.parts[0]} has tag "gift"')
            return
        if op in ("<", "<=", ">", ">=", "between") and kind not in f.ORDERED_KINDS:
            self.error(test.op_span, f'"{path.text}" is {f.DESCRIBE.get(kind, kind)}; it cannot be '
                       f"compared with {op}")
            return
        if op in ("after", "before") and kind not in ("day", "time"):
            self.error(test.op_span, f"`{op}` compares days and times (today, now), not "
                       f"{f.DESCRIBE.get(kind, kind)}")
            return
        if len(test.values) > MAX_LIST_VALUES:
            self.error(test.op_span, f"too many values in one list (limit {MAX_LIST_VALUES}); use a group")
        checked = len(self.out)
        for value in test.values:
            self.check_value(path, kind, op, value)
        if op == "between" and not any(d.severity == "error" for d in self.out[checked:]):
            self.check_range(test)

    def check_range(self, test: n.Test) -> None:
        """`between` with its bounds the wrong way round holds for nothing
        (times of day included: a range does not wrap past midnight)."""
        low, high = _bounds(test.values)
        if low is None or high is None or low <= high:
            return
        first, second = test.values
        path = test.path.text
        if first.kind == "time":
            hint = (f"times of day do not wrap past midnight: for a range across midnight write "
                    f"({path} >= {first.text} or {path} <= {second.text})")
        else:
            hint = f"the smaller bound comes first: {path} between {second.text} and {first.text}"
        word = "after" if first.kind in ("date", "time") else "more than"
        self.warning(test.op_span, f"this range is empty: {first.text} is {word} {second.text}; {hint}")

    def check_value(self, path: n.Path, kind: str, op: str, value: n.Value) -> None:
        if isinstance(value, n.Literal) and value.kind == "string" and ".".join(path.parts).lower() in _IN_CAPITALS \
                and str(value.value) != str(value.value).upper():
            # the order's state and country are read in capitals, whatever the order sent
            self.warning(value.span, f'{path.text} is read in capitals: "{value.value}" matches no order; '
                         f'write "{str(value.value).upper()}"')
        if isinstance(value, n.Path):
            other = f.field_kind(value.parts, self.derived)
            if other is not None and other != kind and not {other, kind} <= {"string", "kind"}:
                self.error(value.span, f'{_verb(op, path.text)} ({f.DESCRIBE.get(kind, kind)}) '
                           f"{_to(op)} {value.text} ({f.DESCRIBE.get(other, other)})")
            return
        if kind.startswith("choice:"):
            options = kind.split(":", 1)[1].split("|")
            if value.kind in ("word", "string") and str(value.value).lower() in options:
                return
            self.error(value.span, f'{path.text} is one of {", ".join(options)}, not {value.text}'
                       + did_you_mean(str(value.value), options))
            return
        if kind == "day":
            if value.kind == "word" and value.value not in f.DAY_WORDS:
                self.error(value.span, f'unknown weekday "{value.text}"'
                           + (did_you_mean(str(value.value), f.DAY_WORDS)
                              or "; use monday … sunday, weekday or weekend"))
                return
            if value.kind == "word" and op not in ("is", "is not", "=", "!=", "in", "not in"):
                self.error(value.span, f"`{op}` needs a date here, e.g. 2026-11-27")
                return
            if value.kind == "date":
                self.check_date(value)
                return
        if kind == "kind":
            word = str(value.value).lower()
            if value.kind in ("word", "string") and word in f.NODE_KINDS:
                return
            self.error(value.span, f'unknown node kind "{value.value}"'
                       + (did_you_mean(word, f.NODE_KINDS) or "; kinds are: " + ", ".join(f.NODE_KINDS)))
            return
        if value.kind in f.ACCEPTS.get(kind, set()):
            if value.kind == "string" and _names_node(path):
                self.check_node_id(str(value.value), value.span)
                return
            if kind == "percent" and value.kind == "number" and abs(value.value) > 1:
                # a bare number is a share of 1 (0.8 = 80%); 80 is almost surely 80%
                self.warning(value.span, f"{path.text} is a percentage and a bare number is a share "
                             f"of 1, so {value.text} means {value.value * 100:g}%: write {value.text}% "
                             f"(or {value.value * 100:g}%) to say which")
                return
            if value.kind == "time" and not (0 <= value.value < 24 * 60 and int(value.text[-2:]) < 60):
                self.error(value.span, f"{value.text} is not a time of day (00:00 to 23:59)")
            return
        if value.kind == "word" and kind == "string":
            self.error(value.span, f'write text in double quotes: "{value.text}"')
            return
        if value.kind == "number" and kind in ("distance", "weight"):
            unit = "km or mi" if kind == "distance" else "kg or lb"
            self.error(value.span, f"{path.text} is {f.DESCRIBE[kind]}: give a unit, e.g. "
                       f"{value.text} {unit.split(' or ')[0]} ({unit})")
            return
        self.error(value.span, f"{_verb(op, path.text)} ({f.DESCRIBE.get(kind, kind)}) {_to(op)} "
                   f"{value.text} ({f.DESCRIBE.get(value.kind, value.kind)}); write "
                   f"{f.DESCRIBE.get(kind, kind)} such as {f.EXAMPLE.get(kind, '...')}")

    def check_date(self, value: n.Literal) -> None:
        try:
            dt.date.fromisoformat(str(value.value))
        except ValueError as error:
            reason = str(error).replace("day is", "the day is").replace("month must", "the month must")
            self.error(value.span, f"{value.text} is not a date on the calendar ({reason})")

    def check_group_name(self, value: n.Value) -> None:
        name = str(value.value)
        if name not in self.groups and name not in self.unread_groups:
            self.error(value.span, f'unknown group "{name}"' + (
                did_you_mean(name, self.groups) or
                ("; groups are: " + ", ".join(sorted(self.groups)) if self.groups
                 else '; define it first: group "name" is nodes "ID", ...')))

    def check_satisfiable(self, rule: n.Rule) -> None:
        for conjunction in _conjunctions(rule.when):
            reason = _impossible(conjunction)
            if reason:
                self.warning(conjunction[0].span, f'rule "{rule.name}" can never fire: {reason}')
                return

    # ---- actions --------------------------------------------------------------------
    def check_action(self, action: n.Action, rule: n.Rule, scope: str | None) -> None:
        kind = action.kind
        self.note_money(action.amount)
        if kind in ("optimize", "split_penalty", "max_shipments") and action.span.column == 1 \
                and action.span.line != rule.span.line:
            words = n.describe(action)
            self.warning(action.span, f'`{words}` here is an action of rule "{rule.name}" (it applies only '
                         "when that rule fires); to set it for every order, move it before the first rule, "
                         "or indent it to show it belongs to the rule")
        if kind in f.CANDIDATE_ACTIONS and scope is not None and scope != f.CANDIDATE:
            verb = kind.split("_")[0]
            looks = "the order" if scope == f.ORDER else "order lines but no node"
            self.error(action.span, f"`{verb}` needs a node and an item, but this rule looks only at "
                       f"{looks}; add a condition on node or stock (e.g. when node.kind is store), "
                       f'or name the node: {verb} node "ID"' if verb != "keep" else
                       f"`keep` needs a node and an item, but this rule looks only at {looks}; "
                       "add a condition on node or stock (e.g. when node.kind is store)")
        if kind in ("exclude_named_node", "avoid_named_node", "prefer_named_node",
                    "penalize_named_node", "route_to_node"):
            self.check_node_id(action.target, action.target_span)
        elif kind in ("exclude_group", "avoid_group"):
            self.check_group_name(n.Literal("string", action.target, action.target, span=action.target_span))
        elif kind in ("use_carrier", "avoid_carrier", "surcharge"):
            self.check_carrier_id(action.target, action.target_span)
        elif kind == "optimize" and action.target not in f.OBJECTIVES:
            self.error(action.target_span, f'unknown objective "{action.target}"'
                       + did_you_mean(action.target or "", f.OBJECTIVES))
        elif kind in ("max_shipments", "keep"):
            value = action.amount.value if action.amount else None
            lowest = 1 if kind == "max_shipments" else 0
            if not isinstance(value, int) or value < lowest:
                self.error(action.amount.span if action.amount else action.span,
                           f"{'max shipments' if kind == 'max_shipments' else 'keep'} takes a whole "
                           f"number of at least {lowest}")
        elif kind in ("tag_order", "tag_customer") and not (action.target or "").strip():
            self.error(action.target_span, "a tag cannot be empty")
        elif kind == "set_field":
            self.check_set(action)
        if kind in ("split_penalty", "surcharge", "prefer_node", "penalize_node",
                    "prefer_named_node", "penalize_named_node") \
                and action.amount is not None and action.amount.value < 0:
            # (a surcharge is also a carrier action above: checked here, after its carrier)
            self.error(action.amount.span, "the amount cannot be negative" + (
                " (use prefer instead of a negative penalty)" if kind.startswith("penalize") else
                " (use penalize instead of a negative preference)" if kind.startswith("prefer") else ""))
        if action.reason is not None and not action.reason.strip():
            self.error(action.span, "the reason after `because` is empty")

    def check_set(self, action: n.Action) -> None:
        path = action.field
        fact = path.parts[0].lower()
        if fact not in f.SETTABLE_FACTS or len(path.parts) < 2:
            self.error(path.span, f"`set` changes a field of the order or the customer "
                       f"(e.g. set order.priority to 1), not {path.text}")
            return
        if path.parts[1:] == ("id",) or f.field_kind(path.parts) == "tags":
            self.error(path.span, f"{path.text} cannot be changed" +
                       ("; use tag order/customer" if path.parts[-1] == "tags" else ""))
            return
        builtin = f.field_kind(path.parts)
        if isinstance(action.value, n.Path):
            if self.check_path(action.value) is not None and builtin is not None:
                self.check_value(path, builtin, "to", action.value)
            return
        if builtin is not None:
            self.check_value(path, builtin, "to", action.value)
        elif action.value.kind == "word":
            # a new field holds text: quoted, as it will be when rules test it
            self.error(action.value.span, f'write text in double quotes: "{action.value.text}"')

    # ---- network ids -------------------------------------------------------------------
    def check_node_id(self, node_id: str | None, span: n.Span) -> None:
        if self.known is None or node_id is None or node_id in self.known.nodes:
            return
        self.error(span, f'unknown node "{node_id}"' + did_you_mean(node_id, self.known.nodes))

    def check_carrier_id(self, carrier: str | None, span: n.Span) -> None:
        if self.known is None or carrier is None or carrier in self.known.carriers:
            return
        self.error(span, f'unknown carrier "{carrier}"' + did_you_mean(carrier, self.known.carriers))

    def _derived_fields(self) -> dict[tuple[str, str], str]:
        derived = {}
        for rule in self.playbook.rules:
            for action in rule.actions:
                if action.kind == "set_field" and action.field and len(action.field.parts) >= 2:
                    value = action.value
                    kind = (f.field_kind(value.parts) if isinstance(value, n.Path)
                            else ("string" if value.kind == "word" else value.kind)) or "string"
                    if action.field.parts[1:] == ("id",):
                        continue
                    derived[(action.field.parts[0].lower(),
                             ".".join(action.field.parts[1:]).lower())] = kind
        return derived


# ---- helpers ------------------------------------------------------------------------

def _verb(op: str, path: str) -> str:
    """How a kind mismatch starts: a test compares, a `set` sets."""
    return f"cannot set {path}" if op == "to" else f"cannot compare {path}"


def _to(op: str) -> str:
    return "to" if op == "to" else "with"


def _setting_words(name: str) -> str:
    return {"day_value": "a day saved is worth", "split_penalty": "split penalty",
            "max_shipments": "max shipments"}.get(name, name)


def _part_span(path: n.Path, first: int, last: int | None = None) -> n.Span:
    """The span of path.parts[first:last] (paths are written without spaces)."""
    last = first + 1 if last is None else last
    start = path.span.column + sum(len(p) + 1 for p in path.parts[:first])
    width = len(".".join(path.parts[first:last]))
    span = path.span
    if span.end_line != span.line:
        return span
    return n.Span(span.file, span.line, start, span.line, start + width)


def _names_node(path: n.Path) -> bool:
    """node.id, order.pickup_node: fields that hold a node id."""
    return (path.parts[0].lower(), ".".join(path.parts[1:]).lower()) in f.NODE_ID_FIELDS


def _same_effect(a: n.Action, b: n.Action) -> bool:
    return (a.kind, a.target, a.amount.value if a.amount else None, a.service) == \
        (b.kind, b.target, b.amount.value if b.amount else None, b.service)


def _bounds(values: tuple[n.Value, ...]) -> tuple:
    """The two bounds of a `between` as comparable values (dates as dates),
    or Nones when they are not two literals of one ordered sort."""
    if len(values) != 2 or not all(isinstance(v, n.Literal) for v in values):
        return None, None
    if values[0].kind == values[1].kind == "money" and values[0].unit != values[1].unit:
        return None, None     # two currencies: an error of its own
    if all(v.kind == "date" for v in values):
        try:
            return tuple(dt.date.fromisoformat(str(v.value)) for v in values)
        except ValueError:
            return None, None
    if all(isinstance(v.value, (int, float)) and not isinstance(v.value, bool) for v in values) \
            and (values[0].kind == "time") == (values[1].kind == "time"):
        return values[0].value, values[1].value
    return None, None


def _conjunctions(condition: n.Condition | None) -> list[list[n.Test]]:
    """The tests that must all hold together, for the top-level `and` only
    (a cheap, sound approximation: never a false warning)."""
    if condition is None:
        return []
    while isinstance(condition, n.Paren):
        condition = condition.operand
    if isinstance(condition, n.Test):
        return [[condition]]
    if isinstance(condition, n.All):
        tests = []
        for operand in condition.operands:
            while isinstance(operand, n.Paren):
                operand = operand.operand
            if isinstance(operand, n.Test):
                tests.append(operand)
        return [tests] if tests else []
    return []


def _impossible(tests: list[n.Test]) -> str | None:
    bounds: dict[tuple[str, ...], list[float]] = {}
    equals: dict[tuple[str, ...], set] = {}
    for test in tests:
        key = tuple(p.lower() for p in test.path.parts)
        literals = [v for v in test.values if isinstance(v, n.Literal)]
        if len(literals) != len(test.values):
            continue
        numeric = [v for v in literals if isinstance(v.value, (int, float)) and v.kind != "time"]
        low, high = bounds.setdefault(key, [-math.inf, math.inf])
        fact_field = (key[0], ".".join(key[1:]))
        if fact_field in f.NON_NEGATIVE or (key[0], "") in f.NON_NEGATIVE and len(key) == 1:
            low = max(low, 0.0)
        if fact_field in f.AT_LEAST_ONE:
            low = max(low, 1.0)
        if numeric and len(numeric) == len(literals):
            value = numeric[0].value
            if test.op in ("<", "before"):
                high = min(high, value - 1e-12)
            elif test.op == "<=":
                high = min(high, value)
            elif test.op in (">", "after"):
                low = max(low, value + 1e-12)
            elif test.op == ">=":
                low = max(low, value)
            elif test.op in ("is", "="):
                low, high = max(low, value), min(high, value)
            elif test.op == "between" and len(numeric) == 2 and numeric[0].value <= numeric[1].value:
                # (bounds the wrong way round get their own warning: check_range)
                low, high = max(low, numeric[0].value), min(high, numeric[1].value)
        bounds[key] = [low, high]
        if low > high:
            return f'no value of {test.path.text} satisfies "{test.path.text} {test.op} ' \
                   f'{" and ".join(v.text for v in literals)}" together with the rest of the condition' \
                if len(tests) > 1 else f"{test.path.text} is never {test.op} " \
                f"{' and '.join(v.text for v in literals)}"
        if test.op in ("is", "=") and literals and literals[0].kind == "string":
            seen = equals.setdefault(key, set())
            seen.add(literals[0].value)
            if len(seen) > 1:
                return f"{test.path.text} cannot be both " + " and ".join(f'"{v}"' for v in sorted(seen))
    return None
