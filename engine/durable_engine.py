"""The durable_rules matcher: `run_rules` with exactly the result of
`engine.matching.run_rules` (same firings, same order), where the matching of
conditions against facts is done by durable_rules (a Rete network in C).

This is the only module of the project that imports `durable`.

How a rulebook becomes a durable ruleset
----------------------------------------
* One ruleset per compiled rulebook, named ``steve_<16 hex of version>_<n>``,
  registered once per process on one shared Host and reused (cached by
  version). Durable can never replace or drop a ruleset, so nothing is ever
  registered per request.
* Every entity (the order, each line, each candidate) becomes one flat fact:
  a self-contained view carrying the keys its scope's rules read (its own,
  its line's and the order's), a scope code ``sc`` and a unique ``id``.
* Every compiled rule becomes one durable rule with a single pattern on facts
  of its scope: its condition with negations pushed down to the tests (De
  Morgan), expanded into mutually exclusive conjunctions and written as an
  ``$or`` of them (a rule with so many alternatives that they exceed durable's
  15 and/or groups in a pattern is split over several durable rules).
* A catch-all rule per scope, a "hello" rule and, for comparisons of two
  keys, join rules complete the ruleset (see below).

How values are encoded (so that Python's semantics hold exactly)
----------------------------------------------------------------
Every test reads a property that is *always present* (a sentinel stands for
a missing value), so each test and its negation are single alpha tests and
"not (x < 5)" holds when x is missing, as in `matching._check`:

* equality (eq, ne, in, not in): ``<key>__e`` is ``"n" + repr(float(v))`` for
  a number or bool (1 == 1.0 == True as in Python), ``"s" + text`` for
  printable-ASCII text, ``"x" + utf-8 hex`` for other text, and ``""`` for a
  missing value or a value of another kind (a tag set). "" equals no constant.
* ordering of numbers (lt, le, gt, ge, between): ``<key>__nlo``/``__nhi`` hold
  ``"n" + 16 hex digits`` of the IEEE-754 bits, flipped so that string order
  is numeric order; a missing or non-numeric value is ``""`` in ``__nlo``
  (below every number, so `>`/`>=` fail) and ``"o"`` in ``__nhi`` (above every
  number, so `<`/`<=` fail). lt/le test ``__nhi``, gt/ge test ``__nlo``; a
  negation tests the same property with the opposite operator.
* ordering of text: ``<key>__slo``/``__shi`` hold ``"s"`` + 6 hex digits per
  code point (string order is Python's code-point order), sentinels ``""``
  and ``"t"``. Comparing text with a number is false, as Python's TypeError.
* tags: one property per (key, tag named in the rulebook): 1 or 0.
* ``a.b is c.d`` (a comparison of two keys): durable 2.0.28 cannot compare
  two properties of one fact (``$m`` references never match), so a first
  stage asserts two small facts per entity and key pair and durable joins
  them (``ent`` equal, values compared); the relations it reports (eq, lt,
  gt) become 1/0 properties of the entity facts of the second stage.

Numbers are never sent as JSON floats: durable's number parser crashes the
process on floats written like ``1e+16`` or ``1e-05``.

Chaining
--------
Rounds, as in `matching.run_rules`: all entity facts are asserted into a
fresh session (sid); the matches durable reports are walked in agenda order
with refraction; at the first firing that changes a fact the session is
dropped and a new round starts with the updated facts. Each session is
deleted in a ``finally`` (durable holds at most 1024 live sessions per
ruleset and crashes beyond). Actions only record which durable rule matched
which facts into a per-sid list.

Surprises in durable_rules 2.0.28 guarded against here
------------------------------------------------------
* Asserting a batch in which one fact matches no rule raises
  MessageNotHandledException for the whole batch and runs no action at all,
  also for the facts that did match: every scope gets a catch-all rule whose
  action never becomes ready (``count`` 65535), so every fact is handled.
* The Host's background threads call ``start_action`` on every ruleset
  several times a second; that may take the pending actions of a session
  being evaluated synchronously (running them on the timer thread) or touch
  a session while it is deleted. This module's Host does not start them;
  all of its work is synchronous.
* Paths through ``$or`` multiply: each matching branch activates the rule
  again (3^k activations for k ORs of 3), more than 64 matching sibling
  tests overflow the alpha stack (error 303), and more than 15 and/or groups
  in a pattern are refused (error 113). Conditions are therefore expanded
  into mutually exclusive conjunctions, the rules of a scope are spread over
  a small tree of always-true bucket tests, and the network's worst-case
  stack is checked when the ruleset is built.
* Deleting a session in which no action ever started can crash the process:
  durable frees the session's action context, which it never initialised.
  Every session therefore starts with a fact whose action always runs, and
  when an assert fails before durable ran the actions, they are run before
  the session is deleted.
* A join whose pattern tests ``ent`` equality before a ``$lt``/``$gt`` of the
  two facts' values crashes the process whenever the comparison is false
  (with the comparison first it is stable; checked on thousands of random
  sessions).
* Facts are identified by a 32-bit FNV hash of their id within a session
  (MessageObservedException on a clash) and properties by the hash of their
  name: ids and property names are chosen without clashes here.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from durable.engine import Host, MessageNotHandledException, MessageObservedException

from dsl.compiler import AllOf, AnyOf, Check, Cond, NotOf, Rulebook

from . import matching
from .matching import FactBase, Firing

__all__ = ["MatcherError", "run_rules", "warm", "ruleset_name"]


class MatcherError(RuntimeError):
    """durable_rules could not evaluate the rules: a ruleset it cannot
    express, a value it cannot hold, or an error inside durable."""


# ---- limits of durable_rules 2.0.28 (src/rules/*.h) ------------------------------------

MAX_STACK = 64            # alpha tests pending in one traversal
STACK_MARGIN = 6
MAX_CHILDREN = 480        # alpha children of one node (a hash set of 512)
MAX_BETAS = 250           # rules ending on one alpha node (256)
MAX_ACTIONS = 4096        # durable rules in a ruleset
MAX_PROPERTIES = 255      # properties of one fact
MAX_TERMS = 256           # exclusive conjunctions for one compiled rule
MAX_GROUPS = 15           # $and/$or objects in one pattern (32 expression slots)
NEVER = 65535             # `count` of the catch-all rules: never ready
CAP = 65535               # matches handed to one action call
SAFE_INT = 2 ** 53
FAN = 8                   # bucket tree: fan-out and rules per leaf
MEMO_SIZE = 4096          # encoded values remembered per key

SCOPES = ("order", "line", "candidate")
SCOPE_CODE = {"order": 1, "line": 2, "candidate": 3}

ERROR_CODES = {
    102: "unexpected type", 106: "too many rules on one alpha node",
    107: "too many existence tests on one alpha node", 108: "too many rules on one alpha node",
    113: "too many and/or groups in one pattern", 302: "too many properties in one fact",
    303: "alpha network stack overflow", 309: "session not found", 311: "property not found",
    312: "operation not supported",
}

# ---- one Host per process ----------------------------------------------------------------


class _SyncHost(Host):
    """durable's Host without its background dispatch threads (see the module
    docstring): every evaluation runs its own actions synchronously."""

    def _run(self) -> None:
        return None


_host: _SyncHost | None = None
_host_lock = threading.Lock()


def _get_host() -> _SyncHost:
    global _host
    if _host is None:
        with _host_lock:
            if _host is None:
                _host = _SyncHost()
    return _host


# ---- sessions: what the actions record -----------------------------------------------------

@dataclass
class _Session:
    hits: list = field(default_factory=list)      # (tag, [payload, ...])
    errors: list = field(default_factory=list)


_sessions: dict[str, _Session] = {}
_sid_counter = itertools.count(1)
_sid_lock = threading.Lock()


def _next_sid() -> str:
    with _sid_lock:
        return f"s{next(_sid_counter)}"


def _term_action(index: int):
    def action(c):
        session = _sessions.get(c.s.sid)
        if session is not None:
            try:
                session.hits.append((index, [m.id for m in c.m]))
            except Exception as error:            # recorded, not swallowed by durable
                session.errors.append(repr(error))
    return action


def _ref_action(tag: tuple):
    def action(c):
        session = _sessions.get(c.s.sid)
        if session is not None:
            try:
                session.hits.append((tag, [m.b.ent for m in c.m]))
            except Exception as error:
                session.errors.append(repr(error))
    return action


def _never(c) -> None:       # the catch-all rules' action (never ready)
    return None


# ---- hashing (durable's FNV-1a, 32 bit) --------------------------------------------------------

def _fnv(text: str, start: int = 0x811C9DC5) -> int:
    h = start
    for byte in text.encode("ascii"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


RESERVED = ("sid", "id", "$s", "$forward", "$i", "$m")

# ---- value encodings ------------------------------------------------------------------

_SAFE_TEXT = re.compile(r"[ !#-\[\]-~]*\Z")       # printable ASCII except " and \


def _number(value: Any) -> float | None:
    """A float for a number or bool (compared exactly as Python compares
    it), None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        if -SAFE_INT <= value <= SAFE_INT:
            return float(value)
        raise MatcherError(f"the number {value} is too large for the durable_rules matcher "
                           "(integers up to 2**53)")
    if isinstance(value, float):
        return value
    return None


def _ordered_number(number: float) -> str:
    bits = struct.unpack(">Q", struct.pack(">d", number + 0.0))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"n{bits:016x}"


def _ordered_text(text: str) -> str:
    return "s" + "".join(f"{ord(ch):06x}" for ch in text)


def _equality(value: Any) -> str:
    """The __e encoding: "" for missing values and values of other kinds."""
    if value is None:
        return ""
    if isinstance(value, str):
        if _SAFE_TEXT.match(value):
            return "s" + value
        return "x" + value.encode("utf-8", "surrogatepass").hex()
    number = _number(value)
    if number is None:
        return ""
    if number != number:
        return "q"                       # NaN equals nothing
    return "n" + repr(number + 0.0)


def _numeric(value: Any) -> float | None:
    number = None if isinstance(value, str) else _number(value)
    return None if number is None or number != number else number


def _nlo(value: Any) -> str:
    number = _numeric(value)
    return "" if number is None else _ordered_number(number)


def _nhi(value: Any) -> str:
    number = _numeric(value)
    return "o" if number is None else _ordered_number(number)


def _slo(value: Any) -> str:
    return _ordered_text(value) if isinstance(value, str) else ""


def _shi(value: Any) -> str:
    return _ordered_text(value) if isinstance(value, str) else "t"


ENCODERS = {"e": _equality, "nlo": _nlo, "nhi": _nhi, "slo": _slo, "shi": _shi}


def _tag_set(key: str, value: Any):
    if value is None or isinstance(value, (frozenset, set, list, tuple)):
        return value or ()
    raise MatcherError(f"{key} holds {value!r}, not a set of tags")


def _constant_kind(value: Any, check: Check) -> str | None:
    """"num", "str", or None for a None constant; anything else cannot be
    matched by durable_rules."""
    if value is None:
        return None
    if isinstance(value, str):
        return "str"
    number = _number(value)
    if number is None or not math.isfinite(number):
        raise MatcherError(f"cannot match {check.key} against {value!r} with durable_rules")
    return "num"


def _side_value(key: str, value: Any) -> tuple[int, str]:
    """(type, encoding) of a value compared with another fact: 1 number,
    2 text, 3 NaN (equal to nothing, but `in` finds the very same object),
    0 missing."""
    if value is None:
        return 0, ""
    if isinstance(value, str):
        return 2, _ordered_text(value)
    number = _number(value)
    if number is None:
        raise MatcherError(f"{key} holds {value!r}; only numbers and text can be compared "
                           "with another fact")
    if number != number:
        return 3, f"q{id(value):x}"
    return 1, _ordered_number(number)


# ---- conditions -> formulas over alpha tests ------------------------------------------------
# A test is (property, op, value) with op one of == != < <= > >=; every property
# is always present in a fact, so the negation of a test is one test.
# Formulas: True, False, ("t", test), ("&", items), ("|", items).

NEG = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
DURABLE_OP = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def _and(*items):
    out = []
    for item in items:
        if item is False:
            return False
        if item is True:
            continue
        out.extend(item[1] if item[0] == "&" else (item,))
    return True if not out else out[0] if len(out) == 1 else ("&", tuple(out))


def _or(*items):
    out = []
    for item in items:
        if item is True:
            return True
        if item is False:
            continue
        out.extend(item[1] if item[0] == "|" else (item,))
    return False if not out else out[0] if len(out) == 1 else ("|", tuple(out))


def _negate(formula):
    if formula is True:
        return False
    if formula is False:
        return True
    kind = formula[0]
    if kind == "t":
        prop, op, value = formula[1]
        return ("t", (prop, NEG[op], value))
    if kind == "&":
        return _or(*(_negate(item) for item in formula[1]))
    return _and(*(_negate(item) for item in formula[1]))


class _TooComplex(Exception):
    pass


def _contradicts(test: tuple, term: tuple, term_set: set) -> bool:
    prop, op, value = test
    if (prop, NEG[op], value) in term_set:
        return True
    if op == "==":
        return any(other[0] == prop and other[1] == "==" and other[2] != value for other in term)
    return False


def _join(left: tuple, right: tuple):
    out = list(left)
    seen = set(left)
    for test in right:
        if test in seen:
            continue
        if _contradicts(test, tuple(out), seen):
            return None
        out.append(test)
        seen.add(test)
    return tuple(out)


def _exclusive(groups: list[list[tuple]]) -> bool:
    for i, first in enumerate(groups):
        for second in groups[i + 1:]:
            for a in first:
                a_set = set(a)
                for b in second:
                    if not any(_contradicts(test, a, a_set) for test in b):
                        return False
    return True


def _dnf(formula) -> list[tuple]:
    """Mutually exclusive conjunctions whose union is the formula."""
    if formula is True:
        return [()]
    if formula is False:
        return []
    kind = formula[0]
    if kind == "t":
        return [(formula[1],)]
    if kind == "&":
        terms: list[tuple] = [()]
        for item in formula[1]:
            parts = _dnf(item)
            terms = [t for t in (_join(a, b) for a in terms for b in parts) if t is not None]
            if len(terms) > MAX_TERMS:
                raise _TooComplex
            if not terms:
                return []
        return terms
    groups = [_dnf(item) for item in formula[1]]
    if _exclusive(groups):
        terms = [t for group in groups for t in group]
    else:                       # a | b | c  ->  a, (not a, b), (not a, not b, c)
        terms, negations = [], []
        for item in formula[1]:
            terms.extend(_dnf(_and(*negations, item)))
            negations.append(_negate(item))
            if len(terms) > MAX_TERMS:
                raise _TooComplex
    if len(terms) > MAX_TERMS:
        raise _TooComplex
    return terms


# ---- the compiled ruleset ------------------------------------------------------------------

@dataclass
class _Needs:
    """What the facts of one scope carry."""
    encodings: dict = field(default_factory=dict)     # key -> {enc: prop}
    tags: dict = field(default_factory=dict)          # key -> {tag: prop}
    refs: dict = field(default_factory=dict)          # pair index -> {rel: prop}
    buckets: dict = field(default_factory=dict)       # prop -> 1


@dataclass
class _Pair:
    """Two keys compared in one scope: durable joins their values."""
    scope: str
    key: str
    ref: str
    rels: dict = field(default_factory=dict)          # eq|lt|gt -> prop on the entity facts


class _Props:
    """Property names: readable, unique, with distinct FNV hashes."""

    def __init__(self):
        self.by_ident: dict = {}
        self.hashes = {_fnv(name) for name in RESERVED}

    def get(self, ident: tuple, readable: str) -> str:
        name = self.by_ident.get(ident)
        if name is None:
            base = re.sub(r"[^a-z0-9_]+", "_", readable.lower().replace(".", "__"))[:60] or "p"
            name, n = base, 1
            while _fnv(name) in self.hashes:
                name, n = f"{base}_{n}", n + 1
            self.hashes.add(_fnv(name))
            self.by_ident[ident] = name
        return name


class _Compiled:
    """One rulebook as a durable ruleset, with the encoders of its facts."""

    def __init__(self, rulebook: Rulebook, name: str):
        self.name = name
        self.rules = rulebook.rules
        self.lock = threading.Lock()
        self.props = _Props()
        self.needs = {scope: _Needs() for scope in SCOPES}
        self.pairs: dict[tuple, int] = {}
        self.pair_list: list[_Pair] = []
        self.scope_prop = self.props.get(("fixed", "sc"), "sc")
        self.hello = self.props.get(("fixed", "hello"), "hello")
        self.side = {k: self.props.get(("fixed", k), k) for k in ("rp", "sd", "t", "ent", "v")}
        self.definition: dict = {}
        self.scopes: tuple = ()
        self.encoders: dict = {}
        self._build(rulebook)

    # -- conditions ----------------------------------------------------------------------

    def _prop(self, scope: str, key: str, enc: str) -> str:
        props = self.needs[scope].encodings.setdefault(key, {})
        if enc not in props:
            props[enc] = self.props.get(("enc", key, enc), f"{key}.{enc}")
        return props[enc]

    def _formula(self, cond: Cond, scope: str):
        if isinstance(cond, Check):
            return self._check(cond, scope)
        if isinstance(cond, AllOf):
            return _and(*(self._formula(item, scope) for item in cond.items))
        if isinstance(cond, AnyOf):
            return _or(*(self._formula(item, scope) for item in cond.items))
        if isinstance(cond, NotOf):
            return _negate(self._formula(cond.item, scope))
        raise MatcherError(f"not a condition: {cond!r}")

    def _eq(self, scope: str, check: Check, value: Any):
        if _constant_kind(value, check) is None:
            return False                  # nothing equals None (a None value fails eq)
        return ("t", (self._prop(scope, check.key, "e"), "==", _equality(value)))

    def _order(self, scope: str, check: Check, op: str, value: Any):
        kind = _constant_kind(value, check)
        if kind is None:
            return False                  # None: a TypeError in Python, so false
        enc = ("n" if kind == "num" else "s") + ("hi" if op in ("<", "<=") else "lo")
        encoded = _ordered_number(_number(value)) if kind == "num" else _ordered_text(value)
        return ("t", (self._prop(scope, check.key, enc), op, encoded))

    def _check(self, check: Check, scope: str):
        op = check.op
        if op in ("has_tag", "has_no_tag"):
            tag = check.values[0]
            tags = self.needs[scope].tags.setdefault(check.key, {})
            if tag not in tags:
                tags[tag] = self.props.get(("tag", check.key, tag), f"{check.key}.tag.{tag}")
            test = ("t", (tags[tag], "==", 1))
            return test if op == "has_tag" else _negate(test)
        if check.ref is not None:
            return self._ref_check(check, scope)
        if op == "eq":
            return self._eq(scope, check, check.values[0])
        if op == "ne":
            return _negate(self._eq(scope, check, check.values[0]))
        if op in ("in", "not_in"):
            found = _or(*(self._eq(scope, check, value) for value in dict.fromkeys(check.values)))
            return found if op == "in" else _negate(found)
        if op in ("lt", "le", "gt", "ge"):
            symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
            return self._order(scope, check, symbol, check.values[0])
        if op == "between":
            if len(check.values) != 2:
                raise MatcherError(f"between needs two values: {check!r}")
            low, high = check.values
            kinds = (_constant_kind(low, check), _constant_kind(high, check))
            if kinds[0] is not None and kinds[0] == kinds[1]:
                bounds = (low, high) if kinds[0] == "str" else (_number(low), _number(high))
                if bounds[0] > bounds[1]:
                    return False          # an empty range
            return _and(self._order(scope, check, ">=", low), self._order(scope, check, "<=", high))
        raise MatcherError(f"unknown operator {op!r} in {check!r}")

    def _ref_check(self, check: Check, scope: str):
        op = check.op
        if op not in ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge"):
            raise MatcherError(f"cannot compare {check.key} {op} {check.ref} with durable_rules")
        ident = (scope, check.key, check.ref)
        index = self.pairs.get(ident)
        if index is None:
            index = self.pairs[ident] = len(self.pair_list)
            self.pair_list.append(_Pair(scope, check.key, check.ref))
        pair = self.pair_list[index]

        def rel(name: str):
            if name not in pair.rels:
                pair.rels[name] = self.props.get(("ref", index, name),
                                                 f"{check.key}.{name}.{check.ref}")
                self.needs[scope].refs.setdefault(index, {})[name] = pair.rels[name]
            return ("t", (pair.rels[name], "==", 1))

        if op == "eq":
            return rel("eq")
        if op == "ne":
            return _negate(rel("eq"))
        if op == "in":               # value in (other,): equal, or the very same object
            return rel("in")
        if op == "not_in":           # both present and not in (matching: None -> False)
            present = [("t", (self._prop(scope, key, "e"), "!=", "")) for key in (check.key, check.ref)]
            return _and(*present, _negate(rel("in")))
        if op == "lt":
            return rel("lt")
        if op == "gt":
            return rel("gt")
        if op == "le":
            return _or(rel("lt"), rel("eq"))
        return _or(rel("gt"), rel("eq"))

    # -- the ruleset ------------------------------------------------------------------------

    def _build(self, rulebook: Rulebook) -> None:
        by_scope: dict[str, list] = defaultdict(list)
        for rule in rulebook.rules:
            if rule.scope not in SCOPE_CODE:
                raise MatcherError(f'rule "{rule.name}": unknown scope {rule.scope!r}')
            formula = self._formula(rule.condition, rule.scope)
            try:
                terms = _dnf(formula)
            except _TooComplex:
                raise MatcherError(
                    f'rule "{rule.name}" ({rule.file}:{rule.line}): its condition is too complex '
                    f"for durable_rules (more than {MAX_TERMS} alternatives after expanding "
                    "or/not); split it into several rules") from None
            by_scope[rule.scope].append((rule, terms))

        # the first fact of every session: its action always runs (see `match`)
        definition: dict = {"hello": {"all": [{"m": {self.hello: 1}}], "run": _never}}
        patterns: list[list] = [[(self.hello, "==", 1), "beta"]]
        for scope, entries in by_scope.items():
            code = SCOPE_CODE[scope]
            definition[f"z_{scope}"] = {"all": [{"m": {self.scope_prop: code}}],
                                        "count": NEVER, "run": _never}
            patterns.append([(self.scope_prop, "==", code), "beta"])
            buckets = self._buckets(scope, len(entries))
            for position, (rule, terms) in enumerate(entries):
                prefix = [(self.scope_prop, "==", code)] + buckets[position]
                for number, chunk in enumerate(_chunks(terms)):
                    head = [_test_json(step) for step in prefix]
                    if len(chunk) == 1:
                        pattern = {"$and": head + [_test_json(step) for step in chunk[0]]}
                        patterns.append(prefix + list(chunk[0]) + ["beta"])
                    else:          # exclusive alternatives: one path through the $or at most
                        pattern = {"$and": head + [{"$or": [_branch_json(term) for term in chunk]}]}
                        joined = object()
                        patterns.extend(prefix + list(term) + [joined, "beta"] for term in chunk)
                    definition[f"r{rule.index}_{number}"] = {
                        "all": [{"m": pattern}], "cap": CAP, "run": _term_action(rule.index)}
        for index, pair in enumerate(self.pair_list):
            self._pair_rules(index, pair, definition, patterns)
        if len(definition) > MAX_ACTIONS:
            raise MatcherError(f"the rulebook needs {len(definition)} durable rules; "
                               f"durable_rules holds at most {MAX_ACTIONS} in a ruleset")
        for scope in SCOPES:
            count = 3 + self._property_count(scope)
            if count > MAX_PROPERTIES:
                raise MatcherError(f"{scope} facts would need {count} properties; durable_rules "
                                   f"holds at most {MAX_PROPERTIES} (too many fields and tags)")
        _check_network(patterns)
        self.definition = definition if by_scope else {}
        self.scopes = tuple(by_scope)
        self.encoders = {scope: self._encoders(scope) for scope in self.scopes}

    def _buckets(self, scope: str, count: int) -> list[list]:
        """Always-true tests that spread the rules of a scope over a tree
        (fan-out FAN, at most FAN rules a leaf), so that few alpha tests are
        pending at once in durable's traversal."""
        leaves = -(-count // FAN)
        levels = 0
        while FAN ** levels < leaves:
            levels += 1
        out = []
        for position in range(count):
            leaf, tests = position // FAN, []
            for level in range(levels):
                digit = (leaf // FAN ** (levels - 1 - level)) % FAN
                prop = self.props.get(("bucket", level, digit), f"b{level}_{digit}")
                self.needs[scope].buckets[prop] = 1
                tests.append((prop, "==", 1))
            out.append(tests)
        return out

    def _pair_rules(self, index: int, pair: _Pair, definition: dict, patterns: list) -> None:
        rp, sd, t, ent, v = (self.side[k] for k in ("rp", "sd", "t", "ent", "v"))
        # b.v OP a.v, a: the key's value (side 0), b: the other key's value (side 1).
        # The comparison comes before the join on `ent`: the other way round,
        # durable 2.0.28 crashes whenever a $lt/$gt join test is false.
        compare = {"eq": {v: {"a": v}}, "in": {v: {"a": v}},
                   "lt": {"$gt": {v: {"a": v}}}, "gt": {"$lt": {v: {"a": v}}}}
        for rel in pair.rels:       # numbers with numbers, text with text, NaN with itself
            for kind in (1, 2, 3) if rel == "in" else (1, 2):
                first = [(rp, "==", index), (sd, "==", 0), (t, "==", kind)]
                second = [(rp, "==", index), (sd, "==", 1), (t, "==", kind)]
                definition[f"x{index}_{rel}_{kind}"] = {
                    "all": [{"a": {"$and": [_test_json(s) for s in first]}},
                            {"b": {"$and": [_test_json(s) for s in second]
                                   + [dict(compare[rel]), {ent: {"a": ent}}]}}],
                    "cap": CAP, "run": _ref_action((index, rel))}
                patterns.append(first + ["beta"])
                patterns.append(second + [object(), object(), "beta"])

    def _property_count(self, scope: str) -> int:
        needs = self.needs[scope]
        count = len(needs.buckets) + sum(len(refs) for refs in needs.refs.values())
        count += sum(len(encs) for encs in needs.encodings.values())
        return count + sum(len(tags) for tags in needs.tags.values())

    def _encoders(self, scope: str) -> tuple:
        needs = self.needs[scope]
        keys = []
        for key in dict.fromkeys(list(needs.encodings) + list(needs.tags)):
            encs = tuple((prop, ENCODERS[enc]) for enc, prop in needs.encodings.get(key, {}).items())
            tags = tuple(needs.tags.get(key, {}).items())
            keys.append((key, _key_encoder(key, encs, tags)))
        refs = tuple((index, tuple(rels.items())) for index, rels in needs.refs.items())
        fixed = {self.scope_prop: SCOPE_CODE[scope], **needs.buckets}
        return fixed, tuple(keys), refs

    # -- evaluation --------------------------------------------------------------------------

    def match(self, base: FactBase) -> dict[int, set[int]]:
        """One round: rule index -> positions (in its scope's entity list) of
        the entities whose view satisfies the rule's condition."""
        host = _get_host()
        sid = _next_sid()
        session = _Session()
        owners: dict[str, int] = {}
        failed = False
        with self.lock:
            _sessions[sid] = session
            try:
                ids = _Ids(sid)
                # Every session starts with a fact whose action always runs:
                # durable frees a session's action context when it is deleted,
                # a context it never initialised if no action ever started.
                facts = [{"sid": sid, "id": ids.next(), self.hello: 1}]
                flags = {}
                if self.pair_list:
                    flags = self._ref_stage(host, sid, session, base, ids, facts)
                    facts = []
                layers = _Layers(base)
                for scope in self.scopes:
                    fixed, keys, refs = self.encoders[scope]
                    for position, entity in enumerate(base.entities(scope)):
                        fact = layers.fact(sid, ids.next(), fixed, keys, entity)
                        for index, rels in refs:
                            found = flags.get((index, position), ())
                            for rel, prop in rels:
                                fact[prop] = 1 if rel in found else 0
                        owners[fact["id"]] = position
                        facts.append(fact)
                session.hits.clear()
                self._assert(host, sid, facts, session)
            except BaseException:
                failed = True
                raise
            finally:
                _sessions.pop(sid, None)
                self._delete(host, sid, drain=failed)
        matches: dict[int, set[int]] = defaultdict(set)
        for index, fact_ids in session.hits:
            matches[index].update(owners[fid] for fid in fact_ids)
        return matches

    def _ref_stage(self, host, sid: str, session: _Session, base: FactBase, ids, facts: list) -> dict:
        """The first stage: durable joins the values of compared keys; the
        relations found, by (pair index, entity position)."""
        rp, sd, t, ent, v = (self.side[k] for k in ("rp", "sd", "t", "ent", "v"))
        for index, pair in enumerate(self.pair_list):
            for position, entity in enumerate(base.entities(pair.scope)):
                view = base.view(entity)
                sides = [_side_value(key, view.get(key)) for key in (pair.key, pair.ref)]
                if sides[0][0] and sides[0][0] == sides[1][0] and (sides[0][0] < 3 or "in" in pair.rels):
                    for side, (kind, encoded) in enumerate(sides):
                        facts.append({"sid": sid, "id": ids.next(), rp: index, sd: side,
                                      t: kind, ent: position, v: encoded})
        self._assert(host, sid, facts, session)
        flags: dict[tuple, set] = defaultdict(set)
        for (index, rel), positions in session.hits:
            for position in positions:
                flags[(index, position)].add(rel)
        return flags

    def _assert(self, host, sid: str, facts: list, session: _Session) -> None:
        if not facts:
            return
        try:
            host.assert_facts(self.name, facts)
        except MessageNotHandledException:
            if len(facts) > 1:       # durable then skipped the actions of the facts that matched
                raise MatcherError(f"durable_rules left facts of session {sid} unhandled "
                                   "and ran none of the matches") from None
        except MessageObservedException:
            raise MatcherError(f"durable_rules saw two facts with the same id hash in session "
                               f"{sid}; no result was computed") from None
        except MatcherError:
            raise
        except Exception as error:
            raise MatcherError(f"durable_rules failed evaluating ruleset {self.name}: "
                               f"{_describe(error)}") from error
        if session.errors:
            raise MatcherError(f"a durable_rules action failed: {session.errors[0]}")

    def _delete(self, host, sid: str, drain: bool) -> None:
        if drain:      # an assert failed before durable ran its actions: run them first
            try:
                ruleset = host.get_ruleset(self.name)
                for _ in range(3):
                    ruleset.dispatch()
            except Exception:
                pass
        try:
            host.delete_state(self.name, sid)
        except Exception as error:
            if "error code: 309" not in str(error):      # 309: no state, nothing was asserted
                raise MatcherError(f"could not delete durable_rules session {sid}: "
                                   f"{_describe(error)}") from error


def _key_encoder(key: str, encs: tuple, tags: tuple):
    """value -> the properties that encode it (memoised: values repeat
    across candidates; values equal in Python, like 1, 1.0 and True, have
    the same encoding)."""
    memo: dict = {}

    def compute(value: Any) -> dict:
        out = {prop: encoder(value) for prop, encoder in encs}
        if tags:
            present = _tag_set(key, value)
            for tag, prop in tags:
                out[prop] = 1 if tag in present else 0
        return out

    def encode(value: Any) -> dict:
        try:
            out = memo.get(value)
        except TypeError:                 # unhashable (a set or list of tags)
            return compute(value)
        if out is None:
            out = compute(value)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[value] = out
        return out
    return encode


class _Layers:
    """Entity facts over one round: a key is looked up in the entity's own
    facts, then its line's, then the order's (FactBase.view), and a value of
    the order or of a line is encoded once."""

    def __init__(self, base: FactBase):
        self.lines = base.lines
        self.order = base.order
        self.cache: dict = {}

    def fact(self, sid: str, fid: str, fixed: dict, keys: tuple, entity) -> dict:
        fact = {"sid": sid, "id": fid, **fixed}
        order, cache = self.order, self.cache
        own = entity.facts if entity.scope != "order" else None
        line = self.lines[entity.line].facts if entity.scope == "candidate" else None
        for key, encode in keys:
            if own is not None and key in own:
                fact.update(encode(own[key]))
                continue
            if line is not None and key in line:
                where, value = entity.line, line[key]
            elif key in order:
                where, value = "order", order[key]
            else:
                where, value = "missing", None
            # each scope encodes a key its own way (the tags its rules name):
            # the cache is per encoder, not per key
            fragment = cache.get((where, key, encode))
            if fragment is None:
                fragment = cache[(where, key, encode)] = encode(value)
            fact.update(fragment)
        return fact


class _Ids:
    """Fact ids of one session whose 32-bit hashes differ (durable knows a
    fact by that hash, and the session's own state fact by "sid-<sid>")."""

    def __init__(self, sid: str):
        self.prefix = sid + ":"
        self.start = _fnv(self.prefix)
        self.seen = {_fnv("sid-" + sid)}
        self.count = 0

    def next(self) -> str:
        while True:
            self.count += 1
            suffix = str(self.count)
            h = _fnv(suffix, self.start)
            if h not in self.seen:
                self.seen.add(h)
                return self.prefix + suffix


def _chunks(terms: list[tuple]) -> list[list[tuple]]:
    """The alternatives of one rule, packed into as few durable rules as
    durable's limit of 15 and/or groups in a pattern allows (an $and and an
    $or around them, an $and in each alternative of two tests or more)."""
    chunks: list[list[tuple]] = []
    groups = MAX_GROUPS
    for term in terms:
        cost = 1 if len(term) > 1 else 0
        if not chunks or groups + cost > MAX_GROUPS:
            chunks.append([])
            groups = 2
        chunks[-1].append(term)
        groups += cost
    return chunks


def _branch_json(term: tuple) -> dict:
    if len(term) == 1:
        return _test_json(term[0])
    return {"$and": [_test_json(step) for step in term]}


def _test_json(step: tuple) -> dict:
    prop, op, value = step
    if op == "==":
        return {prop: value}
    return {DURABLE_OP[op]: {prop: value}}


def _describe(error: Exception) -> str:
    text = str(error)
    found = re.search(r"error code: (\d+)", text)
    if found and int(found.group(1)) in ERROR_CODES:
        return f"{text} ({ERROR_CODES[int(found.group(1))]})"
    return text


def _width(node: dict) -> int:
    """How many children of an alpha node one fact can match at once
    (durable pushes them all on its traversal stack)."""
    children = [step for step in node if step != "#betas"]
    if len(children) > MAX_CHILDREN:
        raise MatcherError("the ruleset has too many alternatives at one point for durable_rules")
    groups: dict = defaultdict(set)
    for step in children:
        groups[step[0] if isinstance(step, tuple) else id(step)].add(step)
    count = 0
    for steps in groups.values():
        tests = [s for s in steps if isinstance(s, tuple)]
        count += len(steps) - len(tests)                # joins: always pending
        if any(s[1] == "==" for s in tests):
            count += 1                                  # a property has one value
        others = {(s[1], s[2]) for s in tests if s[1] != "=="}
        seen: set = set()
        for op, value in others:
            if (op, value) not in seen:                 # x < c and x >= c: one of the two
                seen.update(((op, value), (NEG[op], value)))
                count += 1
    return count


def _check_network(patterns: list[list]) -> None:
    """Model durable's alpha network (tests shared by parent, property,
    operator and value) and check its limits: tests pending in a traversal,
    children of a node, rules ending on a node."""
    root: dict = {}
    for steps in patterns:
        node = root
        for step in steps:
            if step == "beta":
                node["#betas"] = node.get("#betas", 0) + 1
                if node["#betas"] > MAX_BETAS:
                    raise MatcherError("too many rules with the same condition for durable_rules "
                                       f"(at most {MAX_BETAS})")
                break
            node = node.setdefault(step, {})
    deepest, stack = 0, [(root, 0)]
    while stack:
        node, pending = stack.pop()
        pending += max(_width(node) - 1, 0)
        deepest = max(deepest, pending)
        stack.extend((child, pending) for step, child in node.items() if step != "#betas")
    if deepest + 1 > MAX_STACK - STACK_MARGIN:
        raise MatcherError(f"the rulebook's conditions are too wide for durable_rules: one fact "
                           f"could leave {deepest + 1} tests pending (at most {MAX_STACK})")


# ---- registry: one ruleset per rulebook version, per process ------------------------------------

_compiled: dict[str, list] = {}
_registry_lock = threading.Lock()
_ruleset_numbers = itertools.count(1)


def _compiled_for(rulebook: Rulebook) -> _Compiled:
    entry = _lookup(rulebook)
    if entry is None:
        with _registry_lock:
            entry = _lookup(rulebook)
            if entry is None:
                entry = _register(rulebook)
    if isinstance(entry, MatcherError):
        raise MatcherError(str(entry))
    return entry


def _signature(rules) -> tuple:
    """What the ruleset depends on (not names, files, lines or effects)."""
    return tuple((rule.index, rule.scope, rule.condition) for rule in rules)


def _lookup(rulebook: Rulebook):
    entries = _compiled.get(rulebook.version, ())
    for entry in entries:
        if entry.rules is rulebook.rules:
            return entry
    if entries:
        signature = _signature(rulebook.rules)
        for entry in entries:
            if entry.signature == signature:
                entry.rules = rulebook.rules          # the fast path for this object next time
                return entry
    return None


def _register(rulebook: Rulebook):
    digest = re.sub(r"[^0-9a-f]", "", rulebook.version.split(":", 1)[-1].lower())[:16]
    name = f"steve_{digest or '0' * 16}_{next(_ruleset_numbers)}"
    try:
        entry = _Compiled(rulebook, name)
        if entry.definition:
            try:
                _get_host().set_rulesets({name: entry.definition})
            except Exception as error:
                raise MatcherError(f"durable_rules refused the ruleset of {rulebook.file}: "
                                   f"{_describe(error)}") from error
    except MatcherError as error:       # remembered: the same rulebook fails the same way
        entry = error
    entry.rules = rulebook.rules
    entry.signature = _signature(rulebook.rules)
    _compiled.setdefault(rulebook.version, []).append(entry)
    return entry


def warm(rulebook: Rulebook) -> None:
    """Build and register the rulebook's ruleset now (once per process)."""
    _compiled_for(rulebook)


def ruleset_name(rulebook: Rulebook) -> str:
    """The name of the durable ruleset that evaluates this rulebook."""
    return _compiled_for(rulebook).name


# ---- the agenda ------------------------------------------------------------------------------

def run_rules(rulebook: Rulebook, base: FactBase) -> list[Firing]:
    """Fire the rules on the facts to a fixpoint; the firings in order
    (identical to engine.matching.run_rules)."""
    compiled = _compiled_for(rulebook)
    agenda = matching.Agenda(base)
    while True:
        matches = compiled.match(base) if compiled.definition else {}
        restart = False
        for rule in rulebook.rules:
            hits = matches.get(rule.index)
            if not hits:
                continue
            for position, entity in enumerate(base.entities(rule.scope)):
                if position not in hits or not agenda.pending(rule, entity):
                    continue
                if agenda.fire(rule, entity):
                    restart = True
                    break
            if restart:
                break
        if not restart:
            return agenda.firings
