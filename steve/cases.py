"""`steve test`: playbook test cases written in YAML.

A test file names a playbook and the network, catalog and stock it runs
with (paths relative to the test file), may change a few stock rows, and
lists cases: an order (inline, or the path of a JSON/YAML file) and what
the decision must look like. See docs/testing.md for the format.

    playbook: demo.playbook
    network: network.json
    catalog: catalog.json
    stock: stock.csv
    stock_rows: [{node: BOS-STORE, sku: JKT-RAIN-M, on_hand: 3}]     # optional
    defaults: {created_at: "2026-11-25T09:30:00-05:00"}              # merged into every order
    cases:
      - name: a rain jacket to Boston ships from Allentown
        order: {ship_to: {zip: "02108"}, lines: [{sku: JKT-RAIN-M, qty: 1}]}
        expect: {status: routed, nodes: [PA-DC], carrier: GROUNDLINE, cost: 7.98}

Every case routes against a fresh copy of the stock. A file that cannot be
run (bad YAML, a missing file, an unknown expectation, a rule or node name
the playbook or network does not have) is a BrokenTestFile whose message
starts with `FILE:LINE:`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import yaml
from pydantic import ValidationError

import dsl
from dsl.checker import KnownIds
from dsl.diagnostics import did_you_mean
from dsl.facts import OBJECTIVES
from engine import explain, route
from engine.decision import Decision
from engine.models import Catalog, Network, StockRow
from engine.stock import Stock
from .files import (InputError, describe_validation, load_catalog, load_network, load_stock, read_text,
                    unknown_names)

EXIT_OK, EXIT_FAILED, EXIT_BROKEN = 0, 1, 2
TOP_KEYS = {"name", "description", "playbook", "network", "catalog", "stock", "stock_rows", "defaults", "cases"}
CASE_KEYS = {"name", "description", "order", "expect", "stock_rows", "with_nodes"}
EXPECT_KEYS = ("status", "nodes", "carrier", "shipments", "cost", "days", "tags", "objective", "reason",
               "fired", "not_fired")
STATUSES = ("routed", "held", "error")
COST_TOLERANCE = 0.01


class BrokenTestFile(Exception):
    """The test file cannot be run; the message starts with FILE:LINE."""

    def __init__(self, path: str, line: int | None, message: str):
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path, self.line, self.message = path, line, message


# ---- the YAML, with line numbers --------------------------------------------------------------

def _parse(text: str, path: str) -> tuple[Any, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "cannot be read"
        if error.context and error.context_mark and mark and error.context_mark.line != mark.line:
            problem += f" ({error.context.removeprefix('while ')} that starts on line {error.context_mark.line + 1})"
        raise BrokenTestFile(path, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise BrokenTestFile(path, None, f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _child(node: yaml.Node | None, key) -> yaml.Node | None:
    """The value node under `key` of a mapping node, or item `key` of a sequence node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def _key_line(node: yaml.Node | None, key) -> int | None:
    """The line of `key:` itself in a mapping node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return _line(key_node)
    return _line(node)


# ---- a loaded test file --------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    line: int
    order: dict
    expect: dict
    rows: list[StockRow] = field(default_factory=list)
    with_nodes: tuple[str, ...] = ()


@dataclass
class Suite:
    path: str
    rulebook: dsl.Rulebook
    network: Network
    catalog: Catalog
    stock: Stock
    cases: list[Case]


def load_suite(path: str) -> Suite:
    try:
        text = read_text(path)
    except InputError as error:
        raise BrokenTestFile(path, None, str(error).removeprefix(f"{path}: ")) from None
    data, root = _parse(text, path)
    if not isinstance(data, dict):
        raise BrokenTestFile(path, _line(root) or 1, "a test file is a mapping with playbook, network, catalog, "
                                                    "stock and cases")
    for key in data:
        if key not in TOP_KEYS:
            raise BrokenTestFile(path, _key_line(root, key), f"unknown key {key!r}"
                                 + did_you_mean(str(key), TOP_KEYS) + f" (expected: {', '.join(sorted(TOP_KEYS))})")
    for key in ("playbook", "network", "catalog", "cases"):
        if key not in data:
            raise BrokenTestFile(path, 1, f"the test file needs {key!r}")
    folder = Path(path).parent

    def file_of(key: str) -> str:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise BrokenTestFile(path, _key_line(root, key), f"{key}: give the path of a file")
        return str(folder / value)

    def loaded(key: str, loader):
        try:
            return loader(file_of(key))
        except InputError as error:
            raise BrokenTestFile(path, _key_line(root, key), f"{key}: {error}") from None

    network = loaded("network", load_network)
    catalog = loaded("catalog", load_catalog)
    stock = loaded("stock", lambda file: load_stock(file, network, catalog)) if "stock" in data else Stock()
    known = KnownIds.of(network)
    rulebook = _playbook(path, file_of("playbook"), _key_line(root, "playbook"), known)
    context = _Context(path, network, catalog, rulebook)
    for row in context.rows(data.get("stock_rows"), _child(root, "stock_rows"), "stock_rows"):
        _set(stock, row)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise BrokenTestFile(path, _key_line(root, "defaults"), "defaults: a mapping of order fields")
    cases_node = _child(root, "cases")
    if not isinstance(data["cases"], list) or not data["cases"]:
        raise BrokenTestFile(path, _key_line(root, "cases"), "cases: a list of at least one case")
    cases, names = [], {}
    for index, raw in enumerate(data["cases"]):
        case = context.case(raw, _child(cases_node, index), defaults, folder)
        if case.name in names:
            raise BrokenTestFile(path, case.line, f"two cases are named {case.name!r} (the other is on line "
                                                  f"{names[case.name]})")
        names[case.name] = case.line
        cases.append(case)
    return Suite(path, rulebook, network, catalog, stock, cases)


def _playbook(path: str, playbook_path: str, line: int | None, known: KnownIds) -> dsl.Rulebook:
    try:
        source = read_text(playbook_path)
    except InputError as error:
        raise BrokenTestFile(path, line, f"playbook: {error}") from None
    try:
        return dsl.compile(source, Path(playbook_path).name, known)
    except dsl.PlaybookError:
        diagnostics = dsl.check(source, playbook_path, known)
        raise BrokenTestFile(path, line, f"the playbook {playbook_path} has {dsl.summary(diagnostics)}:\n"
                             + dsl.render([d for d in diagnostics if d.severity == "error"])) from None


def _set(stock: Stock, row: StockRow) -> None:
    stock.levels[(row.node, row.sku)] = [row.on_hand, row.reserved]


@dataclass
class _Context:
    path: str
    network: Network
    catalog: Catalog
    rulebook: dsl.Rulebook

    def broken(self, line, message: str) -> BrokenTestFile:
        return BrokenTestFile(self.path, line, message)

    def rows(self, raw, node, where: str) -> list[StockRow]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self.broken(_line(node), f"{where}: a list of {{node, sku, on_hand}}")
        rows = []
        for index, item in enumerate(raw):
            line = _line(_child(node, index))
            try:
                row = StockRow.model_validate(item)
            except ValidationError as error:
                raise self.broken(line, f"{where}: {describe_validation(error)}") from None
            unknown = unknown_names(row, self.network, self.catalog)
            if unknown:
                raise self.broken(line, f"{where}: {unknown[0]}")
            rows.append(row.model_copy(update={"sku": self.catalog.resolve(row.sku).sku}))
        return rows

    def case(self, raw, node, defaults: dict, folder: Path) -> Case:
        line = _line(node)
        if not isinstance(raw, dict):
            raise self.broken(line, "a case is a mapping with name, order and expect")
        for key in raw:
            if key not in CASE_KEYS:
                raise self.broken(_key_line(node, key), f"unknown key {key!r} in a case"
                                  + did_you_mean(str(key), CASE_KEYS))
        for key in ("name", "order", "expect"):
            if key not in raw:
                raise self.broken(line, f"the case needs {key!r}")
        name = raw["name"]
        if not isinstance(name, (str, int, float)) or not str(name).strip():
            raise self.broken(_key_line(node, "name"), "name: a short text")
        name = str(name).strip()
        order = self.order(raw["order"], _child(node, "order"), _key_line(node, "order"), defaults, folder, name)
        expect = self.expect(raw["expect"], _child(node, "expect"), _key_line(node, "expect"))
        rows = self.rows(raw.get("stock_rows"), _child(node, "stock_rows"), "stock_rows")
        with_nodes = raw.get("with_nodes") or []
        if isinstance(with_nodes, str):
            with_nodes = [with_nodes]
        if not isinstance(with_nodes, list) or not all(isinstance(n, str) for n in with_nodes):
            raise self.broken(_key_line(node, "with_nodes"), "with_nodes: a node id or a list of them")
        for node_id in with_nodes:
            if self.network.node(str(node_id)) is None:
                raise self.broken(_key_line(node, "with_nodes"), f"with_nodes: unknown node {node_id!r}")
        return Case(name, line, order, expect, rows, tuple(str(n) for n in with_nodes))

    def order(self, raw, node, line, defaults: dict, folder: Path, name: str) -> dict:
        if isinstance(raw, str):
            order_path = str(folder / raw)
            try:
                text = read_text(order_path)
                raw = yaml.safe_load(text) if order_path.endswith((".yaml", ".yml")) else json.loads(text)
            except InputError as error:
                raise self.broken(line, f"order: {error}") from None
            except (json.JSONDecodeError, yaml.YAMLError) as error:
                raise self.broken(line, f"order: {order_path} is not a valid order file: {error}") from None
        if not isinstance(raw, dict):
            raise self.broken(line, "order: a mapping (the order's fields) or the path of an order file")
        order = _merged(defaults, raw)
        order.setdefault("id", name)
        if order.get("created_at") is None:
            raise self.broken(line, "order: give created_at (in the order or in defaults), so that the case "
                                    "does not depend on the day it runs")
        return order

    def expect(self, raw, node, line) -> dict:
        if not isinstance(raw, dict) or not raw:
            raise self.broken(line, "expect: a mapping of at least one expectation ("
                              + ", ".join(EXPECT_KEYS) + ")")
        out = {}
        for key, value in raw.items():
            at = _key_line(node, key)
            if key not in EXPECT_KEYS:
                raise self.broken(at, f"unknown expectation {key!r}" + did_you_mean(str(key), EXPECT_KEYS)
                                  + f" (expected one of: {', '.join(EXPECT_KEYS)})")
            out[key] = self.expectation(key, value, at)
        return out

    def expectation(self, key: str, value, at):
        def names(kind: str):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise self.broken(at, f"{key}: a {kind} or a list of them")
            return items

        if key == "status":
            if value not in STATUSES:
                raise self.broken(at, f"status: one of {', '.join(STATUSES)}, not {value!r}")
        elif key == "nodes":
            for node_id in names("node id"):
                if self.network.node(node_id) is None:
                    raise self.broken(at, f"nodes: unknown node {node_id!r}"
                                      + did_you_mean(node_id, [n.id for n in self.network.nodes]))
            return sorted(names("node id"))
        elif key == "carrier":
            carriers = [c.id for c in self.network.carriers]
            if value is not None and value not in carriers:
                raise self.broken(at, f"carrier: unknown carrier {value!r}" + did_you_mean(str(value), carriers)
                                  + " (null: picked up, no carrier)")
        elif key in ("shipments",):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.broken(at, f"{key}: a whole number")
        elif key in ("cost", "days"):
            return self.amount(key, value, at)
        elif key == "tags":
            return sorted(names("tag"))
        elif key == "objective":
            if value not in OBJECTIVES:
                raise self.broken(at, f"objective: one of {', '.join(OBJECTIVES)}, not {value!r}")
        elif key == "reason":
            if not isinstance(value, str) or not value:
                raise self.broken(at, "reason: a text the reason must contain")
        elif key in ("fired", "not_fired"):
            rules = [r.name for r in self.rulebook.rules]
            for rule in names("rule name"):
                if rule not in rules:
                    raise self.broken(at, f"{key}: the playbook has no rule {rule!r}" + did_you_mean(rule, rules))
            return names("rule name")
        return value

    def amount(self, key: str, value, at):
        whole = key == "days"
        kind = (int,) if whole else (int, float)

        def number(v) -> bool:
            return isinstance(v, kind) and not isinstance(v, bool)

        if number(value):
            return {"exact": value}
        if isinstance(value, dict) and value and set(value) <= {"min", "max"} and all(map(number, value.values())):
            return dict(value)
        raise self.broken(at, f"{key}: a {'whole number' if whole else 'number'} or {{min: …, max: …}}")


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# ---- running ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: Case
    decision: Decision
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_case(suite: Suite, case: Case) -> Outcome:
    stock = suite.stock.copy()
    for row in case.rows:
        _set(stock, row)
    decision = route(suite.rulebook, suite.network, suite.catalog, stock, case.order, live_nodes=case.with_nodes)
    return Outcome(case, decision, mismatches(case.expect, decision.to_json()))


def _money(value: float) -> str:
    return f"{value:.2f}"


def mismatches(expect: dict, got: dict) -> list[str]:
    """`key: expected …, got …` for every expectation the decision does not meet."""
    out = []
    shipments = got.get("shipments", [])
    for key, want in expect.items():
        if key == "status" and got["status"] != want:
            out.append(f"status: expected {want}, got {got['status']}")
        elif key == "nodes":
            have = sorted(s["node"] for s in shipments)
            if have != want:
                out.append(f"nodes: expected {_list(want)}, got {_list(have)}")
        elif key == "carrier":
            have = sorted({s["carrier"] for s in shipments}, key=str)
            if not shipments or have != [want]:
                shown = ", ".join(str(c) if c is not None else "none (pickup)" for c in have) or "no shipments"
                out.append(f"carrier: expected {want if want is not None else 'none (pickup)'}, got {shown}")
        elif key == "shipments" and len(shipments) != want:
            out.append(f"shipments: expected {want}, got {len(shipments)}")
        elif key in ("cost", "days"):
            problem = _outside(key, want, got[key])
            if problem:
                out.append(problem)
        elif key == "tags" and sorted(got.get("tags", [])) != want:
            out.append(f"tags: expected {_list(want)}, got {_list(sorted(got.get('tags', [])))}")
        elif key == "objective" and got.get("objective") != want:
            out.append(f"objective: expected {want}, got {got.get('objective')}")
        elif key == "reason":
            said = [got.get("reason") or ""] + [f"{e.get('loc')}: {e.get('msg')}" for e in got.get("errors", ())]
            if not any(want in text for text in said):
                shown = "; ".join(t for t in said if t) or "no reason"
                out.append(f"reason: expected it to mention {want!r}, got {shown!r}")
        elif key in ("fired", "not_fired"):
            fired = {t["rule"] for t in got.get("trace", ())}
            if key == "fired":
                missing = [r for r in want if r not in fired]
                if missing:
                    out.append(f"fired: expected {_list(missing)} to fire; "
                               f"fired: {_list(sorted(fired)) if fired else 'no rule'}")
            else:
                unwanted = [r for r in want if r in fired]
                if unwanted:
                    out.append(f"not_fired: expected {_list(unwanted)} not to fire, but it did")
    return out


def _outside(key: str, want: dict, have) -> str | None:
    text = _money if key == "cost" else str
    if "exact" in want:
        tolerance = COST_TOLERANCE + 1e-9 if key == "cost" else 0
        if abs(have - want["exact"]) > tolerance:
            around = " (±0.01)" if key == "cost" else ""
            return f"{key}: expected {text(want['exact'])}{around}, got {text(have)}"
        return None
    low, high = want.get("min"), want.get("max")
    if (low is not None and have < low - 1e-9) or (high is not None and have > high + 1e-9):
        bounds = " and ".join(p for p in ((f"at least {text(low)}" if low is not None else ""),
                                          (f"at most {text(high)}" if high is not None else "")) if p)
        return f"{key}: expected {bounds}, got {text(have)}"
    return None


def _list(items) -> str:
    return ", ".join(str(i) for i in items) if items else "none"


# ---- the command ------------------------------------------------------------------------------------

def _github(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github(text).replace(":", "%3A").replace(",", "%2C")


def run_files(paths, style: str = "text", echo: Callable[..., None] = click.echo) -> int:
    """Run every test file; print one line per case and the details of
    failures. Returns 2 if a file is broken, else 1 if a case failed, else 0."""
    broken = failed = False
    for path in paths:
        try:
            suite = load_suite(path)
        except BrokenTestFile as error:
            broken = True
            echo(f"steve: {error}", err=True)
            if style == "github":
                echo(f"::error file={_github_property(error.path)},line={error.line or 1}::"
                     f"{_github(error.message)}")
            continue
        outcomes = [run_case(suite, case) for case in suite.cases]
        for outcome in outcomes:
            case = outcome.case
            if outcome.passed:
                echo(f"PASS {case.name}")
                continue
            failed = True
            echo(f"FAIL {case.name} ({suite.path}:{case.line})")
            for failure in outcome.failures:
                echo(f"    {failure}")
            echo("    the decision:")
            for line in explain(outcome.decision).splitlines():
                echo(f"      {line}".rstrip())
            if style == "github":
                echo(f"::error file={_github_property(suite.path)},line={case.line},title=steve test::"
                     + _github(f'case "{case.name}" failed: ' + "; ".join(outcome.failures)))
        passed = sum(o.passed for o in outcomes)
        echo(f"{suite.path}: {passed} passed, {len(outcomes) - passed} failed")
    return EXIT_BROKEN if broken else EXIT_FAILED if failed else EXIT_OK
