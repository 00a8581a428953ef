"""The installed `steve` command, run as a subprocess on real files:
exit codes, output formats, and clean messages for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import SEED, read_jsonl

STEVE = Path(sys.executable).with_name("steve")


def steve(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(STEVE)] if STEVE.exists() else [sys.executable, "-m", "steve.cli"]
    return subprocess.run(command + [str(a) for a in args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, timeout=60)


CLEAN = '''\
playbook "Clean"
rule "VIPs ship fast"
  when customer.tier is "VIP"
  then optimize speed
'''

WARNS = '''\
playbook "Warns"
rule "Never"
  when distance < 0 km
  then exclude node
'''

BROKEN = '''\
playbook "Broken"
rule "Typo"
  when custmer.tier is "VIP"
  then optimize speed
rule "Unknown carrier"
  when order.total > $5
  then use carrier "PARCELC"
'''


# Every command of this file is started at once, in parallel, the first
# time a test asks for its result: each one pays the interpreter's start-up,
# and running them one by one would take most of the test budget.

SCENARIOS = {s["name"]: s for s in read_jsonl(SEED / "scenarios.jsonl")}
PARKA = json.dumps(SCENARIOS["denver-parka"]["order"])


def seed_files(**replace: str) -> list:
    files = {"playbook": SEED / "seed.playbook", "network": SEED / "network.json",
             "catalog": SEED / "catalog.json", "stock": SEED / "stock.csv", **replace}
    return [part for name, path in files.items() for part in (f"--{name}", path)]


FILES = {
    "clean.playbook": CLEAN, "warns.playbook": WARNS, "broken.playbook": BROKEN,
    "twice.playbook": 'playbook "t"\nmax shipments 2\nmax shipments 3\n',
    "settings.playbook": 'playbook "X"\noptimize fastest\nsplit penalty $2.00\nsplit penalty $3.00\n'
                         "max shipments 0\n",
    "errors.playbook": (SEED / "errors.playbook").read_text(),
    "order.json": PARKA,
    "euro.playbook": 'playbook "Euro"\ncurrency "EUR"\nsplit penalty 2 EUR\n',
    "far.playbook": 'playbook "Far"\nrule "All from one place"\n  when node.id is "DEN-STORE"\n'
                     '  then route to node "NOPE-DC"\n',
    "bad-order.json": json.dumps({"id": "B1", "lines": [{"sku": "NO-SUCH-THING", "qty": 1}]}),
    "not-json.json": "{ not json",
    "cut.json": '{"nodes": [',
    "invalid.json": '{"nodes": [{"id": 3}], "carriers": []}',
    # SHOP-1001 is a channel alias of PARKA-M-RED; the seed stock's other rows are left out
    "alias-stock.csv": "node,sku,on_hand\nNJ-DC,SHOP-1001,4\n",
    "typo-stock.csv": "node,sku,on_hand\nNJ-DC,PARKA-M-RED,4\nTX-DX,PARKA-M-RED,5\n",
    "pickup-null.json": json.dumps(dict(json.loads(PARKA), delivery="pickup", pickup_node=None)),
    "nan-lat.json": json.dumps(dict(json.loads(PARKA), ship_to={"lat": float("nan"), "lon": -105.0})),
}

COMMANDS = {
    "clean": (["check", "clean.playbook"], None),
    "warns": (["check", "warns.playbook"], None),
    "several": (["check", "clean.playbook", "broken.playbook", "warns.playbook"], None),
    "no args": (["check"], None),
    "missing": (["check", "nope.playbook"], None),
    "bad format": (["check", "--format", "xml", "clean.playbook"], None),
    "recovers": (["check", "settings.playbook"], None),
    "json": (["check", "--format", "json", "broken.playbook", "warns.playbook", "twice.playbook"], None),
    "github": (["check", "--format", "github", "broken.playbook", "warns.playbook"], None),
    "network": (["check", "--network", SEED / "network.json", SEED / "seed.playbook", "broken.playbook",
                 "errors.playbook"], None),
    "network currency": (["check", "--network", SEED / "network.json", "euro.playbook"], None),
    "route": (["route", "order.json", *seed_files()], None),
    "explain": (["route", "order.json", *seed_files(), "--explain"], None),
    "route stdin": (["route", "-", *seed_files()], PARKA),
    "bad order": (["route", "bad-order.json", *seed_files()], None),
    "order not json": (["route", "not-json.json", *seed_files()], None),
    "network cut": (["route", "order.json", *seed_files(network="cut.json")], None),
    "network invalid": (["route", "order.json", *seed_files(network="invalid.json")], None),
    "broken playbook": (["route", "order.json", *seed_files(playbook="errors.playbook")], None),
    "stock alias": (["route", "order.json", *seed_files(stock="alias-stock.csv")], None),
    "stock typo": (["route", "order.json", *seed_files(stock="typo-stock.csv")], None),
    "pickup null": (["route", "pickup-null.json", *seed_files()], None),
    "nan lat": (["route", "nan-lat.json", *seed_files()], None),
    "unknown node": (["route", "order.json", *seed_files(playbook="far.playbook")], None),
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    with ThreadPoolExecutor(max_workers=len(COMMANDS)) as pool:
        futures = {name: pool.submit(steve, *args, stdin=stdin, cwd=folder)
                   for name, (args, stdin) in COMMANDS.items()}
        return {name: future.result() for name, future in futures.items()}


# ---- steve check ----------------------------------------------------------------------------

def test_check_clean_file(ran):
    result = ran["clean"]
    assert result.returncode == 0
    assert result.stdout == "clean.playbook: ok\n"
    assert result.stderr == ""


def test_check_warnings_only_exits_0(ran):
    result = ran["warns"]
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        'warns.playbook:3:8: warning: rule "Never" can never fire: distance is never < 0 km',
        "      when distance < 0 km",
        "           ^^^^^^^^^^^^^^^",
        "warns.playbook: 0 errors, 1 warning",
    ]


def test_check_errors_exit_1(ran):
    # clean.playbook, broken.playbook and warns.playbook in one run
    result = ran["several"]
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "clean.playbook: ok"
    assert lines[1] == 'broken.playbook:3:8: error: unknown fact "custmer"; did you mean "customer"?'
    assert lines[2:4] == ['      when custmer.tier is "VIP"', "           ^^^^^^^"]
    assert lines[4] == "broken.playbook: 1 error"
    assert lines[-1] == "warns.playbook: 0 errors, 1 warning"


def test_check_goes_on_after_a_syntax_error(ran):
    result = ran["recovers"]
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines() if not line.startswith("    ")] == [
        'settings.playbook:2:10: error: unexpected "fastest"; expected one of "balanced", "cost", "speed"',
        "settings.playbook:4:1: error: `split penalty` is set twice: first at line 3, again here; keep one",
        "settings.playbook:5:15: error: max shipments must be a whole number of at least 1",
        "settings.playbook: 3 errors",
    ]


def test_check_without_arguments_is_a_usage_error(ran):
    result = ran["no args"]
    assert result.returncode == 2
    assert "Missing argument 'PLAYBOOKS...'" in result.stderr
    assert result.stdout == ""


def test_check_missing_file_is_a_usage_error(ran):
    result = ran["missing"]
    assert result.returncode == 2
    assert result.stderr == "steve: nope.playbook: no such file\n"
    assert result.stdout == ""


def test_check_unknown_format_is_a_usage_error(ran):
    assert ran["bad format"].returncode == 2
    assert "'xml' is not one of 'text', 'json', 'github'" in ran["bad format"].stderr


def test_check_json(ran):
    result = ran["json"]
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "diagnostics"}
    assert report["ok"] is False
    assert report["diagnostics"] == [
        {"file": "broken.playbook", "line": 3, "column": 8, "end_column": 15, "severity": "error",
         "message": 'unknown fact "custmer"; did you mean "customer"?', "related": []},
        {"file": "warns.playbook", "line": 3, "column": 8, "end_column": 23, "severity": "warning",
         "message": 'rule "Never" can never fire: distance is never < 0 km', "related": []},
        {"file": "twice.playbook", "line": 3, "column": 1, "end_column": 16, "severity": "error",
         "message": "`max shipments` is set twice: first at line 2, again here; keep one",
         "related": [{"file": "twice.playbook", "line": 2, "column": 1}]},
    ]


def test_check_github(ran):
    result = ran["github"]
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        '::error file=broken.playbook,line=3,col=8::unknown fact "custmer"; did you mean "customer"?',
        '::warning file=warns.playbook,line=3,col=8::rule "Never" can never fire: distance is never < 0 km',
    ]


def test_check_against_a_network(ran):
    # seed.playbook, broken.playbook and errors.playbook against the seed network
    result = ran["network"]
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{SEED / 'seed.playbook'}: ok"
    assert 'broken.playbook:7:20: error: unknown carrier "PARCELC"; did you mean "PARCELCO"?' in lines
    assert "broken.playbook: 2 errors" in lines
    # without the network the carrier id is not checked
    assert "PARCELC" not in ran["several"].stdout
    assert [line.split(":")[1] for line in lines if line.startswith("errors.playbook:") and
            ": error: " in line] == ["6", "10", "14", "19", "21"]
    assert lines[-1] == "errors.playbook: 5 errors"


def test_check_against_a_network_in_another_currency(ran):
    result = ran["network currency"]
    assert result.returncode == 0                   # a warning: the playbook still checks clean
    assert result.stdout.splitlines()[:3] == [
        "euro.playbook:2:10: warning: the playbook's currency is EUR, but the network's currency is USD: Steve "
        "does not convert amounts, so write them in USD",
        '    currency "EUR"',
        "             ^^^^^",
    ]


# ---- steve route ------------------------------------------------------------------------------

def test_route_prints_the_decision_as_json(ran):
    result = ran["route"]
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["status"] == "routed"
    assert decision["order_id"] == "S1"
    assert [(s["node"], s["carrier"], s["cost"], s["days"]) for s in decision["shipments"]] == [
        ("TX-DC", "PARCELCO", 11.16, 2)]
    assert decision["playbook"]["name"] == "Acme Outfitters"
    assert decision["playbook"]["version"].startswith("sha256:")
    assert "Protect store floor stock" in decision["nodes"]["DEN-STORE"]
    assert {"rule", "file", "line", "node", "effect"} <= set(decision["trace"][0])
    assert decision["trace"][0]["file"] == "seed.playbook"


def test_route_explain(ran):
    result = ran["explain"]
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Order S1: ROUTED")
    assert "TX-DC by PARCELCO" in text
    assert "Why not the other nodes" in text
    assert 'excluded by rule "Protect store floor stock" (seed.playbook:15)' in text


def test_route_order_from_stdin(ran):
    result = ran["route stdin"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(ran["route"].stdout)


def test_route_a_bad_order_exits_1_with_an_error_decision(ran):
    result = ran["bad order"]
    assert result.returncode == 1
    decision = json.loads(result.stdout)
    assert decision["status"] == "error"
    assert decision["order_id"] == "B1"
    assert decision["shipments"] == []
    assert decision["errors"] == [{"loc": "lines.0.sku", "msg": "unknown item 'NO-SUCH-THING': no sku or "
                                   "channel alias in the catalog has that name"}]


@pytest.mark.parametrize("run, errors", [
    ("pickup null", [{"loc": "pickup_node", "msg": "Value error, a pickup order needs pickup_node: the node where "
                                                   "the customer collects it"}]),
    ("nan lat", [{"loc": "ship_to.lat", "msg": "Input should be a finite number"}]),
])
def test_route_names_the_field_of_an_invalid_order(ran, run, errors):
    result = ran[run]
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"] == errors


def test_route_an_order_that_is_not_json(ran):
    result = ran["order not json"]
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("steve: not-json.json:1:3: the order is not valid JSON")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("run, says", [
    ("network cut", "steve: cut.json:1:12: not valid JSON"),
    ("network invalid", "steve: invalid.json: nodes.0.id: Input should be a valid string"),
])
def test_route_with_a_malformed_network(ran, run, says):
    result = ran[run]
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(says)
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_route_with_a_broken_playbook(ran):
    result = ran["broken playbook"]
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == 'errors.playbook:6:8: error: unknown fact "custmer"; did you mean "customer"?'
    assert lines[-1] == "steve: the playbook has 5 errors"
    assert "Traceback" not in result.stderr


def test_route_with_stock_under_an_alias(ran):
    result = ran["stock alias"]
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["status"] == "routed"
    assert [(s["node"], s["lines"]) for s in decision["shipments"]] == [
        ("NJ-DC", [{"sku": "PARKA-M-RED", "qty": 1}])]


def test_route_with_an_unknown_node_in_the_stock(ran):
    result = ran["stock typo"]
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("steve: typo-stock.csv:3: unknown node 'TX-DX': the network has no such node; "
                             'did you mean "TX-DC"?\n')


def test_route_checks_the_playbook_against_the_network(ran):
    # a node the network does not have is told, as `steve check --network`
    # tells it, as a warning on stderr; the order is still decided (held: the
    # rule sends it to a node that is not there)
    result = ran["unknown node"]
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        'far.playbook:4:22: warning: unknown node "NOPE-DC"; did you mean "OH-DC"?',
        '      then route to node "NOPE-DC"',
        "                         ^^^^^^^^^",
        "far.playbook: checked against the network: 1 warning",
    ]
    decision = json.loads(result.stdout)
    assert decision["status"] == "held"
    assert decision["reason"].startswith('cannot be served now: the order is routed to NOPE-DC by rule ')
