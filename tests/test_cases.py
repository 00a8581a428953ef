"""`steve test`: YAML playbook test cases. The bundled demo cases pass;
failures print expected vs actual with the decision explained; --format
github annotates the right lines; broken test files exit 2 with FILE:LINE."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import RULEBOOKS
from steve.cases import BrokenTestFile, load_suite, mismatches

STEVE = Path(sys.executable).with_name("steve")

HEAD = f"""\
playbook: {RULEBOOKS / 'demo.playbook'}
network: {RULEBOOKS / 'network.json'}
catalog: {RULEBOOKS / 'catalog.json'}
stock: {RULEBOOKS / 'stock.csv'}
defaults:
  created_at: "2026-11-25T09:30:00-05:00"
  ship_to: {{country: US, state: MA, lat: 42.3601, lon: -71.0589}}
"""

# Line numbers matter below: the cases start on lines 9, 13 and 22.
FAILING = HEAD + """\
cases:
  - name: jacket to Boston
    order: {lines: [{sku: JKT-RAIN-M, qty: 1}]}
    expect: {nodes: [PA-DC], cost: 7.98}

  - name: wrong on purpose
    order:
      lines: [{sku: JKT-RAIN-M, qty: 1}]
    expect:
      nodes: [GA-DC]
      carrier: SOUTHX
      cost: {max: 5}
      fired: [Members get the quickest delivery]

  - name: held on purpose
    order: {lines: [{sku: KAYAK-SOLO, qty: 41}]}
    expect:
      status: routed
      reason: "50 wanted"
"""

PASSING = HEAD + """\
stock_rows:
  - {node: PA-DC, sku: CAP-TRAIL, on_hand: 0}
cases:
  - name: caps from Boston when Allentown has none
    order: {lines: [{sku: Trail Cap Green, qty: 1}]}
    expect: {nodes: [BOS-STORE], shipments: 1, not_fired: [Leave stores their last units]}
  - name: from a file, with a case's own stock
    stock_rows: [{node: BOS-STORE, sku: CAP-TRAIL, on_hand: 2}]
    order: order.json
    expect: {nodes: [AUS-STORE], fired: [Leave stores their last units], days: {min: 3, max: 4}}
"""

BROKEN_YAML = HEAD + """\
cases:
  - name: unclosed
    order: {lines: [{sku: JKT-RAIN-M, qty: 1}]
    expect: {status: routed}
"""

UNKNOWN_EXPECTATION = HEAD + """\
cases:
  - name: typo
    order: {lines: [{sku: JKT-RAIN-M, qty: 1}]}
    expect:
      status: routed
      cots: 7.98
"""

UNKNOWN_RULE = HEAD + """\
cases:
  - name: typo in a rule name
    order: {lines: [{sku: JKT-RAIN-M, qty: 1}]}
    expect:
      not_fired: [Holiday rsh]
"""

NO_TIME = HEAD.replace('  created_at: "2026-11-25T09:30:00-05:00"\n', "") + """\
cases:
  - name: depends on the clock
    order: {lines: [{sku: JKT-RAIN-M, qty: 1}]}
    expect: {status: routed}
"""

FILES = {
    "failing.yaml": FAILING, "passing.yaml": PASSING, "broken.yaml": BROKEN_YAML,
    "expectation.yaml": UNKNOWN_EXPECTATION, "rule.yaml": UNKNOWN_RULE, "no-time.yaml": NO_TIME,
    "missing-playbook.yaml": HEAD.replace(str(RULEBOOKS / "demo.playbook"), "nowhere.playbook")
    + "cases: [{name: x, order: {lines: [{sku: CAP-TRAIL, qty: 1}]}, expect: {status: routed}}]\n",
    "order.json": '{"id": "FILE-1", "lines": [{"sku": "CAP-TRAIL", "qty": 1}]}',
    "stock-typo.yaml": HEAD.replace(str(RULEBOOKS / "stock.csv"), "typo-stock.csv")
    + "cases: [{name: x, order: {lines: [{sku: CAP-TRAIL, qty: 1}]}, expect: {status: routed}}]\n",
    "typo-stock.csv": "node,sku,on_hand\nPA-DC,CAP-TRAIL,5\nBOS-STORE,Trail Cap Green,2\nBOS-STORE,CAP-TRAIL,1\n",
}

COMMANDS = {
    "demo": ["test", RULEBOOKS / "demo.tests.yaml"],
    "failing": ["test", "failing.yaml"],
    "github": ["test", "--format", "github", "failing.yaml", "passing.yaml"],
    "passing": ["test", "passing.yaml"],
    "broken": ["test", "broken.yaml", "passing.yaml"],
    "broken github": ["test", "--format", "github", "broken.yaml"],
    # one run for all of these: each broken file is one line on stderr, in order
    "several broken": ["test", "expectation.yaml", "rule.yaml", "no-time.yaml", "missing-playbook.yaml",
                       "stock-typo.yaml", "nope.yaml"],
}


def steve(*args, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(STEVE)] if STEVE.exists() else [sys.executable, "-m", "steve.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    here = tmp_path_factory.mktemp("cases")
    for name, text in FILES.items():
        (here / name).write_text(text)
    return here


@pytest.fixture(scope="module")
def ran(folder) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=len(COMMANDS)) as pool:
        futures = {name: pool.submit(steve, *args, cwd=folder) for name, args in COMMANDS.items()}
        return {name: future.result() for name, future in futures.items()}


def test_the_demo_cases_pass(ran):
    result = ran["demo"]
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20 and all(line.startswith("PASS ") for line in lines[:-1])
    assert lines[0] == "PASS Boston keeps its last rain jackets, Allentown ships"
    assert lines[-1].endswith("demo.tests.yaml: 19 passed, 0 failed")
    assert result.stderr == ""


def test_a_passing_file_with_stock_overrides_and_an_order_file(ran):
    result = ran["passing"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ("PASS caps from Boston when Allentown has none\n"
                             "PASS from a file, with a case's own stock\n"
                             "passing.yaml: 2 passed, 0 failed\n")


def test_failures_show_expected_actual_and_the_decision(ran):
    result = ran["failing"]
    assert result.returncode == 1
    out = result.stdout
    assert out.startswith("PASS jacket to Boston\n"
                          "FAIL wrong on purpose (failing.yaml:13)\n"
                          "    nodes: expected GA-DC, got PA-DC\n"
                          "    carrier: expected SOUTHX, got GROUNDLINE\n"
                          "    cost: expected at most 5.00, got 7.98\n"
                          "    fired: expected Members get the quickest delivery to fire; fired: Far nodes only "
                          "when needed, Leave stores their last units, Premium items leave from warehouses, "
                          "The back room is the last resort\n"
                          "    the decision:\n"
                          "      Order wrong on purpose: ROUTED\n"
                          "\n"
                          "      1 shipment(s), $7.98 in all, 1 day(s), objective: cost\n"
                          "        - PA-DC by GROUNDLINE: 1 x JKT-RAIN-M — $7.98, 1 day(s), 417 km\n")
    held = out[out.index("FAIL held on purpose"):]
    assert held.startswith("FAIL held on purpose (failing.yaml:22)\n"
                           "    status: expected routed, got held\n"
                           "    reason: expected it to mention '50 wanted', got 'cannot be served now: not "
                           "enough stock of KAYAK-SOLO: 41 wanted, 40 available'\n"
                           "    the decision:\n"
                           "      Order held on purpose: HELD — cannot be served now:")
    assert "Why not the other nodes:" in out
    assert out.endswith("failing.yaml: 1 passed, 2 failed\n")
    assert "::error" not in out


def test_github_annotations_point_at_the_failing_cases(ran):
    result = ran["github"]
    assert result.returncode == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert annotations == [
        "::error file=failing.yaml,line=13,title=steve test::case \"wrong on purpose\" failed: nodes: expected "
        "GA-DC, got PA-DC; carrier: expected SOUTHX, got GROUNDLINE; cost: expected at most 5.00, got 7.98; "
        "fired: expected Members get the quickest delivery to fire; fired: Far nodes only when needed, Leave "
        "stores their last units, Premium items leave from warehouses, The back room is the last resort",
        "::error file=failing.yaml,line=22,title=steve test::case \"held on purpose\" failed: status: expected "
        "routed, got held; reason: expected it to mention '50 wanted', got 'cannot be served now: not enough "
        "stock of KAYAK-SOLO: 41 wanted, 40 available'",
    ]
    assert result.stdout.endswith("passing.yaml: 2 passed, 0 failed\n")


def test_broken_yaml_exits_2_with_file_and_line(ran):
    result = ran["broken"]
    assert result.returncode == 2
    assert result.stderr == ("steve: broken.yaml:11: not valid YAML: expected ',' or '}', but got '<scalar>' "
                             "(parsing a flow mapping that starts on line 10)\n")
    assert result.stdout.endswith("passing.yaml: 2 passed, 0 failed\n")         # the other file still ran
    github = ran["broken github"]
    assert github.returncode == 2
    assert github.stdout == ("::error file=broken.yaml,line=11::not valid YAML: expected ',' or '}', but got "
                             "'<scalar>' (parsing a flow mapping that starts on line 10)\n")


BROKEN_MESSAGES = [
    "expectation.yaml:13: unknown expectation 'cots'; did you mean \"cost\"? (expected one of: status, nodes, "
    "carrier, shipments, cost, days, tags, objective, reason, fired, not_fired)",
    "rule.yaml:12: not_fired: the playbook has no rule 'Holiday rsh'; did you mean \"Holiday rush\"?",
    "no-time.yaml:9: order: give created_at (in the order or in defaults), so that the case does not depend on the "
    "day it runs",
    "missing-playbook.yaml:1: playbook: nowhere.playbook: no such file",
    "stock-typo.yaml:4: stock: typo-stock.csv:4: a second row for BOS-STORE and CAP-TRAIL (the first is on line 3; "
    "Trail Cap Green is an alias of CAP-TRAIL); give one row per node and item",
    "nope.yaml: no such file",
]


@pytest.mark.parametrize("index", range(len(BROKEN_MESSAGES)))
def test_broken_test_files_exit_2_with_a_clear_message(ran, index):
    result = ran["several broken"]
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[index] == f"steve: {BROKEN_MESSAGES[index]}"
    assert len(result.stderr.splitlines()) == len(BROKEN_MESSAGES)


# ---- in process -------------------------------------------------------------------------------------

def test_case_lines_come_from_the_yaml(folder):
    suite = load_suite(str(folder / "failing.yaml"))
    assert [(c.name, c.line) for c in suite.cases] == [("jacket to Boston", 9), ("wrong on purpose", 13),
                                                       ("held on purpose", 22)]
    assert suite.cases[0].order["id"] == "jacket to Boston"                 # the id defaults to the name
    assert suite.cases[0].order["ship_to"]["state"] == "MA"                 # defaults merged in


def test_a_broken_playbook_is_a_broken_test_file(tmp_path):
    (tmp_path / "bad.playbook").write_text('playbook "Bad"\nrule "r"\n  when custmer.tier is "x"\n'
                                           '  then optimize speed\n')
    (tmp_path / "t.yaml").write_text(HEAD.replace(str(RULEBOOKS / "demo.playbook"), "bad.playbook")
                                     + "cases: [{name: x, order: {lines: []}, expect: {status: error}}]\n")
    with pytest.raises(BrokenTestFile) as raised:
        load_suite(str(tmp_path / "t.yaml"))
    assert raised.value.line == 1
    assert "the playbook" in raised.value.message and "1 error" in raised.value.message
    assert 'bad.playbook:3:8: error: unknown fact "custmer"' in raised.value.message


def decision(cost: float = 7.98, days: int = 1, carrier: str | None = "GROUNDLINE") -> dict:
    return {"status": "routed", "cost": cost, "days": days, "tags": ["gift"], "objective": "cost",
            "shipments": [{"node": "PA-DC", "carrier": carrier, "lines": [{"sku": "X", "qty": 1}]}],
            "trace": [{"rule": "A"}], "reason": None}


@pytest.mark.parametrize("expect, got, problems", [
    ({"cost": {"exact": 7.98}}, decision(7.99), []),
    ({"cost": {"exact": 7.98}}, decision(7.97), []),
    ({"cost": {"exact": 7.98}}, decision(8.00), ["cost: expected 7.98 (±0.01), got 8.00"]),
    ({"cost": {"min": 8}}, decision(7.98), ["cost: expected at least 8.00, got 7.98"]),
    ({"days": {"exact": 2}}, decision(days=1), ["days: expected 2, got 1"]),
    ({"days": {"min": 1, "max": 2}}, decision(days=2), []),
    ({"carrier": None}, decision(carrier=None), []),
    ({"carrier": None}, decision(), ["carrier: expected none (pickup), got GROUNDLINE"]),
    ({"carrier": "GROUNDLINE"}, dict(decision(), shipments=[]), ["carrier: expected GROUNDLINE, got no shipments"]),
    ({"tags": []}, decision(), ["tags: expected none, got gift"]),
    ({"shipments": 2}, decision(), ["shipments: expected 2, got 1"]),
    ({"objective": "speed"}, decision(), ["objective: expected speed, got cost"]),
    ({"not_fired": ["A"]}, decision(), ["not_fired: expected A not to fire, but it did"]),
    ({"fired": ["A"]}, decision(), []),
    ({"reason": "lines.0.sku"}, {"status": "error", "errors": [{"loc": "lines.0.sku", "msg": "unknown item"}],
                                 "shipments": [], "cost": 0, "days": 0}, []),
])
def test_expectations(expect, got, problems):
    assert mismatches(expect, got) == problems
